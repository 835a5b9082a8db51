// vahanorm estimate INPUT -o model.json
#include <chrono>

#include <spdlog/spdlog.h>

#include "app/commands.hpp"
#include "app/exit_codes.hpp"
#include "app/report.hpp"
#include "io/source_estimate.hpp"
#include "core/model.hpp"
#include "io/atomic_file.hpp"
#include "io/model_file.hpp"

namespace vn::app {

void add_estimate(CLI::App& app, EstimateOptions& o) {
    app.add_option("input", o.input, "Image or whole slide")->required();
    app.add_option("-o,--output", o.output, "Where to write the model (same schema as a target; '-': standard output)")->required();
    app.footer("The model can be reused with: vahanorm apply INPUT --source-model model.json ...");
}

int run_estimate(const GlobalOptions& g, const EstimateOptions& o) {
    const bool to_stdout = is_stdout_path(o.output);
    // Before any work: an output that is not a regular file, or that another process writes, is refused.
    std::unique_ptr<OutputLock> lock;
    if (!to_stdout) lock = std::make_unique<OutputLock>(o.output);
    auto backend = make_backend(g);
    Report report("estimate", backend->name());
    const auto t0 = std::chrono::steady_clock::now();
    const StainModel m = estimate_from_sources({o.input}, *backend, estimate_params(g), source_options(g, 1));
    if (to_stdout)
        write_stdout(to_json(m));
    else
        save_model(m, o.output);
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    spdlog::info("wrote {} (stain angle {:.1f} deg, max [{:.4f} {:.4f}], {} tissue pixels, {} ink or artefact pixels "
                 "left out, {:.2f} s)",
                 to_stdout ? "the model to standard output" : o.output, stain_angle_deg(m), m.max_conc[0],
                 m.max_conc[1], m.tissue_pixels, m.artefact_pixels, secs);
    report.add_model(o.input, o.output, m, secs);
    report.write(g.report, kExitOk);
    return kExitOk;
}

}  // namespace vn::app
