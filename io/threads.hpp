// How many worker threads a run uses: the one thread-count policy of the CLI, the Python
// package and io/'s defaults. core/ takes resolved counts and reads no environment.
#pragma once

#include <functional>
#include <string>

namespace vn {

// The CPUs this process may run on (sched_getaffinity: taskset, cgroup cpusets, SLURM's
// binding), at least 1; std::thread::hardware_concurrency() where the mask cannot be read.
int usable_cpus();

// A whole number written in decimal digits only (no sign, exponent or spaces) of at most 9
// digits (it fits an int), else -1.
long long parse_count(const std::string& text);

// The most threads a run accepts: kThreadsPerCpu x usable_cpus().
constexpr int kThreadsPerCpu = 4;
int max_threads();
// That limit in words, for messages: "8 (4 x the 2 CPUs this process may use)".
std::string thread_limit_text();

// `requested` when > 0 (the caller checks it against max_threads(), in its own words); else
// $SLURM_CPUS_PER_TASK, where a value above max_threads() is lowered to it and `warn` (when
// given) says so; else usable_cpus(). Throws Error(Usage) for a SLURM_CPUS_PER_TASK that is
// not a whole number of CPUs, or is 0; its message ends "correct it, or give " + count_option
// (the caller's way of giving a count: "--threads N" for the CLI, "threads=N" for Python).
int resolve_thread_count(int requested, const std::function<void(const std::string&)>& warn = {},
                         const std::string& count_option = "--threads N");

}  // namespace vn
