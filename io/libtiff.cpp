#include "io/libtiff.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdarg>
#include <cstdio>
#include <utility>

#include <tiffio.h>

namespace vn {

struct TiffHandle::State {
    std::string name;   // the path as the caller gave it, for messages
    std::string error;  // the first error since opening or clear_error()
    int fd = -1;        // descriptor handles only
    int io_errno = 0;
};

namespace {

constexpr std::size_t kMessageMax = 1024;

// "module: text" on one line, without the file's name: libtiff often gives the path as the
// module, or starts the text with it, and the caller's message names the file anyway.
std::string format_message(const std::string& name, const char* module, const char* fmt, va_list ap) {
    char text[kMessageMax];
    std::vsnprintf(text, sizeof text, fmt ? fmt : "unknown libtiff error", ap);
    std::string s = module && *module && name != module ? std::string(module) + ": " + text : std::string(text);
    const std::string named = name + ": ";
    if (!name.empty())
        for (auto at = s.find(named); at != std::string::npos; at = s.find(named, at)) s.erase(at, named.size());
    for (char& c : s)
        if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) c = ' ';
    return s;
}

int on_error(TIFF*, void* user, const char* module, const char* fmt, va_list ap) {
    auto* state = static_cast<TiffHandle::State*>(user);
    if (state->error.empty()) state->error = format_message(state->name, module, fmt, ap);
    return 1;  // handled: libtiff calls no process-wide handler
}

int on_warning(TIFF*, void*, const char*, const char*, va_list) { return 1; }

void on_default_message(const char*, const char*, va_list) {}

// ---- I/O through a caller's descriptor --------------------------------------------------------

tmsize_t read_proc(thandle_t h, void* buf, tmsize_t size) {
    auto* state = static_cast<TiffHandle::State*>(h);
    auto* p = static_cast<char*>(buf);
    tmsize_t done = 0;
    while (done < size) {
        const ssize_t n = ::read(state->fd, p + done, static_cast<std::size_t>(size - done));
        if (n < 0) {
            if (errno == EINTR) continue;
            state->io_errno = errno;
            return done > 0 ? done : -1;
        }
        if (n == 0) break;
        done += n;
    }
    return done;
}

tmsize_t write_proc(thandle_t h, void* buf, tmsize_t size) {
    auto* state = static_cast<TiffHandle::State*>(h);
    const auto* p = static_cast<const char*>(buf);
    tmsize_t done = 0;
    while (done < size) {
        const ssize_t n = ::write(state->fd, p + done, static_cast<std::size_t>(size - done));
        if (n < 0) {
            if (errno == EINTR) continue;
            state->io_errno = errno;
            return done > 0 ? done : -1;
        }
        if (n == 0) {
            state->io_errno = ENOSPC;
            return done;
        }
        done += n;
    }
    return done;
}

toff_t seek_proc(thandle_t h, toff_t off, int whence) {
    auto* state = static_cast<TiffHandle::State*>(h);
    const off_t r = ::lseek(state->fd, static_cast<off_t>(off), whence);
    if (r < 0) {
        state->io_errno = errno;
        return static_cast<toff_t>(-1);
    }
    return static_cast<toff_t>(r);
}

int close_proc(thandle_t) { return 0; }  // the descriptor is the caller's

toff_t size_proc(thandle_t h) {
    auto* state = static_cast<TiffHandle::State*>(h);
    struct stat st {};
    if (::fstat(state->fd, &st) != 0) return 0;
    return static_cast<toff_t>(st.st_size);
}

int map_proc(thandle_t, void**, toff_t*) { return 0; }  // no memory mapping
void unmap_proc(thandle_t, void*, toff_t) {}

struct OptionsDeleter {
    void operator()(TIFFOpenOptions* o) const { TIFFOpenOptionsFree(o); }
};
using Options = std::unique_ptr<TIFFOpenOptions, OptionsDeleter>;

Options make_options(TiffHandle::State* state, const TiffOpenOptions& options) {
    Options opts(TIFFOpenOptionsAlloc());
    if (!opts) return opts;
    TIFFOpenOptionsSetErrorHandlerExtR(opts.get(), on_error, state);
    TIFFOpenOptionsSetWarningHandlerExtR(opts.get(), on_warning, state);
    if (options.max_single_alloc > 0)
        TIFFOpenOptionsSetMaxSingleMemAlloc(opts.get(), static_cast<tmsize_t>(options.max_single_alloc));
    return opts;
}

}  // namespace

TiffHandle::TiffHandle() = default;

TiffHandle::TiffHandle(const std::string& path, const char* mode, const TiffOpenOptions& options)
    : state_(std::make_unique<State>()) {
    state_->name = path;
    const Options opts = make_options(state_.get(), options);
    if (opts) tif_ = TIFFOpenExt(path.c_str(), mode, opts.get());
    if (!tif_ && state_->error.empty()) state_->error = "cannot open as TIFF";
}

TiffHandle::TiffHandle(int fd, const std::string& name, const char* mode, const TiffOpenOptions& options)
    : state_(std::make_unique<State>()) {
    state_->name = name;
    state_->fd = fd;
    const Options opts = make_options(state_.get(), options);
    if (opts)
        tif_ = TIFFClientOpenExt(name.c_str(), mode, static_cast<thandle_t>(state_.get()), read_proc, write_proc,
                                 seek_proc, close_proc, size_proc, map_proc, unmap_proc, opts.get());
    if (!tif_ && state_->error.empty()) state_->error = "cannot open as TIFF";
}

TiffHandle::~TiffHandle() {
    if (tif_) TIFFClose(tif_);
}

TiffHandle::TiffHandle(TiffHandle&& o) noexcept : tif_(std::exchange(o.tif_, nullptr)), state_(std::move(o.state_)) {}

TiffHandle& TiffHandle::operator=(TiffHandle&& o) noexcept {
    if (this != &o) {
        if (tif_) TIFFClose(tif_);
        tif_ = std::exchange(o.tif_, nullptr);
        state_ = std::move(o.state_);
    }
    return *this;
}

std::string TiffHandle::error() const { return state_ ? state_->error : std::string(); }

int TiffHandle::io_errno() const { return state_ ? state_->io_errno : 0; }

void TiffHandle::clear_error() {
    if (!state_) return;
    state_->error.clear();
    state_->io_errno = 0;
}

bool TiffHandle::close() {
    if (!tif_) return true;
    // TIFFClose flushes pending directory writes; errors land in the state.
    const bool ok = TIFFFlush(tif_) == 1;
    TIFFClose(tif_);
    tif_ = nullptr;
    return ok && (state_ ? state_->error.empty() : true);
}

void silence_libtiff_default_handlers() {
    TIFFSetErrorHandler(on_default_message);
    TIFFSetWarningHandler(on_default_message);
}

}  // namespace vn
