// The tile codecs' shared parts and entry points, internal to io/. io/image_io.cpp holds the
// shared parts (messages, files, limits, sample conversion) and picks a codec by signature or
// extension; io/png_codec.cpp (libpng), io/jpeg_codec.cpp (libjpeg-turbo) and io/tiff_codec.cpp
// (libtiff through io/libtiff.hpp) each read and write one format.
//
// libpng and libjpeg report errors by longjmp. Every call into them that can fail runs inside
// a "guard": a function that does nothing but setjmp and then call a body function. Bodies and
// the error callbacks hold only trivially destructible locals, so a longjmp skips no
// destructor, and no local of the setjmp frame changes after setjmp (-Wclobbered). All state
// lives in a context struct passed by pointer; C++ objects (the pixels, row buffers) are owned
// by the calling function, outside the jump. The message is copied into the context and turned
// into an Error once the guard has returned false. libtiff reports through per-handle handlers
// (io/libtiff.hpp). Nothing here is global; readers and writers may run in several threads at once.
#pragma once

#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include "core/error.hpp"
#include "core/image.hpp"
#include "io/image_io.hpp"

namespace vn::codec {

// ---- messages ---------------------------------------------------------------------------------

// An error is one line: codec messages may span lines or carry control characters.
std::string one_line(std::string s);
// Error(Input) / Error(Output): "path: what", on one line.
[[noreturn]] void input_error(const std::string& path, const std::string& what);
[[noreturn]] void output_error(const std::string& path, const std::string& what);
// strerror in lower case ("no such file or directory").
std::string errno_text(int e);
// Why an input could not be opened or an output created or written, in a few words.
std::string input_reason(int e);
std::string output_reason(int e);

// ---- files --------------------------------------------------------------------------------------

class Fd {
public:
    explicit Fd(int fd) : fd_(fd) {}
    Fd(const Fd&) = delete;
    Fd& operator=(const Fd&) = delete;
    ~Fd() {
        if (fd_ >= 0) ::close(fd_);
    }
    int get() const { return fd_; }
    int release() {
        const int fd = fd_;
        fd_ = -1;
        return fd;
    }
    // Closes now; returns 0 or the errno of a failed close.
    int close() {
        if (fd_ < 0) return 0;
        const int rc = ::close(fd_);
        fd_ = -1;
        return rc == 0 ? 0 : errno;
    }

private:
    int fd_;
};

class StdioFile {
public:
    explicit StdioFile(std::FILE* f) : f_(f) {}
    StdioFile(const StdioFile&) = delete;
    StdioFile& operator=(const StdioFile&) = delete;
    ~StdioFile() {
        if (f_) std::fclose(f_);
    }
    std::FILE* get() const { return f_; }
    // Closes now; returns 0 or the errno of a failed flush/close.
    int close() {
        if (!f_) return 0;
        std::FILE* f = f_;
        f_ = nullptr;
        errno = 0;
        const bool had_error = std::ferror(f) != 0;
        const int rc = std::fclose(f);
        if (rc != 0) return errno != 0 ? errno : EIO;
        return had_error ? EIO : 0;
    }

private:
    std::FILE* f_;
};

// Creates the temporary file of an AtomicOutput; any failure is Error(Output) naming `path`.
int create_output(const std::string& temp, const std::string& path);
// A stdio stream over `fd`, which it then owns; any failure is Error(kind) naming `path`.
std::FILE* fdopen_or_fail(Fd& fd, const char* mode, const std::string& path, ErrorKind kind);

// ---- limits and conversion ----------------------------------------------------------------------

// Refuses empty and oversized images before any pixel memory is allocated.
void check_dimensions(const std::string& path, long long width, long long height, const ReadOptions& options);
// sink(width, height), checked: a span of another size is Error(Internal) naming `path`.
RgbSpan sink_span(const PixelSink& sink, const std::string& path, int width, int height);
// The non-empty parts joined with ", " (ImageInfo::conversion).
std::string join(const std::vector<std::string>& parts);

// What one decoded row holds: gray, gray+alpha, RGB or RGBA at 8 or 16 bits per sample.
struct SampleLayout {
    int channels = 3;            // 1 gray, 2 gray+alpha, 3 RGB, 4 RGBA
    int bits = 8;                // 8 or 16
    bool big_endian = true;      // 16-bit samples: big-endian (PNG) or native order (libtiff)
    bool premultiplied = false;  // alpha is associated (color already multiplied by alpha)
    bool min_is_white = false;   // gray only: 0 is white
    bool has_alpha() const { return channels == 2 || channels == 4; }
};

// One row of `width` pixels in `layout` to packed RGB8, alpha composited onto white. Plain
// function: no destructors, may run under a libpng/libjpeg guard.
void convert_row(const std::uint8_t* src, std::uint8_t* dst, int width, const SampleLayout& layout);

// Resolution units: files give pixels per inch or per centimetre, ImageInfo pixels per metre.
constexpr double kMetresPerInch = 0.0254;
constexpr double kCentimetresPerMetre = 100.0;

// The first bytes of a file: its signature (and, for PNG, the IHDR chunk).
struct Header {
    static constexpr std::size_t kSize = 32;
    std::uint8_t bytes[kSize] = {};
    std::size_t size = 0;
};

// ---- the codecs ---------------------------------------------------------------------------------
// Readers take the open file (its signature already read into `header`), decode into the span
// `sink` gives (sink_span) and return it, and fill `info`'s conversion and resolution; writers write `temp`, the AtomicOutput's temporary file of `path`.

RgbSpan read_png(const std::string& path, Fd& fd, const Header& header, ImageInfo* info, const ReadOptions& options,
                 const PixelSink& sink);
void write_png(const std::string& path, const std::string& temp, RgbView image, const WriteOptions& options);

RgbSpan read_jpeg(const std::string& path, Fd& fd, ImageInfo* info, const ReadOptions& options,
                 const PixelSink& sink);
void write_jpeg(const std::string& path, const std::string& temp, RgbView image, const WriteOptions& options);

RgbSpan read_tiff(const std::string& path, Fd& fd, ImageInfo* info, const ReadOptions& options,
                 const PixelSink& sink);
void write_tiff(const std::string& path, const std::string& temp, RgbView image, const WriteOptions& options);

}  // namespace vn::codec
