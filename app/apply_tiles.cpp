// The tiles of `apply`: a pooled source model if asked for, then the tile batches
// (io/tile_batch.hpp), each result logged and reported as it comes.
#include <spdlog/spdlog.h>

#include "app/apply_plan.hpp"
#include "app/progress.hpp"
#include "io/source_estimate.hpp"
#include "io/tile_batch.hpp"

namespace vn::app {
namespace {

void log_tile(const InputResult& r) {
    if (!r.conversion.empty()) spdlog::info("{}: {}", r.input, r.conversion);
    for (const std::string& w : r.warnings) spdlog::warn("{}: {}", r.input, w);
    if (r.status == InputStatus::Skipped) spdlog::info("{}: skipped, {} exists and is complete", r.input, r.output);
    if (r.status == InputStatus::PassedThrough) spdlog::warn("{}: passed through unchanged: {}", r.input, r.message);
    if (r.status == InputStatus::Failed) spdlog::error("{}", r.message);
    if (r.status == InputStatus::Ok || r.status == InputStatus::PassedThrough) spdlog::debug("{} -> {}", r.input, r.output);
}

}  // namespace

StainModel pooled_source(const std::vector<InputPlan>& tiles, Backend& backend, const GlobalOptions& g) {
    std::vector<std::string> paths;
    for (const InputPlan& p : tiles) paths.push_back(p.input);
    const StainModel m = pooled_source_model(paths, backend, estimate_params(g), source_options(g, 1));
    spdlog::info("pooled source model: stain angle {:.1f} deg, max [{:.4f} {:.4f}] from {} tissue pixels, {} ink or "
                 "artefact pixels left out",
                 stain_angle_deg(m), m.max_conc[0], m.max_conc[1], m.tissue_pixels, m.artefact_pixels);
    return m;
}

void apply_tiles(const std::vector<InputPlan>& tiles, const ApplyOptions& o, const GlobalOptions& g, Backend& backend,
                 const StainModel& target, const std::optional<StainModel>& fixed_source,
                 const std::function<void(const InputResult&)>& on_result) {
    TileBatchOptions to;
    to.threads = g.threads;
    to.max_pixels = g.max_pixels;
    to.jpeg_quality = o.quality;
    to.skip_existing = o.skip_existing;
    to.stop = &stop_flag();
    Progress progress("apply", tiles.size(), "images");
    std::size_t done = 0;
    normalize_tile_files(tiles, backend, target, fixed_source, estimate_params(g), to, [&](InputResult&& r) {
        log_tile(r);
        on_result(r);
        progress.update(++done);
    });
    check_stop();
    progress.finish();
}

}  // namespace vn::app
