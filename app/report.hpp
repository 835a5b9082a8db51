// The machine-readable run report (--report run.json): the one place where results become JSON.
#pragma once

#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/model.hpp"
#include "io/input_plan.hpp"
#include "io/input_result.hpp"

namespace vn::app {

nlohmann::json model_json(const StainModel& m);

// One input's record (docs/cli.md): {"input", "output", "status", "message", "exit_code", ...}.
nlohmann::json record_json(const InputResult& r);

class Report {
public:
    Report(std::string command, std::string device);
    // The target of `apply`: its file (empty for the built-in reference), what chose it, the model.
    void set_target(const std::string& path, const std::string& chosen_by, const StainModel& model);
    void add(const InputResult& result) { inputs_.push_back(record_json(result)); }
    // The record of `fit` and `estimate`: the model written and the seconds it took.
    void add_model(const std::string& input, const std::string& output, const StainModel& model, double seconds);
    // Written atomically; a no-op when path is empty.
    void write(const std::string& path, int exit_code);

private:
    nlohmann::json root_;
    nlohmann::json inputs_ = nlohmann::json::array();
};

// The results of `apply` as they come: recorded in the report and counted for the exit code.
class ApplyTally {
public:
    explicit ApplyTally(Report& report) : report_(report) {}

    void add(const InputResult& r);
    // Every planned input without a result is "interrupted": the one being written (`current`,
    // its temporary file removed) and those not started; a rerun finishes them.
    void interrupt(const std::vector<InputPlan>& plans, const std::string& current);
    // Logs how the run went; returns 0, else the first failure's exit code when every input
    // failed, else kExitPartial.
    int finish(const std::string& report_path) const;

private:
    Report& report_;
    std::set<std::string> recorded_;  // inputs with a record in the report
    std::size_t failures_ = 0, done_ = 0, skipped_ = 0;
    ErrorKind first_failure_ = ErrorKind::Internal;
};

}  // namespace vn::app
