// Tile images: PNG (libpng), JPEG (libjpeg-turbo) and TIFF (libtiff) to and from 8-bit RGB.
//
// libpng and libjpeg report errors by longjmp. Every call into them that can fail runs inside
// a "guard": a function that does nothing but setjmp and then call a body function. Bodies and
// the error callbacks hold only trivially destructible locals, so a longjmp skips no
// destructor, and no local of the setjmp frame changes after setjmp (-Wclobbered). All state
// lives in a context struct passed by pointer; C++ objects (the pixels, row buffers) are owned
// by the calling function, outside the jump. The message is copied into the context and turned
// into an Error once the guard has returned false.
//
// libtiff reports through handlers: a per-handle handler (TIFFOpenOptions) fills the context,
// and quiet process-wide handlers, installed once, keep the text of errors libtiff raises
// without a handle in a thread_local string. Nothing else here is global; readers and writers
// may run in several threads at once.
#include "io/image_io.hpp"
#include "io/jpeg_error.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cerrno>
#include <climits>
#include <csetjmp>
#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <memory>
#include <mutex>
#include <string>
#include <system_error>
#include <vector>

// clang-format off
#include <png.h>
#include <jpeglib.h>
#include <jerror.h>
#include <tiffio.h>
// clang-format on

#include "core/atomic_file.hpp"
#include "core/error.hpp"

namespace vn {
namespace {

// ---- errors and files -----------------------------------------------------------------------

// An error is one line: codec messages may span lines (libtiff: "JPEGPreDecode: Improper JPEG
// sampling factors 2,2\nApparently should be 1,1.") or carry control characters.
std::string one_line(std::string s) {
    for (char& c : s)
        if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) c = ' ';
    return s;
}

[[noreturn]] void input_error(const std::string& path, const std::string& what) {
    fail(ErrorKind::Input, path + ": " + one_line(what));
}

[[noreturn]] void output_error(const std::string& path, const std::string& what) {
    fail(ErrorKind::Output, path + ": " + one_line(what));
}

std::string errno_text(int e) {
    std::string s = std::error_code(e, std::generic_category()).message();
    if (!s.empty() && s[0] >= 'A' && s[0] <= 'Z' && (s.size() < 2 || !(s[1] >= 'A' && s[1] <= 'Z')))
        s[0] = static_cast<char>(s[0] - 'A' + 'a');
    return s;
}

// Why an input could not be opened, in a few words.
std::string input_reason(int e) {
    switch (e) {
        case ENOENT: return "no such file";
        case ENOTDIR: return "no such file (a parent is not a directory)";
        case EACCES:
        case EPERM: return "permission denied";
        case EISDIR: return "is a directory";
        default: return errno_text(e);
    }
}

// Why an output could not be created or written.
std::string output_reason(int e) {
    switch (e) {
        case ENOENT: return "no such directory";
        case ENOTDIR: return "a parent is not a directory";
        case EACCES:
        case EPERM: return "permission denied";
        case ENOSPC: return "no space left on device";
        case EFBIG: return "file too large";
        default: return errno_text(e);
    }
}

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

// Opens a regular file for reading; any failure is Error(Input) naming the path.
int open_input(const std::string& path) {
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) input_error(path, input_reason(errno));
    if (S_ISDIR(st.st_mode)) input_error(path, "is a directory");
    if (!S_ISREG(st.st_mode)) input_error(path, "not a regular file");
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) input_error(path, input_reason(errno));
    return fd;
}

// Creates the temporary file of an AtomicOutput; any failure is Error(Output) naming `path`.
int create_output(const std::string& temp, const std::string& path) {
    const int fd = ::open(temp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0) output_error(path, "cannot create (" + output_reason(errno) + ")");
    return fd;
}

std::FILE* fdopen_or_fail(Fd& fd, const char* mode, const std::string& path, ErrorKind kind) {
    std::FILE* f = ::fdopen(fd.get(), mode);
    if (!f) fail(kind, path + ": cannot open (" + errno_text(errno) + ")");
    fd.release();
    return f;
}

// ---- limits -----------------------------------------------------------------------------------

// Refuses empty and oversized images before any pixel memory is allocated.
void check_dimensions(const std::string& path, long long width, long long height, const ReadOptions& options) {
    if (width <= 0 || height <= 0)
        input_error(path, "image has no pixels (" + std::to_string(width) + "x" + std::to_string(height) + ")");
    const auto pixels = static_cast<unsigned long long>(width) * static_cast<unsigned long long>(height);
    if (pixels > options.max_pixels)
        input_error(path, "image is " + std::to_string(width) + "x" + std::to_string(height) + " = " +
                              std::to_string(pixels) + " pixels, more than the limit of " +
                              std::to_string(options.max_pixels) + " (see --max-pixels)");
    if (width > INT_MAX || height > INT_MAX)
        input_error(path, "image is " + std::to_string(width) + "x" + std::to_string(height) +
                              ", too large a side for this program");
}

std::string join(const std::vector<std::string>& parts) {
    std::string s;
    for (const auto& p : parts) {
        if (p.empty()) continue;
        if (!s.empty()) s += ", ";
        s += p;
    }
    return s;
}

// ---- sample conversion ------------------------------------------------------------------------

// What one decoded row holds: gray, gray+alpha, RGB or RGBA at 8 or 16 bits per sample.
struct SampleLayout {
    int channels = 3;            // 1 gray, 2 gray+alpha, 3 RGB, 4 RGBA
    int bits = 8;                // 8 or 16
    bool big_endian = true;      // 16-bit samples: big-endian (PNG) or native order (libtiff)
    bool premultiplied = false;  // alpha is associated (colour already multiplied by alpha)
    bool min_is_white = false;   // gray only: 0 is white
    bool has_alpha() const { return channels == 2 || channels == 4; }
};

inline std::uint32_t load_sample(const std::uint8_t* p, bool sixteen, bool big_endian) {
    if (!sixteen) return *p;
    if (big_endian) return static_cast<std::uint32_t>(p[0]) << 8 | p[1];
    std::uint16_t v;
    std::memcpy(&v, p, 2);
    return v;
}

// Round(v * 255 / 65535).
inline std::uint8_t reduce16(std::uint32_t v) { return static_cast<std::uint8_t>((v * 255u + 32767u) / 65535u); }

// Round((c * a + max * (max - a)) / max): colour c with alpha a over white, then to 8 bits.
inline std::uint8_t over_white8(std::uint32_t c, std::uint32_t a) {
    return static_cast<std::uint8_t>((c * a + 255u * (255u - a) + 127u) / 255u);
}

inline std::uint8_t over_white16(std::uint32_t c, std::uint32_t a) {
    constexpr std::uint64_t kMax = 65535;
    constexpr std::uint64_t kDen = kMax * kMax;
    const std::uint64_t num = (static_cast<std::uint64_t>(c) * a + kMax * (kMax - a)) * 255u;
    return static_cast<std::uint8_t>((num + kDen / 2) / kDen);
}

