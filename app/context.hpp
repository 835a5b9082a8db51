// What every subcommand shares: global options, logging, the stop flag, the backend.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>

#include "core/backend.hpp"

namespace vn::app {

struct GlobalOptions {
    int verbosity = 0;                    // -1 quiet, 0 info, 1 debug
    int threads = 0;                      // 0: SLURM_CPUS_PER_TASK or all cores
    std::string device = "cpu";           // cpu | cuda | cuda:N[,M...] | auto
    std::string report;                   // --report PATH (JSON)
    std::uint64_t max_pixels = 1ull << 31;
    std::size_t sample_size = 20000;
    std::uint64_t seed = 20160801;
    bool exclude_ink = true;              // --exclude-ink / --no-exclude-ink
};

void setup_logging(int verbosity);

// SIGTERM and SIGINT set the stop flag; long loops check it and stop cleanly.
void install_signal_handlers();
const std::atomic<bool>& stop_flag();
// Throws Error(Interrupted) when a stop was requested.
void check_stop();

// The backend for --device, logged. Throws Error(Device) or Error(Usage).
std::unique_ptr<Backend> make_backend(const GlobalOptions& g);

EstimateParams estimate_params(const GlobalOptions& g);

}  // namespace vn::app
