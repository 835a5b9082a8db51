// What `apply` reports for each input, typed: its status, the error kind of a failure, the
// source model and QC flags, sizes and timings. app/report.cpp turns it into the report's JSON
// record (docs/cli.md); the exit code comes from the error kind (app/exit_codes.hpp).
#pragma once

#include <array>
#include <optional>
#include <string>
#include <vector>

#include "core/error.hpp"
#include "core/model.hpp"
#include "io/slide_pipeline.hpp"

namespace vn {

// Source/target scale ratios outside [kMinScaleRatio, kMaxScaleRatio] usually mean a failed
// estimate, not a real stain difference (docs/method.md §7).
constexpr double kMinScaleRatio = 0.25;
constexpr double kMaxScaleRatio = 4.0;

// QC of a source estimate against the target.
struct QcFlags {
    std::array<double, 2> scale_ratio{};          // target / source maximum concentration, H and E
    double stain_angle_deg = 0;                   // between the source's two stains
    std::array<double, 2> angle_to_target_deg{};  // each source stain to the target's
    std::optional<double> tissue_fraction;        // when known
};

QcFlags qc_flags(const StainModel& source, const StainModel& target, std::optional<double> tissue_fraction = std::nullopt);

// One warning per scale ratio outside [kMinScaleRatio, kMaxScaleRatio]: the one check of it.
std::vector<std::string> scale_ratio_warnings(const QcFlags& qc);

enum class InputStatus { Ok, PassedThrough, Skipped, Failed, Interrupted };

// "ok", "passed-through", "skipped", "failed", "interrupted": the report's words.
const char* status_name(InputStatus status);

// Milliseconds of a tile's stages; a stage not reached is absent.
struct TileTimings {
    std::optional<double> decode, normalize, encode;
};

struct InputResult {
    std::string input, output;
    InputStatus status = InputStatus::Ok;
    ErrorKind error = ErrorKind::Internal;  // the kind of a failure (status Failed or Interrupted)
    std::string message;                    // why it failed, was interrupted or passed through
    std::vector<std::string> warnings;
    std::optional<StainModel> source_model;  // its own estimate, when it was normalized with one
    std::string source_sha256;  // non-empty: the SHA-256 of the input file, the source model's provenance
    std::optional<QcFlags> qc;

    // Tiles
    std::optional<std::array<int, 2>> size;  // width, height once decoded
    std::string conversion;                  // what the decoder did (RGBA composited, ...), if anything
    TileTimings timings_ms;

    // Slides: is_slide for a slide that was opened for processing (the report's "kind": "slide")
    bool is_slide = false;
    std::optional<SlideResult> slide;  // once written
    double estimate_seconds = 0;

    bool failed() const { return status == InputStatus::Failed; }
};

// A result with status Failed (or Interrupted for that kind) for `e`.
InputResult failed_result(const std::string& input, const std::string& output, const Error& e);

}  // namespace vn
