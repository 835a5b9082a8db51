// vahanorm apply: plans the outputs, normalizes the tiles (io/tile_batch.hpp), then each slide
// (apply_slide.cpp), and reports every input.
#include <optional>
#include <string>
#include <vector>

#include <spdlog/spdlog.h>

#include "app/apply_plan.hpp"
#include "app/commands.hpp"
#include "app/exit_codes.hpp"
#include "app/report.hpp"
#include "core/error.hpp"
#include "io/model_file.hpp"

namespace vn::app {
namespace {

// The inputs to process; those that cannot be are recorded as failed.
ApplyInputs sort_plans(const std::vector<InputPlan>& plans, ApplyTally& tally) {
    ApplyInputs in;
    for (const InputPlan& p : plans) {
        if (p.error) {
            spdlog::error("{}", p.error->what());
            tally.add(failed_result(p.input, p.output, *p.error));
        } else {
            (p.is_slide ? in.slides : in.tiles).push_back(p);
        }
    }
    return in;
}

}  // namespace

int run_apply(const GlobalOptions& g, const ApplyOptions& o) {
    if (o.tile_size % kTileSizeMultiple != 0) fail(ErrorKind::Usage, "--tile-size must be a multiple of 16");
    if (is_stdout_path(o.output))
        fail(ErrorKind::Usage, "-o " + o.output + ": images and slides are not written to standard output; give a file or a directory");
    const TargetChoice target = resolve_target(o.target);
    spdlog::info("target: {}", target.description);
    const std::vector<InputPlan> plans = plan_outputs(o);
    auto backend = make_backend(g);
    Report report("apply", backend->name());
    report.set_target(target.path, target.chosen_by, target.model);
    std::optional<StainModel> fixed_source;
    if (!o.source_model.empty()) {
        fixed_source = load_model(o.source_model);
        spdlog::info("source model: {}", o.source_model);
    }

    ApplyTally tally(report);
    std::string current;  // the slide being written
    try {
        const ApplyInputs in = sort_plans(plans, tally);
        check_inputs(o, g, in, fixed_source.has_value());
        if (o.pooled && !in.tiles.empty()) fixed_source = pooled_source(in.tiles, *backend, g);
        if (!in.tiles.empty())
            apply_tiles(in.tiles, o, g, *backend, target.model, fixed_source, [&](const InputResult& r) { tally.add(r); });
        for (const InputPlan& p : in.slides) {
            check_stop();
            current = p.input;
            tally.add(apply_slide(p, o, g, *backend, target.model, fixed_source));
            current.clear();
        }
    } catch (const Error& e) {
        if (e.kind() != ErrorKind::Interrupted) throw;
        spdlog::error("{}", e.what());
        tally.interrupt(plans, current);
        report.write(g.report, exit_code_for(e.kind()));
        return exit_code_for(e.kind());
    }
    const int code = tally.finish(g.report);
    report.write(g.report, code);
    return code;
}

}  // namespace vn::app
