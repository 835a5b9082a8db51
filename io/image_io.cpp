// Tile images: the format by signature (reading) or extension (writing), and what the codecs
// share: messages, files, size limits, sample conversion. The codecs: io/image_codec.hpp.
#include "io/image_io.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstring>
#include <string>
#include <system_error>
#include <vector>

#include "core/error.hpp"
#include "io/atomic_file.hpp"
#include "io/image_codec.hpp"
#include "io/paths.hpp"

namespace vn {
namespace codec {

// ---- messages -----------------------------------------------------------------------------------

// Codec messages may span lines (libtiff: "JPEGPreDecode: Improper JPEG sampling factors 2,2\nApparently
// should be 1,1.") or carry control characters.
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

// ---- files --------------------------------------------------------------------------------------

int create_output(const std::string& temp, const std::string& path) {
    constexpr mode_t kFileMode = 0644;  // before the umask, as every output
    const int fd = ::open(temp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, kFileMode);
    if (fd < 0) output_error(path, "cannot create (" + output_reason(errno) + ")");
    return fd;
}

std::FILE* fdopen_or_fail(Fd& fd, const char* mode, const std::string& path, ErrorKind kind) {
    std::FILE* f = ::fdopen(fd.get(), mode);
    if (!f) fail(kind, path + ": cannot open (" + errno_text(errno) + ")");
    fd.release();
    return f;
}

// ---- limits -------------------------------------------------------------------------------------

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

RgbSpan sink_span(const PixelSink& sink, const std::string& path, int width, int height) {
    const RgbSpan s = sink(width, height);
    if (!s.data || s.width != width || s.height != height || s.stride < static_cast<std::size_t>(width) * 3u)
        fail(ErrorKind::Internal, path + ": the decode target is not a " + std::to_string(width) + "x" +
                                      std::to_string(height) + " RGB image");
    return s;
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

// ---- sample conversion --------------------------------------------------------------------------

namespace {

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

}  // namespace

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

}  // namespace codec

namespace {

using codec::Header;
using codec::input_error;
using codec::input_reason;

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

// ---- signatures -------------------------------------------------------------------------------

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

constexpr std::uint8_t kPngMagic[] = {0x89, 'P', 'N', 'G', 0x0d, 0x0a, 0x1a, 0x0a};

bool starts_with(const Header& h, const void* magic, std::size_t n) {
    return h.size >= n && std::memcmp(h.bytes, magic, n) == 0;
}

bool is_png(const Header& h) { return starts_with(h, kPngMagic, sizeof kPngMagic); }
bool is_jpeg(const Header& h) { return starts_with(h, "\xff\xd8\xff", 3); }
bool is_tiff(const Header& h) {
    return starts_with(h, "II*\0", 4) || starts_with(h, "MM\0*", 4) ||  // classic TIFF
           starts_with(h, "II+\0", 4) || starts_with(h, "MM\0+", 4);    // BigTIFF
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

RgbSpan read_image_into(const std::string& path, const PixelSink& sink, ImageInfo* info, const ReadOptions& options) {
    codec::Fd fd(open_input(path));
    const Header header = read_header(fd.get(), path);
    ImageInfo local;
    ImageInfo* out = info ? info : &local;
    *out = ImageInfo{};
    RgbSpan image;
    if (is_png(header)) {
        out->format = ImageFormat::Png;
        image = codec::read_png(path, fd, header, out, options, sink);
    } else if (is_jpeg(header)) {
        out->format = ImageFormat::Jpeg;
        image = codec::read_jpeg(path, fd, out, options, sink);
    } else if (is_tiff(header)) {
        out->format = ImageFormat::Tiff;
        image = codec::read_tiff(path, fd, out, options, sink);
    } else {
        codec::input_error(path, header.size == 0 ? "empty file, not a PNG, JPEG or TIFF image" : "not a PNG, JPEG or TIFF image");
    }
    out->width = image.width;
    out->height = image.height;
    return image;
}

RgbImage read_image(const std::string& path, ImageInfo* info, const ReadOptions& options) {
    RgbImage image;
    read_image_into(
        path,
        [&](int width, int height) {
            image = RgbImage(width, height);
            return image.span();
        },
        info, options);
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
        case ImageFormat::Png: codec::write_png(path, out.temp_path(), image, options); break;
        case ImageFormat::Jpeg: codec::write_jpeg(path, out.temp_path(), image, options); break;
        case ImageFormat::Tiff: codec::write_tiff(path, out.temp_path(), image, options); break;
    }
    out.commit();
}

}  // namespace vn
