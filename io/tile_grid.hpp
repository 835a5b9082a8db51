// Level sizes and their tile grids in a written pyramid, and when it needs BigTIFF.
#pragma once

#include <cstdint>
#include <vector>

#include "io/slide_format.hpp"

namespace vn {

struct LevelSize {
    std::int64_t width = 0;
    std::int64_t height = 0;
};

// The tile grid of a level: tile_size, except in a level narrower or shorter than a tile, where
// the tile is the largest multiple of 16 that fits (OpenSlide 3.4.1 with libtiff 4.5 misreads
// tiles larger than their image: TIFFRGBAImage "adapts" the raster width and scrambles rows).
struct TileGrid {
    int tile_w = 0, tile_h = 0;
    std::int64_t cols = 0, rows = 0;
    std::uint64_t count() const { return static_cast<std::uint64_t>(cols) * static_cast<std::uint64_t>(rows); }
};
TileGrid tile_grid(const LevelSize& level, int tile_size);

// Tile sides are multiples of this (JPEG's 4:2:0 minimum coded unit, TIFF's tile rule).
constexpr int kTileAlign = 16;

// Whether the output could pass 4 GiB as a classic TIFF: the uncompressed size of all levels,
// times a worst-case ratio for the codec (JPEG: 0.5, lossless: 1.1), above 3.5 GiB.
bool needs_bigtiff(const std::vector<LevelSize>& levels, TileCompression c);

}  // namespace vn
