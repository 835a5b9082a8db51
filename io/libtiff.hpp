// libtiff for all of io/ (the tile codec, the slide reader, the pyramid writer): one RAII handle
// per open TIFF, each with its own error capture (libtiff >= 4.5: TIFFOpenExt and
// TIFFClientOpenExt with TIFFOpenOptionsSetErrorHandlerExtR). Handles in different threads never
// mix their messages, libtiff prints nothing for them, and an error carries libtiff's own text.
// Nothing here is process-wide.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

typedef struct tiff TIFF;

namespace vn {

struct TiffOpenOptions {
    // The largest single allocation libtiff may make for this handle, in bytes (reading files
    // that claim huge strips); 0: libtiff's default.
    std::int64_t max_single_alloc = 0;
};

class TiffHandle {
public:
    TiffHandle();  // not open
    // Opens `path`; mode as TIFFOpen ("r", "rm", "w", "w8", ...). Check valid() / error() afterwards.
    TiffHandle(const std::string& path, const char* mode, const TiffOpenOptions& options = {});
    // Reads or writes through `fd`, which stays the caller's (never closed here, never memory
    // mapped); `name` is the file's name for messages.
    TiffHandle(int fd, const std::string& name, const char* mode, const TiffOpenOptions& options = {});
    ~TiffHandle();
    TiffHandle(TiffHandle&& o) noexcept;
    TiffHandle& operator=(TiffHandle&& o) noexcept;
    TiffHandle(const TiffHandle&) = delete;
    TiffHandle& operator=(const TiffHandle&) = delete;

    bool valid() const { return tif_ != nullptr; }
    TIFF* get() const { return tif_; }
    // The first libtiff error since the handle was opened or clear_error() was called, as
    // "module: text" on one line without the file's name (the caller's message names the file);
    // "" if none.
    std::string error() const;
    // The errno of a failed read, write or seek through a descriptor (second constructor); 0 if none.
    int io_errno() const;
    // Forgets the error and the errno (before an operation whose failure is to be explained).
    void clear_error();
    // TIFFClose now; for writers, close() flushes and returns false when that failed.
    bool close();

    struct State;  // the file's name, descriptor and messages; at a fixed address for libtiff

private:
    TIFF* tif_ = nullptr;
    std::unique_ptr<State> state_;
};

// libtiff's process-wide handlers print errors and warnings to stderr. TiffHandle never reaches
// them, but libtiff calls that other libraries make with handles of their own do (OpenSlide
// 3.4.1: "x.tif: Invalid tile byte count ..." beside the log; OpenSlide reports the error itself).
// A program that wants its standard error for its own log calls this once at start: it replaces
// the process-wide handlers with ones that print nothing.
void silence_libtiff_default_handlers();

}  // namespace vn
