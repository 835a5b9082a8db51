// The pyramid in one pass (libvips vips2tiff.c style): level-0 tiles arrive in row-major order
// and are shrunk 2x2 straight into a strip of level 1; each reduced level keeps one strip of
// tile_size rows; when a strip is complete it is handed out (to be cut into tiles), shrunk into
// the next level's strip and reused. Memory: one strip per reduced level, about
// tile_size x width0 x 3 bytes in all (the strips halve in width level by level).
//
// Level sizes halve with rounding down until a level fits in one tile (or a side would drop
// under 16 pixels). A
// reduced pixel is the rounded mean of its 2x2 parents (the odd last row or column of a level
// has no child).
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

#include "core/image.hpp"
#include "io/tile_grid.hpp"

namespace vn {

// Level 0 first, down to the first level that fits in one tile.
std::vector<LevelSize> pyramid_levels(std::int64_t width, std::int64_t height, int tile_size);

// Shrinks src 2x2 into dst (dst.width = ceil-or-floor as the caller decides; every dst pixel
// must have its (2x, 2y) parent inside src; missing partners repeat the last row/column).
void shrink_2x2(RgbView src, RgbSpan dst);

class PyramidBuilder {
public:
    // Called for every complete strip of a reduced level (level >= 1): rows
    // [strip_row * tile_size, + strip.height) of that level. The view is valid during the call.
    using StripFn = std::function<void(int level, std::int64_t strip_row, RgbView strip)>;

    PyramidBuilder(std::vector<LevelSize> levels, int tile_size, StripFn on_strip);

    const std::vector<LevelSize>& levels() const { return levels_; }
    std::int64_t tiles_x(int level) const;
    std::int64_t tiles_y(int level) const;

    // The next level-0 tile (row-major order is required; checked).
    void add_tile(std::int64_t tx, std::int64_t ty, RgbView tile);
    // True once every level-0 tile has been added (all strips have then been emitted).
    bool complete() const { return next_tile_ == total_tiles_; }

private:
    void strip_done(int level);

    std::vector<LevelSize> levels_;
    int ts_;
    StripFn on_strip_;
    std::vector<RgbImage> strips_;          // [k] for k >= 1
    std::vector<std::int64_t> strip_row_;   // current strip row of level k
    std::vector<int> strip_rows_filled_;    // rows written into the current strip
    std::int64_t next_tile_ = 0, total_tiles_ = 0;
};

// Area-averaging resize (each output pixel is the mean of the input area it covers).
RgbImage resize_area(RgbView src, int width, int height);

}  // namespace vn
