// The per-pixel scan of the tissue gathering (core/estimate.cpp, gather_tissue): which pixels
// of a band of rows are tissue (px::is_tissue), which of those are left out as ink or artefacts
// (px::is_artefact), and the kept ones packed in order.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "core/image.hpp"

namespace vn {

// What one band's scan appends to besides the packed pixels: the ranks, among the band's
// tissue pixels (kept and left out), of those left out, and their colors.
struct LeftOut {
    std::vector<std::uint64_t> ranks;
    std::vector<std::uint8_t> rgb;
};

// Scans rows [y0, y1) of img: packs the RGB of the kept tissue pixels into dst, in order, and
// returns the number of bytes written. With exclude_artefacts, tissue pixels that fail
// px::is_artefact are not kept but recorded in left_out. dst has room for every pixel of the
// rows (3 * width * (y1 - y0) bytes); nothing outside that is written. On x86-64 an AVX2
// version (8 pixels at a time, one table lookup a pixel) is picked at load when the CPU has
// it (core/vector_clones.hpp); it gives the same bytes and ranks as the portable one.
std::size_t scan_tissue_band(const RgbView& img, int y0, int y1, bool exclude_artefacts, std::uint8_t* dst,
                             LeftOut& left_out);

// The portable scan, px::is_tissue and px::is_artefact per pixel (for tests: the reference).
std::size_t scan_tissue_band_portable(const RgbView& img, int y0, int y1, bool exclude_artefacts, std::uint8_t* dst,
                                      LeftOut& left_out);

// Both tests of a pixel as thresholds on its red value, one 32-bit entry per (green, blue):
// entry = T | A << 16, with px::is_tissue(r, g, b) == (r < T) and px::is_artefact(r, g, b) ==
// (r < A) for every color (both tests are monotone in r: luma grows with r, optical density
// falls; tests/core/test_tissue_scan.cpp checks all 2^24 colors). Built once, from those two
// functions and the tables of core/tables.cpp; index g * 256 + b.
const std::uint32_t* tissue_thresholds();

}  // namespace vn
