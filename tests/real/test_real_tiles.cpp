// The method on real H&E tiles from ../shared/data/tiles (read at test time, never copied).
#include <catch2/catch.hpp>

#include <cmath>

#include "core/backend.hpp"
#include "core/estimate.hpp"
#include "core/snmf.hpp"
#include "core/transform.hpp"
#include "io/image_io.hpp"
#include "tests/core/reference.hpp"
#include "tests/core/snmf_reference.hpp"
#include "tests/support/test_support.hpp"

using namespace vn;

namespace {

const char* kTiles[] = {"tiles/histolab_tcga-lung-rgb.png", "tiles/torchstain_source.png", "tiles/vahadane_target2.png",
                        "tiles/openslide-OS-1_olympus-vsi_crop.png", "tiles/torch-staintools_sample.png"};

RgbImage load(const std::string& rel) {
    REQUIRE(test::shared_data_available());  // CI has ../shared: never skip silently
    return read_image(test::shared_data(rel));
}

}  // namespace

TEST_CASE("SNMF on real tiles is no worse than the reference solver", "[real][snmf]") {
    for (const char* rel : kTiles) {
        const RgbImage img = load(rel);
        const TissuePixels t = gather_tissue({img.view()}, nullptr);
        const OdSample s = sample_od(t, 20000, 20160801);
        const OdSamples x{s.r.data(), s.g.data(), s.b.data(), s.r.size()};
        const SnmfResult r = snmf(x, 0.1, 200, 1e-7);
        const StainMatrix macenko_ref{{{0.5626, 0.7201, 0.4062}, {0.2159, 0.8012, 0.5581}}};
        const double best =
            test::reference_snmf_objective(x, {snmf_start(x), normalize_and_order(macenko_ref), r.w}, 0.1, 250);
        INFO(rel << ": ours " << r.objective << " reference " << best << " after " << r.iterations << " iterations");
        CHECK(r.objective <= best * 1.001);
        CHECK(r.w[0][0] >= r.w[1][0]);
    }
}

TEST_CASE("normalizing real tiles: within 1 LSB of the float64 reference, no NaN", "[real][transform]") {
    auto be = make_cpu_backend(2);
    const StainModel target = be->estimate({load("tiles/tiatoolbox_target_image.png").view()}, EstimateParams{});
    for (const char* rel : kTiles) {
        const RgbImage img = load(rel);
        const StainModel source = be->estimate({img.view()}, EstimateParams{});
        for (double v : source.max_conc) CHECK(std::isfinite(v));
        RgbImage out(img.width, img.height);
        be->transform(make_plan(source, target), {TileJob{img.view(), out.span()}});
        const RgbImage ref = test::reference_transform(img.view(), source, target);
        std::size_t over1 = 0, over2 = 0;
        for (std::size_t i = 0; i < out.pixels.size(); i += 3) {
            int m = 0;
            for (int c = 0; c < 3; ++c) m = std::max(m, std::abs(int{out.pixels[i + c]} - int{ref.pixels[i + c]}));
            over1 += m > 1;
            over2 += m > 2;
        }
        INFO(rel << ": " << over1 << " pixels off by more than 1");
        CHECK(static_cast<double>(over1) <= 0.001 * static_cast<double>(img.pixel_count()));
        CHECK(over2 == 0);
    }
}

TEST_CASE("the non-H&E and blank tiles are handled without NaN", "[real]") {
    auto be = make_cpu_backend(2);
    for (const char* rel : {"tiles/nonHE_skimage_ihc.png", "tiles/edge_histolab_almost-white-2.png",
                            "tiles/edge_histolab_low-nuclei-score-level0.png"}) {
        const RgbImage img = load(rel);
        RgbImage out(img.width, img.height);
        const auto res = be->normalize_tiles(builtin_reference(), EstimateParams{}, {TileJob{img.view(), out.span()}});
        INFO(rel << ": " << (res[0].normalized ? "normalized" : res[0].reason));
        if (res[0].normalized) {
            for (double v : res[0].source.max_conc) CHECK(std::isfinite(v));
            CHECK(stain_angle_deg(res[0].source) >= 5.0);
        } else {
            CHECK(out.pixels == img.pixels);
        }
    }
}
