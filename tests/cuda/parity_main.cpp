// Standalone runner of the CUDA parity checks (no Catch2 needed): prints each check's log and
// a summary table. Exit status: 0 all ran checks passed, 1 a check failed, 2 no device and
// --require-device was given.
//
//   vahanorm_cuda_parity [--require-device] [--only TEXT]...   # --only: checks whose name contains TEXT
#include <chrono>
#include <cstdio>
#include <cstring>
#include <exception>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include "cuda/cuda_backend.hpp"
#include "tests/cuda/parity_checks.hpp"

int main(int argc, char** argv) {
    bool require_device = false;
    std::vector<std::string> only;
    for (int i = 1; i < argc; ++i) {
        if (std::strcmp(argv[i], "--require-device") == 0) {
            require_device = true;
        } else if (std::strcmp(argv[i], "--only") == 0 && i + 1 < argc) {
            only.emplace_back(argv[++i]);
        } else {
            std::fprintf(stderr, "usage: %s [--require-device] [--only TEXT]...\n", argv[0]);
            return 64;
        }
    }
    using namespace vn::cudatest;
    std::string reason;
    const bool device = device_available(reason);
    if (device)
        std::cout << "CUDA device 0: " << vn::cuda_device_name(0) << " (" << vn::cuda_device_count() << " visible)\n";
    else
        std::cout << "no CUDA device: " << reason << "\n";

    struct Row {
        std::string name, status;
        int passed, failed;
        double seconds;
    };
    std::vector<Row> rows;
    int failures = 0;
    int selected = 0;
    for (const Check& c : all_checks()) {
        bool wanted = only.empty();
        for (const std::string& o : only) wanted = wanted || std::string(c.name).find(o) != std::string::npos;
        if (!wanted) continue;
        ++selected;
        std::cout << "== " << c.name << "\n";
        if (c.needs_device && !device) {
            std::cout << "[SKIPPED] no CUDA device: " << reason << "\n";
            rows.push_back({c.name, "skipped", 0, 0, 0.0});
            continue;
        }
        std::ostringstream log;
        CheckResult r;
        const auto t0 = std::chrono::steady_clock::now();
        try {
            r = c.run(log);
        } catch (const std::exception& e) {
            log << "  FAIL: exception: " << e.what() << "\n";
            ++r.failed;
        }
        const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        std::cout << log.str();
        rows.push_back({c.name, r.failed ? "FAIL" : "pass", r.passed, r.failed, s});
        failures += r.failed ? 1 : 0;
    }
    std::cout << "\n| check | result | comparisons ok | failed | seconds |\n|---|---|---:|---:|---:|\n";
    for (const Row& row : rows) {
        char secs[32];
        std::snprintf(secs, sizeof secs, "%.2f", row.seconds);
        std::cout << "| " << row.name << " | " << row.status << " | " << row.passed << " | " << row.failed << " | "
                  << secs << " |\n";
    }
    if (selected == 0) {
        std::fprintf(stderr, "no check matches --only\n");
        return 64;
    }
    if (failures) return 1;
    if (!device && require_device) return 2;
    return 0;
}
