// PNG tiles (libpng): any PNG to 8-bit RGB, 8-bit RGB to PNG. Errors: io/image_codec.hpp.
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <csetjmp>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include <png.h>

#include "core/error.hpp"
#include "io/image_codec.hpp"

namespace vn::codec {
namespace {

constexpr png_uint_32 kPngMaxDimension = 0x7fffffff;   // PNG's own limit on a side (2^31 - 1)
constexpr png_uint_32 kChunkCacheMax = 1000;           // ancillary chunks kept
constexpr png_alloc_size_t kChunkMallocMax = 16u * 1024 * 1024;  // largest ancillary chunk read
constexpr long double kDeflateMaxRatio = 1032.0L;      // see check_png_data_size
constexpr int kPngCompressionLevel = 3;                // zlib level of written PNGs: fast, most of the gain
// The IHDR chunk in a PNG's first bytes: length, "IHDR", width, height, bit depth, color type.
constexpr std::size_t kIhdrTag = 12, kIhdrWidth = 16, kIhdrHeight = 20, kIhdrBitDepth = 24, kIhdrColorType = 25;
constexpr std::size_t kIhdrEnd = 26;

std::uint32_t be32(const std::uint8_t* p) {
    return static_cast<std::uint32_t>(p[0]) << 24 | static_cast<std::uint32_t>(p[1]) << 16 |
           static_cast<std::uint32_t>(p[2]) << 8 | p[3];
}

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
    png_uint_32 user_limit = kPngMaxDimension;
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
    png_set_chunk_cache_max(r->png, kChunkCacheMax);
    png_set_chunk_malloc_max(r->png, kChunkMallocMax);
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
    const int channels = color_type == PNG_COLOR_TYPE_RGB         ? 3
                         : color_type == PNG_COLOR_TYPE_GRAY_ALPHA ? 2
                         : color_type == PNG_COLOR_TYPE_RGB_ALPHA  ? 4
                                                                   : 1;
    const auto row_bits = static_cast<unsigned long long>(width) * static_cast<unsigned>(bit_depth) *
                          static_cast<unsigned>(channels);
    const long double filtered = static_cast<long double>((row_bits + 7) / 8 + 1) * static_cast<long double>(height);
    struct stat st {};
    if (::fstat(fd, &st) != 0) return;  // libpng will tell
    if (static_cast<long double>(st.st_size) * kDeflateMaxRatio < filtered)
        input_error(path, "cannot decode PNG: " + std::to_string(st.st_size) + " bytes cannot hold a " +
                              std::to_string(width) + "x" + std::to_string(height) + " image (truncated?)");
}

}  // namespace

RgbSpan read_png(const std::string& path, Fd& fd, const Header& header, ImageInfo* info, const ReadOptions& options,
                 const PixelSink& sink) {
    // The IHDR is the first chunk: refuse absurd sizes before libpng even starts.
    if (header.size >= kIhdrEnd && std::memcmp(header.bytes + kIhdrTag, "IHDR", 4) == 0) {
        const std::uint32_t width = be32(header.bytes + kIhdrWidth), height = be32(header.bytes + kIhdrHeight);
        check_dimensions(path, width, height, options);
        check_png_data_size(path, fd.get(), width, height, header.bytes[kIhdrBitDepth], header.bytes[kIhdrColorType]);
    }

    StdioFile file(fdopen_or_fail(fd, "rb", path, ErrorKind::Input));
    PngReader r;
    r.fp = file.get();
    r.user_limit = static_cast<png_uint_32>(std::min<std::uint64_t>(options.max_pixels, kPngMaxDimension));
    if (r.user_limit == 0) r.user_limit = 1;
    PngReadCleanup cleanup{&r};

    if (!png_guard(&r, png_header_body)) png_read_failed(path, r.err);
    check_dimensions(path, r.width, r.height, options);
    if (!png_guard(&r, png_transform_body)) png_read_failed(path, r.err);

    const RgbSpan image = sink_span(sink, path, static_cast<int>(r.width), static_cast<int>(r.height));
    r.out = image;
    std::vector<png_bytep> rows;
    std::vector<std::uint8_t> scratch;
    const bool direct = r.layout.channels == 3 && r.layout.bits == 8;
    if (direct) {
        rows.resize(r.height);
        for (png_uint_32 y = 0; y < r.height; ++y) rows[y] = image.row(static_cast<int>(y));
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
            convert_row(rows[y], image.row(static_cast<int>(y)), image.width, r.layout);
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

namespace {


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
    png_set_compression_level(w->png, kPngCompressionLevel);
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

}  // namespace

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

}  // namespace vn::codec
