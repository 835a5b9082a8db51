// The pyramidal TIFF file that one writer thread fills with encoded tiles (io/tile_encoder.hpp),
// in one of three layouts (docs/slides.md, "Which layout for which reader"):
//   svs  - Aperio: level 0, a stripped thumbnail as directory 1, reduced levels (tiled,
//          NewSubfileType 0 so that tifffile sees them), then label (1) and macro (9) if kept;
//          ImageDescription "Aperio Image Library vahanorm X.Y ..." with AppMag and MPP.
//   tiff - a plain page pyramid: level 0, then reduced levels with NewSubfileType 1.
//   ome  - OME-TIFF: OME-XML in IFD 0, reduced levels as its SubIFDs.
// Tiles are written with TIFFWriteRawTile. Level 0 goes straight into the output; reduced levels,
// produced while level 0 streams, go to unlinked scratch files beside the output and are copied
// in when the directories are written at the end.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/image.hpp"
#include "io/tiff_writer_options.hpp"

namespace vn {

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
