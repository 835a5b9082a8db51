// The fast path for TIFF-based slides (Aperio SVS, generic tiled TIFF): level-0 tiles read
// straight from the file. JPEG tiles are fetched with pread and decoded by libjpeg-turbo in the
// calling thread, with the colour space taken from Photometric exactly as OpenSlide does; other
// libtiff codecs (deflate, LZW, zstd, ...) through a small pool of libtiff handles. JPEG 2000
// (Aperio 33003/33005), old-style JPEG, YCbCr without JPEG, other bit depths and orientations
// are left to OpenSlide, which also stays the source of all metadata.
#pragma once

#include <memory>
#include <string>

#include "io/slide_reader.hpp"

namespace vn {

// nullptr when the direct path does not apply to this slide (why says why). With level > 0 the
// source reads that pyramid level of the file (read() takes and fills that level's coordinates).
std::unique_ptr<RegionSource> make_tiff_source(const SlideReader& slide, std::string* why = nullptr, int level = 0);

}  // namespace vn
