// Tiles of a pyramidal TIFF encoded outside libtiff, in any thread: JPEG (libjpeg-turbo,
// abbreviated streams sharing one JPEGTables, YCbCr), deflate (zlib), zstd (libzstd), LZW (our
// encoder), lossless codecs with horizontal differencing. io/tiff_pyramid_file.hpp writes them.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "core/image.hpp"
#include "io/tiff_writer_options.hpp"

namespace vn {

// Encodes tiles; one per thread. Tiles smaller than their grid tile (right and bottom edges) are
// padded to a full tile by repeating their last column and row.
class TileEncoder {
public:
    explicit TileEncoder(const TiffWriterOptions& opt);
    ~TileEncoder();
    TileEncoder(const TileEncoder&) = delete;
    TileEncoder& operator=(const TileEncoder&) = delete;
    // Replaces *out with the encoded tile_w x tile_h tile (tile_w, tile_h <= tile_size, multiples
    // of 16). Throws Error(Internal) on codec failure.
    void encode(RgbView tile, int tile_w, int tile_h, std::vector<std::uint8_t>* out);

    struct Impl;

private:
    std::unique_ptr<Impl> impl_;
};

// The JPEGTables stream every abbreviated tile of these options refers to.
std::vector<std::uint8_t> jpeg_tables(const TiffWriterOptions& opt);

// TIFF LZW (libtiff's variant, MSB first, early change) of a byte string; exposed for tests.
void lzw_encode(const std::uint8_t* data, std::size_t n, std::vector<std::uint8_t>* out);

}  // namespace vn
