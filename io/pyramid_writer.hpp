// Streaming a level-0 image, tile by tile in row-major order, into a pyramidal TIFF: one ordered
// writer thread writes the tiles, builds the lower levels as it goes (PyramidBuilder: one strip
// per level) and hands the reduced tiles to encoder threads (one TileEncoder each). That hand-off
// is the one back-edge of the slide pipeline (docs/architecture.md): level-0 tiles arrive
// encoded from the stream's workers (io/slide_pipeline.cpp); tiles pushed without their
// encoding are encoded by the same threads. The output appears
// under its final name only when finish() has written everything (io/atomic_file.hpp); a
// writer destroyed before that leaves nothing behind.
//
// Memory: at most max_in_flight level-0 tiles (pixels and encoded bytes) between push() and the
// writer, one strip per reduced level and the reduced tiles cut from it, and the small image the
// thumbnail is made from (at most about 2 x thumbnail_size on its long side).
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/image.hpp"
#include "io/tiff_writer.hpp"

namespace vn {

struct PyramidWriterOptions {
    TiffWriterOptions tiff;
    int threads = 0;         // encoder threads (0: resolve_thread_count)
    int max_in_flight = 0;   // level-0 tiles between push() and the writer (0: max(32, 4 x threads))
    int thumbnail_size = 1024;
    const std::atomic<bool>* stop = nullptr;  // checked between tiles: Error(Interrupted)
};

struct PyramidWriterStats {
    double encode_seconds = 0;  // summed over encoder threads
    double write_seconds = 0;   // the writer thread: file writes, pyramid shrinking, directories
    std::uint64_t tiles = 0;    // all levels
    std::uint64_t file_bytes = 0;
};

class PyramidWriter {
public:
    PyramidWriter(const std::string& output_path, std::int64_t width, std::int64_t height,
                  const PyramidWriterOptions& options);
    ~PyramidWriter();
    PyramidWriter(const PyramidWriter&) = delete;
    PyramidWriter& operator=(const PyramidWriter&) = delete;

    const std::vector<LevelSize>& levels() const;
    int tile_size() const;
    std::int64_t tiles_x() const;
    std::int64_t tiles_y() const;
    std::uint64_t tile_count() const;  // level 0
    // Pixel size of level-0 tile `index` (edge tiles are smaller).
    int tile_width(std::uint64_t index) const;
    int tile_height(std::uint64_t index) const;

    // Whether push() takes level-0 tiles encoded by the caller (level 0's TIFF grid is the work
    // grid); otherwise level 0 is cut from strips and encoded here.
    bool takes_encoded_tiles() const;

    // A recycled buffer for pixels of one tile (capacity tile_size^2 x 3).
    std::vector<std::uint8_t> take_buffer();
    // The next level-0 tile: tightly packed RGB rows of tile_width x tile_height. When `encoded`
    // is not empty it is written as is (it must match the options; the generator uses this).
    // Blocks while max_in_flight tiles are pending. Rethrows the first error of a worker.
    void push(std::vector<std::uint8_t> pixels, std::vector<std::uint8_t> encoded = {});
    // Waits for every tile, writes the directories and moves the file into place.
    void finish(const std::vector<AssociatedImage>& associated = {});
    // Stops the workers and removes the temporary output (the destructor does it too).
    void abandon() noexcept;

    // The normalised image at thumbnail size (after finish).
    const RgbImage& thumbnail() const;
    PyramidWriterStats stats() const;

    struct Impl;

private:
    std::unique_ptr<Impl> impl_;
};

}  // namespace vn
