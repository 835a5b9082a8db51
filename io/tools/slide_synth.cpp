// make-synthetic-slide: writes a tiled, pyramidal, JPEG-compressed TIFF of synthetic H&E of any
// size, fast and in bounded memory, for benchmarks and the memory test (no third-party slides
// needed). A few 1024 x 1024 patches are rendered with core/synthetic.hpp (Beer-Lambert H&E under
// Ruifrok & Johnston's stains), cut into tiles, and laid out over the slide in the 8 flips and
// rotations of each tile, inside a few seeded elliptical tissue areas on glass. Each distinct tile
// is JPEG-encoded once; level 0 is written from those bytes, and the lower levels are built from
// the pixels by the same streaming pyramid writer the normaliser uses (io/pyramid_writer.hpp).
//
//   make-synthetic-slide OUT.svs [--width 40000] [--height 40000] [--quality 85] [--tile 256]
//                        [--format svs|tiff] [--mpp 0.25] [--mag 40] [--seed 1] [--threads N]
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "core/error.hpp"
#include "core/splitmix64.hpp"
#include "core/synthetic.hpp"
#include "io/pyramid_writer.hpp"

namespace {

struct Args {
    std::string out;
    long long width = 40000, height = 40000;
    int quality = 85, tile = 256, threads = 0;
    std::string format = "svs";
    double mpp = 0.25, mag = 40;
    std::uint64_t seed = 1;
};

[[noreturn]] void usage(const char* msg) {
    std::fprintf(stderr,
                 "make-synthetic-slide: %s\n"
                 "usage: make-synthetic-slide OUT [--width N] [--height N] [--quality Q] [--tile N]\n"
                 "                            [--format svs|tiff] [--mpp X] [--mag X] [--seed N] [--threads N]\n",
                 msg);
    std::exit(64);
}

Args parse(int argc, char** argv) {
    Args a;
    for (int i = 1; i < argc; ++i) {
        const std::string k = argv[i];
        auto value = [&]() -> std::string {
            if (i + 1 >= argc) usage(("missing value for " + k).c_str());
            return argv[++i];
        };
        if (k == "--width") a.width = std::atoll(value().c_str());
        else if (k == "--height") a.height = std::atoll(value().c_str());
        else if (k == "--quality") a.quality = std::atoi(value().c_str());
        else if (k == "--tile") a.tile = std::atoi(value().c_str());
        else if (k == "--threads") a.threads = std::atoi(value().c_str());
        else if (k == "--format") a.format = value();
        else if (k == "--mpp") a.mpp = std::atof(value().c_str());
        else if (k == "--mag") a.mag = std::atof(value().c_str());
        else if (k == "--seed") a.seed = std::strtoull(value().c_str(), nullptr, 10);
        else if (k == "-h" || k == "--help") usage("writes a synthetic H&E slide");
        else if (!k.empty() && k[0] == '-') usage(("unknown option " + k).c_str());
        else if (a.out.empty()) a.out = k;
        else usage("more than one output");
    }
    if (a.out.empty()) usage("no output given");
    if (a.width < 1 || a.height < 1 || a.tile < 16 || a.tile % 16 != 0 || a.quality < 1 || a.quality > 100)
        usage("bad size, tile or quality");
    return a;
}

// One of the 8 flips/rotations of a square tile.
void orient(const std::uint8_t* src, std::uint8_t* dst, int n, int o) {
    for (int y = 0; y < n; ++y)
        for (int x = 0; x < n; ++x) {
            int sx = x, sy = y;
            if (o & 1) sx = n - 1 - sx;
            if (o & 2) sy = n - 1 - sy;
            if (o & 4) std::swap(sx, sy);
            std::memcpy(dst + 3 * (static_cast<std::size_t>(y) * n + x), src + 3 * (static_cast<std::size_t>(sy) * n + sx), 3);
        }
}

}  // namespace

