// vahanorm-synth-tiles: writes synthetic H&E tiles (core/synthetic.hpp: Beer-Lambert rendering
// under two labs' stain matrices) for the device check and the GPU benchmarks, so that a GPU
// machine needs no image files from elsewhere.
//
//   vahanorm-synth-tiles DIR [--count N] [--size S] [--ext png|jpg] [--awkward] [--quality Q]
//                        [--raw FILE] [--reference FILE] [--first K]
//
// Tile i (file DIR/tile_NNNN.EXT) uses lab A's stains for even i and lab B's for odd i, seed
// i + 1 and a glass fraction between 0.1 and 0.55, so a batch mixes stains and tissue amounts.
// --awkward adds tiles of odd sizes and degenerate content (17x17, 1x1, 333x517, 999x301, all
// glass, one colour). --raw writes the S x S tiles back to back as 8-bit RGB (no header), for
// Python benchmarks that read them with numpy.fromfile. --reference writes a 1024 x 1024
// lab-A reference image (the target), as raw RGB when its name ends in .rgb. Exit codes: 0, 64 usage, 73 cannot write.
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

#include "core/error.hpp"
#include "core/synthetic.hpp"
#include "io/image_io.hpp"

namespace {

[[noreturn]] void usage(const std::string& msg) {
    std::fprintf(stderr,
                 "vahanorm-synth-tiles: %s\n"
                 "usage: vahanorm-synth-tiles DIR [--count N] [--size S] [--ext png|jpg] [--awkward] [--quality Q]\n"
                 "                            [--raw FILE] [--reference FILE] [--first K]\n",
                 msg.c_str());
    std::exit(64);
}

vn::RgbImage tile(int width, int height, long index, double glass) {
    vn::SyntheticSpec spec;
    spec.width = width;
    spec.height = height;
    spec.stains = index % 2 == 0 ? vn::synthetic_stains_lab_a() : vn::synthetic_stains_lab_b();
    spec.seed = static_cast<std::uint64_t>(index) + 1;
    spec.glass_fraction = glass;
    return vn::render_synthetic(spec);
}

vn::RgbImage uniform(int width, int height, std::uint8_t r, std::uint8_t g, std::uint8_t b) {
    vn::RgbImage img(width, height);
    for (std::size_t i = 0; i < img.pixel_count(); ++i) {
        img.pixels[3 * i] = r;
        img.pixels[3 * i + 1] = g;
        img.pixels[3 * i + 2] = b;
    }
    return img;
}

}  // namespace

int main(int argc, char** argv) {
    std::string dir, ext = "png", raw, reference;
    long count = 16, first = 0;
    int size = 512, quality = 90;
    bool awkward = false;
    for (int i = 1; i < argc; ++i) {
        const std::string k = argv[i];
        auto value = [&]() -> std::string {
            if (i + 1 >= argc) usage("missing value for " + k);
            return argv[++i];
        };
        if (k == "--count") count = std::atol(value().c_str());
        else if (k == "--first") first = std::atol(value().c_str());
        else if (k == "--size") size = std::atoi(value().c_str());
        else if (k == "--ext") ext = value();
        else if (k == "--quality") quality = std::atoi(value().c_str());
        else if (k == "--raw") raw = value();
        else if (k == "--reference") reference = value();
        else if (k == "--awkward") awkward = true;
        else if (k == "-h" || k == "--help") usage("help");
        else if (!k.empty() && k[0] == '-') usage("unknown option " + k);
        else if (dir.empty()) dir = k;
        else usage("more than one DIR");
    }
    if (dir.empty()) usage("no DIR");
    if (count < 0 || first < 0 || size < 1 || size > 8192 || quality < 1 || quality > 100 || (ext != "png" && ext != "jpg"))
        usage("bad --count, --first, --size, --quality or --ext");
    try {
        vn::WriteOptions wo;
        wo.jpeg_quality = quality;
        std::ofstream raw_out;
        if (!raw.empty()) {
            raw_out.open(raw, std::ios::binary | std::ios::trunc);
            if (!raw_out) vn::fail(vn::ErrorKind::Output, "cannot write " + raw);
        }
        char name[64];
        for (long i = first; i < first + count; ++i) {
            const vn::RgbImage img = tile(size, size, i, 0.1 + 0.05 * static_cast<double>((i * 7) % 10));
            std::snprintf(name, sizeof name, "/tile_%04ld.", i);
            vn::write_image(dir + name + ext, img.view(), wo);
            if (raw_out) raw_out.write(reinterpret_cast<const char*>(img.pixels.data()),
                                       static_cast<std::streamsize>(img.pixels.size()));
        }
        if (raw_out && !raw_out.flush()) vn::fail(vn::ErrorKind::Output, "cannot write " + raw);
        if (awkward) {
            struct Odd {
                const char* name;
                vn::RgbImage img;
            };
            std::vector<Odd> odd;
            odd.push_back({"odd_17x17", tile(17, 17, 3, 0.0)});
            odd.push_back({"odd_1x1", tile(1, 1, 4, 0.0)});
            odd.push_back({"odd_333x517", tile(333, 517, 5, 0.3)});
            odd.push_back({"odd_999x301", tile(999, 301, 6, 0.2)});
            odd.push_back({"odd_glass", uniform(256, 256, 242, 242, 240)});
            odd.push_back({"odd_one_colour", uniform(200, 120, 200, 120, 170)});
            for (const Odd& o : odd) vn::write_image(dir + "/" + o.name + "." + ext, o.img.view(), wo);
        }
        if (!reference.empty()) {
            vn::SyntheticSpec spec;
            spec.width = spec.height = 1024;
            spec.stains = vn::synthetic_stains_lab_a();
            spec.seed = 20160801;
            const vn::RgbImage ref = vn::render_synthetic(spec);
            if (reference.size() > 4 && reference.compare(reference.size() - 4, 4, ".rgb") == 0) {
                std::ofstream f(reference, std::ios::binary | std::ios::trunc);
                f.write(reinterpret_cast<const char*>(ref.pixels.data()), static_cast<std::streamsize>(ref.pixels.size()));
                if (!f.flush()) vn::fail(vn::ErrorKind::Output, "cannot write " + reference);
            } else {
                vn::write_image(reference, ref.view(), wo);
            }
        }
    } catch (const vn::Error& e) {
        std::fprintf(stderr, "vahanorm-synth-tiles: %s\n", e.what());
        return e.kind() == vn::ErrorKind::Usage ? 64 : 73;
    }
    return 0;
}
