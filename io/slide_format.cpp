#include "io/slide_format.hpp"

#include <tiffio.h>

#include "core/error.hpp"

namespace vn {

SlideFormat parse_slide_format(const std::string& s) {
    if (s == "svs") return SlideFormat::Svs;
    if (s == "tiff" || s == "tif") return SlideFormat::Tiff;
    if (s == "ome" || s == "ome-tiff") return SlideFormat::Ome;
    fail(ErrorKind::Usage, "unknown slide format '" + s + "' (svs, tiff or ome)");
}

TileCompression parse_compression(const std::string& s) {
    if (s == "jpeg" || s == "jpg") return TileCompression::Jpeg;
    if (s == "deflate" || s == "zip") return TileCompression::Deflate;
    if (s == "zstd") return TileCompression::Zstd;
    if (s == "lzw") return TileCompression::Lzw;
    if (s == "none") return TileCompression::None;
    fail(ErrorKind::Usage, "unknown compression '" + s + "' (jpeg, deflate, zstd, lzw or none)");
}

const char* slide_format_name(SlideFormat f) {
    switch (f) {
        case SlideFormat::Svs: return "svs";
        case SlideFormat::Tiff: return "tiff";
        case SlideFormat::Ome: return "ome";
    }
    return "?";
}

const char* compression_name(TileCompression c) {
    switch (c) {
        case TileCompression::Jpeg: return "jpeg";
        case TileCompression::Deflate: return "deflate";
        case TileCompression::Zstd: return "zstd";
        case TileCompression::Lzw: return "lzw";
        case TileCompression::None: return "none";
    }
    return "?";
}

std::uint16_t tiff_compression_tag(TileCompression c) {
    switch (c) {
        case TileCompression::Jpeg: return COMPRESSION_JPEG;
        case TileCompression::Deflate: return COMPRESSION_ADOBE_DEFLATE;
        case TileCompression::Zstd: return COMPRESSION_ZSTD;
        case TileCompression::Lzw: return COMPRESSION_LZW;
        case TileCompression::None: return COMPRESSION_NONE;
    }
    return COMPRESSION_NONE;
}

bool uses_predictor(TileCompression c) {
    return c == TileCompression::Deflate || c == TileCompression::Zstd || c == TileCompression::Lzw;
}

bool compression_available(TileCompression c) { return TIFFIsCODECConfigured(tiff_compression_tag(c)) != 0; }

}  // namespace vn
