#include "io/tile_grid.hpp"

#include <algorithm>

namespace vn {
namespace {

// needs_bigtiff: worst-case compressed size over raw size, directories and slack, the limit.
constexpr double kJpegWorstRatio = 0.5;
constexpr double kLosslessWorstRatio = 1.1;
constexpr double kOverheadBytes = 16.0 * 1024 * 1024;
constexpr double kClassicTiffLimit = 3.5 * 1024.0 * 1024.0 * 1024.0;  // well below 4 GiB

}  // namespace

TileGrid tile_grid(const LevelSize& l, int tile_size) {
    TileGrid g;
    auto fit = [&](std::int64_t n) {
        if (n >= tile_size) return tile_size;
        return static_cast<int>(std::max<std::int64_t>(kTileAlign, n / kTileAlign * kTileAlign));
    };
    g.tile_w = fit(l.width);
    g.tile_h = fit(l.height);
    g.cols = (l.width + g.tile_w - 1) / g.tile_w;
    g.rows = (l.height + g.tile_h - 1) / g.tile_h;
    return g;
}

bool needs_bigtiff(const std::vector<LevelSize>& levels, TileCompression c) {
    double bytes = 0;
    for (const LevelSize& l : levels) bytes += static_cast<double>(l.width) * static_cast<double>(l.height) * 3.0;
    const double ratio = c == TileCompression::Jpeg ? kJpegWorstRatio : kLosslessWorstRatio;
    return bytes * ratio + kOverheadBytes > kClassicTiffLimit;
}

}  // namespace vn
