#include "io/pyramid.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <utility>

#include "core/error.hpp"

namespace vn {

std::vector<LevelSize> pyramid_levels(std::int64_t width, std::int64_t height, int tile_size) {
    std::vector<LevelSize> levels{LevelSize{width, height}};
    // Down to one tile, but never to a side under 16 pixels (the smallest TIFF tile; see
    // tile_grid in io/tile_grid.hpp for why tiles may not outgrow their level).
    while ((width > tile_size || height > tile_size) && width / 2 >= kTileAlign && height / 2 >= kTileAlign) {
        width = std::max<std::int64_t>(1, width / 2);
        height = std::max<std::int64_t>(1, height / 2);
        levels.push_back(LevelSize{width, height});
    }
    return levels;
}

void shrink_2x2(RgbView src, RgbSpan dst) {
    // Columns whose partner exists: vertical sums first (a loop compilers vectorise), then the
    // horizontal pairs; the repeated last column, if any, separately.
    const int full = std::min(dst.width, src.width / 2);
    thread_local std::vector<std::uint16_t> sums;
    sums.resize(static_cast<std::size_t>(full) * 6u);
    for (int y = 0; y < dst.height; ++y) {
        const std::uint8_t* r0 = src.row(std::min(2 * y, src.height - 1));
        const std::uint8_t* r1 = src.row(std::min(2 * y + 1, src.height - 1));
        std::uint8_t* out = dst.row(y);
        std::uint16_t* t = sums.data();
        const int n = 6 * full;
        for (int i = 0; i < n; ++i) t[i] = static_cast<std::uint16_t>(r0[i] + r1[i]);
        for (int x = 0; x < full; ++x) {
            const std::uint16_t* p = t + 6 * x;
            out[3 * x] = static_cast<std::uint8_t>((p[0] + p[3] + 2) >> 2);
            out[3 * x + 1] = static_cast<std::uint8_t>((p[1] + p[4] + 2) >> 2);
            out[3 * x + 2] = static_cast<std::uint8_t>((p[2] + p[5] + 2) >> 2);
        }
        for (int x = full; x < dst.width; ++x) {
            const int x0 = std::min(2 * x, src.width - 1), x1 = std::min(2 * x + 1, src.width - 1);
            for (int c = 0; c < 3; ++c)
                out[3 * x + c] =
                    static_cast<std::uint8_t>((r0[3 * x0 + c] + r0[3 * x1 + c] + r1[3 * x0 + c] + r1[3 * x1 + c] + 2) >> 2);
        }
    }
}

PyramidBuilder::PyramidBuilder(std::vector<LevelSize> levels, int tile_size, StripFn on_strip)
    : levels_(std::move(levels)), ts_(tile_size), on_strip_(std::move(on_strip)) {
    if (levels_.empty() || ts_ <= 0 || ts_ % 2 != 0) fail(ErrorKind::Internal, "pyramid: bad geometry");
    strips_.resize(levels_.size());
    strip_row_.assign(levels_.size(), 0);
    strip_rows_filled_.assign(levels_.size(), 0);
    for (std::size_t k = 1; k < levels_.size(); ++k) strips_[k] = RgbImage(static_cast<int>(levels_[k].width), ts_);
    total_tiles_ = tiles_x(0) * tiles_y(0);
}

std::int64_t PyramidBuilder::tiles_x(int level) const {
    return (levels_[static_cast<std::size_t>(level)].width + ts_ - 1) / ts_;
}

std::int64_t PyramidBuilder::tiles_y(int level) const {
    return (levels_[static_cast<std::size_t>(level)].height + ts_ - 1) / ts_;
}

void PyramidBuilder::add_tile(std::int64_t tx, std::int64_t ty, RgbView tile) {
    const std::int64_t ntx = tiles_x(0);
    if (next_tile_ >= total_tiles_ || tx != next_tile_ % ntx || ty != next_tile_ / ntx)
        fail(ErrorKind::Internal, "pyramid: tiles out of order");
    ++next_tile_;
    if (levels_.size() < 2) return;
    const LevelSize& l1 = levels_[1];
    const std::int64_t half = ts_ / 2;
    const std::int64_t col = tx * half, row = ty * half;
    const int w = static_cast<int>(std::min<std::int64_t>(l1.width - col, (tile.width + 1) / 2));
    const int h = static_cast<int>(std::min<std::int64_t>(l1.height - row, (tile.height + 1) / 2));
    const int row_off = static_cast<int>((ty % 2) * half);
    if (w > 0 && h > 0) {
        RgbImage& s = strips_[1];
        RgbSpan dst{s.pixels.data() + static_cast<std::size_t>(row_off) * s.stride() + static_cast<std::size_t>(col) * 3u, w,
                    h, s.stride()};
        shrink_2x2(tile, dst);
        strip_rows_filled_[1] = std::max(strip_rows_filled_[1], row_off + h);
    }
    if (tx == ntx - 1 && (ty % 2 == 1 || ty == tiles_y(0) - 1)) strip_done(1);
}

void PyramidBuilder::strip_done(int level) {
    const auto k = static_cast<std::size_t>(level);
    const int rows = strip_rows_filled_[k];
    const std::int64_t srow = strip_row_[k];
    if (rows > 0 && srow < tiles_y(level)) {
        RgbImage& s = strips_[k];
        const RgbView strip{s.pixels.data(), s.width, rows, s.stride()};
        on_strip_(level, srow, strip);
        if (k + 1 < levels_.size()) {
            const LevelSize& next = levels_[k + 1];
            const std::int64_t half = ts_ / 2;
            const int h = static_cast<int>(std::min<std::int64_t>(next.height - srow * half, (rows + 1) / 2));
            const int row_off = static_cast<int>((srow % 2) * half);
            if (h > 0) {
                RgbImage& n = strips_[k + 1];
                RgbSpan dst{n.pixels.data() + static_cast<std::size_t>(row_off) * n.stride(), n.width, h, n.stride()};
                shrink_2x2(strip, dst);
                strip_rows_filled_[k + 1] = std::max(strip_rows_filled_[k + 1], row_off + h);
            }
        }
    }
    strip_rows_filled_[k] = 0;
    strip_row_[k] = srow + 1;
    if (k + 1 < levels_.size() && (srow % 2 == 1 || srow == tiles_y(level) - 1)) strip_done(level + 1);
}

RgbImage resize_area(RgbView src, int width, int height) {
    width = std::max(1, width);
    height = std::max(1, height);
    RgbImage out(width, height);
    if (src.width <= 0 || src.height <= 0) return out;
    struct Tap {
        int index;
        float weight;
    };
    // For each output coordinate, the input cells it covers and their share of it.
    auto taps = [](int in, int outn) {
        std::vector<std::vector<Tap>> t(static_cast<std::size_t>(outn));
        const double scale = static_cast<double>(in) / outn;
        for (int o = 0; o < outn; ++o) {
            const double a = o * scale, b = (o + 1) * scale;
            const double len = b - a;
            for (int i = static_cast<int>(std::floor(a)); i < std::min(in, static_cast<int>(std::ceil(b))); ++i) {
                const double cover = std::min<double>(b, i + 1) - std::max<double>(a, i);
                if (cover > 1e-9) t[static_cast<std::size_t>(o)].push_back(Tap{i, static_cast<float>(cover / len)});
            }
        }
        return t;
    };
    const auto tx = taps(src.width, width), ty = taps(src.height, height);
    std::vector<float> hrow(static_cast<std::size_t>(width) * 3u), acc(static_cast<std::size_t>(width) * 3u);
    int cached = -1;
    for (int oy = 0; oy < height; ++oy) {
        std::fill(acc.begin(), acc.end(), 0.0f);
        for (const Tap& vy : ty[static_cast<std::size_t>(oy)]) {
            if (vy.index != cached) {
                const std::uint8_t* r = src.row(vy.index);
                for (int ox = 0; ox < width; ++ox) {
                    float s[3] = {0, 0, 0};
                    for (const Tap& hx : tx[static_cast<std::size_t>(ox)])
                        for (int c = 0; c < 3; ++c) s[c] += hx.weight * static_cast<float>(r[3 * hx.index + c]);
                    for (int c = 0; c < 3; ++c) hrow[static_cast<std::size_t>(3 * ox + c)] = s[c];
                }
                cached = vy.index;
            }
            for (std::size_t i = 0; i < acc.size(); ++i) acc[i] += vy.weight * hrow[i];
        }
        std::uint8_t* o = out.span().row(oy);
        for (std::size_t i = 0; i < acc.size(); ++i)
            o[i] = static_cast<std::uint8_t>(std::clamp(std::lround(acc[i]), 0L, 255L));
    }
    return out;
}

}  // namespace vn
