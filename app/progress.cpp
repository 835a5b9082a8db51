#include "app/progress.hpp"

#include <unistd.h>

#include <cstdio>

#include <spdlog/spdlog.h>

namespace vn::app {
namespace {

std::string format_seconds(double s) {
    char buf[32];
    if (s < 90)
        std::snprintf(buf, sizeof buf, "%.0fs", s);
    else if (s < 5400)
        std::snprintf(buf, sizeof buf, "%.0fm%02.0fs", s / 60 - 0.5, static_cast<double>(static_cast<long>(s) % 60));
    else
        std::snprintf(buf, sizeof buf, "%.1fh", s / 3600);
    return buf;
}

}  // namespace

Progress::Progress(std::string label, std::uint64_t total, std::string unit, double mpx_per_unit)
    : label_(std::move(label)),
      unit_(std::move(unit)),
      total_(total),
      mpx_per_unit_(mpx_per_unit),
      tty_(::isatty(STDERR_FILENO) == 1 && spdlog::default_logger()->level() <= spdlog::level::info),
      start_(std::chrono::steady_clock::now()),
      last_(start_) {}

Progress::~Progress() {
    if (tty_ && !finished_) std::fputs("\n", stderr);
}

void Progress::update(std::uint64_t done) {
    if (total_ <= 1) return;  // one item: its own log lines say enough
    const auto now = std::chrono::steady_clock::now();
    const double since_last = std::chrono::duration<double>(now - last_).count();
    if (since_last < (tty_ ? 0.2 : 10.0) && done < total_) return;
    last_ = now;
    const double elapsed = std::chrono::duration<double>(now - start_).count();
    const double rate = elapsed > 0 ? static_cast<double>(done) / elapsed : 0.0;
    const double left = rate > 0 ? static_cast<double>(total_ - done) / rate : 0.0;
    char line[256];
    if (mpx_per_unit_ > 0)
        std::snprintf(line, sizeof line, "%s: %llu/%llu %s (%.0f%%), %.1f Mpx/s, %s left", label_.c_str(),
                      static_cast<unsigned long long>(done), static_cast<unsigned long long>(total_), unit_.c_str(),
                      total_ ? 100.0 * static_cast<double>(done) / static_cast<double>(total_) : 100.0, rate * mpx_per_unit_,
                      format_seconds(left).c_str());
    else
        std::snprintf(line, sizeof line, "%s: %llu/%llu %s (%.0f%%), %.1f %s/s, %s left", label_.c_str(),
                      static_cast<unsigned long long>(done), static_cast<unsigned long long>(total_), unit_.c_str(),
                      total_ ? 100.0 * static_cast<double>(done) / static_cast<double>(total_) : 100.0, rate, unit_.c_str(),
                      format_seconds(left).c_str());
    if (tty_)
        std::fprintf(stderr, "\r\033[K%s", line);
    else
        spdlog::info("{}", line);
}

void Progress::finish() {
    if (finished_) return;
    finished_ = true;
    if (tty_) std::fputs("\r\033[K", stderr);
}

}  // namespace vn::app
