// The machine-readable run report (--report run.json) and the QC flags it carries.
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/model.hpp"

namespace vn::app {

// QC of a source estimate against the target: scale ratios and stain angles, and warnings
// for ratios outside [0.25, 4] (usually a failed estimate, not a real stain difference).
nlohmann::json qc_flags(const StainModel& source, const StainModel& target, double tissue_fraction,
                        std::vector<std::string>* warnings);

nlohmann::json model_json(const StainModel& m);

class Report {
public:
    Report(std::string command, std::string device);
    void set(const std::string& key, nlohmann::json value) { root_[key] = std::move(value); }
    // One record per input: {"input", "output", "status", "message", "exit_code", ...}.
    void add(nlohmann::json record) { inputs_.push_back(std::move(record)); }
    // Written atomically; a no-op when path is empty.
    void write(const std::string& path, int exit_code);

private:
    nlohmann::json root_;
    nlohmann::json inputs_ = nlohmann::json::array();
};

}  // namespace vn::app
