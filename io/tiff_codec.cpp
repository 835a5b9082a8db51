// TIFF tiles (libtiff through io/libtiff.hpp): stripped or tiled, gray, RGB, palette, CMYK, Lab
// and more to 8-bit RGB (plain 8/16-bit layouts decoded directly with exact rounding, the rest
// through TIFFRGBAImage); 8-bit RGB to deflate-compressed TIFF. Errors: io/image_codec.hpp.
#include <algorithm>
#include <climits>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include <tiffio.h>

#include "core/error.hpp"
#include "io/image_codec.hpp"
#include "io/libtiff.hpp"

namespace vn::codec {
namespace {

// Reading: no single allocation by libtiff needs more than the largest allowed image at 16-bit
// RGBA (8 bytes a pixel), plus slack for tables and directories.
constexpr long double kMaxBytesPerPixel = 8.0L;
constexpr long double kAllocationSlack = 64.0L * 1024 * 1024;
// Writing: classic TIFF offsets are 32-bit; go BigTIFF well before deflate output could reach 4 GiB.
constexpr unsigned long long kBigTiffRawBytes = 0xC0000000ull;
constexpr std::size_t kStripBytes = 65536;  // uncompressed bytes a strip, about
constexpr int kDeflateLevel = 3;            // TIFFTAG_ZIPQUALITY: fast, most of the gain

std::string tiff_problem(const TiffHandle& tif, const char* fallback) {
    std::string msg = !tif.error().empty() ? tif.error() : fallback;
    if (tif.io_errno() != 0) msg += " (" + errno_text(tif.io_errno()) + ")";
    return msg;
}

[[noreturn]] void tiff_read_failed(const TiffHandle& tif, const std::string& path, const char* fallback) {
    input_error(path, "cannot decode TIFF: " + tiff_problem(tif, fallback));
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
void tiff_check_striles(TIFF* tif, const std::string& path) {
    const bool tiled = TIFFIsTiled(tif) != 0;
    const std::uint32_t n = tiled ? TIFFNumberOfTiles(tif) : TIFFNumberOfStrips(tif);
    for (std::uint32_t s = 0; s < n; ++s)
        if (TIFFGetStrileByteCount(tif, s) == 0)
            input_error(path, std::string("cannot decode TIFF: ") + (tiled ? "tile " : "strip ") + std::to_string(s) +
                                     " of " + std::to_string(n) + " has no data (truncated or corrupt file)");
}

void tiff_read_direct(const TiffHandle& handle, const std::string& path, const SampleLayout& layout, RgbSpan image) {
    TIFF* tif = handle.get();
    const auto width = static_cast<std::size_t>(image.width);
    const std::size_t row_bytes = width * static_cast<std::size_t>(layout.channels) * static_cast<std::size_t>(layout.bits / 8);
    if (TIFFScanlineSize64(tif) != row_bytes) tiff_read_failed(handle, path, "unexpected scanline size");
    std::uint32_t rows_per_strip = 0;
    TIFFGetFieldDefaulted(tif, TIFFTAG_ROWSPERSTRIP, &rows_per_strip);
    const auto height = static_cast<std::uint32_t>(image.height);
    if (rows_per_strip == 0 || rows_per_strip > height) rows_per_strip = height;
    const std::uint32_t strips = (height + rows_per_strip - 1) / rows_per_strip;
    if (TIFFNumberOfStrips(tif) < strips) tiff_read_failed(handle, path, "fewer strips than the image height needs");
    std::vector<std::uint8_t> buffer(row_bytes * rows_per_strip);
    for (std::uint32_t s = 0; s < strips; ++s) {
        const std::uint32_t y0 = s * rows_per_strip;
        const std::uint32_t rows = std::min(rows_per_strip, height - y0);
        const auto want = static_cast<tmsize_t>(row_bytes * rows);
        const tmsize_t got = TIFFReadEncodedStrip(tif, s, buffer.data(), want);
        if (got != want) tiff_read_failed(handle, path, "strip data is short or unreadable (truncated?)");
        for (std::uint32_t r = 0; r < rows; ++r)
            convert_row(buffer.data() + row_bytes * r, image.row(static_cast<int>(y0 + r)), image.width, layout);
    }
}

void tiff_read_rgba(const TiffHandle& handle, const std::string& path, RgbSpan image) {
    TIFF* tif = handle.get();
    char emsg[1024] = {};
    if (!TIFFRGBAImageOK(tif, emsg)) input_error(path, std::string("unsupported TIFF: ") + emsg);
    std::vector<std::uint32_t> raster(static_cast<std::size_t>(image.width) * static_cast<std::size_t>(image.height));
    if (!TIFFReadRGBAImageOriented(tif, static_cast<std::uint32_t>(image.width), static_cast<std::uint32_t>(image.height),
                                   raster.data(), ORIENTATION_TOPLEFT, /*stop_on_error=*/1))
        tiff_read_failed(handle, path, "cannot decode the image data");
    // TIFFRGBAImage premultiplies: colour over white is c + (255 - a).
    const std::uint32_t* src = raster.data();
    for (int y = 0; y < image.height; ++y) {
        std::uint8_t* dst = image.row(y);
        for (int x = 0; x < image.width; ++x, ++src, dst += 3) {
            const std::uint32_t p = *src;
            const std::uint32_t back = 255u - TIFFGetA(p);
            dst[0] = static_cast<std::uint8_t>(std::min(255u, TIFFGetR(p) + back));
            dst[1] = static_cast<std::uint8_t>(std::min(255u, TIFFGetG(p) + back));
            dst[2] = static_cast<std::uint8_t>(std::min(255u, TIFFGetB(p) + back));
        }
    }
}

}  // namespace

RgbSpan read_tiff(const std::string& path, Fd& fd, ImageInfo* info, const ReadOptions& options, const PixelSink& sink) {
    const long double cap = static_cast<long double>(options.max_pixels) * kMaxBytesPerPixel + kAllocationSlack;
    TiffOpenOptions open_options;
    open_options.max_single_alloc = cap >= static_cast<long double>(LLONG_MAX) ? 0 : static_cast<std::int64_t>(cap);
    const TiffHandle tif(fd.get(), path, "rm", open_options);
    if (!tif.valid()) tiff_read_failed(tif, path, "cannot read the TIFF header or first directory");

    const TiffFields f = tiff_fields(tif.get());
    check_dimensions(path, f.width, f.height, options);
    tiff_check_striles(tif.get(), path);
    const RgbSpan image = sink_span(sink, path, static_cast<int>(f.width), static_cast<int>(f.height));
    SampleLayout layout;
    if (tiff_direct_ok(f, &layout))
        tiff_read_direct(tif, path, layout, image);
    else
        tiff_read_rgba(tif, path, image);
    if (info) {
        info->conversion = tiff_conversion(f);
        float xr = 0, yr = 0;
        std::uint16_t unit = RESUNIT_NONE;
        TIFFGetFieldDefaulted(tif.get(), TIFFTAG_RESOLUTIONUNIT, &unit);
        if (TIFFGetField(tif.get(), TIFFTAG_XRESOLUTION, &xr) == 1 && TIFFGetField(tif.get(), TIFFTAG_YRESOLUTION, &yr) == 1 &&
            std::isfinite(xr) && std::isfinite(yr) && xr > 0 && yr > 0 &&
            (unit == RESUNIT_INCH || unit == RESUNIT_CENTIMETER)) {
            const double per_metre = unit == RESUNIT_INCH ? 1.0 / kMetresPerInch : kCentimetresPerMetre;
            info->pixels_per_metre_x = xr * per_metre;
            info->pixels_per_metre_y = yr * per_metre;
        }
    }
    return image;
}

void write_tiff(const std::string& path, const std::string& temp, RgbView image, const WriteOptions& options) {
    Fd fd(create_output(temp, path));
    const auto row_bytes = static_cast<std::size_t>(image.width) * 3u;
    const auto raw_bytes = static_cast<unsigned long long>(row_bytes) * static_cast<unsigned long long>(image.height);
    const char* mode = raw_bytes > kBigTiffRawBytes ? "w8" : "w";
    {
        TiffHandle tif(fd.get(), path, mode);
        auto fail_write = [&](const char* what) {
            std::string msg = std::string("cannot write TIFF: ") + what;
            if (!tif.error().empty()) msg += ": " + tif.error();
            if (tif.io_errno() != 0) msg += " (" + output_reason(tif.io_errno()) + ")";
            output_error(path, msg);
        };
        if (!tif.valid()) fail_write("cannot start the file");
        TIFF* t = tif.get();
        const auto rows_per_strip = static_cast<std::uint32_t>(
            std::clamp<std::size_t>(kStripBytes / std::max<std::size_t>(row_bytes, 1), 1, static_cast<std::size_t>(image.height)));
        const bool tags_ok =
            TIFFSetField(t, TIFFTAG_IMAGEWIDTH, static_cast<std::uint32_t>(image.width)) == 1 &&
            TIFFSetField(t, TIFFTAG_IMAGELENGTH, static_cast<std::uint32_t>(image.height)) == 1 &&
            TIFFSetField(t, TIFFTAG_BITSPERSAMPLE, 8) == 1 && TIFFSetField(t, TIFFTAG_SAMPLESPERPIXEL, 3) == 1 &&
            TIFFSetField(t, TIFFTAG_PHOTOMETRIC, PHOTOMETRIC_RGB) == 1 &&
            TIFFSetField(t, TIFFTAG_PLANARCONFIG, PLANARCONFIG_CONTIG) == 1 &&
            TIFFSetField(t, TIFFTAG_ORIENTATION, ORIENTATION_TOPLEFT) == 1 &&
            TIFFSetField(t, TIFFTAG_COMPRESSION, COMPRESSION_ADOBE_DEFLATE) == 1 &&
            TIFFSetField(t, TIFFTAG_ZIPQUALITY, kDeflateLevel) == 1 &&
            TIFFSetField(t, TIFFTAG_PREDICTOR, PREDICTOR_HORIZONTAL) == 1 &&
            TIFFSetField(t, TIFFTAG_ROWSPERSTRIP, rows_per_strip) == 1 &&
            TIFFSetField(t, TIFFTAG_SOFTWARE, "vahanorm") == 1;
        if (!tags_ok) fail_write("cannot set the TIFF tags");
        if (options.pixels_per_metre_x > 0 && options.pixels_per_metre_y > 0) {
            TIFFSetField(t, TIFFTAG_XRESOLUTION, options.pixels_per_metre_x / kCentimetresPerMetre);
            TIFFSetField(t, TIFFTAG_YRESOLUTION, options.pixels_per_metre_y / kCentimetresPerMetre);
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
        if (tif.io_errno() != 0) fail_write("write failed");
    }  // TIFFClose
    if (const int e = fd.close()) output_error(path, "cannot write TIFF (" + output_reason(e) + ")");
}

}  // namespace vn::codec
