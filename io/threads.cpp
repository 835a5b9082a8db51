#include "io/threads.hpp"

#include <sched.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <thread>

#include "core/error.hpp"

namespace vn {
namespace {

// A count of CPUs has at most this many digits (it fits an int).
constexpr std::size_t kMaxCountDigits = 9;
// The CPU mask is grown from kMinCpuMask CPUs up to kMaxCpuMask.
constexpr int kMinCpuMask = 1024;
constexpr int kMaxCpuMask = 1 << 20;

}  // namespace

long long parse_count(const std::string& text) {
    if (text.empty() || text.size() > kMaxCountDigits || text.find_first_not_of("0123456789") != std::string::npos)
        return -1;
    return std::stoll(text);
}

int usable_cpus() {
    // The mask is grown for machines with more than 1024 CPUs.
    for (int n = kMinCpuMask; n <= kMaxCpuMask; n *= 2) {
        cpu_set_t* set = CPU_ALLOC(n);
        if (!set) break;
        const std::size_t size = CPU_ALLOC_SIZE(n);
        const int rc = ::sched_getaffinity(0, size, set);
        const int count = rc == 0 ? CPU_COUNT_S(size, set) : 0;
        const int e = errno;
        CPU_FREE(set);
        if (rc == 0) return std::max(1, count);
        if (e != EINVAL) break;
    }
    const unsigned hw = std::thread::hardware_concurrency();
    return hw > 0 ? static_cast<int>(hw) : 1;
}

int max_threads() { return kThreadsPerCpu * usable_cpus(); }

std::string thread_limit_text() {
    const int cpus = usable_cpus();
    return std::to_string(kThreadsPerCpu * cpus) + " (" + std::to_string(kThreadsPerCpu) + " x the " +
           std::to_string(cpus) + " CPU" + (cpus == 1 ? "" : "s") + " this process may use)";
}

int resolve_thread_count(int requested, const std::function<void(const std::string&)>& warn,
                         const std::string& count_option) {
    if (requested > 0) return requested;
    const char* env = std::getenv("SLURM_CPUS_PER_TASK");
    if (env && *env) {
        const std::string text = env;
        const long long n = parse_count(text);
        if (n <= 0 && text.find_first_not_of("0123456789") != std::string::npos)
            fail(ErrorKind::Usage, "SLURM_CPUS_PER_TASK='" + text +
                                       "' is not a whole number of CPUs; correct it, or give " + count_option);
        if (n == 0)
            fail(ErrorKind::Usage,
                 "SLURM_CPUS_PER_TASK=0 is not a number of CPUs; correct it, or give " + count_option);
        const int cap = max_threads();
        if (n < 0 || n > cap) {
            if (warn)
                warn("SLURM_CPUS_PER_TASK=" + text + " is more than the limit of " + thread_limit_text() + ": using " +
                     std::to_string(cap) + " threads");
            return cap;
        }
        return static_cast<int>(n);
    }
    return usable_cpus();
}

}  // namespace vn
