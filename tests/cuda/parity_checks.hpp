// CUDA backend parity checks, written as plain functions so that they run both under Catch2
// (test_cuda_parity.cpp, through CTest) and from a standalone executable without Catch2
// (parity_main.cpp, used by scripts/device-check.sh on machines without Catch2).
// GPU code is reached only through the host API of cuda/cuda_backend.hpp and
// cuda/principal_axes.hpp, and the test-only device operations of tests/cuda/device_ops.hpp.
#pragma once

#include <ostream>
#include <string>
#include <vector>

#include "core/image.hpp"

namespace vn::cudatest {

struct CheckResult {
    int passed = 0;  // individual comparisons that held
    int failed = 0;  // individual comparisons that did not (each logged with a reason)
};

struct Check {
    const char* name;
    bool needs_device;
    CheckResult (*run)(std::ostream& log);
};

// Every check, in the order the standalone runner prints them.
const std::vector<Check>& all_checks();

// Whether a CUDA device is usable; `reason` says why not.
bool device_available(std::string& reason);

// The host reference of 2x2 pyramid downsampling: (a + b + c + d + 2) / 4 per channel, an odd
// last column/row replicated; output ceil(w/2) x ceil(h/2).
RgbImage downsample_2x2_reference(RgbView src);

}  // namespace vn::cudatest