// One row of `width` pixels in `layout` to packed RGB8. Plain function: no destructors, may
// run under a libpng/libjpeg guard.
void convert_row(const std::uint8_t* src, std::uint8_t* dst, int width, const SampleLayout& layout) {
    const bool sixteen = layout.bits == 16;
    const std::size_t bytes = sixteen ? 2 : 1;
    const std::size_t step = bytes * static_cast<std::size_t>(layout.channels);
    const int colors = layout.channels >= 3 ? 3 : 1;
    const bool alpha = layout.has_alpha();
    const std::uint32_t max = sixteen ? 65535u : 255u;
    for (int x = 0; x < width; ++x, src += step, dst += 3) {
        std::uint32_t c[3];
        for (int i = 0; i < colors; ++i) {
            c[i] = load_sample(src + static_cast<std::size_t>(i) * bytes, sixteen, layout.big_endian);
            if (layout.min_is_white) c[i] = max - c[i];
        }
        if (colors == 1) c[1] = c[2] = c[0];
        if (!alpha) {
            for (int i = 0; i < 3; ++i) dst[i] = sixteen ? reduce16(c[i]) : static_cast<std::uint8_t>(c[i]);
            continue;
        }
        const std::uint32_t a =
            load_sample(src + static_cast<std::size_t>(colors) * bytes, sixteen, layout.big_endian);
        for (int i = 0; i < 3; ++i) {
            if (layout.premultiplied) {
                const std::uint32_t v = std::min(max, c[i] + (max - a));
                dst[i] = sixteen ? reduce16(v) : static_cast<std::uint8_t>(v);
            } else {
                dst[i] = sixteen ? over_white16(c[i], a) : over_white8(c[i], a);
            }
        }
    }
}

// ---- signatures -------------------------------------------------------------------------------

struct Header {
    std::uint8_t bytes[32] = {};
    std::size_t size = 0;
};

Header read_header(int fd, const std::string& path) {
    Header h;
    while (h.size < sizeof h.bytes) {
        const ssize_t n = ::pread(fd, h.bytes + h.size, sizeof h.bytes - h.size, static_cast<off_t>(h.size));
        if (n < 0) {
            if (errno == EINTR) continue;
            input_error(path, "cannot read (" + input_reason(errno) + ")");
        }
        if (n == 0) break;
        h.size += static_cast<std::size_t>(n);
    }
    return h;
}

constexpr std::uint8_t kPngMagic[8] = {0x89, 'P', 'N', 'G', 0x0d, 0x0a, 0x1a, 0x0a};

bool starts_with(const Header& h, const void* magic, std::size_t n) {
    return h.size >= n && std::memcmp(h.bytes, magic, n) == 0;
}

bool is_png(const Header& h) { return starts_with(h, kPngMagic, 8); }
bool is_jpeg(const Header& h) { return starts_with(h, "\xff\xd8\xff", 3); }
bool is_tiff(const Header& h) {
    return starts_with(h, "II*\0", 4) || starts_with(h, "MM\0*", 4) ||  // classic TIFF
           starts_with(h, "II+\0", 4) || starts_with(h, "MM\0+", 4);    // BigTIFF
}

std::uint32_t be32(const std::uint8_t* p) {
    return static_cast<std::uint32_t>(p[0]) << 24 | static_cast<std::uint32_t>(p[1]) << 16 |
           static_cast<std::uint32_t>(p[2]) << 8 | p[3];
}

// ================================== PNG ======================================================

struct PngError {
    std::jmp_buf jmp;
    char message[256];
    int saved_errno;
};

void png_on_error(png_structp png, png_const_charp msg) {
    auto* err = static_cast<PngError*>(png_get_error_ptr(png));
    std::snprintf(err->message, sizeof err->message, "%s", msg ? msg : "unknown libpng error");
    std::longjmp(err->jmp, 1);
}

void png_on_warning(png_structp, png_const_charp) {}  // warnings are not worth stderr noise

struct PngReader {
    PngError err{};
    std::FILE* fp = nullptr;
    png_structp png = nullptr;
    png_infop info = nullptr;
    png_uint_32 user_limit = 0x7fffffff;
    // Header, before transforms.
    png_uint_32 width = 0, height = 0;
    int bit_depth = 0, color_type = 0, interlace = 0;
    bool has_trns = false;
    // After transforms.
    SampleLayout layout;
    std::size_t rowbytes = 0;
    // Decoding.
    png_bytepp rows = nullptr;          // one pointer per row, or null for row-by-row
    std::uint8_t* row_buffer = nullptr;  // one transformed row (row-by-row conversion)
    RgbSpan out;
};

void png_read_fn(png_structp png, png_bytep data, std::size_t length) {
    auto* r = static_cast<PngReader*>(png_get_io_ptr(png));
    const std::size_t n = std::fread(data, 1, length, r->fp);
    if (n == length) return;
    if (std::ferror(r->fp)) {
        r->err.saved_errno = errno;
        png_error(png, "read error");
    }
    png_error(png, "unexpected end of file (truncated?)");
}

void png_header_body(PngReader* r) {
    r->png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &r->err, png_on_error, png_on_warning);
    if (!r->png) {
        std::snprintf(r->err.message, sizeof r->err.message, "cannot initialise libpng");
        std::longjmp(r->err.jmp, 1);
    }
    r->info = png_create_info_struct(r->png);
    if (!r->info) png_error(r->png, "out of memory");
    png_set_user_limits(r->png, r->user_limit, r->user_limit);
    png_set_chunk_cache_max(r->png, 1000);              // ancillary chunks kept
    png_set_chunk_malloc_max(r->png, 16u * 1024 * 1024);  // largest ancillary chunk read
    // Skip every ancillary chunk but tRNS unread: none changes the decoded samples, and libpng
    // reports an oversized one only as a benign error (a warning), then allocates and zeroes a
    // buffer of the claimed size: a 1 KB file with a tEXt chunk claiming 2 GB took 2 GB.
    png_set_keep_unknown_chunks(r->png, PNG_HANDLE_CHUNK_NEVER, nullptr, -1);
    // ... except pHYs (9 bytes, checked by libpng): the resolution an output keeps.
    static const png_byte kPhys[5] = {'p', 'H', 'Y', 's', '\0'};
    png_set_keep_unknown_chunks(r->png, PNG_HANDLE_CHUNK_AS_DEFAULT, kPhys, 1);
    png_set_read_fn(r->png, r, png_read_fn);
    png_read_info(r->png, r->info);
    png_get_IHDR(r->png, r->info, &r->width, &r->height, &r->bit_depth, &r->color_type, &r->interlace, nullptr,
                 nullptr);
    r->has_trns = png_get_valid(r->png, r->info, PNG_INFO_tRNS) != 0;
}

