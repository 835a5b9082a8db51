#include "io/slide_tiff.hpp"

#include <tiffio.h>

#include <cstdarg>
#include <cstdio>
#include <utility>

namespace vn {

namespace {

int on_error(TIFF*, void* user, const char* module, const char* fmt, va_list ap) {
    auto* m = static_cast<TiffHandle::Messages*>(user);
    char buf[1024];
    std::vsnprintf(buf, sizeof buf, fmt, ap);
    m->error = module && *module ? std::string(module) + ": " + buf : std::string(buf);
    return 1;
}

int on_warning(TIFF*, void*, const char*, const char*, va_list) { return 1; }

}  // namespace

TiffHandle::TiffHandle(const std::string& path, const char* mode) : msgs_(std::make_unique<Messages>()) {
    TIFFOpenOptions* opts = TIFFOpenOptionsAlloc();
    TIFFOpenOptionsSetErrorHandlerExtR(opts, on_error, msgs_.get());
    TIFFOpenOptionsSetWarningHandlerExtR(opts, on_warning, msgs_.get());
    tif_ = TIFFOpenExt(path.c_str(), mode, opts);
    TIFFOpenOptionsFree(opts);
    if (!tif_ && msgs_->error.empty()) msgs_->error = "cannot open as TIFF";
}

TiffHandle::~TiffHandle() {
    if (tif_) TIFFClose(tif_);
}

TiffHandle::TiffHandle(TiffHandle&& o) noexcept : tif_(std::exchange(o.tif_, nullptr)), msgs_(std::move(o.msgs_)) {}

TiffHandle& TiffHandle::operator=(TiffHandle&& o) noexcept {
    if (this != &o) {
        if (tif_) TIFFClose(tif_);
        tif_ = std::exchange(o.tif_, nullptr);
        msgs_ = std::move(o.msgs_);
    }
    return *this;
}

std::string TiffHandle::error() const { return msgs_ ? msgs_->error : std::string(); }

void TiffHandle::clear_error() {
    if (msgs_) msgs_->error.clear();
}

bool TiffHandle::close() {
    if (!tif_) return true;
    // TIFFClose flushes pending directory writes; errors land in msgs_.
    const bool ok = TIFFFlush(tif_) == 1;
    TIFFClose(tif_);
    tif_ = nullptr;
    return ok && (msgs_ ? msgs_->error.empty() : true);
}

}  // namespace vn
