// The fixed-model transform (docs/method.md §1) as a plan of precomputed constants.
#pragma once

#include "core/image.hpp"
#include "core/model.hpp"
#include "core/pixel_math.hpp"

namespace vn {

struct TransformPlan {
    px::Solver<float> solver;  // source stain matrix, lambda 0.01
    px::Render render;         // target matrix times scale ratios, in rendering-table bins
};

// Maps pixels stained like `source` to look stained like `target`.
TransformPlan make_plan(const StainModel& source, const StainModel& target);

// Single-threaded reference loop over rows [y0, y1) of one image, calling px::transform_pixel.
void transform_rows(const TransformPlan& plan, RgbView src, RgbSpan dst, int y0, int y1);

}  // namespace vn
