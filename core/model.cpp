#include "core/model.hpp"

#include <cmath>
#include <cstdio>
#include <limits>
#include <type_traits>

#include <nlohmann/json.hpp>

#include "core/error.hpp"

namespace vn {
namespace {

using nlohmann::json;

constexpr double kPi = 3.14159265358979323846;
constexpr int kModelVersion = 1;                 // the "version" this build writes and reads
constexpr double kUnitLengthTolerance = 1e-3;    // |norm - 1| allowed of a stain_matrix row
constexpr double kTissueMaxLstar = 0.8;          // the tissue test's L* bound (docs/method.md §1), recorded

// What a model file may hold and still give finite transform constants (make_plan works in
// float: a ratio of max concentrations or a lambda near 1e308 became inf there, and a max
// concentration of 1e-320 an infinite scale ratio, written to the report as null). The
// estimator's percentile histogram spans [2^-12, 2^8]; these bounds are looser.
constexpr double kMinMaxConc = 1e-4;
constexpr double kMaxMaxConc = 1e3;
constexpr double kMaxLambdaConc = 10.0;

// An optional field section.key of the model file: absent, `out` keeps its value; present with
// the wrong type (or an integer out of range of `out`), Error(Data) naming it. Every field
// to_json writes is read back, so a model loaded and saved again loses nothing.
template <typename T>
void read_field(const json& section, const char* name, const char* key, const std::string& what, T& out) {
    if (!section.contains(key)) return;
    const json& v = section.at(key);
    const auto refuse = [&](const char* why) { fail(ErrorKind::Data, what + ": \"" + name + "." + key + "\" " + why); };
    if constexpr (std::is_same_v<T, bool>) {
        if (!v.is_boolean()) refuse("must be true or false");
    } else if constexpr (std::is_same_v<T, double>) {
        if (!v.is_number()) refuse("must be a number");
    } else if constexpr (std::is_same_v<T, std::string>) {
        if (!v.is_string()) refuse("must be a string");
    } else {
        static_assert(std::is_integral_v<T>, "a field is a bool, double, string or integer");
        if (!v.is_number_unsigned()) refuse("must be a non-negative integer");
        if (v.get<std::uint64_t>() > static_cast<std::uint64_t>(std::numeric_limits<T>::max())) refuse("is too large");
    }
    out = v.get<T>();
}

// The object `key` of `j`, or nullptr when absent; present and not an object is Error(Data).
const json* section_at(const json& j, const char* key, const std::string& what) {
    if (!j.contains(key)) return nullptr;
    if (!j.at(key).is_object()) fail(ErrorKind::Data, what + ": \"" + key + "\" must be an object");
    return &j.at(key);
}

}  // namespace

double angle_between_deg(const std::array<double, 3>& a, const std::array<double, 3>& b) {
    double dot = 0, na = 0, nb = 0;
    for (int c = 0; c < 3; ++c) {
        dot += a[c] * b[c];
        na += a[c] * a[c];
        nb += b[c] * b[c];
    }
    const double cosv = dot / std::sqrt(na * nb);
    return std::acos(std::fmin(1.0, std::fmax(-1.0, cosv))) * 180.0 / kPi;
}

double stain_angle_deg(const StainModel& m) { return angle_between_deg(m.stain[0], m.stain[1]); }

void validate(const StainModel& m, const std::string& what) {
    for (int k = 0; k < 2; ++k) {
        double n = 0;
        for (int c = 0; c < 3; ++c) {
            const double v = m.stain[k][c];
            if (!std::isfinite(v)) fail(ErrorKind::Data, what + ": stain_matrix has a non-finite entry");
            if (v < 0) fail(ErrorKind::Data, what + ": stain_matrix has a negative entry");
            n += v * v;
        }
        if (std::fabs(std::sqrt(n) - 1.0) > kUnitLengthTolerance)
            fail(ErrorKind::Data, what + ": stain_matrix row " + std::to_string(k) + " does not have unit length");
        const double mc = m.max_conc[k];
        if (!std::isfinite(mc) || !(mc > 0))
            fail(ErrorKind::Data, what + ": max_concentrations must be finite and positive");
        if (mc < kMinMaxConc || mc > kMaxMaxConc) {
            char value[32];
            std::snprintf(value, sizeof value, "%g", mc);
            fail(ErrorKind::Data, what + ": max_concentrations must be between 0.0001 and 1000, not " + value);
        }
    }
    if (!(m.params.lambda_conc >= 0 && m.params.lambda_conc <= kMaxLambdaConc))
        fail(ErrorKind::Data, what + ": params.lambda_concentration must be between 0 and 10");
    if (m.stain[0][0] < m.stain[1][0])
        fail(ErrorKind::Data, what + ": stain_matrix rows are out of order (row 0, hematoxylin, must have the larger red OD)");
    // The file may ask for a stricter parallel-stain check than the default, never a laxer one:
    // "min_stain_angle_deg": 0 let identical stain vectors through.
    const double min_angle = std::fmax(m.params.min_stain_angle_deg, EstimateParams{}.min_stain_angle_deg);
    const double angle = stain_angle_deg(m);
    if (!(angle >= min_angle))
        fail(ErrorKind::Data, what + ": stain vectors are nearly parallel (" + std::to_string(angle) + " degrees)");
}

std::string to_json(const StainModel& m) {
    const EstimateParams& p = m.params;
    json j;
    j["format"] = "vahanorm-model";
    j["version"] = kModelVersion;
    j["method"] = "vahadane";
    j["stain_matrix"] = {{m.stain[0][0], m.stain[0][1], m.stain[0][2]}, {m.stain[1][0], m.stain[1][1], m.stain[1][2]}};
    j["max_concentrations"] = {m.max_conc[0], m.max_conc[1]};
    j["params"] = {{"lambda", p.lambda},
                   {"lambda_concentration", p.lambda_conc},
                   {"percentile", p.percentile},
                   {"tissue_max_lstar", kTissueMaxLstar},
                   {"sample_size", p.sample_size},
                   {"seed", p.seed},
                   {"min_tissue_pixels", p.min_tissue_pixels},
                   {"min_tissue_fraction", p.min_tissue_fraction},
                   {"min_stain_angle_deg", p.min_stain_angle_deg},
                   {"max_iterations", p.max_iterations},
                   {"tolerance", p.tolerance},
                   {"exclude_ink", p.exclude_artefacts}};
    j["source"] = {{"path", m.source_path},
                   {"sha256", m.source_sha256},
                   {"tissue_pixels", m.tissue_pixels},
                   {"sampled_pixels", m.sampled_pixels},
                   {"ink_artefact_pixels", m.artefact_pixels}};
    // What the digest covers: the bytes of the file at `path` (one digest per file, comma-separated).
    if (!m.source_sha256.empty()) j["source"]["sha256_of"] = "file bytes";
    if (!m.mask_path.empty()) {
        j["source"]["mask"] = {{"path", m.mask_path}, {"sha256", m.mask_sha256}, {"masked_out_pixels", m.masked_pixels}};
        if (!m.mask_class.empty()) j["source"]["mask"]["class"] = m.mask_class;
    }
    j["fit"] = {{"objective", m.objective}, {"iterations", m.iterations}, {"stain_angle_deg", stain_angle_deg(m)}};
    return j.dump(2) + "\n";
}

StainModel model_from_json(const std::string& text, const std::string& what) {
    json j = json::parse(text, nullptr, /*allow_exceptions=*/false);
    if (j.is_discarded()) fail(ErrorKind::Data, what + ": not a JSON document");
    if (!j.is_object()) fail(ErrorKind::Data, what + ": not a JSON object");
    if (!j.contains("format") || j["format"] != "vahanorm-model")
        fail(ErrorKind::Data, what + ": not a vahanorm model (\"format\" must be \"vahanorm-model\")");
    if (!j.contains("version") || !j["version"].is_number_integer() || j["version"].get<long>() != kModelVersion)
        fail(ErrorKind::Data, what + ": unsupported model version (this build reads version 1)");
    StainModel m;
    if (!j.contains("stain_matrix")) fail(ErrorKind::Data, what + ": missing \"stain_matrix\"");
    const json& w = j["stain_matrix"];
    if (!w.is_array() || w.size() != 2 || !w[0].is_array() || w[0].size() != 3 || !w[1].is_array() || w[1].size() != 3)
        fail(ErrorKind::Data, what + ": \"stain_matrix\" must be a 2 x 3 array of numbers");
    for (int k = 0; k < 2; ++k)
        for (int c = 0; c < 3; ++c) {
            if (!w[k][c].is_number()) fail(ErrorKind::Data, what + ": \"stain_matrix\" must be a 2 x 3 array of numbers");
            m.stain[k][c] = w[k][c].get<double>();
        }
    if (!j.contains("max_concentrations")) fail(ErrorKind::Data, what + ": missing \"max_concentrations\"");
    const json& mc = j["max_concentrations"];
    if (!mc.is_array() || mc.size() != 2 || !mc[0].is_number() || !mc[1].is_number())
        fail(ErrorKind::Data, what + ": \"max_concentrations\" must be an array of two numbers");
    m.max_conc = {mc[0].get<double>(), mc[1].get<double>()};
    if (const json* p = section_at(j, "params", what)) {
        EstimateParams& q = m.params;
        read_field(*p, "params", "lambda", what, q.lambda);
        read_field(*p, "params", "lambda_concentration", what, q.lambda_conc);
        read_field(*p, "params", "percentile", what, q.percentile);
        read_field(*p, "params", "sample_size", what, q.sample_size);
        read_field(*p, "params", "seed", what, q.seed);
        read_field(*p, "params", "min_tissue_pixels", what, q.min_tissue_pixels);
        read_field(*p, "params", "min_tissue_fraction", what, q.min_tissue_fraction);
        read_field(*p, "params", "min_stain_angle_deg", what, q.min_stain_angle_deg);
        read_field(*p, "params", "max_iterations", what, q.max_iterations);
        read_field(*p, "params", "tolerance", what, q.tolerance);
        read_field(*p, "params", "exclude_ink", what, q.exclude_artefacts);
    }
    if (const json* s = section_at(j, "source", what)) {
        read_field(*s, "source", "path", what, m.source_path);
        read_field(*s, "source", "sha256", what, m.source_sha256);
        read_field(*s, "source", "tissue_pixels", what, m.tissue_pixels);
        read_field(*s, "source", "sampled_pixels", what, m.sampled_pixels);
        read_field(*s, "source", "ink_artefact_pixels", what, m.artefact_pixels);
        if (const json* mk = section_at(*s, "mask", what)) {
            read_field(*mk, "source.mask", "path", what, m.mask_path);
            read_field(*mk, "source.mask", "sha256", what, m.mask_sha256);
            read_field(*mk, "source.mask", "class", what, m.mask_class);
            read_field(*mk, "source.mask", "masked_out_pixels", what, m.masked_pixels);
        }
    }
    if (const json* f = section_at(j, "fit", what)) {
        read_field(*f, "fit", "objective", what, m.objective);
        read_field(*f, "fit", "iterations", what, m.iterations);
    }
    validate(m, what);
    return m;
}

StainModel builtin_reference() {
    StainModel m;
    // The H&E reference of Macenko et al. (2009) as used by many normalisers: columns of
    // HERef = [[0.5626, 0.2159], [0.7201, 0.8012], [0.4062, 0.5581]], maxCRef = [1.9705, 1.0308].
    m.stain = {{{0.5626, 0.7201, 0.4062}, {0.2159, 0.8012, 0.5581}}};
    for (auto& row : m.stain) {
        const double n = std::sqrt(row[0] * row[0] + row[1] * row[1] + row[2] * row[2]);
        for (double& v : row) v /= n;
    }
    m.max_conc = {1.9705, 1.0308};
    m.source_path = "built-in reference (Macenko et al. 2009 H&E)";
    return m;
}

}  // namespace vn
