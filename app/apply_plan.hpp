// Planning an `apply` run: which target, which output for which input, what is a slide.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "app/commands.hpp"
#include "core/model.hpp"

namespace vn::app {

struct TargetChoice {
    StainModel model;
    std::string path;         // empty for the built-in reference
    std::string chosen_by;    // "--target", "$VAHANORM_TARGET", "./target.json", "built-in"
    std::string description;  // for the log
};

// --target, else $VAHANORM_TARGET, else ./target.json, else the built-in reference.
TargetChoice resolve_target(const std::string& option);

struct InputPlan {
    std::string input;
    std::string output;
    bool is_slide = false;
    std::string error;  // set when the input cannot be processed at all
    int error_code = 0;
};

// The slide layout for an output: --format, else "ome" for NAME.ome.tif / NAME.ome.tiff, else "svs".
std::string slide_layout(const ApplyOptions& o, const std::string& output);

// Output paths for every input; creates the output directory in directory mode. Throws
// Error(Usage) for plans that cannot work (two inputs onto one output, unknown formats).
std::vector<InputPlan> plan_outputs(const ApplyOptions& o);

// True when the planned output exists and reads back completely.
bool output_is_complete(const InputPlan& p, const GlobalOptions& g);

// Normalizes one whole slide; returns its report record (never throws, except when stopped).
nlohmann::json apply_slide(const InputPlan& p, const ApplyOptions& o, const GlobalOptions& g, Backend& backend,
                           const StainModel& target, const std::optional<StainModel>& fixed_source);

}  // namespace vn::app
