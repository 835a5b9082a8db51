// Planning an `apply` run: which target, which output for which input, what is a slide.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "app/commands.hpp"
#include "core/model.hpp"
#include "io/input_plan.hpp"
#include "io/input_result.hpp"

namespace vn::app {

struct TargetChoice {
    StainModel model;
    std::string path;         // empty for the built-in reference
    std::string chosen_by;    // "--target", "$VAHANORM_TARGET", "./target.json", "built-in"
    std::string description;  // for the log
};

// --target, else $VAHANORM_TARGET, else ./target.json, else the built-in reference.
TargetChoice resolve_target(const std::string& option);

// The slide layout for an output: --format, else "ome" for NAME.ome.tif / NAME.ome.tiff, else "svs".
std::string slide_layout(const ApplyOptions& o, const std::string& output);

// Output paths for every input; creates the output directory in directory mode. An input that
// cannot be processed (missing, a directory, an unreadable slide, its own output, an output
// that is not a regular file) gets an error in its plan. Throws Error(Usage) for plans that
// cannot work (two inputs onto one output, unknown formats).
std::vector<InputPlan> plan_outputs(const ApplyOptions& o);

// The plans without an error, tiles and slides apart.
struct ApplyInputs {
    std::vector<InputPlan> tiles, slides;
};

// Throws Error(Usage) for options that do not fit these inputs: --no-normalize with tiles,
// --keep-associated with the tiff layout, --mask with other than one slide estimated here.
void check_inputs(const ApplyOptions& o, const GlobalOptions& g, const ApplyInputs& in, bool fixed_source);

// One source model pooled over the tile inputs (--pooled), logged.
StainModel pooled_source(const std::vector<InputPlan>& tiles, Backend& backend, const GlobalOptions& g);

// Normalizes the tile inputs in batches (io/tile_batch.hpp) with a progress line; each result
// is logged and passed to `on_result` in input order. Throws Error(Interrupted) when stopped.
void apply_tiles(const std::vector<InputPlan>& tiles, const ApplyOptions& o, const GlobalOptions& g, Backend& backend,
                 const StainModel& target, const std::optional<StainModel>& fixed_source,
                 const std::function<void(const InputResult&)>& on_result);

// Normalizes one whole slide; returns its result (never throws, except when stopped).
InputResult apply_slide(const InputPlan& p, const ApplyOptions& o, const GlobalOptions& g, Backend& backend,
                        const StainModel& target, const std::optional<StainModel>& fixed_source);

}  // namespace vn::app
