#include "app/report.hpp"

#include <chrono>
#include <ctime>

#include <spdlog/spdlog.h>

#include "app/exit_codes.hpp"
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

nlohmann::json qc_json(const QcFlags& q) {
    nlohmann::json j = {{"scale_ratio", q.scale_ratio},
                        {"stain_angle_deg", q.stain_angle_deg},
                        {"angle_to_target_deg", q.angle_to_target_deg}};
    if (q.tissue_fraction) j["tissue_fraction"] = *q.tissue_fraction;
    return j;
}

nlohmann::json timings_json(const TileTimings& t) {
    nlohmann::json j = nlohmann::json::object();
    if (t.decode) j["decode"] = *t.decode;
    if (t.normalize) j["normalize"] = *t.normalize;
    if (t.encode) j["encode"] = *t.encode;
    return j;
}

// A number, or null when the slide does not say (0).
nlohmann::json known_or_null(double v, const nlohmann::json& known) { return v > 0 ? known : nlohmann::json(nullptr); }

void add_slide(nlohmann::json& rec, const SlideResult& r, double estimate_seconds) {
    nlohmann::json levels = nlohmann::json::array();
    for (const auto& l : r.levels) levels.push_back({l.width, l.height});
    rec["slide"] = {{"vendor", r.vendor},
                    {"reader", r.reader},
                    {"size", {r.width, r.height}},
                    {"levels", levels},
                    {"tile_size", r.tile_size},
                    {"tiles", r.tiles},
                    {"bigtiff", r.bigtiff},
                    {"mpp", known_or_null(r.mpp_x, {r.mpp_x, r.mpp_y})},
                    {"objective_power", known_or_null(r.objective_power, r.objective_power)},
                    {"output_bytes", r.output_bytes}};
    rec["timings_s"] = {{"read", r.seconds.read},     {"normalize", r.seconds.normalize},
                        {"encode", r.seconds.encode}, {"write", r.seconds.write},
                        {"wall", r.wall_seconds},     {"estimate", estimate_seconds}};
    rec["mpx_per_second"] = r.mpx_per_second;
    if (!r.qc_files.empty()) rec["qc_files"] = r.qc_files;
}

}  // namespace

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

nlohmann::json record_json(const InputResult& r) {
    nlohmann::json rec = {{"input", r.input}, {"output", r.output}, {"status", status_name(r.status)}};
    if (r.is_slide) rec["kind"] = "slide";
    if (!r.message.empty()) rec["message"] = r.message;
    if (r.status == InputStatus::Failed || r.status == InputStatus::Interrupted) rec["exit_code"] = exit_code_for(r.error);
    if (!r.warnings.empty()) rec["warnings"] = r.warnings;
    if (r.source_model) {
        rec["source_model"] = model_json(*r.source_model);
        if (!r.source_sha256.empty())
            rec["source_model"]["source"] = {{"path", r.input}, {"sha256", r.source_sha256}, {"sha256_of", "file bytes"}};
    }
    if (r.qc) rec["qc"] = qc_json(*r.qc);
    if (r.size) rec["size"] = *r.size;
    if (!r.conversion.empty()) rec["conversion"] = r.conversion;
    const nlohmann::json timings = timings_json(r.timings_ms);
    if (!timings.empty()) rec["timings_ms"] = timings;
    if (r.slide) add_slide(rec, *r.slide, r.estimate_seconds);
    return rec;
}

Report::Report(std::string command, std::string device) {
    root_["format"] = "vahanorm-report";
    root_["version"] = 1;
    root_["vahanorm_version"] = VAHANORM_VERSION;
    root_["command"] = std::move(command);
    root_["device"] = std::move(device);
    root_["started"] = utc_now();
}

void Report::set_target(const std::string& path, const std::string& chosen_by, const StainModel& model) {
    root_["target"] = {{"path", path}, {"chosen_by", chosen_by}, {"model", model_json(model)}};
}

void Report::add_model(const std::string& input, const std::string& output, const StainModel& model, double seconds) {
    inputs_.push_back(
        {{"input", input}, {"output", output}, {"status", "ok"}, {"model", model_json(model)}, {"seconds", seconds}});
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
        ok += s == status_name(InputStatus::Ok);
        failed += s == status_name(InputStatus::Failed);
        skipped += s == status_name(InputStatus::Skipped);
        passed += s == status_name(InputStatus::PassedThrough);
        interrupted += s == status_name(InputStatus::Interrupted);
    }
    out["summary"] = {{"inputs", inputs_.size()}, {"ok", ok},         {"passed_through", passed},
                      {"skipped", skipped},       {"failed", failed}, {"interrupted", interrupted}};
    const std::string text = out.dump(2) + "\n";
    write_file_atomic(path, text.data(), text.size());
}

void ApplyTally::add(const InputResult& r) {
    if (r.failed() && failures_++ == 0) first_failure_ = r.error;
    skipped_ += r.status == InputStatus::Skipped;
    ++done_;
    recorded_.insert(r.input);
    report_.add(r);
}

void ApplyTally::interrupt(const std::vector<InputPlan>& plans, const std::string& current) {
    for (const InputPlan& p : plans) {
        if (!recorded_.insert(p.input).second) continue;
        const Error e(ErrorKind::Interrupted, p.input == current ? "stopped by a signal while being written; nothing was left"
                                                                 : "not started: the run was stopped by a signal");
        report_.add(failed_result(p.input, p.output, e));
    }
}

int ApplyTally::finish(const std::string& report_path) const {
    const std::size_t normalized = done_ - skipped_;
    if (failures_ > 0 && done_ > 1)
        spdlog::error("{} of {} inputs failed (see the messages above{})", failures_, done_,
                      report_path.empty() ? "" : " and " + report_path);
    else if (failures_ == 0 && skipped_ == 0)
        spdlog::info("done: {} input{} normalized", done_, done_ == 1 ? "" : "s");
    else if (failures_ == 0)
        spdlog::info("done: {} input{} normalized, {} skipped (complete output{} exist{})", normalized,
                     normalized == 1 ? "" : "s", skipped_, skipped_ == 1 ? "" : "s", skipped_ == 1 ? "s" : "");
    if (failures_ == 0) return kExitOk;
    return failures_ == done_ ? exit_code_for(first_failure_) : kExitPartial;
}

}  // namespace vn::app
