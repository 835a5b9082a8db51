// The layouts and tile compressions of a written slide, by name (the CLI's --format and
// --compression) and as TIFF tags.
#pragma once

#include <cstdint>
#include <string>

namespace vn {

enum class SlideFormat { Svs, Tiff, Ome };
enum class TileCompression { Jpeg, Deflate, Zstd, Lzw, None };

// "svs" | "tiff" | "ome"; "jpeg" | "deflate" | "zstd" | "lzw" | "none". Throw Error(Usage).
SlideFormat parse_slide_format(const std::string& s);
TileCompression parse_compression(const std::string& s);
const char* slide_format_name(SlideFormat f);
const char* compression_name(TileCompression c);
// False for zstd when this libtiff was built without it (readers would not decode it either).
bool compression_available(TileCompression c);

// The TIFF Compression tag's value.
std::uint16_t tiff_compression_tag(TileCompression c);
// Lossless codecs written with horizontal differencing (TIFF Predictor 2).
bool uses_predictor(TileCompression c);

}  // namespace vn
