// vahanorm demo [-o DIR]: the whole method on a generated pair with a known answer.
#include <cstdio>

#include <spdlog/spdlog.h>

#include "app/commands.hpp"
#include "app/exit_codes.hpp"
#include "core/error.hpp"
#include "core/synthetic.hpp"
#include "core/transform.hpp"
#include "io/atomic_file.hpp"
#include "io/image_io.hpp"
#include "io/model_file.hpp"

namespace vn::app {
namespace {

// The side of the generated images: --size.
constexpr int kMinDemoSize = 64;
constexpr int kMaxDemoSize = 8192;

// Side by side with a white gutter: source | normalized | reference.
RgbImage montage(const std::vector<const RgbImage*>& images) {
    constexpr int kGap = 8;
    int w = kGap, h = 0;
    for (const RgbImage* i : images) {
        w += i->width + kGap;
        h = std::max(h, i->height);
    }
    RgbImage m(w, h + 2 * kGap);
    std::fill(m.pixels.begin(), m.pixels.end(), std::uint8_t{255});
    int x0 = kGap;
    for (const RgbImage* i : images) {
        for (int y = 0; y < i->height; ++y)
            std::copy(i->pixels.begin() + static_cast<long>(y) * static_cast<long>(i->stride()),
                      i->pixels.begin() + static_cast<long>(y + 1) * static_cast<long>(i->stride()),
                      m.pixels.begin() + static_cast<long>(y + kGap) * static_cast<long>(m.stride()) + 3 * x0);
        x0 += i->width + kGap;
    }
    return m;
}

}  // namespace

void add_demo(CLI::App& app, DemoOptions& o) {
    app.add_option("-o,--output", o.output, "Directory for the demo's images and models")->capture_default_str();
    app.add_option("--size", o.size, "Width and height of the generated images")
        ->check(CLI::Range(kMinDemoSize, kMaxDemoSize))
        ->capture_default_str();
}

int run_demo(const GlobalOptions& g, const DemoOptions& o) {
    auto backend = make_backend(g);
    const std::string dir = o.output;
    make_directories(dir);

    // Two labs: the reference stained like lab A, the source like lab B, with different amounts.
    SyntheticSpec ref_spec;
    ref_spec.width = ref_spec.height = o.size;
    ref_spec.stains = synthetic_stains_lab_a();
    ref_spec.max_h = 1.8;
    ref_spec.max_e = 1.1;
    ref_spec.seed = 1;
    SyntheticSpec src_spec = ref_spec;
    src_spec.stains = synthetic_stains_lab_b();
    src_spec.max_h = 1.1;
    src_spec.max_e = 0.6;
    src_spec.seed = 2;
    const RgbImage reference = render_synthetic(ref_spec);
    const RgbImage source = render_synthetic(src_spec);
    write_image(dir + "/reference.png", reference.view());
    write_image(dir + "/source.png", source.view());

    const EstimateParams params = estimate_params(g);
    StainModel target = backend->estimate({reference.view()}, params);
    target.source_path = dir + "/reference.png";
    save_model(target, dir + "/target.json");
    StainModel src_model = backend->estimate({source.view()}, params);
    src_model.source_path = dir + "/source.png";
    save_model(src_model, dir + "/source.json");

    RgbImage normalized(source.width, source.height);
    backend->transform(make_plan(src_model, target), {TileJob{source.view(), normalized.span()}});
    write_image(dir + "/normalized.png", normalized.view());
    write_image(dir + "/before_after.png", montage({&source, &normalized, &reference}).view());

    std::printf("vahanorm demo: synthetic H&E, %dx%d px, Beer-Lambert with known stain vectors\n\n", o.size, o.size);
    std::printf("%-10s %-12s %-26s %-26s %s\n", "image", "stain", "true vector", "recovered vector", "error");
    const struct {
        const char* name;
        const StainMatrix* truth;
        const StainModel* fit;
    } rows[] = {{"reference", &ref_spec.stains, &target}, {"source", &src_spec.stains, &src_model}};
    for (const auto& r : rows)
        for (int k = 0; k < 2; ++k) {
            const auto& t = (*r.truth)[k];
            const auto& f = r.fit->stain[k];
            std::printf("%-10s %-12s [%.3f %.3f %.3f]      [%.3f %.3f %.3f]      %.2f deg\n", r.name,
                        k == 0 ? "hematoxylin" : "eosin", t[0], t[1], t[2], f[0], f[1], f[2], angle_between_deg(t, f));
        }
    std::printf("\nwrote %s/: reference.png source.png normalized.png before_after.png target.json source.json\n",
                dir.c_str());
    std::printf("(before_after.png: source | normalized | reference)\n");
    return kExitOk;
}

}  // namespace vn::app
