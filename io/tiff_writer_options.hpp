// What a pyramidal TIFF is written with: layout, codec, tile size, and the metadata carried over.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "io/slide_format.hpp"
#include "io/tile_grid.hpp"

namespace vn {

struct TiffWriterOptions {
    SlideFormat format = SlideFormat::Svs;
    TileCompression compression = TileCompression::Jpeg;
    int tile_size = 256;             // multiple of 16
    int quality = 90;                // JPEG quality 1..100
    bool chroma_subsampling = true;  // JPEG 4:2:0 (else 4:4:4)
    int effort = -1;                 // deflate 1..9 (default 6), zstd 1..22 (default 9)
    bool bigtiff = false;
    double mpp_x = 0.0, mpp_y = 0.0;            // micrometres per level-0 pixel; 0: unknown
    double objective_power = 0.0;               // 0: unknown
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

}  // namespace vn
