// QC pictures of a normalised slide (`--qc DIR`), drawn with cairo: what the estimate used
// (overview), what normalisation did (before/after), and the four stains (swatches).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/image.hpp"
#include "core/model.hpp"

namespace vn {

// A rectangle in the picture's pixels.
struct QcBox {
    double x = 0, y = 0, width = 0, height = 0;
};

// The thumbnail with the tissue (tissue[i] != 0, same size as `image`) as a translucent
// overlay, ink and artefact pixels (artefact[i] != 0) in opaque magenta, the sampled regions
// outlined, a title line and a legend strip below. Width = image.width, height = image.height
// plus the legend.
RgbImage qc_overview(const RgbImage& image, const std::vector<std::uint8_t>& tissue,
                     const std::vector<std::uint8_t>& artefact, const std::vector<QcBox>& regions,
                     const std::string& title, const std::string& counts);

// Before and after side by side at the same scale, labelled; both must have the same size.
RgbImage qc_before_after(const RgbImage& before, const RgbImage& after, const std::string& title);

// Four swatches, "source H", "source E", "target H", "target E": each a column from no stain to
// the model's 99th-percentile concentration, labelled with its OD vector and maximum.
RgbImage qc_stain_swatches(const StainModel& source, const StainModel& target);

// Legend height added by qc_overview below the image.
constexpr int kQcLegendHeight = 56;

}  // namespace vn
