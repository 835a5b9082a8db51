// Tile benchmark (not a test): per-tile estimation + transform, fixed-model transform, and
// transform throughput next to a plain memcpy of the same bytes, measured in one run.
// Usage: bench_tiles TILE.png... (crops of 256, 512 and 1024 px are taken from these)
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "core/backend.hpp"
#include "core/error.hpp"
#include "core/transform.hpp"
#include "io/image_io.hpp"

using namespace vn;
using Clock = std::chrono::steady_clock;

namespace {

RgbImage crop(const RgbImage& img, int x0, int y0, int size) {
    RgbImage out(size, size);
    for (int y = 0; y < size; ++y)
        std::memcpy(out.pixels.data() + static_cast<std::size_t>(y) * out.stride(),
                    img.pixels.data() + static_cast<std::size_t>(y0 + y) * img.stride() + 3u * static_cast<std::size_t>(x0),
                    out.stride());
    return out;
}

// Median of `reps` timings of fn, in milliseconds.
template <typename F>
double median_ms(int reps, F&& fn) {
    std::vector<double> t;
    for (int r = 0; r < reps; ++r) {
        const auto t0 = Clock::now();
        fn();
        t.push_back(std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
    }
    std::sort(t.begin(), t.end());
    return t[t.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
    if (argc < 2) {
        std::fprintf(stderr, "usage: bench_tiles TILE.png...\n");
        return 64;
    }
    std::vector<RgbImage> sources;
    for (int i = 1; i < argc; ++i) sources.push_back(read_image(argv[i]));
    const StainModel target = builtin_reference();
    const EstimateParams params;

    std::printf("| tile | threads | tiles | estimate+transform ms/tile | fixed-model ms/tile | transform Mpx/s | memcpy Mpx/s |\n");
    std::printf("|---|---|---|---|---|---|---|\n");
    for (int size : {256, 512, 1024}) {
        std::vector<RgbImage> tiles;
        for (const RgbImage& s : sources)
            for (int y = 0; y + size <= s.height && tiles.size() < 16; y += size)
                for (int x = 0; x + size <= s.width && tiles.size() < 16; x += size) tiles.push_back(crop(s, x, y, size));
        if (tiles.empty()) continue;
        std::vector<RgbImage> outs;
        for (const RgbImage& t : tiles) outs.emplace_back(t.width, t.height);
        for (int threads : {1, 2}) {
            auto be = make_cpu_backend(threads);
            // (a) per-tile estimation + transform, one tile per call (as a single image would be)
            std::size_t normalized = 0;
            const double per_tile = median_ms(5, [&] {
                normalized = 0;
                for (std::size_t i = 0; i < tiles.size(); ++i)
                    normalized += be->normalize_tiles(target, params, {TileJob{tiles[i].view(), outs[i].span()}})[0].normalized;
            }) / static_cast<double>(tiles.size());
            // (b) fixed source model
            const StainModel src = be->estimate({tiles[0].view()}, params);
            const TransformPlan plan = make_plan(src, target);
            const double fixed = median_ms(5, [&] {
                for (std::size_t i = 0; i < tiles.size(); ++i) be->transform(plan, {TileJob{tiles[i].view(), outs[i].span()}});
            }) / static_cast<double>(tiles.size());
            // (c) throughput of the transform on all tiles at once vs memcpy of the same bytes
            std::vector<TileJob> jobs;
            for (std::size_t i = 0; i < tiles.size(); ++i) jobs.push_back(TileJob{tiles[i].view(), outs[i].span()});
            const double mpx = static_cast<double>(tiles.size()) * size * size / 1e6;
            const double t_transform = median_ms(9, [&] { be->transform(plan, jobs); });
            const double t_copy = median_ms(9, [&] {
                for (std::size_t i = 0; i < tiles.size(); ++i)
                    std::memcpy(outs[i].pixels.data(), tiles[i].pixels.data(), tiles[i].pixels.size());
            });
            std::printf("| %d | %d | %zu (%zu estimated) | %.2f | %.2f | %.0f | %.0f |\n", size, threads, tiles.size(),
                        normalized, per_tile, fixed, mpx / (t_transform / 1000), mpx / (t_copy / 1000));
        }
    }
    return 0;
}
