// vahanorm: structure-preserving stain normalization (Vahadane et al. 2016) for H&E tiles
// and whole slides. This file parses the command line and maps errors to exit codes.
#include <cstdio>
#include <exception>
#include <new>
#include <system_error>

#include <CLI/CLI.hpp>
#include <spdlog/spdlog.h>

#include "app/commands.hpp"
#include "app/context.hpp"
#include "app/exit_codes.hpp"
#include "core/error.hpp"
#include "io/atomic_file.hpp"
#include "io/libtiff.hpp"

namespace {

int run(int argc, char** argv) {
    using namespace vn::app;
    CLI::App app{"vahanorm " VAHANORM_VERSION
                 ": structure-preserving stain normalization (Vahadane et al., IEEE TMI 2016) "
                 "for H&E tiles and whole slides"};
    app.set_version_flag("--version", "vahanorm " VAHANORM_VERSION);
    app.require_subcommand(1);
    app.fallthrough();  // global options may follow the subcommand

    GlobalOptions g;
    bool quiet = false;
    app.add_flag("-v,--verbose", g.verbosity, "More log output (debug)");
    app.add_flag("-q,--quiet", quiet, "Only warnings and errors");
    std::string threads;
    app.add_option("--threads", threads,
                   "Worker threads, at most 4 x the usable CPUs (default: $SLURM_CPUS_PER_TASK, else the usable CPUs)");
    app.add_option("--device", g.device, "Compute device: cpu, cuda, cuda:N[,M...], cuda:all or auto")
        ->capture_default_str();
    app.add_option("--report", g.report, "Write a JSON report of the run (per input: model, QC flags, timings, status)");
    app.add_option("--max-pixels", g.max_pixels, "Refuse images with more pixels than this (tiles)")->capture_default_str();
    app.add_option("--sample-size", g.sample_size, "Tissue pixels sampled for stain estimation")
        ->check(CLI::Range(kMinSampleSize, kMaxSampleSize))
        ->capture_default_str();
    app.add_option("--seed", g.seed, "Seed of the tissue-pixel sample")->capture_default_str();
    app.add_flag("--exclude-ink,!--no-exclude-ink", g.exclude_ink,
                 "Leave pen ink, near-black and grey artefact pixels out of stain estimation (default: on)");
    app.add_option("--mask", g.mask,
                   "Estimate stains only inside this region of the one input: a binary PNG/TIFF mask (white = inside, "
                   "any scale of the image) or a QuPath GeoJSON export (level-0 pixel coordinates)");
    app.add_option("--mask-class", g.mask_class, "With a GeoJSON --mask: use only annotations of this class");

    FitOptions fit;
    EstimateOptions est;
    ApplyOptions apply;
    DemoOptions demo;
    CLI::App* fit_cmd = app.add_subcommand("fit", "Fit a target model on one or more reference images");
    add_fit(*fit_cmd, fit);
    CLI::App* est_cmd = app.add_subcommand("estimate", "Estimate the stain model of one image or slide");
    add_estimate(*est_cmd, est);
    CLI::App* apply_cmd = app.add_subcommand("apply", "Normalize images or whole slides to a target");
    add_apply(*apply_cmd, apply);
    CLI::App* demo_cmd = app.add_subcommand("demo", "Run fit and apply on a generated synthetic H&E pair");
    add_demo(*demo_cmd, demo);

    // A subcommand's --help shows the global options it accepts too (before or after it).
    const std::string globals =
        "Global options (before or after the subcommand):\n"
        "  -v,--verbose  -q,--quiet  --threads N  --device cpu|cuda|cuda:N[,M]|cuda:all|auto\n"
        "  --report FILE.json  --max-pixels N  --sample-size N  --seed N   (vahanorm --help for details)";
    for (CLI::App* sub : {fit_cmd, est_cmd, apply_cmd, demo_cmd}) {
        const std::string f = sub->get_footer();
        sub->footer(f.empty() ? globals : f + "\n\n" + globals);
    }
    // The first word that is not an option (or a global option's value) must be a subcommand.
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        if (a == "--threads" || a == "--device" || a == "--report" || a == "--max-pixels" || a == "--sample-size" ||
            a == "--seed") {
            ++i;
            continue;
        }
        if (a.empty() || a[0] == '-') continue;
        if (a != "fit" && a != "estimate" && a != "apply" && a != "demo") {
            std::fprintf(stderr, "error: unknown subcommand '%s' (fit, estimate, apply or demo)\nRun with --help for usage.\n",
                         a.c_str());
            return kExitUsage;
        }
        break;
    }
    try {
        app.parse(argc, argv);
    } catch (const CLI::CallForHelp& e) {
        return app.exit(e) == 0 ? kExitOk : kExitUsage;
    } catch (const CLI::CallForAllHelp& e) {
        return app.exit(e) == 0 ? kExitOk : kExitUsage;
    } catch (const CLI::CallForVersion& e) {
        app.exit(e);
        return kExitOk;
    } catch (const CLI::ParseError& e) {
        std::fprintf(stderr, "error: %s\nRun with --help for usage.\n", e.what());
        return kExitUsage;
    }
    if (quiet) g.verbosity = -1;
    install_signal_handlers();
    setup_logging(g.verbosity);
    resolve_threads(g, threads);
    if (!g.report.empty()) vn::resolve_output(g.report);  // a report that cannot be written is refused before any work

    if (fit_cmd->parsed()) return run_fit(g, fit);
    if (est_cmd->parsed()) return run_estimate(g, est);
    if (apply_cmd->parsed()) return run_apply(g, apply);
    if (demo_cmd->parsed()) return run_demo(g, demo);
    return kExitUsage;
}

}  // namespace

int main(int argc, char** argv) {
    using namespace vn::app;
    vn::silence_libtiff_default_handlers();  // OpenSlide's libtiff calls: errors reach the log through OpenSlide
    try {
        return run(argc, argv);
    } catch (const vn::Error& e) {
        spdlog::error("{}", e.what());
        return exit_code_for(e.kind());
    } catch (const std::system_error& e) {
        if (e.code() == std::errc::resource_unavailable_try_again) {
            spdlog::error("cannot start a thread ({}): a process or thread limit is reached; use fewer --threads",
                          e.code().message());
            return kExitSystem;
        }
        spdlog::error("internal error: {}", e.what());
        return kExitInternal;
    } catch (const std::bad_alloc&) {
        spdlog::error("out of memory");
        return kExitInternal;
    } catch (const std::exception& e) {
        spdlog::error("internal error: {}", e.what());
        return kExitInternal;
    }
}
