// A stain model: the fitted stain matrix and scaling statistics of a target or source
// (README.md, "The model file"), and its JSON text.
#pragma once

#include <array>
#include <cstdint>
#include <string>

namespace vn {

// Parameters of estimation; every one is written into the model file.
struct EstimateParams {
    std::uint64_t seed = 20160801;     // subsample seed
    std::size_t sample_size = 20000;   // tissue pixels used by SNMF (uniform sample without replacement)
    double lambda = 0.1;               // SNMF sparsity (docs/method.md §3)
    double lambda_conc = 0.01;         // per-pixel concentration solve (section 5)
    double percentile = 99.0;          // scaling statistic (section 6)
    std::size_t min_tissue_pixels = 1000;
    double min_tissue_fraction = 0.05;   // of the pixels looked at; a mostly-glass image gives no estimate
    double min_stain_angle_deg = 5.0;
    int max_iterations = 200;          // SNMF outer iterations (alternating exact minimisation)
    double tolerance = 1e-7;           // relative decrease of F/n that ends SNMF
    bool exclude_artefacts = true;     // leave ink and artefact pixels out (px::is_artefact)
};

struct StainModel {
    // Row 0 hematoxylin, row 1 eosin; rows unit L2 norm, non-negative, W[0][0] >= W[1][0].
    std::array<std::array<double, 3>, 2> stain{};
    std::array<double, 2> max_conc{};  // 99th percentiles of c_H, c_E over tissue pixels
    EstimateParams params{};
    std::string source_path;           // provenance, informational
    std::string source_sha256;
    std::uint64_t tissue_pixels = 0;   // tissue pixels the statistics were taken over
    std::uint64_t sampled_pixels = 0;  // pixels SNMF saw
    std::uint64_t artefact_pixels = 0; // tissue pixels left out as ink or artefacts
    std::string mask_path;             // the region the estimate was restricted to (--mask), if any
    std::string mask_class;
    std::string mask_sha256;
    std::uint64_t masked_pixels = 0;   // tissue pixels looked at but outside the mask
    double objective = 0.0;            // F/n of SNMF at the returned W
    int iterations = 0;
};

// Angle between two stain vectors, in degrees.
double angle_between_deg(const std::array<double, 3>& a, const std::array<double, 3>& b);
// Angle between the two stain vectors of a model, in degrees.
double stain_angle_deg(const StainModel& m);

// Checks the invariants above; throws Error(Data) naming the problem.
void validate(const StainModel& m, const std::string& what);

// The model file's text, and a model from it (`what` names the source in messages; Error(Data)
// for anything malformed or invalid). Reading and writing files: io/model_file.hpp.
std::string to_json(const StainModel& m);
StainModel model_from_json(const std::string& text, const std::string& what);

// The documented built-in reference: used by `apply` when no target is given and neither
// $VAHANORM_TARGET nor ./target.json exists.
StainModel builtin_reference();

}  // namespace vn
