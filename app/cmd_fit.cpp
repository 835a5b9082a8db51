// vahanorm fit --ref REF [--ref REF2 ...] [-o target.json]
#include <chrono>

#include <spdlog/spdlog.h>

#include "app/commands.hpp"
#include "app/exit_codes.hpp"
#include "app/report.hpp"
#include "io/source_estimate.hpp"
#include "core/error.hpp"
#include "core/model.hpp"
#include "io/atomic_file.hpp"
#include "io/model_file.hpp"

namespace vn::app {

void add_fit(CLI::App& app, FitOptions& o) {
    app.add_option("--ref", o.refs, "Reference image or slide (repeat to pool the tissue of several)")->required();
    app.add_option("-o,--output", o.output, "Where to write the target model ('-': standard output)")->capture_default_str();
    app.footer("Example: vahanorm fit --ref ref.png   (writes ./target.json)");
}

int run_fit(const GlobalOptions& g, const FitOptions& o) {
    const bool to_stdout = is_stdout_path(o.output);
    // Before any work: an output that is not a regular file, or that another process writes, is refused.
    std::unique_ptr<OutputLock> lock;
    if (!to_stdout) lock = std::make_unique<OutputLock>(o.output);
    auto backend = make_backend(g);
    Report report("fit", backend->name());
    const EstimateParams params = estimate_params(g);
    const auto t0 = std::chrono::steady_clock::now();
    StainModel m;
    try {
        m = estimate_from_sources(o.refs, *backend, params, source_options(g, o.refs.size()));
    } catch (const Error& e) {
        if (e.kind() == ErrorKind::Data)
            fail(ErrorKind::Data, std::string(e.what()) + " (cannot fit a target on this reference)");
        throw;
    }
    if (to_stdout)
        write_stdout(to_json(m));
    else
        save_model(m, o.output);
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    spdlog::info("wrote {} (hematoxylin [{:.4f} {:.4f} {:.4f}], eosin [{:.4f} {:.4f} {:.4f}], max [{:.4f} {:.4f}], "
                 "{} tissue pixels, {} ink or artefact pixels left out, {:.2f} s)",
                 to_stdout ? "the model to standard output" : o.output, m.stain[0][0], m.stain[0][1], m.stain[0][2],
                 m.stain[1][0], m.stain[1][1], m.stain[1][2], m.max_conc[0], m.max_conc[1], m.tissue_pixels,
                 m.artefact_pixels, secs);
    report.add_model(m.source_path, o.output, m, secs);
    report.write(g.report, kExitOk);
    return kExitOk;
}

}  // namespace vn::app
