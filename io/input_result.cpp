#include "io/input_result.hpp"

#include <cstddef>

namespace vn {

QcFlags qc_flags(const StainModel& source, const StainModel& target, std::optional<double> tissue_fraction) {
    QcFlags q;
    for (std::size_t k = 0; k < 2; ++k) {
        q.scale_ratio[k] = target.max_conc[k] / source.max_conc[k];
        q.angle_to_target_deg[k] = angle_between_deg(source.stain[k], target.stain[k]);
    }
    q.stain_angle_deg = stain_angle_deg(source);
    q.tissue_fraction = tissue_fraction;
    return q;
}

std::vector<std::string> scale_ratio_warnings(const QcFlags& qc) {
    static const char* const kStainNames[2] = {"hematoxylin", "eosin"};
    std::vector<std::string> warnings;
    for (std::size_t k = 0; k < 2; ++k) {
        const double r = qc.scale_ratio[k];
        if (r < kMinScaleRatio || r > kMaxScaleRatio)
            warnings.push_back(std::string(kStainNames[k]) + " scale ratio " + std::to_string(r) +
                               " is outside [0.25, 4]: check the estimate");
    }
    return warnings;
}

const char* status_name(InputStatus status) {
    switch (status) {
        case InputStatus::Ok: return "ok";
        case InputStatus::PassedThrough: return "passed-through";
        case InputStatus::Skipped: return "skipped";
        case InputStatus::Failed: return "failed";
        case InputStatus::Interrupted: return "interrupted";
    }
    return "failed";
}

InputResult failed_result(const std::string& input, const std::string& output, const Error& e) {
    InputResult r;
    r.input = input;
    r.output = output;
    r.status = e.kind() == ErrorKind::Interrupted ? InputStatus::Interrupted : InputStatus::Failed;
    r.error = e.kind();
    r.message = e.what();
    return r;
}

}  // namespace vn
