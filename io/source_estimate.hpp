// Source and target models from files: tile images decoded whole, whole slides sampled
// (`vahanorm fit`, `estimate`, `apply --pooled`). Free of CLI11 and spdlog: messages go through
// a callback.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "core/backend.hpp"
#include "core/image.hpp"
#include "core/model.hpp"
#include "io/image_io.hpp"

namespace vn {

struct SourceOptions {
    int threads = 0;                        // slide region reading (0: resolve_thread_count)
    std::uint64_t max_pixels = 1ull << 31;  // larger tile images are refused (Error(Input))
    std::string mask_path;                  // non-empty: estimate only inside this region (one input)
    std::string mask_class;                 // GeoJSON class of the mask ("" = every annotation)
    const std::atomic<bool>* stop = nullptr;
    std::function<void(const std::string&)> log;  // one line per message (conversions, the mask's coverage)
};

// Decodes a tile image under options.max_pixels, logging any conversion.
RgbImage load_image(const std::string& path, const SourceOptions& options, ImageInfo* info = nullptr);

// One model from the pooled tissue of several images and/or slides; one slide alone gets the
// slide estimate (io/slide_pipeline.hpp). With a mask, `paths` holds one image or slide.
// The model's provenance is the paths and the SHA-256 of each file, comma-separated (one slide
// alone is hashed while it is estimated). Error(Data) naming the input(s) when the stains
// cannot be estimated.
StainModel estimate_from_sources(const std::vector<std::string>& paths, Backend& backend, const EstimateParams& params,
                                 const SourceOptions& options);

// Tissue pixels pooled in the model of a set of tile images (`apply --pooled`).
constexpr std::size_t kPooledPixels = 2000000;
// The least an image contributes, however many there are.
constexpr std::size_t kMinPooledPerImage = 1000;

// One source model over tile images: each contributes a seeded sample of its tissue pixels
// (kPooledPixels shared among them), and the model is estimated from the pool.
// Error(Interrupted) when *options.stop is set between images.
StainModel pooled_source_model(const std::vector<std::string>& paths, Backend& backend, const EstimateParams& params,
                               const SourceOptions& options);

}  // namespace vn
