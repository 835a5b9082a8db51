// What every subcommand shares: global options, logging, the stop flag, the backend.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>

#include "core/backend.hpp"
#include "io/source_estimate.hpp"

namespace vn::app {

// Tissue pixels sampled for a stain estimate: the bounds of --sample-size.
constexpr std::size_t kMinSampleSize = 1000;
constexpr std::size_t kMaxSampleSize = 100000000;

struct GlobalOptions {
    int verbosity = 0;                    // -1 quiet, 0 info, 1 debug
    int threads = 0;                      // set by resolve_threads: --threads, SLURM_CPUS_PER_TASK or the usable CPUs
    std::string device = "cpu";           // cpu | cuda | cuda:N[,M...] | auto
    std::string report;                   // --report PATH (JSON)
    std::uint64_t max_pixels = 1ull << 31;
    std::size_t sample_size = 20000;
    std::uint64_t seed = 20160801;
    bool exclude_ink = true;              // --exclude-ink / --no-exclude-ink
    std::string mask;                     // --mask FILE: estimate only inside this region
    std::string mask_class;               // --mask-class NAME: GeoJSON annotation class
};

void setup_logging(int verbosity);

// Sets g.threads from --threads (`option`, empty or "0" when not given), else by
// vn::resolve_thread_count (io/threads.hpp: $SLURM_CPUS_PER_TASK, else the usable CPUs; its
// warning logged). Throws Error(Usage) for a value that is not a whole number, --threads above
// vn::max_threads(), or a SLURM_CPUS_PER_TASK that is not a whole number of CPUs.
void resolve_threads(GlobalOptions& g, const std::string& option);

// SIGTERM, SIGINT and SIGHUP set the stop flag; long loops check it and stop cleanly.
// SIGPIPE is ignored (a closed log pipe never kills a run).
void install_signal_handlers();
const std::atomic<bool>& stop_flag();
// Throws Error(Interrupted) when a stop was requested.
void check_stop();

// The backend for --device, logged. Throws Error(Device) or Error(Usage).
std::unique_ptr<Backend> make_backend(const GlobalOptions& g);

EstimateParams estimate_params(const GlobalOptions& g);

// Reading inputs for estimation under the global options, logged, stopped by the stop flag.
// Throws Error(Usage) for --mask with other than one input, or --mask-class without --mask.
SourceOptions source_options(const GlobalOptions& g, std::size_t inputs);

}  // namespace vn::app
