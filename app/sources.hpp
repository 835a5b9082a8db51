// Loading inputs for estimation: tile images are decoded whole; whole slides are sampled.
#pragma once

#include <string>
#include <vector>

#include "app/context.hpp"
#include "core/image.hpp"
#include "io/image_io.hpp"

namespace vn::app {

// Decodes a tile image under the global limits, logging any conversion.
RgbImage load_image(const std::string& path, const GlobalOptions& g, ImageInfo* info = nullptr);

// One model from the pooled tissue of several images and/or slides.
StainModel estimate_from_sources(const std::vector<std::string>& paths, Backend& backend, const EstimateParams& params,
                                 const GlobalOptions& g);

}  // namespace vn::app