int main(int argc, char** argv) {
    const Args a = parse(argc, argv);
    const auto t0 = std::chrono::steady_clock::now();
    try {
        const int ts = a.tile;
        // The tile pool: patches cut into tiles, in 8 orientations, plus glass.
        const int patch = std::max(ts, (1024 / ts) * ts);
        const int patches = 6, per_patch = (patch / ts) * (patch / ts);
        std::vector<std::vector<std::uint8_t>> pool;  // ts x ts RGB
        std::vector<std::uint8_t> base(static_cast<std::size_t>(ts) * ts * 3);
        for (int p = 0; p < patches; ++p) {
            vn::SyntheticSpec s;
            s.width = patch;
            s.height = patch;
            s.stains = vn::synthetic_stains_lab_a();
            s.glass_fraction = 0.05;
            s.seed = a.seed * 1000 + static_cast<std::uint64_t>(p);
            const vn::RgbImage img = vn::render_synthetic(s);
            for (int t = 0; t < per_patch; ++t) {
                const int tx = t % (patch / ts), ty = t / (patch / ts);
                for (int y = 0; y < ts; ++y)
                    std::memcpy(base.data() + static_cast<std::size_t>(y) * ts * 3,
                                img.view().row(ty * ts + y) + static_cast<std::size_t>(tx) * ts * 3, static_cast<std::size_t>(ts) * 3);
                for (int o = 0; o < 8; ++o) {
                    pool.emplace_back(base.size());
                    orient(base.data(), pool.back().data(), ts, o);
                }
            }
        }
        const std::size_t tissue_tiles = pool.size();
        for (int g = 0; g < 4; ++g) {
            vn::SyntheticSpec s;
            s.width = ts;
            s.height = ts;
            s.glass_fraction = 1.0;
            s.noise = 1.5;
            s.seed = a.seed * 77 + static_cast<std::uint64_t>(g);
            pool.push_back(vn::render_synthetic(s).pixels);
        }
        // Tissue areas: a few ellipses, in units of the slide size.
        struct Ellipse {
            double cx, cy, rx, ry;
        };
        std::mt19937_64 rng(a.seed);
        std::uniform_real_distribution<double> u(0.0, 1.0);
        std::vector<Ellipse> blobs;
        for (int i = 0; i < 5; ++i) blobs.push_back(Ellipse{0.2 + 0.6 * u(rng), 0.2 + 0.6 * u(rng), 0.12 + 0.2 * u(rng), 0.12 + 0.2 * u(rng)});

        vn::PyramidWriterOptions wo;
        wo.tiff.format = vn::parse_slide_format(a.format);
        wo.tiff.compression = vn::TileCompression::Jpeg;
        wo.tiff.tile_size = ts;
        wo.tiff.quality = a.quality;
        wo.tiff.mpp_x = a.mpp;
        wo.tiff.mpp_y = a.mpp;
        wo.tiff.objective_power = a.mag;
        wo.tiff.description_name = "vahanorm-synthetic";
        wo.threads = a.threads;
        vn::PyramidWriter writer(a.out, a.width, a.height, wo);
        // Encode each pool tile once.
        vn::TileEncoder enc(wo.tiff);
        std::vector<std::vector<std::uint8_t>> encoded(pool.size());
        for (std::size_t i = 0; i < pool.size(); ++i)
            enc.encode(vn::RgbView{pool[i].data(), ts, ts, static_cast<std::size_t>(ts) * 3}, ts, ts, &encoded[i]);
        // Pre-encoded level-0 tiles need a level 0 of at least one whole tile each way.
        const bool preencoded = a.width >= ts && a.height >= ts;
        const std::int64_t ntx = writer.tiles_x();
        for (std::uint64_t i = 0; i < writer.tile_count(); ++i) {
            const std::int64_t tx = static_cast<std::int64_t>(i) % ntx, ty = static_cast<std::int64_t>(i) / ntx;
            const double fx = (static_cast<double>(tx) + 0.5) * ts / static_cast<double>(a.width);
            const double fy = (static_cast<double>(ty) + 0.5) * ts / static_cast<double>(a.height);
            const std::uint64_t h = vn::splitmix64(a.seed ^ (static_cast<std::uint64_t>(tx) << 32) ^ static_cast<std::uint64_t>(ty));
            bool tissue = false;
            for (const Ellipse& e : blobs) {
                const double dx = (fx - e.cx) / e.rx, dy = (fy - e.cy) / e.ry;
                // A ragged edge: the radius varies from tile to tile.
                if (dx * dx + dy * dy < 0.85 + 0.3 * static_cast<double>(h & 0xff) / 255.0) tissue = true;
            }
            const std::size_t pick = tissue ? static_cast<std::size_t>((h >> 8) % tissue_tiles)
                                            : tissue_tiles + static_cast<std::size_t>((h >> 8) % 4);
            const int w = writer.tile_width(i), hgt = writer.tile_height(i);
            std::vector<std::uint8_t> px = writer.take_buffer();
            px.resize(static_cast<std::size_t>(w) * hgt * 3);
            for (int y = 0; y < hgt; ++y)
                std::memcpy(px.data() + static_cast<std::size_t>(y) * w * 3, pool[pick].data() + static_cast<std::size_t>(y) * ts * 3,
                            static_cast<std::size_t>(w) * 3);
            writer.push(std::move(px), preencoded ? encoded[pick] : std::vector<std::uint8_t>());
        }
        writer.finish();
        const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        std::printf("%s: %lldx%lld, %zu levels, %.1f s, %llu bytes\n", a.out.c_str(), a.width, a.height,
                    writer.levels().size(), secs, static_cast<unsigned long long>(writer.stats().file_bytes));
        return 0;
    } catch (const vn::Error& e) {
        std::fprintf(stderr, "make-synthetic-slide: %s\n", e.what());
        return 1;
    }
}
