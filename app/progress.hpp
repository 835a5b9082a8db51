// Progress for people watching: a live line on a terminal, periodic log lines otherwise.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

namespace vn::app {

class Progress {
public:
    // `unit` names what is counted ("tiles", "images"); `mpx_per_unit` > 0 adds Mpx/s.
    Progress(std::string label, std::uint64_t total, std::string unit, double mpx_per_unit = 0.0);
    ~Progress();
    void update(std::uint64_t done);
    void finish();

private:
    std::string label_, unit_;
    std::uint64_t total_;
    double mpx_per_unit_;
    bool tty_;
    bool finished_ = false;
    std::chrono::steady_clock::time_point start_, last_;
};

}  // namespace vn::app
