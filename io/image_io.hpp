// Tile images: PNG, JPEG and TIFF readers and writers.
#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include "core/image.hpp"

namespace vn {

enum class ImageFormat { Png, Jpeg, Tiff };

// By extension (case-insensitive): .png; .jpg/.jpeg; .tif/.tiff. Throws Error(Usage) otherwise.
ImageFormat format_from_extension(const std::string& path);
const char* format_name(ImageFormat f);

struct ImageInfo {
    ImageFormat format = ImageFormat::Png;
    int width = 0;
    int height = 0;
    // Empty for 8-bit RGB; otherwise what was done, e.g. "RGBA composited onto white",
    // "grayscale expanded to RGB", "palette expanded", "16-bit reduced to 8-bit".
    std::string conversion;
    // Physical resolution from the file (PNG pHYs in metres, JPEG JFIF density, TIFF resolution
    // tags in inch or cm), in pixels per metre; 0 when the file does not give one.
    double pixels_per_metre_x = 0, pixels_per_metre_y = 0;
};

struct ReadOptions {
    // Images claiming more pixels than this are refused before any allocation.
    std::uint64_t max_pixels = 1ull << 31;
};

// Reads any supported image into 8-bit RGB. The format is taken from the file's signature,
// not its name. Throws Error(Input) with a one-line message naming the file for anything
// missing, unreadable, truncated, corrupt, too large or of an unsupported kind.
RgbImage read_image(const std::string& path, ImageInfo* info = nullptr, const ReadOptions& options = {});

// Where read_image_into decodes to: called once, with the image's size (already within the
// limits), before any pixel is decoded; returns a span of exactly that size (a backend's host
// buffer, io/tile_batch.cpp). What it throws comes out of read_image_into as it is.
using PixelSink = std::function<RgbSpan(int width, int height)>;

// read_image, decoding straight into the span `sink` gives; returns that span.
RgbSpan read_image_into(const std::string& path, const PixelSink& sink, ImageInfo* info = nullptr,
                        const ReadOptions& options = {});

struct WriteOptions {
    int jpeg_quality = 90;  // 1..100
    // Written when > 0 (PNG pHYs, JPEG JFIF density, TIFF resolution tags): an output keeps
    // its input's DPI.
    double pixels_per_metre_x = 0, pixels_per_metre_y = 0;
};

// Writes by extension, atomically (io/atomic_file.hpp). Throws Error(Output).
void write_image(const std::string& path, RgbView image, const WriteOptions& options = {});

}  // namespace vn
