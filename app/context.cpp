#include "app/context.hpp"

#include <csignal>
#include <cstdlib>

#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include "app/cuda_plugin.hpp"
#include "core/error.hpp"
#include "io/threads.hpp"

namespace vn::app {
namespace {

std::atomic<bool> g_stop{false};

extern "C" void on_stop_signal(int sig) {
    g_stop.store(true);
    // A second signal ends the process the default way.
    std::signal(sig, SIG_DFL);
}

}  // namespace

void resolve_threads(GlobalOptions& g, const std::string& option) {
    long long n = 0;  // not given, or 0: resolve_thread_count's choice
    if (!option.empty()) {
        n = parse_count(option);
        if (n < 0) {
            if (option.find_first_not_of("0123456789") == std::string::npos)
                fail(ErrorKind::Usage, "--threads " + option + ": more than the limit of " + thread_limit_text());
            fail(ErrorKind::Usage, "--threads: '" + option + "' is not a whole number of threads (e.g. --threads 4)");
        }
        if (n > max_threads())
            fail(ErrorKind::Usage, "--threads " + option + ": more than the limit of " + thread_limit_text());
    }
    g.threads = resolve_thread_count(static_cast<int>(n), [](const std::string& msg) { spdlog::warn("{}", msg); });
}

void setup_logging(int verbosity) {
    auto logger = spdlog::stderr_color_mt("vahanorm");
    logger->set_pattern("%^%l%$: %v");
    logger->set_level(verbosity < 0 ? spdlog::level::warn : verbosity > 0 ? spdlog::level::debug : spdlog::level::info);
    spdlog::set_default_logger(logger);
}

void install_signal_handlers() {
    struct sigaction sa {};
    sa.sa_handler = on_stop_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = 0;
    sigaction(SIGTERM, &sa, nullptr);
    sigaction(SIGINT, &sa, nullptr);
    sigaction(SIGHUP, &sa, nullptr);  // a closed terminal or ssh session: stop cleanly, like SIGTERM
    // A closed pipe on stdout or stderr (`vahanorm ... 2>&1 | head -n 1`) must not kill the run
    // half-way through an output: writes to it fail with EPIPE instead, and the log ignores them.
    struct sigaction ignore {};
    ignore.sa_handler = SIG_IGN;
    sigemptyset(&ignore.sa_mask);
    sigaction(SIGPIPE, &ignore, nullptr);
}

const std::atomic<bool>& stop_flag() { return g_stop; }

void check_stop() {
    if (g_stop.load()) fail(ErrorKind::Interrupted, "stopped by a signal; outputs in progress were removed");
}

std::unique_ptr<Backend> make_backend(const GlobalOptions& g) {
    std::unique_ptr<Backend> backend = make_device_backend(g.device, g.threads, "--device", [](const std::string& why) {
        spdlog::info("device: no usable CUDA device ({}), using the CPU", why);
    });
    spdlog::info("device: {}", backend->name());
    return backend;
}

EstimateParams estimate_params(const GlobalOptions& g) {
    EstimateParams p;
    p.sample_size = g.sample_size;
    p.seed = g.seed;
    p.exclude_artefacts = g.exclude_ink;
    return p;
}

SourceOptions source_options(const GlobalOptions& g, std::size_t inputs) {
    if (!g.mask.empty() && inputs != 1)
        fail(ErrorKind::Usage,
             "--mask restricts the estimate of one image or slide, not of " + std::to_string(inputs) + " inputs");
    if (!g.mask_class.empty() && g.mask.empty()) fail(ErrorKind::Usage, "--mask-class needs --mask");
    SourceOptions o;
    o.threads = g.threads;
    o.max_pixels = g.max_pixels;
    o.mask_path = g.mask;
    o.mask_class = g.mask_class;
    o.stop = &g_stop;
    o.log = [](const std::string& msg) { spdlog::info("{}", msg); };
    return o;
}

}  // namespace vn::app
