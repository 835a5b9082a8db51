#include "app/report.hpp"

#include <chrono>
#include <ctime>

#include "io/atomic_file.hpp"

namespace vn::app {
namespace {

std::string utc_now() {
    const std::time_t t = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
    std::tm tm{};
    gmtime_r(&t, &tm);
    char buf[32];
    std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
    return buf;
}

}  // namespace

nlohmann::json qc_flags(const StainModel& source, const StainModel& target, double tissue_fraction,
                        std::vector<std::string>* warnings) {
    const double rh = target.max_conc[0] / source.max_conc[0];
    const double re = target.max_conc[1] / source.max_conc[1];
    nlohmann::json q = {{"scale_ratio", {rh, re}},
                        {"stain_angle_deg", stain_angle_deg(source)},
                        {"angle_to_target_deg",
                         {angle_between_deg(source.stain[0], target.stain[0]), angle_between_deg(source.stain[1], target.stain[1])}}};
    if (tissue_fraction >= 0) q["tissue_fraction"] = tissue_fraction;
    if (warnings) {
        const char* names[2] = {"hematoxylin", "eosin"};
        const double ratios[2] = {rh, re};
        for (int k = 0; k < 2; ++k)
            if (ratios[k] < 0.25 || ratios[k] > 4.0)
                warnings->push_back(std::string(names[k]) + " scale ratio " + std::to_string(ratios[k]) +
                                    " is outside [0.25, 4]: check the estimate");
    }
    return q;
}

nlohmann::json model_json(const StainModel& m) {
    return {{"stain_matrix", {{m.stain[0][0], m.stain[0][1], m.stain[0][2]}, {m.stain[1][0], m.stain[1][1], m.stain[1][2]}}},
            {"max_concentrations", {m.max_conc[0], m.max_conc[1]}},
            {"tissue_pixels", m.tissue_pixels},
            {"sampled_pixels", m.sampled_pixels},
            {"ink_artefact_pixels", m.artefact_pixels},
            {"masked_out_pixels", m.masked_pixels},
            {"objective", m.objective},
            {"iterations", m.iterations}};
}

Report::Report(std::string command, std::string device) {
    root_["format"] = "vahanorm-report";
    root_["version"] = 1;
    root_["vahanorm_version"] = VAHANORM_VERSION;
    root_["command"] = std::move(command);
    root_["device"] = std::move(device);
    root_["started"] = utc_now();
}

void Report::write(const std::string& path, int exit_code) {
    if (path.empty()) return;
    nlohmann::json out = root_;
    out["finished"] = utc_now();
    out["exit_code"] = exit_code;
    out["inputs"] = inputs_;
    std::size_t ok = 0, failed = 0, skipped = 0, passed = 0, interrupted = 0;
    for (const auto& r : inputs_) {
        const std::string s = r.value("status", "");
        ok += s == "ok";
        failed += s == "failed";
        skipped += s == "skipped";
        passed += s == "passed-through";
        interrupted += s == "interrupted";
    }
    out["summary"] = {{"inputs", inputs_.size()}, {"ok", ok},         {"passed_through", passed},
                      {"skipped", skipped},       {"failed", failed}, {"interrupted", interrupted}};
    const std::string text = out.dump(2) + "\n";
    write_file_atomic(path, text.data(), text.size());
}

}  // namespace vn::app