void png_transform_body(PngReader* r) {
    if (r->color_type == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(r->png);
    if (r->color_type == PNG_COLOR_TYPE_GRAY && r->bit_depth < 8) png_set_expand_gray_1_2_4_to_8(r->png);
    if (r->has_trns) png_set_tRNS_to_alpha(r->png);
    (void)png_set_interlace_handling(r->png);
    png_read_update_info(r->png, r->info);
    r->layout.channels = png_get_channels(r->png, r->info);
    r->layout.bits = png_get_bit_depth(r->png, r->info);
    r->layout.big_endian = true;
    r->rowbytes = png_get_rowbytes(r->png, r->info);
    const bool ok_layout = r->layout.channels >= 1 && r->layout.channels <= 4 &&
                           (r->layout.bits == 8 || r->layout.bits == 16) &&
                           r->rowbytes == static_cast<std::size_t>(r->width) * static_cast<std::size_t>(r->layout.channels) *
                                              static_cast<std::size_t>(r->layout.bits / 8);
    if (!ok_layout) png_error(r->png, "unexpected pixel layout after expansion");
}

void png_decode_body(PngReader* r) {
    if (r->rows) {
        png_read_image(r->png, r->rows);
    } else {
        for (png_uint_32 y = 0; y < r->height; ++y) {
            png_read_row(r->png, r->row_buffer, nullptr);
            convert_row(r->row_buffer, r->out.row(static_cast<int>(y)), r->out.width, r->layout);
        }
    }
    png_read_end(r->png, nullptr);
}

// The only setjmp for libpng reading. Nothing here changes after setjmp.
bool png_guard(PngReader* r, void (*body)(PngReader*)) {
    if (setjmp(r->err.jmp)) return false;
    body(r);
    return true;
}

struct PngReadCleanup {
    PngReader* r;
    ~PngReadCleanup() {
        if (r->png) png_destroy_read_struct(&r->png, r->info ? &r->info : nullptr, nullptr);
    }
};

[[noreturn]] void png_read_failed(const std::string& path, const PngError& err) {
    std::string msg = std::string("cannot decode PNG: ") + err.message;
    if (err.saved_errno != 0) msg += " (" + errno_text(err.saved_errno) + ")";
    input_error(path, msg);
}

std::string png_conversion(const PngReader& r) {
    std::vector<std::string> parts;
    switch (r.color_type) {
        case PNG_COLOR_TYPE_PALETTE:
            parts.push_back("palette expanded");
            if (r.has_trns) parts.push_back("palette transparency composited onto white");
            break;
        case PNG_COLOR_TYPE_GRAY:
            parts.push_back("grayscale expanded to RGB");
            if (r.has_trns) parts.push_back("transparent gray level composited onto white");
            break;
        case PNG_COLOR_TYPE_GRAY_ALPHA: parts.push_back("grayscale+alpha composited onto white, expanded to RGB"); break;
        case PNG_COLOR_TYPE_RGB:
            if (r.has_trns) parts.push_back("transparent colour composited onto white");
            break;
        case PNG_COLOR_TYPE_RGB_ALPHA: parts.push_back("RGBA composited onto white"); break;
        default: break;
    }
    if (r.bit_depth == 16) parts.push_back("16-bit reduced to 8-bit");
    if (r.bit_depth < 8 && r.color_type == PNG_COLOR_TYPE_GRAY)
        parts.push_back(std::to_string(r.bit_depth) + "-bit expanded to 8-bit");
    return join(parts);
}

// Deflate expands at most 1032:1 (a 258-byte match coded in 2 bits), so the filtered pixel
// rows of a PNG need at least 1/1032 of their size in the file. Checked before any allocation:
// a 69-byte PNG claiming 20000x20000 16-bit RGBA made the reader allocate and zero 4.3 GB
// (the image and the interlace buffer) before libpng found that there was no data.
void check_png_data_size(const std::string& path, int fd, std::uint32_t width, std::uint32_t height, int bit_depth,
                         int color_type) {
    const int channels = color_type == 2 ? 3 : color_type == 4 ? 2 : color_type == 6 ? 4 : 1;
    const auto row_bits = static_cast<unsigned long long>(width) * static_cast<unsigned>(bit_depth) *
                          static_cast<unsigned>(channels);
    const long double filtered = static_cast<long double>((row_bits + 7) / 8 + 1) * static_cast<long double>(height);
    struct stat st {};
    if (::fstat(fd, &st) != 0) return;  // libpng will tell
    if (static_cast<long double>(st.st_size) * 1032.0L < filtered)
        input_error(path, "cannot decode PNG: " + std::to_string(st.st_size) + " bytes cannot hold a " +
                              std::to_string(width) + "x" + std::to_string(height) + " image (truncated?)");
}

RgbImage read_png(const std::string& path, Fd& fd, const Header& header, ImageInfo* info, const ReadOptions& options) {
    // The IHDR is the first chunk: refuse absurd sizes before libpng even starts.
    if (header.size >= 26 && std::memcmp(header.bytes + 12, "IHDR", 4) == 0) {
        check_dimensions(path, be32(header.bytes + 16), be32(header.bytes + 20), options);
        check_png_data_size(path, fd.get(), be32(header.bytes + 16), be32(header.bytes + 20), header.bytes[24],
                            header.bytes[25]);
    }

    StdioFile file(fdopen_or_fail(fd, "rb", path, ErrorKind::Input));
    PngReader r;
    r.fp = file.get();
    r.user_limit = static_cast<png_uint_32>(std::min<std::uint64_t>(options.max_pixels, 0x7fffffffu));
    if (r.user_limit == 0) r.user_limit = 1;
    PngReadCleanup cleanup{&r};

    if (!png_guard(&r, png_header_body)) png_read_failed(path, r.err);
    check_dimensions(path, r.width, r.height, options);
    if (!png_guard(&r, png_transform_body)) png_read_failed(path, r.err);

    RgbImage image(static_cast<int>(r.width), static_cast<int>(r.height));
    r.out = image.span();
    std::vector<png_bytep> rows;
    std::vector<std::uint8_t> scratch;
    const bool direct = r.layout.channels == 3 && r.layout.bits == 8;
    if (direct) {
        rows.resize(r.height);
        for (png_uint_32 y = 0; y < r.height; ++y) rows[y] = image.span().row(static_cast<int>(y));
        r.rows = rows.data();
    } else if (r.interlace != PNG_INTERLACE_NONE) {
        // Interlaced passes fill the whole image: keep it in the decoded layout, convert after.
        scratch.resize(r.rowbytes * r.height);
        rows.resize(r.height);
        for (png_uint_32 y = 0; y < r.height; ++y) rows[y] = scratch.data() + r.rowbytes * y;
        r.rows = rows.data();
    } else {
        scratch.resize(r.rowbytes);
        r.row_buffer = scratch.data();
    }
    if (!png_guard(&r, png_decode_body)) png_read_failed(path, r.err);
    if (!direct && r.rows) {
        for (png_uint_32 y = 0; y < r.height; ++y)
            convert_row(rows[y], image.span().row(static_cast<int>(y)), image.width, r.layout);
    }
    if (info) {
        info->conversion = png_conversion(r);
        png_uint_32 px = 0, py = 0;
        int unit = 0;
        if (png_get_pHYs(r.png, r.info, &px, &py, &unit) && unit == PNG_RESOLUTION_METER && px > 0 && py > 0) {
            info->pixels_per_metre_x = px;
            info->pixels_per_metre_y = py;
        }
    }
    return image;
}

struct PngWriter {
    PngError err{};
    std::FILE* fp = nullptr;
    png_structp png = nullptr;
    png_infop info = nullptr;
    RgbView in;
    double ppm_x = 0, ppm_y = 0;
};

// A resolution in whole pixels per metre for PNG pHYs, or 0.
png_uint_32 ppm_u32(double v) { return v >= 1 && v < 4e9 ? static_cast<png_uint_32>(std::lround(v)) : 0; }

void png_write_fn(png_structp png, png_bytep data, std::size_t length) {
    auto* w = static_cast<PngWriter*>(png_get_io_ptr(png));
    if (std::fwrite(data, 1, length, w->fp) != length) {
        w->err.saved_errno = errno;
        png_error(png, "write failed");
    }
}

void png_flush_fn(png_structp png) {
    auto* w = static_cast<PngWriter*>(png_get_io_ptr(png));
    if (std::fflush(w->fp) != 0) {
        w->err.saved_errno = errno;
        png_error(png, "write failed");
    }
}

void png_write_body(PngWriter* w) {
    w->png = png_create_write_struct(PNG_LIBPNG_VER_STRING, &w->err, png_on_error, png_on_warning);
    if (!w->png) {
        std::snprintf(w->err.message, sizeof w->err.message, "cannot initialise libpng");
        std::longjmp(w->err.jmp, 1);
    }
    w->info = png_create_info_struct(w->png);
    if (!w->info) png_error(w->png, "out of memory");
    png_set_write_fn(w->png, w, png_write_fn, png_flush_fn);
    png_set_compression_level(w->png, 3);
    png_set_filter(w->png, PNG_FILTER_TYPE_BASE, PNG_FILTER_SUB | PNG_FILTER_UP);
    png_set_IHDR(w->png, w->info, static_cast<png_uint_32>(w->in.width), static_cast<png_uint_32>(w->in.height), 8,
                 PNG_COLOR_TYPE_RGB, PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    if (ppm_u32(w->ppm_x) > 0 && ppm_u32(w->ppm_y) > 0)
        png_set_pHYs(w->png, w->info, ppm_u32(w->ppm_x), ppm_u32(w->ppm_y), PNG_RESOLUTION_METER);
    png_write_info(w->png, w->info);
    for (int y = 0; y < w->in.height; ++y) png_write_row(w->png, w->in.row(y));
    png_write_end(w->png, nullptr);
}

bool png_write_guard(PngWriter* w) {
    if (setjmp(w->err.jmp)) return false;
    png_write_body(w);
    return true;
}

struct PngWriteCleanup {
    PngWriter* w;
    ~PngWriteCleanup() {
        if (w->png) png_destroy_write_struct(&w->png, w->info ? &w->info : nullptr);
    }
};

void write_png(const std::string& path, const std::string& temp, RgbView image, const WriteOptions& options) {
    Fd fd(create_output(temp, path));
    StdioFile file(fdopen_or_fail(fd, "wb", path, ErrorKind::Output));
    {
        PngWriter w;
        w.fp = file.get();
        w.in = image;
        w.ppm_x = options.pixels_per_metre_x;
        w.ppm_y = options.pixels_per_metre_y;
        PngWriteCleanup cleanup{&w};
        if (!png_write_guard(&w)) {
            std::string msg = std::string("cannot write PNG: ") + w.err.message;
            if (w.err.saved_errno != 0) msg += " (" + output_reason(w.err.saved_errno) + ")";
            output_error(path, msg);
        }
    }
    if (const int e = file.close()) output_error(path, "cannot write PNG (" + output_reason(e) + ")");
}

// ================================== JPEG =====================================================

// Progressive JPEGs with absurd scan counts can take forever to decode (libjpeg-turbo's
// advice): refuse them.
constexpr int kMaxJpegScans = 500;

void jpeg_on_progress(j_common_ptr cinfo) {
    if (!cinfo->is_decompressor) return;
    const auto* d = reinterpret_cast<j_decompress_ptr>(cinfo);
    if (d->input_scan_number > kMaxJpegScans) jpeg_fail_with(cinfo, "too many progressive scans");
}

struct JpegReader {
    JpegError err{};
    jpeg_progress_mgr progress{};
    jpeg_decompress_struct cinfo{};
    bool created = false;
    std::FILE* fp = nullptr;
    // Header.
    J_COLOR_SPACE color_space = JCS_UNKNOWN;
    bool adobe = false;
    long memory_limit = 0;
    // Decoding.
    RgbSpan out;
    std::uint8_t* row_buffer = nullptr;  // CMYK rows (4 bytes per pixel); null: decode into out
};

void jpeg_header_body(JpegReader* r) {
    r->cinfo.err = &r->err.pub;
    jpeg_create_decompress(&r->cinfo);
    r->created = true;
    r->progress.progress_monitor = jpeg_on_progress;
    r->cinfo.progress = &r->progress;
    jpeg_stdio_src(&r->cinfo, r->fp);
    (void)jpeg_read_header(&r->cinfo, TRUE);
    r->color_space = r->cinfo.jpeg_color_space;
    r->adobe = r->cinfo.saw_Adobe_marker != 0;
    switch (r->color_space) {
        case JCS_GRAYSCALE:
        case JCS_YCbCr:
        case JCS_RGB: r->cinfo.out_color_space = JCS_RGB; break;
        case JCS_CMYK:
        case JCS_YCCK: r->cinfo.out_color_space = JCS_CMYK; break;
        default:
            jpeg_fail_with(reinterpret_cast<j_common_ptr>(&r->cinfo),
                           "unsupported JPEG colour space (not gray, RGB, YCbCr, CMYK or YCCK)");
    }
    r->cinfo.dct_method = JDCT_ISLOW;
}

void jpeg_decode_body(JpegReader* r) {
    r->cinfo.mem->max_memory_to_use = r->memory_limit;
    (void)jpeg_start_decompress(&r->cinfo);
    const int want_components = r->row_buffer ? 4 : 3;
    if (static_cast<int>(r->cinfo.output_width) != r->out.width ||
        static_cast<int>(r->cinfo.output_height) != r->out.height || r->cinfo.output_components != want_components)
        jpeg_fail_with(reinterpret_cast<j_common_ptr>(&r->cinfo), "unexpected output layout");
    while (r->cinfo.output_scanline < r->cinfo.output_height) {
        const int y = static_cast<int>(r->cinfo.output_scanline);
        JSAMPROW row = r->row_buffer ? r->row_buffer : r->out.row(y);
        if (jpeg_read_scanlines(&r->cinfo, &row, 1) != 1)
            jpeg_fail_with(reinterpret_cast<j_common_ptr>(&r->cinfo), "decoder stalled");
        if (!r->row_buffer) continue;
        std::uint8_t* dst = r->out.row(y);
        const std::uint8_t* src = r->row_buffer;
        for (int x = 0; x < r->out.width; ++x, src += 4, dst += 3) {
            // Adobe writes CMYK inverted (255 = no ink); libjpeg passes the stored values on.
            const std::uint32_t k = r->adobe ? src[3] : 255u - src[3];
            for (int i = 0; i < 3; ++i) {
                const std::uint32_t c = r->adobe ? src[i] : 255u - src[i];
                dst[i] = static_cast<std::uint8_t>((c * k + 127u) / 255u);
            }
        }
    }
    (void)jpeg_finish_decompress(&r->cinfo);
}

bool jpeg_guard(JpegReader* r, void (*body)(JpegReader*)) {
    if (setjmp(r->err.jmp)) return false;
    body(r);
    return true;
}

struct JpegReadCleanup {
    JpegReader* r;
    ~JpegReadCleanup() {
        if (r->created) jpeg_destroy_decompress(&r->cinfo);
    }
};

RgbImage read_jpeg(const std::string& path, Fd& fd, ImageInfo* info, const ReadOptions& options) {
    StdioFile file(fdopen_or_fail(fd, "rb", path, ErrorKind::Input));
    auto r = std::make_unique<JpegReader>();  // large: keep it off the stack
    r->fp = file.get();
    jpeg_init_error(&r->err);
    JpegReadCleanup cleanup{r.get()};
    if (!jpeg_guard(r.get(), jpeg_header_body))
        input_error(path, std::string("cannot decode JPEG: ") + r->err.message);

    const long long width = r->cinfo.image_width;
    const long long height = r->cinfo.image_height;
    check_dimensions(path, width, height, options);
    // Enough for a progressive image's coefficients (2 bytes per sample) plus working memory.
    const long double want = static_cast<long double>(width) * static_cast<long double>(height) *
                                 static_cast<long double>(std::max(r->cinfo.num_components, 3)) * 2.0L +
                             256.0L * 1024 * 1024;
    r->memory_limit = want >= static_cast<long double>(LONG_MAX) ? LONG_MAX : static_cast<long>(want);

    RgbImage image(static_cast<int>(width), static_cast<int>(height));
    r->out = image.span();
    std::vector<std::uint8_t> cmyk;
    if (r->cinfo.out_color_space == JCS_CMYK) {
        cmyk.resize(static_cast<std::size_t>(width) * 4u);
        r->row_buffer = cmyk.data();
    }
    if (!jpeg_guard(r.get(), jpeg_decode_body))
        input_error(path, std::string("cannot decode JPEG: ") + r->err.message);
    if (info && r->cinfo.saw_JFIF_marker && r->cinfo.X_density > 0 && r->cinfo.Y_density > 0 &&
        (r->cinfo.density_unit == 1 || r->cinfo.density_unit == 2)) {
        const double per_metre = r->cinfo.density_unit == 1 ? 1.0 / 0.0254 : 100.0;  // dots per inch, per cm
        info->pixels_per_metre_x = r->cinfo.X_density * per_metre;
        info->pixels_per_metre_y = r->cinfo.Y_density * per_metre;
    }
    if (info) {
        switch (r->color_space) {
            case JCS_GRAYSCALE: info->conversion = "grayscale expanded to RGB"; break;
            case JCS_CMYK: info->conversion = "CMYK converted to RGB"; break;
            case JCS_YCCK: info->conversion = "YCCK converted to RGB"; break;
            default: info->conversion.clear(); break;
        }
    }
    return image;
}

struct JpegWriter {
    JpegError err{};
    jpeg_compress_struct cinfo{};
    bool created = false;
    std::FILE* fp = nullptr;
    RgbView in;
    int quality = 90;
    double ppm_x = 0, ppm_y = 0;
};

void jpeg_write_body(JpegWriter* w) {
    w->cinfo.err = &w->err.pub;
    jpeg_create_compress(&w->cinfo);
    w->created = true;
    jpeg_stdio_dest(&w->cinfo, w->fp);
    w->cinfo.image_width = static_cast<JDIMENSION>(w->in.width);
    w->cinfo.image_height = static_cast<JDIMENSION>(w->in.height);
    w->cinfo.input_components = 3;
    w->cinfo.in_color_space = JCS_RGB;
    jpeg_set_defaults(&w->cinfo);
    jpeg_set_quality(&w->cinfo, w->quality, TRUE);
    // 4:2:0
    w->cinfo.comp_info[0].h_samp_factor = 2;
    w->cinfo.comp_info[0].v_samp_factor = 2;
    for (int c = 1; c < 3; ++c) {
        w->cinfo.comp_info[c].h_samp_factor = 1;
        w->cinfo.comp_info[c].v_samp_factor = 1;
    }
    w->cinfo.optimize_coding = FALSE;
    w->cinfo.dct_method = JDCT_ISLOW;
    if (w->ppm_x > 0 && w->ppm_y > 0) {
        // JFIF density: dots per inch when that is a whole number (the usual case), else per cm.
        const double dx = w->ppm_x * 0.0254, dy = w->ppm_y * 0.0254;
        const bool dpi = std::fabs(dx - std::round(dx)) < 0.01 && std::fabs(dy - std::round(dy)) < 0.01;
        const double sx = dpi ? dx : w->ppm_x / 100.0, sy = dpi ? dy : w->ppm_y / 100.0;
        if (sx >= 0.5 && sx < 65535.5 && sy >= 0.5 && sy < 65535.5) {
            w->cinfo.write_JFIF_header = TRUE;
            w->cinfo.density_unit = dpi ? 1 : 2;
            w->cinfo.X_density = static_cast<UINT16>(std::lround(sx));
            w->cinfo.Y_density = static_cast<UINT16>(std::lround(sy));
        }
    }
    jpeg_start_compress(&w->cinfo, TRUE);
    while (w->cinfo.next_scanline < w->cinfo.image_height) {
        // libjpeg's API is not const-correct; it only reads the rows.
        JSAMPROW row = const_cast<JSAMPROW>(w->in.row(static_cast<int>(w->cinfo.next_scanline)));
        (void)jpeg_write_scanlines(&w->cinfo, &row, 1);
    }
    jpeg_finish_compress(&w->cinfo);
}

bool jpeg_write_guard(JpegWriter* w) {
    if (setjmp(w->err.jmp)) return false;
    jpeg_write_body(w);
    return true;
}

struct JpegWriteCleanup {
    JpegWriter* w;
    ~JpegWriteCleanup() {
        if (w->created) jpeg_destroy_compress(&w->cinfo);
    }
};

void write_jpeg(const std::string& path, const std::string& temp, RgbView image, const WriteOptions& options) {
    const int quality = options.jpeg_quality;
    if (image.width > JPEG_MAX_DIMENSION || image.height > JPEG_MAX_DIMENSION)
        output_error(path, "JPEG cannot hold " + std::to_string(image.width) + "x" + std::to_string(image.height) +
                               " pixels (at most " + std::to_string(JPEG_MAX_DIMENSION) + " per side)");
    Fd fd(create_output(temp, path));
    StdioFile file(fdopen_or_fail(fd, "wb", path, ErrorKind::Output));
    {
        auto w = std::make_unique<JpegWriter>();
        jpeg_init_error(&w->err);
        w->fp = file.get();
        w->in = image;
        w->quality = quality;
        w->ppm_x = options.pixels_per_metre_x;
        w->ppm_y = options.pixels_per_metre_y;
        JpegWriteCleanup cleanup{w.get()};
        if (!jpeg_write_guard(w.get())) {
            std::string msg = std::string("cannot write JPEG: ") + w->err.message;
            if (w->err.pub.msg_code == JERR_FILE_WRITE && w->err.saved_errno != 0)
                msg += " (" + output_reason(w->err.saved_errno) + ")";
            output_error(path, msg);
        }
    }
    if (const int e = file.close()) output_error(path, "cannot write JPEG (" + output_reason(e) + ")");
}

// ================================== TIFF =====================================================

thread_local std::string t_tiff_message;  // errors libtiff raises without a handle

std::string format_tiff_message(const char* module, const char* fmt, va_list ap) {
    char buffer[512];
    std::vsnprintf(buffer, sizeof buffer, fmt ? fmt : "unknown libtiff error", ap);
    std::string s;
    if (module && *module) {
        s = module;
        s += ": ";
    }
    return s + buffer;
}

void tiff_global_error(const char* module, const char* fmt, va_list ap) {
    if (t_tiff_message.empty()) t_tiff_message = format_tiff_message(module, fmt, ap);
}

void tiff_global_warning(const char*, const char*, va_list) {}

void install_tiff_handlers() {
    static std::once_flag once;
    std::call_once(once, [] {
        TIFFSetErrorHandler(tiff_global_error);
        TIFFSetWarningHandler(tiff_global_warning);
    });
}

// Also when the program starts, not only at the first tile read: libtiff calls made through
// OpenSlide (slides) otherwise print with libtiff's default handler straight to stderr, beside
// the log ("x.tif: Invalid tile byte count for tile 8. Expected 768, got 1024.").
[[maybe_unused]] const bool g_tiff_handlers_at_start = (install_tiff_handlers(), true);

// One open TIFF: the file descriptor, what went wrong, and the per-handle handlers' target.
struct TiffIo {
    int fd = -1;
    int io_errno = 0;
    std::string path;
    std::string message;  // the first error libtiff reported for this handle
};

int tiff_handle_error(TIFF*, void* user_data, const char* module, const char* fmt, va_list ap) {
    auto* io = static_cast<TiffIo*>(user_data);
    if (io->message.empty()) {
        // The module, and often the text, name the file, which the final message names anyway.
        std::string msg = format_tiff_message(module && io->path != module ? module : nullptr, fmt, ap);
        const std::string named = io->path + ": ";
        for (auto at = msg.find(named); at != std::string::npos; at = msg.find(named, at)) msg.erase(at, named.size());
        io->message = msg;
    }
    return 1;  // handled: do not call the global handler
}

int tiff_handle_warning(TIFF*, void*, const char*, const char*, va_list) { return 1; }

tmsize_t tiff_read_proc(thandle_t h, void* buf, tmsize_t size) {
    auto* io = static_cast<TiffIo*>(h);
    auto* p = static_cast<char*>(buf);
    tmsize_t done = 0;
    while (done < size) {
        const ssize_t n = ::read(io->fd, p + done, static_cast<std::size_t>(size - done));
        if (n < 0) {
            if (errno == EINTR) continue;
            io->io_errno = errno;
            return done > 0 ? done : -1;
        }
        if (n == 0) break;
        done += n;
    }
    return done;
}

tmsize_t tiff_write_proc(thandle_t h, void* buf, tmsize_t size) {
    auto* io = static_cast<TiffIo*>(h);
    const auto* p = static_cast<const char*>(buf);
    tmsize_t done = 0;
    while (done < size) {
        const ssize_t n = ::write(io->fd, p + done, static_cast<std::size_t>(size - done));
        if (n < 0) {
            if (errno == EINTR) continue;
            io->io_errno = errno;
            return done > 0 ? done : -1;
        }
        if (n == 0) {
            io->io_errno = ENOSPC;
            return done;
        }
        done += n;
    }
    return done;
}

toff_t tiff_seek_proc(thandle_t h, toff_t off, int whence) {
    auto* io = static_cast<TiffIo*>(h);
    const off_t r = ::lseek(io->fd, static_cast<off_t>(off), whence);
    if (r < 0) {
        io->io_errno = errno;
        return static_cast<toff_t>(-1);
    }
    return static_cast<toff_t>(r);
}

int tiff_close_proc(thandle_t) { return 0; }  // the descriptor belongs to an Fd

toff_t tiff_size_proc(thandle_t h) {
    auto* io = static_cast<TiffIo*>(h);
    struct stat st {};
    if (::fstat(io->fd, &st) != 0) return 0;
    return static_cast<toff_t>(st.st_size);
}

int tiff_map_proc(thandle_t, void**, toff_t*) { return 0; }  // no memory mapping
void tiff_unmap_proc(thandle_t, void*, toff_t) {}

struct TiffOptionsDeleter {
    void operator()(TIFFOpenOptions* o) const { TIFFOpenOptionsFree(o); }
};
struct TiffDeleter {
    void operator()(TIFF* t) const { TIFFClose(t); }
};
using TiffPtr = std::unique_ptr<TIFF, TiffDeleter>;

TiffPtr tiff_open(TiffIo& io, const char* mode, tmsize_t max_alloc) {
    install_tiff_handlers();
    t_tiff_message.clear();
    std::unique_ptr<TIFFOpenOptions, TiffOptionsDeleter> opts(TIFFOpenOptionsAlloc());
    if (!opts) return nullptr;
    TIFFOpenOptionsSetErrorHandlerExtR(opts.get(), tiff_handle_error, &io);
    TIFFOpenOptionsSetWarningHandlerExtR(opts.get(), tiff_handle_warning, &io);
    if (max_alloc > 0) TIFFOpenOptionsSetMaxSingleMemAlloc(opts.get(), max_alloc);
    return TiffPtr(TIFFClientOpenExt(io.path.c_str(), mode, static_cast<thandle_t>(&io), tiff_read_proc,
                                     tiff_write_proc, tiff_seek_proc, tiff_close_proc, tiff_size_proc, tiff_map_proc,
                                     tiff_unmap_proc, opts.get()));
}

std::string tiff_problem(const TiffIo& io, const char* fallback) {
    std::string msg = !io.message.empty() ? io.message : !t_tiff_message.empty() ? t_tiff_message : fallback;
    if (io.io_errno != 0) msg += " (" + errno_text(io.io_errno) + ")";
    return msg;
}

[[noreturn]] void tiff_read_failed(const TiffIo& io, const char* fallback) {
    input_error(io.path, "cannot decode TIFF: " + tiff_problem(io, fallback));
}

struct TiffFields {
    std::uint32_t width = 0, height = 0;
    std::uint16_t bits = 0, samples = 0, photometric = 0, planar = 0, sample_format = 0, orientation = 0,
                  compression = 0;
    std::uint16_t extra_count = 0;
    std::uint16_t extra_type = EXTRASAMPLE_UNSPECIFIED;  // of the first extra sample
    bool has_photometric = false;
    bool tiled = false;
};

TiffFields tiff_fields(TIFF* tif) {
    TiffFields f;
    TIFFGetField(tif, TIFFTAG_IMAGEWIDTH, &f.width);
    TIFFGetField(tif, TIFFTAG_IMAGELENGTH, &f.height);
    TIFFGetFieldDefaulted(tif, TIFFTAG_BITSPERSAMPLE, &f.bits);
    TIFFGetFieldDefaulted(tif, TIFFTAG_SAMPLESPERPIXEL, &f.samples);
    f.has_photometric = TIFFGetField(tif, TIFFTAG_PHOTOMETRIC, &f.photometric) == 1;
    TIFFGetFieldDefaulted(tif, TIFFTAG_PLANARCONFIG, &f.planar);
    TIFFGetFieldDefaulted(tif, TIFFTAG_SAMPLEFORMAT, &f.sample_format);
    TIFFGetFieldDefaulted(tif, TIFFTAG_ORIENTATION, &f.orientation);
    TIFFGetFieldDefaulted(tif, TIFFTAG_COMPRESSION, &f.compression);
    std::uint16_t* types = nullptr;
    if (TIFFGetField(tif, TIFFTAG_EXTRASAMPLES, &f.extra_count, &types) == 1 && f.extra_count > 0 && types)
        f.extra_type = types[0];
    else
        f.extra_count = 0;
    f.tiled = TIFFIsTiled(tif) != 0;
    return f;
}

// Alpha as libtiff's TIFFRGBAImage sees it: associated, unassociated, or an unspecified extra
// sample after RGB, which libtiff takes for associated alpha.
enum class TiffAlpha { None, Associated, Unassociated };

TiffAlpha tiff_alpha(const TiffFields& f, int colors) {
    if (f.extra_count == 0 || f.samples <= colors) return TiffAlpha::None;
    switch (f.extra_type) {
        case EXTRASAMPLE_ASSOCALPHA: return TiffAlpha::Associated;
        case EXTRASAMPLE_UNASSALPHA: return TiffAlpha::Unassociated;
        default: return f.samples > 3 ? TiffAlpha::Associated : TiffAlpha::None;
    }
}

std::string tiff_conversion(const TiffFields& f) {
    std::vector<std::string> parts;
    const std::uint16_t photometric = f.has_photometric ? f.photometric : PHOTOMETRIC_RGB;
    int colors = 3;
    switch (photometric) {
        case PHOTOMETRIC_MINISBLACK:
        case PHOTOMETRIC_MINISWHITE:
            colors = 1;
            parts.push_back("grayscale expanded to RGB");
            break;
        case PHOTOMETRIC_PALETTE:
            colors = 1;
            parts.push_back("palette expanded");
            break;
        case PHOTOMETRIC_SEPARATED:
            colors = 4;
            parts.push_back("CMYK converted to RGB");
            break;
        case PHOTOMETRIC_CIELAB:
        case PHOTOMETRIC_ICCLAB:
        case PHOTOMETRIC_ITULAB: parts.push_back("CIE L*a*b* converted to RGB"); break;
        case PHOTOMETRIC_LOGL:
        case PHOTOMETRIC_LOGLUV: parts.push_back("LogLuv converted to RGB"); break;
        default: break;  // RGB, YCbCr: plain colour
    }
    if (tiff_alpha(f, colors) != TiffAlpha::None)
        parts.push_back(colors == 1 ? "alpha composited onto white" : "RGBA composited onto white");
    if (f.bits == 16) parts.push_back("16-bit reduced to 8-bit");
    else if (f.bits < 8 && photometric != PHOTOMETRIC_PALETTE)
        parts.push_back(std::to_string(f.bits) + "-bit expanded to 8-bit");
    else if (f.bits != 8 && photometric != PHOTOMETRIC_PALETTE)
        parts.push_back(std::to_string(f.bits) + "-bit reduced to 8-bit");
    return join(parts);
}

// Stripped, contiguous, unsigned 8/16-bit gray or RGB with at most one alpha, top-left: decoded
// strip by strip with exact rounding. Everything else goes through TIFFRGBAImage.
bool tiff_direct_ok(const TiffFields& f, SampleLayout* layout) {
    if (f.tiled || f.sample_format != SAMPLEFORMAT_UINT || (f.bits != 8 && f.bits != 16)) return false;
    if (f.orientation != ORIENTATION_TOPLEFT || f.compression == COMPRESSION_OJPEG || !f.has_photometric) return false;
    if (f.planar != PLANARCONFIG_CONTIG && f.samples != 1) return false;
    int colors = 0;
    if (f.photometric == PHOTOMETRIC_MINISBLACK || f.photometric == PHOTOMETRIC_MINISWHITE) colors = 1;
    else if (f.photometric == PHOTOMETRIC_RGB) colors = 3;
    else return false;
    if (f.samples != colors && f.samples != colors + 1) return false;
    if (f.samples == colors + 1 && f.extra_count != 1) return false;
    // Keep the extra sample in the row layout; an unused one is simply skipped.
    const TiffAlpha alpha = tiff_alpha(f, colors);
    if (f.samples == colors + 1 && alpha == TiffAlpha::None) return false;  // unspecified extra: let libtiff decide
    layout->channels = f.samples;
    layout->bits = f.bits;
    layout->big_endian = false;  // libtiff hands out samples in native order
    layout->premultiplied = alpha == TiffAlpha::Associated;
    layout->min_is_white = f.photometric == PHOTOMETRIC_MINISWHITE;
    return true;
}

// libtiff sizes the strip (tile) offset arrays to what the image needs when the file's are
// too short ("tag ignored"), and reads a strip whose byte count is 0 as a success without
// touching the buffer: a 32x32 TIFF whose height was raised to 100000 decoded "successfully"
// into rows repeated from the last real strip. Every strip or tile must have data.
void tiff_check_striles(TIFF* tif, const TiffIo& io) {
    const bool tiled = TIFFIsTiled(tif) != 0;
    const std::uint32_t n = tiled ? TIFFNumberOfTiles(tif) : TIFFNumberOfStrips(tif);
    for (std::uint32_t s = 0; s < n; ++s)
        if (TIFFGetStrileByteCount(tif, s) == 0)
            input_error(io.path, std::string("cannot decode TIFF: ") + (tiled ? "tile " : "strip ") + std::to_string(s) +
                                     " of " + std::to_string(n) + " has no data (truncated or corrupt file)");
}

void tiff_read_direct(TIFF* tif, const TiffIo& io, const SampleLayout& layout, RgbImage& image) {
    const auto width = static_cast<std::size_t>(image.width);
    const std::size_t row_bytes = width * static_cast<std::size_t>(layout.channels) * static_cast<std::size_t>(layout.bits / 8);
    if (TIFFScanlineSize64(tif) != row_bytes) tiff_read_failed(io, "unexpected scanline size");
    std::uint32_t rows_per_strip = 0;
    TIFFGetFieldDefaulted(tif, TIFFTAG_ROWSPERSTRIP, &rows_per_strip);
    const auto height = static_cast<std::uint32_t>(image.height);
    if (rows_per_strip == 0 || rows_per_strip > height) rows_per_strip = height;
    const std::uint32_t strips = (height + rows_per_strip - 1) / rows_per_strip;
    if (TIFFNumberOfStrips(tif) < strips) tiff_read_failed(io, "fewer strips than the image height needs");
    std::vector<std::uint8_t> buffer(row_bytes * rows_per_strip);
    for (std::uint32_t s = 0; s < strips; ++s) {
        const std::uint32_t y0 = s * rows_per_strip;
        const std::uint32_t rows = std::min(rows_per_strip, height - y0);
        const auto want = static_cast<tmsize_t>(row_bytes * rows);
        const tmsize_t got = TIFFReadEncodedStrip(tif, s, buffer.data(), want);
        if (got != want) tiff_read_failed(io, "strip data is short or unreadable (truncated?)");
        for (std::uint32_t r = 0; r < rows; ++r)
            convert_row(buffer.data() + row_bytes * r, image.span().row(static_cast<int>(y0 + r)), image.width, layout);
    }
}

void tiff_read_rgba(TIFF* tif, const TiffIo& io, RgbImage& image) {
    char emsg[1024] = {};
    if (!TIFFRGBAImageOK(tif, emsg)) input_error(io.path, std::string("unsupported TIFF: ") + emsg);
    std::vector<std::uint32_t> raster(image.pixel_count());
    if (!TIFFReadRGBAImageOriented(tif, static_cast<std::uint32_t>(image.width), static_cast<std::uint32_t>(image.height),
                                   raster.data(), ORIENTATION_TOPLEFT, /*stop_on_error=*/1))
        tiff_read_failed(io, "cannot decode the image data");
    // TIFFRGBAImage premultiplies: colour over white is c + (255 - a).
    const std::uint32_t* src = raster.data();
    std::uint8_t* dst = image.pixels.data();
    for (std::size_t i = 0, n = image.pixel_count(); i < n; ++i, dst += 3) {
        const std::uint32_t p = src[i];
        const std::uint32_t back = 255u - TIFFGetA(p);
        dst[0] = static_cast<std::uint8_t>(std::min(255u, TIFFGetR(p) + back));
        dst[1] = static_cast<std::uint8_t>(std::min(255u, TIFFGetG(p) + back));
        dst[2] = static_cast<std::uint8_t>(std::min(255u, TIFFGetB(p) + back));
    }
}

RgbImage read_tiff(const std::string& path, Fd& fd, ImageInfo* info, const ReadOptions& options) {
    TiffIo io;
    io.fd = fd.get();
    io.path = path;
    // No single allocation by libtiff needs more than the largest allowed image at 16-bit RGBA.
    const long double cap = static_cast<long double>(options.max_pixels) * 8.0L + 64.0L * 1024 * 1024;
    const tmsize_t max_alloc = cap >= static_cast<long double>(LLONG_MAX) ? 0 : static_cast<tmsize_t>(cap);
    TiffPtr tif = tiff_open(io, "rm", max_alloc);
    if (!tif) tiff_read_failed(io, "cannot read the TIFF header or first directory");

    const TiffFields f = tiff_fields(tif.get());
    check_dimensions(path, f.width, f.height, options);
    tiff_check_striles(tif.get(), io);
    RgbImage image(static_cast<int>(f.width), static_cast<int>(f.height));
    SampleLayout layout;
    if (tiff_direct_ok(f, &layout))
        tiff_read_direct(tif.get(), io, layout, image);
    else
        tiff_read_rgba(tif.get(), io, image);
    if (info) {
        info->conversion = tiff_conversion(f);
        float xr = 0, yr = 0;
        std::uint16_t unit = RESUNIT_NONE;
        TIFFGetFieldDefaulted(tif.get(), TIFFTAG_RESOLUTIONUNIT, &unit);
        if (TIFFGetField(tif.get(), TIFFTAG_XRESOLUTION, &xr) == 1 && TIFFGetField(tif.get(), TIFFTAG_YRESOLUTION, &yr) == 1 &&
            std::isfinite(xr) && std::isfinite(yr) && xr > 0 && yr > 0 &&
            (unit == RESUNIT_INCH || unit == RESUNIT_CENTIMETER)) {
            const double per_metre = unit == RESUNIT_INCH ? 1.0 / 0.0254 : 100.0;
            info->pixels_per_metre_x = xr * per_metre;
            info->pixels_per_metre_y = yr * per_metre;
        }
    }
    return image;
}

void write_tiff(const std::string& path, const std::string& temp, RgbView image, const WriteOptions& options) {
    Fd fd(create_output(temp, path));
    TiffIo io;
    io.fd = fd.get();
    io.path = path;
    const auto row_bytes = static_cast<std::size_t>(image.width) * 3u;
    const auto raw_bytes = static_cast<unsigned long long>(row_bytes) * static_cast<unsigned long long>(image.height);
    // Classic TIFF offsets are 32-bit; go BigTIFF well before deflate output could reach 4 GiB.
    const char* mode = raw_bytes > 0xC0000000ull ? "w8" : "w";
    auto fail_write = [&](const char* what) {
        std::string msg = std::string("cannot write TIFF: ") + what;
        if (!io.message.empty()) msg += ": " + io.message;
        else if (!t_tiff_message.empty()) msg += ": " + t_tiff_message;
        if (io.io_errno != 0) msg += " (" + output_reason(io.io_errno) + ")";
        output_error(path, msg);
    };
    {
        TiffPtr tif = tiff_open(io, mode, 0);
        if (!tif) fail_write("cannot start the file");
        TIFF* t = tif.get();
        const auto rows_per_strip = static_cast<std::uint32_t>(
            std::clamp<std::size_t>(65536u / std::max<std::size_t>(row_bytes, 1), 1, static_cast<std::size_t>(image.height)));
        const bool tags_ok =
            TIFFSetField(t, TIFFTAG_IMAGEWIDTH, static_cast<std::uint32_t>(image.width)) == 1 &&
            TIFFSetField(t, TIFFTAG_IMAGELENGTH, static_cast<std::uint32_t>(image.height)) == 1 &&
            TIFFSetField(t, TIFFTAG_BITSPERSAMPLE, 8) == 1 && TIFFSetField(t, TIFFTAG_SAMPLESPERPIXEL, 3) == 1 &&
            TIFFSetField(t, TIFFTAG_PHOTOMETRIC, PHOTOMETRIC_RGB) == 1 &&
            TIFFSetField(t, TIFFTAG_PLANARCONFIG, PLANARCONFIG_CONTIG) == 1 &&
            TIFFSetField(t, TIFFTAG_ORIENTATION, ORIENTATION_TOPLEFT) == 1 &&
            TIFFSetField(t, TIFFTAG_COMPRESSION, COMPRESSION_ADOBE_DEFLATE) == 1 &&
            TIFFSetField(t, TIFFTAG_ZIPQUALITY, 3) == 1 &&
            TIFFSetField(t, TIFFTAG_PREDICTOR, PREDICTOR_HORIZONTAL) == 1 &&
            TIFFSetField(t, TIFFTAG_ROWSPERSTRIP, rows_per_strip) == 1 &&
            TIFFSetField(t, TIFFTAG_SOFTWARE, "vahanorm") == 1;
        if (!tags_ok) fail_write("cannot set the TIFF tags");
        if (options.pixels_per_metre_x > 0 && options.pixels_per_metre_y > 0) {
            TIFFSetField(t, TIFFTAG_XRESOLUTION, options.pixels_per_metre_x / 100.0);
            TIFFSetField(t, TIFFTAG_YRESOLUTION, options.pixels_per_metre_y / 100.0);
            TIFFSetField(t, TIFFTAG_RESOLUTIONUNIT, RESUNIT_CENTIMETER);
        }
        // libtiff's predictor works in place: encode from a copy, never from the caller's pixels.
        std::vector<std::uint8_t> strip(row_bytes * rows_per_strip);
        const auto height = static_cast<std::uint32_t>(image.height);
        for (std::uint32_t y0 = 0, s = 0; y0 < height; y0 += rows_per_strip, ++s) {
            const std::uint32_t rows = std::min(rows_per_strip, height - y0);
            for (std::uint32_t r = 0; r < rows; ++r)
                std::memcpy(strip.data() + row_bytes * r, image.row(static_cast<int>(y0 + r)), row_bytes);
            if (TIFFWriteEncodedStrip(t, s, strip.data(), static_cast<tmsize_t>(row_bytes * rows)) < 0)
                fail_write("cannot write the pixels");
        }
        if (TIFFWriteDirectory(t) != 1) fail_write("cannot write the TIFF directory");
        if (TIFFFlush(t) != 1) fail_write("cannot flush");
        if (io.io_errno != 0) fail_write("write failed");
    }  // TIFFClose
    if (const int e = fd.close()) output_error(path, "cannot write TIFF (" + output_reason(e) + ")");
}

// ---- extensions -------------------------------------------------------------------------------

std::string lower_extension(const std::string& path) {
    const auto slash = path.find_last_of('/');
    const std::string base = slash == std::string::npos ? path : path.substr(slash + 1);
    const auto dot = base.find_last_of('.');
    if (dot == std::string::npos) return {};
    std::string ext = base.substr(dot + 1);
    for (auto& c : ext)
        if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    return ext;
}

}  // namespace

ImageFormat format_from_extension(const std::string& path) {
    const std::string ext = lower_extension(path);
    if (ext == "png") return ImageFormat::Png;
    if (ext == "jpg" || ext == "jpeg") return ImageFormat::Jpeg;
    if (ext == "tif" || ext == "tiff") return ImageFormat::Tiff;
    if (ext.empty())
        fail(ErrorKind::Usage, path + ": no file extension to tell the image format (use .png, .jpg, .jpeg, .tif or .tiff)");
    fail(ErrorKind::Usage, path + ": unknown image extension '." + ext + "' (use .png, .jpg, .jpeg, .tif or .tiff)");
}

const char* format_name(ImageFormat f) {
    switch (f) {
        case ImageFormat::Png: return "PNG";
        case ImageFormat::Jpeg: return "JPEG";
        case ImageFormat::Tiff: return "TIFF";
    }
    return "unknown";
}

RgbImage read_image(const std::string& path, ImageInfo* info, const ReadOptions& options) {
    Fd fd(open_input(path));
    const Header header = read_header(fd.get(), path);
    ImageInfo local;
    ImageInfo* out = info ? info : &local;
    *out = ImageInfo{};
    RgbImage image;
    if (is_png(header)) {
        out->format = ImageFormat::Png;
        image = read_png(path, fd, header, out, options);
    } else if (is_jpeg(header)) {
        out->format = ImageFormat::Jpeg;
        image = read_jpeg(path, fd, out, options);
    } else if (is_tiff(header)) {
        out->format = ImageFormat::Tiff;
        image = read_tiff(path, fd, out, options);
    } else {
        input_error(path, header.size == 0 ? "empty file, not a PNG, JPEG or TIFF image" : "not a PNG, JPEG or TIFF image");
    }
    out->width = image.width;
    out->height = image.height;
    return image;
}

void write_image(const std::string& path, RgbView image, const WriteOptions& options) {
    const ImageFormat format = format_from_extension(path);
    if (!image.data || image.width <= 0 || image.height <= 0 || image.stride < static_cast<std::size_t>(image.width) * 3u)
        fail(ErrorKind::Internal, path + ": write_image was given an empty or malformed image");
    if (format == ImageFormat::Jpeg && (options.jpeg_quality < 1 || options.jpeg_quality > 100))
        fail(ErrorKind::Usage, "JPEG quality must be 1..100, not " + std::to_string(options.jpeg_quality));
    AtomicOutput out(path);
    switch (format) {
        case ImageFormat::Png: write_png(path, out.temp_path(), image, options); break;
        case ImageFormat::Jpeg: write_jpeg(path, out.temp_path(), image, options); break;
        case ImageFormat::Tiff: write_tiff(path, out.temp_path(), image, options); break;
    }
    out.commit();
}

}  // namespace vn
