// JPEG tiles (libjpeg-turbo): gray, RGB, YCbCr, CMYK and YCCK JPEGs to 8-bit RGB, 8-bit RGB to
// baseline 4:2:0 JPEG. Errors: io/jpeg_error.hpp and io/image_codec.hpp.
#include <algorithm>
#include <climits>
#include <cmath>
#include <csetjmp>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

// clang-format off
#include <jpeglib.h>
#include <jerror.h>
// clang-format on

#include "core/error.hpp"
#include "io/image_codec.hpp"
#include "io/jpeg_error.hpp"

namespace vn::codec {
namespace {

// Progressive JPEGs with absurd scan counts can take forever to decode (libjpeg-turbo's
// advice): refuse them.
constexpr int kMaxJpegScans = 500;
// JFIF density units.
constexpr int kJfifDotsPerInch = 1;
constexpr int kJfifDotsPerCentimetre = 2;
// Decoder memory: a progressive image's coefficients (2 bytes per sample) plus this much.
constexpr long double kCoefficientBytes = 2.0L;
constexpr long double kWorkingMemory = 256.0L * 1024 * 1024;
// Chroma subsampling written: 4:2:0 (luma sampled twice as densely each way).
constexpr int kLumaSampling = 2;
constexpr int kChromaSampling = 1;

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

}  // namespace

RgbSpan read_jpeg(const std::string& path, Fd& fd, ImageInfo* info, const ReadOptions& options, const PixelSink& sink) {
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
    const long double want = static_cast<long double>(width) * static_cast<long double>(height) *
                                 static_cast<long double>(std::max(r->cinfo.num_components, 3)) * kCoefficientBytes +
                             kWorkingMemory;
    r->memory_limit = want >= static_cast<long double>(LONG_MAX) ? LONG_MAX : static_cast<long>(want);

    const RgbSpan image = sink_span(sink, path, static_cast<int>(width), static_cast<int>(height));
    r->out = image;
    std::vector<std::uint8_t> cmyk;
    if (r->cinfo.out_color_space == JCS_CMYK) {
        cmyk.resize(static_cast<std::size_t>(width) * 4u);
        r->row_buffer = cmyk.data();
    }
    if (!jpeg_guard(r.get(), jpeg_decode_body))
        input_error(path, std::string("cannot decode JPEG: ") + r->err.message);
    if (info && r->cinfo.saw_JFIF_marker && r->cinfo.X_density > 0 && r->cinfo.Y_density > 0 &&
        (r->cinfo.density_unit == kJfifDotsPerInch || r->cinfo.density_unit == kJfifDotsPerCentimetre)) {
        const double per_metre =
            r->cinfo.density_unit == kJfifDotsPerInch ? 1.0 / kMetresPerInch : kCentimetresPerMetre;
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

namespace {


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
    w->cinfo.comp_info[0].h_samp_factor = kLumaSampling;
    w->cinfo.comp_info[0].v_samp_factor = kLumaSampling;
    for (int c = 1; c < 3; ++c) {
        w->cinfo.comp_info[c].h_samp_factor = kChromaSampling;
        w->cinfo.comp_info[c].v_samp_factor = kChromaSampling;
    }
    w->cinfo.optimize_coding = FALSE;
    w->cinfo.dct_method = JDCT_ISLOW;
    if (w->ppm_x > 0 && w->ppm_y > 0) {
        // JFIF density: dots per inch when that is a whole number (the usual case), else per cm.
        const double dx = w->ppm_x * kMetresPerInch, dy = w->ppm_y * kMetresPerInch;
        const bool dpi = std::fabs(dx - std::round(dx)) < 0.01 && std::fabs(dy - std::round(dy)) < 0.01;
        const double sx = dpi ? dx : w->ppm_x / kCentimetresPerMetre, sy = dpi ? dy : w->ppm_y / kCentimetresPerMetre;
        if (sx >= 0.5 && sx < 65535.5 && sy >= 0.5 && sy < 65535.5) {
            w->cinfo.write_JFIF_header = TRUE;
            w->cinfo.density_unit = dpi ? kJfifDotsPerInch : kJfifDotsPerCentimetre;
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

}  // namespace

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

}  // namespace vn::codec
