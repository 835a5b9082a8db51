// The thread-count policy (io/threads.hpp): --threads or the Python package's `threads`, else
// $SLURM_CPUS_PER_TASK, else the CPUs this process may use; core's pools read no environment.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include "core/backend.hpp"
#include "core/error.hpp"
#include "io/threads.hpp"
#include "tests/support/errors.hpp"

using namespace vn;

namespace {

// Sets SLURM_CPUS_PER_TASK for one scope, then removes it.
struct SlurmCpus {
    explicit SlurmCpus(const char* value) { ::setenv("SLURM_CPUS_PER_TASK", value, 1); }
    ~SlurmCpus() { ::unsetenv("SLURM_CPUS_PER_TASK"); }
    SlurmCpus(const SlurmCpus&) = delete;
    SlurmCpus& operator=(const SlurmCpus&) = delete;
};

}  // namespace

TEST_CASE("thread count: explicit, then SLURM_CPUS_PER_TASK, then the usable CPUs", "[threads]") {
    ::unsetenv("SLURM_CPUS_PER_TASK");
    CHECK(resolve_thread_count(3) == 3);
    CHECK(resolve_thread_count(0) == usable_cpus());
    CHECK(usable_cpus() >= 1);
    CHECK(max_threads() == kThreadsPerCpu * usable_cpus());
    {
        SlurmCpus slurm("1");
        CHECK(resolve_thread_count(0) == 1);
        CHECK(resolve_thread_count(3) == 3);  // explicit wins
    }
    {
        const std::string n = std::to_string(max_threads());
        SlurmCpus slurm(n.c_str());
        CHECK(resolve_thread_count(0) == max_threads());
    }
    CHECK(resolve_thread_count(0) == usable_cpus());
}

TEST_CASE("thread count: a SLURM_CPUS_PER_TASK that is not a whole number of CPUs is refused", "[threads]") {
    for (const char* bad : {"junk", "1e3", "-2", " 4", "4 ", "2.5", "0"}) {
        INFO(bad);
        SlurmCpus slurm(bad);
        CHECK(test::error_of([] { (void)resolve_thread_count(0); }).kind() == ErrorKind::Usage);
        CHECK(resolve_thread_count(2) == 2);  // not read when a count is given
    }
    SlurmCpus slurm("junk");
    CHECK_THROWS_WITH(resolve_thread_count(0),
                      "SLURM_CPUS_PER_TASK='junk' is not a whole number of CPUs; correct it, or give --threads N");
    CHECK_THROWS_WITH(resolve_thread_count(0, {}, "threads=N"),
                      "SLURM_CPUS_PER_TASK='junk' is not a whole number of CPUs; correct it, or give threads=N");
}

TEST_CASE("thread count: a SLURM_CPUS_PER_TASK above the limit is lowered to it, with a warning", "[threads]") {
    const std::string above = std::to_string(max_threads() + 1);
    for (const std::string& value : {above, std::string(40, '9')}) {
        INFO(value);
        SlurmCpus slurm(value.c_str());
        std::vector<std::string> warnings;
        CHECK(resolve_thread_count(0, [&](const std::string& w) { warnings.push_back(w); }) == max_threads());
        REQUIRE(warnings.size() == 1);
        CHECK(warnings[0] == "SLURM_CPUS_PER_TASK=" + value + " is more than the limit of " + thread_limit_text() +
                                 ": using " + std::to_string(max_threads()) + " threads");
        CHECK(resolve_thread_count(0) == max_threads());  // no warning callback: the same count
    }
}

TEST_CASE("thread count: core's pools take resolved counts and read no environment", "[threads]") {
    const unsigned hw = std::thread::hardware_concurrency();
    const int all = std::max(1, static_cast<int>(hw));
    SlurmCpus slurm("junk");
    CHECK(pool_thread_count(3) == 3);
    CHECK(pool_thread_count(0) == all);
    CHECK(make_cpu_backend(2)->name() == "cpu (2 threads)");
    CHECK(make_cpu_backend(0)->name() == "cpu (" + std::to_string(all) + (all == 1 ? " thread)" : " threads)"));
}
