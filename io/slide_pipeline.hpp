// Whole slides: one stain model per slide, and streaming normalisation into a pyramidal TIFF
// (docs/method.md §6; docs/slides.md). Free of CLI11 and spdlog: messages and progress go
// through callbacks.
//
//   estimate_slide  - tissue found on a low-resolution overview; up to 64 regions of 256 x 256
//                     level-0 pixels sampled over the whole slide by a seeded, stratified rule;
//                     one backend.estimate over the pooled regions.
//   normalize_slide - level 0 streamed in tiles on one ordered stream (core/stream.hpp):
//                     workers read and decode (libtiff directly for TIFF-based slides,
//                     OpenSlide otherwise) into the backend's host buffers, normalize (color
//                     table or backend.transform in batches) and encode; the calling thread
//                     hands the tiles in order to the writer, which builds the lower levels
//                     from the normalized level 0 (io/pyramid_writer.hpp).
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "core/backend.hpp"
#include "core/model.hpp"
#include "io/tiff_writer.hpp"

namespace vn {

// True for files OpenSlide recognises as a slide, except plain (single-page, stripped) TIFFs,
// which are ordinary images for the tile reader. Tiled TIFFs and all vendor formats are slides.
bool is_slide(const std::string& path);

// True when `path` opens as a slide without error and its last pixel reads back (outputs are
// written under a temporary name and renamed, so an existing output is normally complete).
bool slide_output_is_complete(const std::string& path);

struct SlideProgress {
    std::uint64_t tiles_done = 0;
    std::uint64_t tiles_total = 0;
    double seconds = 0;  // since the start of streaming
};

// Both optional; called from the thread that called estimate_slide / normalize_slide.
struct SlideCallbacks {
    std::function<void(const std::string&)> log;         // one line per message, no newline
    std::function<void(const SlideProgress&)> progress;  // after every batch of tiles
};

struct SlideEstimateOptions {
    int regions = 64;                       // regions sampled at level 0 (fewer if the tissue is small)
    int region_size = 256;                  // their side, level-0 pixels
    std::uint64_t overview_pixels = 4000000;  // size of the low-resolution overview
    double min_region_tissue = 0.5;         // tissue share of a cell to be eligible (relaxed to 0.1 if too few)
    bool hash_source = true;                // SHA-256 of the slide file into the model's provenance
    std::string mask_path;                  // non-empty: estimate only inside this mask (io/region_mask.hpp)
    std::string mask_class;                 // GeoJSON class of the mask ("" = every annotation)
    int threads = 0;                        // region reading (0: resolve_thread_count)
    const std::atomic<bool>* stop = nullptr;
    SlideCallbacks callbacks;
};

struct SlideRegion {
    std::int64_t x = 0, y = 0;
    int width = 0, height = 0;
    double tissue = 0;  // tissue share estimated on the overview
};

struct SlideEstimateInfo {
    std::int64_t width = 0, height = 0;
    int overview_width = 0, overview_height = 0;
    double overview_scale = 1;  // level-0 pixels per overview pixel
    double tissue_fraction = 0; // of the overview
    double dark_fraction = 0;   // overview pixels darker than L* 25 (fluorescence check)
    std::vector<SlideRegion> regions;
    std::string mask_sha256;          // of the mask file, when one was given
    std::uint64_t masked_pixels = 0;  // tissue pixels of the sampled regions outside the mask
};

// The pixels estimate_slide pools (composited level-0 regions over the slide's tissue), for
// callers that pool several slides and images into one model (`vahanorm fit`). `seed` chooses
// the regions (estimate_slide passes EstimateParams::seed). Errors as estimate_slide.
std::vector<RgbImage> sample_slide(const std::string& path, std::uint64_t seed, const SlideEstimateOptions& options = {},
                                   SlideEstimateInfo* info = nullptr);

// One model for the slide. Error(Input) for unreadable slides, Error(Data) when it shows no
// brightfield tissue (e.g. a fluorescence scan) or the stains cannot be estimated.
StainModel estimate_slide(const std::string& path, Backend& backend, const EstimateParams& params,
                          const SlideEstimateOptions& options = {}, SlideEstimateInfo* info = nullptr);

enum class BigTiffMode { Auto, Always, Never };

// How level 0 goes through the backend: in batches of tiles (backend.transform on every tile),
// or through a color table of all 2^24 colors made by one backend.transform call, then one
// lookup a pixel in the stream's workers (bit-identical; much cheaper on a CPU). Auto: the
// table for backends that prefer it (BackendProperties::prefers_color_table: the CPU) and
// slides of at least 4 x 2^24 pixels.
enum class ColorLut { Auto, Always, Never };

struct SlideOptions {
    SlideFormat format = SlideFormat::Svs;
    TileCompression compression = TileCompression::Jpeg;
    int tile_size = 256;
    int quality = 90;
    bool chroma_subsampling = true;       // JPEG 4:2:0
    int effort = -1;                      // deflate/zstd level (-1: 6 / 9)
    BigTiffMode bigtiff = BigTiffMode::Auto;
    bool keep_associated = false;         // label and macro (svs, ome; tiff: Error(Usage)); dropped by default
    bool transform = true;                // false: re-encode without normalising (pass-through)
    bool direct_tiff = true;              // libtiff fast path for TIFF-based slides
    ColorLut color_lut = ColorLut::Auto;
    int threads = 0;                      // stream workers and encoder threads (0: resolve_thread_count)
    int batch_tiles = 16;                 // tiles per backend.transform call; progress about this often
    int thumbnail_size = 1024;
    std::string qc_dir;                   // non-empty: QC images written here
    std::vector<SlideRegion> qc_regions;  // the estimate's sampled regions, outlined on the QC overview
    const std::atomic<bool>* stop = nullptr;
    SlideCallbacks callbacks;
};

struct SlideStageTimes {
    // Seconds summed over the threads of each stage; a stage's Mpx/s is level-0 Mpx / seconds.
    double read = 0, normalize = 0, encode = 0, write = 0;
};

struct SlideResult {
    std::string input, output, vendor, reader;  // reader: "libtiff-direct ..." or "openslide"
    std::int64_t width = 0, height = 0;
    std::vector<LevelSize> levels;
    int tile_size = 0;
    std::uint64_t tiles = 0;        // level-0 tiles
    bool bigtiff = false;
    bool color_lut = false;         // normalized through the color table (ColorLut)
    double mpp_x = 0, mpp_y = 0, objective_power = 0;
    double tissue_fraction = 0;     // share of level-0 pixels that pass the tissue test (sampled 1 in 64)
    SlideStageTimes seconds;
    double wall_seconds = 0;        // streaming and writing, not the overview
    double mpx_per_second = 0;      // level-0 Mpx / wall_seconds
    SlideStageTimes mpx_per_stage_second;
    std::uint64_t output_bytes = 0;
    std::vector<std::string> qc_files;
    std::vector<std::string> warnings;
};

// Normalises `in` from `source` to `target` into `out` (written atomically). Error(Input) for an
// unreadable slide or a corrupt tile, Error(Output) when the output cannot be written,
// Error(Interrupted) when *stop is set; in every failure nothing is left at `out`.
SlideResult normalize_slide(const std::string& in, const std::string& out, const StainModel& source,
                            const StainModel& target, Backend& backend, const SlideOptions& options = {});

}  // namespace vn
