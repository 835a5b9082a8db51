// The CUDA parity checks (parity_checks.cpp) as Catch2 test cases. Without a device each GPU
// case prints "[SKIPPED] no CUDA device: <reason>", which CTest reports as skipped
// (SKIP_REGULAR_EXPRESSION in tests/CMakeLists.txt); the host-only cases always run.
#include <catch2/catch.hpp>

#include <iostream>
#include <sstream>
#include <string>

#include "tests/cuda/parity_checks.hpp"

namespace {

void run_check(const std::string& name) {
    using namespace vn::cudatest;
    for (const Check& c : all_checks()) {
        if (name != c.name) continue;
        std::string reason;
        if (c.needs_device && !device_available(reason)) {
            std::cout << "[SKIPPED] no CUDA device: " << reason << std::endl;
            return;
        }
        std::ostringstream log;
        const CheckResult r = c.run(log);
        std::cout << log.str() << std::flush;
        INFO(log.str());
        CHECK(r.failed == 0);
        CHECK(r.passed > 0);
        return;
    }
    FAIL("no parity check named \"" << name << "\"");
}

}  // namespace

TEST_CASE("cuda: downsample reference (host, known inputs)", "[cuda][host]") {
    run_check("downsample reference (host, known inputs)");
}
TEST_CASE("cuda: device stepping of SNMF vs core (host)", "[cuda][host]") {
    run_check("device stepping of SNMF vs core (host)");
}
TEST_CASE("cuda: transform parity over awkward sizes", "[cuda][device]") {
    run_check("transform parity over awkward sizes");
}
TEST_CASE("cuda: backend host buffers and properties", "[cuda][device]") {
    run_check("backend host buffers and properties");
}
TEST_CASE("cuda: concentration histograms and percentiles", "[cuda][device]") {
    run_check("concentration histograms and percentiles");
}
TEST_CASE("cuda: estimate parity (synthetic, random, blank)", "[cuda][device]") {
    run_check("estimate parity (synthetic, random, blank)");
}
TEST_CASE("cuda: per-tile normalize_tiles parity", "[cuda][device]") { run_check("per-tile normalize_tiles parity"); }
TEST_CASE("cuda: 2x2 downsampling vs host reference", "[cuda][device]") {
    run_check("2x2 downsampling vs host reference");
}
TEST_CASE("cuda: backend creation errors are one-line Device errors", "[cuda][host]") {
    run_check("backend creation errors are one-line Device errors");
}
TEST_CASE("cuda: eigensolver results checked: no convergence or NaN is an error (host)", "[cuda][host]") {
    run_check("eigensolver results checked: no convergence or NaN is an error (host)");
}
TEST_CASE("cuda: C-step split into float lanes equals block_partials (host)", "[cuda][host]") {
    run_check("C-step split into float lanes equals block_partials (host)");
}
