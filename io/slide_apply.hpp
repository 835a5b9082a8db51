// One whole slide of `apply` and of the Python package's apply_slide: its output locked, left
// as it is when complete (skip_existing), the slide's own model from tissue sampled over it (or
// a fixed one), QC against the target, then the streaming pipeline (io/slide_pipeline.hpp).
#pragma once

#include <functional>
#include <optional>
#include <string>

#include "core/backend.hpp"
#include "core/model.hpp"
#include "io/input_plan.hpp"
#include "io/input_result.hpp"
#include "io/slide_pipeline.hpp"

namespace vn {

struct SlideApplyOptions {
    // The output (layout, compression, tiles, threads, QC folder, stop); its callbacks get the
    // information lines and the progress of the slide.
    SlideOptions slide;
    EstimateParams params;                  // the slide's own estimate
    std::string mask_path, mask_class;      // estimate only inside this region (io/region_mask.hpp)
    bool skip_existing = false;             // a complete output is left as it is
    bool no_normalize = false;              // re-encode without a model (the codec floor)
    bool continue_on_failed_estimate = false;  // a slide without an estimate is copied unchanged
    std::function<void(const std::string&)> warn;  // warnings, one line each
};

// The slide's result; a failure is a result (status Failed), except Error(Interrupted), which is
// thrown (the temporary output removed).
InputResult apply_slide_file(const InputPlan& plan, Backend& backend, const StainModel& target,
                             const std::optional<StainModel>& fixed_source, const SlideApplyOptions& options);

}  // namespace vn
