// The pyramidal TIFF writer (libtiff): tile encoders that run in any thread, and the file that
// one writer thread fills. Layouts (docs/slides.md, "Which layout for which reader"):
//   svs  - Aperio: level 0, a stripped thumbnail as directory 1, reduced levels (tiled,
//          NewSubfileType 0 so that tifffile sees them), then label (1) and macro (9) if kept;
//          ImageDescription "Aperio Image Library vahanorm X.Y ..." with AppMag and MPP.
//   tiff - a plain page pyramid: level 0, then reduced levels with NewSubfileType 1.
//   ome  - OME-TIFF: OME-XML in IFD 0, reduced levels as its SubIFDs.
// Tiles are encoded outside libtiff (JPEG: libjpeg-turbo, abbreviated streams sharing one
// JPEGTables, YCbCr with Photometric YCbCr; deflate: zlib; zstd: libzstd; LZW: our encoder;
// lossless codecs with horizontal differencing) and written with TIFFWriteRawTile. Level 0 goes
// straight into the output; reduced levels, produced while level 0 streams, go to unlinked
// scratch files beside the output and are copied in when the directories are written at the end.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "core/image.hpp"

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

struct LevelSize {
    std::int64_t width = 0;
    std::int64_t height = 0;
};

struct TiffWriterOptions {
    SlideFormat format = SlideFormat::Svs;
    TileCompression compression = TileCompression::Jpeg;
    int tile_size = 256;            // multiple of 16
    int quality = 90;               // JPEG quality 1..100
    bool chroma_subsampling = true; // JPEG 4:2:0 (else 4:4:4)
    int effort = -1;                // deflate 1..9 (default 6), zstd 1..22 (default 9)
    bool bigtiff = false;
    double mpp_x = 0.0, mpp_y = 0.0;  // micrometres per level-0 pixel; 0: unknown
    double objective_power = 0.0;     // 0: unknown
    std::string description_name = "vahanorm";  // "Aperio Image Library <name> X.Y"
    // A short JSON object saying how the pixels were made (io/slide_pipeline.cpp), or "": svs as
    // "|vahanorm = {...}" in the description's key=value list, ome as a MapAnnotation, tiff as
    // the level-0 ImageDescription. It may not contain '|'.
    std::string provenance;
    std::vector<std::uint8_t> icc_profile;  // the input's ICC profile, written on every level (or empty)
    // ome: the associated images finish() will be given (name, size), in that order, so that the
    // OME-XML written with level 0 can describe them as images of their own.
    std::vector<std::pair<std::string, LevelSize>> ome_associated;
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

// Whether the output could pass 4 GiB as a classic TIFF: the uncompressed size of all levels,
// times a worst-case ratio for the codec (JPEG: 0.5, lossless: 1.1), above 3.5 GiB.
bool needs_bigtiff(const std::vector<LevelSize>& levels, TileCompression c);

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

struct AssociatedImage {
    std::string name;  // "label" or "macro"
    RgbImage image;
};

class TiffPyramidFile {
public:
    // Creates `path` (the caller's temporary name) and scratch files beside it. Error(Output).
    TiffPyramidFile(const std::string& path, const TiffWriterOptions& opt, std::vector<LevelSize> levels);
    ~TiffPyramidFile();
    TiffPyramidFile(const TiffPyramidFile&) = delete;
    TiffPyramidFile& operator=(const TiffPyramidFile&) = delete;

    const std::vector<LevelSize>& levels() const;
    // From the one writer thread, in any order within a level (ordered writes give a
    // reproducible file). Error(Output) on failure.
    void write_tile(int level, std::uint32_t index, const std::uint8_t* data, std::size_t size);
    // Writes every directory and closes the file. `thumbnail` is used by the svs layout.
    void finish(const RgbImage& thumbnail, const std::vector<AssociatedImage>& associated);
    std::uint64_t bytes_written() const;

    struct Impl;

private:
    std::unique_ptr<Impl> impl_;
};

}  // namespace vn
