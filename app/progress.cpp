#include "app/progress.hpp"

#include <unistd.h>

#include <cmath>
#include <cstdio>

#include <atomic>
#include <memory>
#include <mutex>

#include <spdlog/sinks/base_sink.h>
#include <spdlog/spdlog.h>

namespace vn::app {
namespace {

// Seconds between progress updates: a live line on a terminal, a log line otherwise.
constexpr double kTerminalInterval = 0.2;
constexpr double kLogInterval = 10.0;
constexpr double kSecondsPerMinute = 60, kSecondsPerHour = 3600;
// Shorter times than these are given in seconds, then minutes and seconds, then hours.
constexpr double kSecondsUpTo = 90, kMinutesUpTo = 90 * kSecondsPerMinute;

// A progress line is on the terminal (no newline after it yet).
std::atomic<bool> g_live_line{false};

// Wraps a logger's sink: a log message first clears a live progress line, so that the two never
// share a row; the next update draws the progress line again below the message.
class ClearLineSink final : public spdlog::sinks::base_sink<std::mutex> {
public:
    explicit ClearLineSink(spdlog::sink_ptr inner) : inner_(std::move(inner)) { set_level(inner_->level()); }
    const spdlog::sink_ptr& inner() const { return inner_; }

protected:
    void sink_it_(const spdlog::details::log_msg& msg) override {
        if (g_live_line.exchange(false)) std::fputs("\r\033[K", stderr);
        inner_->log(msg);
    }
    void flush_() override { inner_->flush(); }
    void set_pattern_(const std::string& pattern) override { inner_->set_pattern(pattern); }
    void set_formatter_(std::unique_ptr<spdlog::formatter> f) override { inner_->set_formatter(std::move(f)); }

private:
    spdlog::sink_ptr inner_;
};

void wrap_sinks() {
    for (spdlog::sink_ptr& s : spdlog::default_logger()->sinks())
        if (!std::dynamic_pointer_cast<ClearLineSink>(s)) s = std::make_shared<ClearLineSink>(s);
}

void unwrap_sinks() {
    for (spdlog::sink_ptr& s : spdlog::default_logger()->sinks())
        if (auto w = std::dynamic_pointer_cast<ClearLineSink>(s)) s = w->inner();
}

std::string format_seconds(double s) {
    char buf[32];
    if (s < kSecondsUpTo)
        std::snprintf(buf, sizeof buf, "%.0fs", s);
    else if (s < kMinutesUpTo)
        std::snprintf(buf, sizeof buf, "%.0fm%02.0fs", s / kSecondsPerMinute - 0.5,
                      std::fmod(std::floor(s), kSecondsPerMinute));
    else
        std::snprintf(buf, sizeof buf, "%.1fh", s / kSecondsPerHour);
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
      last_(start_) {
    if (tty_) wrap_sinks();
}

Progress::~Progress() {
    finish();
}

void Progress::update(std::uint64_t done) {
    if (total_ <= 1) return;  // one item: its own log lines say enough
    const auto now = std::chrono::steady_clock::now();
    const double since_last = std::chrono::duration<double>(now - last_).count();
    if (since_last < (tty_ ? kTerminalInterval : kLogInterval) && done < total_) return;
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
    if (tty_) {
        std::fprintf(stderr, "\r\033[K%s", line);
        g_live_line = true;
    } else
        spdlog::info("{}", line);
}

void Progress::finish() {
    if (finished_) return;
    finished_ = true;
    if (!tty_) return;
    if (g_live_line.exchange(false)) std::fputs("\r\033[K", stderr);
    unwrap_sinks();
}

}  // namespace vn::app
