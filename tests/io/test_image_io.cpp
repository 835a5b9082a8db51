// Tile image I/O: round trips, conversions to 8-bit RGB, limits and failures.
#include <catch2/catch.hpp>

#include <dirent.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cmath>
#include <csetjmp>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

// clang-format off
#include <png.h>
#include <jpeglib.h>
#include <tiffio.h>
#include <zlib.h>
// clang-format on

#include "core/error.hpp"
#include "io/image_io.hpp"
#include "tests/support/test_support.hpp"

using vn::ErrorKind;
using vn::ImageFormat;
using vn::ImageInfo;
using vn::RgbImage;
using vn::test::TempDir;

namespace {

using Bytes = std::vector<std::uint8_t>;

// ---- small helpers --------------------------------------------------------------------------

Bytes read_bytes(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    return Bytes(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

void write_bytes(const std::string& path, const Bytes& bytes) {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
    REQUIRE(out.good());
}

void truncate_to(const std::string& path, std::size_t size) {
    REQUIRE(::truncate(path.c_str(), static_cast<off_t>(size)) == 0);
}

std::vector<std::string> list_dir(const std::string& dir) {
    std::vector<std::string> names;
    DIR* d = ::opendir(dir.c_str());
    if (!d) return names;
    while (const dirent* e = ::readdir(d)) {
        const std::string n = e->d_name;
        if (n != "." && n != "..") names.push_back(n);
    }
    ::closedir(d);
    std::sort(names.begin(), names.end());
    return names;
}

// Runs f, which must throw vn::Error of `kind`; returns the message.
template <class F>
std::string error_of(ErrorKind kind, F&& f) {
    try {
        f();
    } catch (const vn::Error& e) {
        INFO("message: " << e.what());
        CHECK(static_cast<int>(e.kind()) == static_cast<int>(kind));
        return e.what();
    }
    FAIL("no vn::Error was thrown");
    return {};
}

bool same_pixels(const RgbImage& a, const RgbImage& b) {
    return a.width == b.width && a.height == b.height && a.pixels == b.pixels;
}

double mean_abs_diff(const RgbImage& a, const RgbImage& b) {
    REQUIRE(a.pixels.size() == b.pixels.size());
    double sum = 0;
    for (std::size_t i = 0; i < a.pixels.size(); ++i) sum += std::abs(int(a.pixels[i]) - int(b.pixels[i]));
    return sum / static_cast<double>(a.pixels.size());
}

// A smooth image with mild texture: what JPEG is made for.
RgbImage smooth_image(int w, int h) {
    RgbImage img(w, h);
    for (int y = 0; y < h; ++y)
        for (int x = 0; x < w; ++x) {
            std::uint8_t* p = img.span().row(y) + 3 * x;
            p[0] = static_cast<std::uint8_t>(40 + (x * 170) / std::max(1, w - 1));
            p[1] = static_cast<std::uint8_t>(60 + (y * 150) / std::max(1, h - 1));
            p[2] = static_cast<std::uint8_t>(200 - ((x + y) * 100) / std::max(1, w + h - 2));
        }
    return img;
}

std::array<std::uint8_t, 3> px(const RgbImage& img, int x, int y) {
    const std::uint8_t* p = img.view().row(y) + 3 * x;
    return {p[0], p[1], p[2]};
}

// Exact colour over white, computed independently of the library (no ties: 255 is odd).
int over_white(double c, double a, double max) {
    const double v = (c * a + max * (max - a)) / max;  // in [0, max]
    return static_cast<int>(std::lround(v * 255.0 / max));
}

// ---- PNG writer for test inputs (full libpng API: any colour type and bit depth) -----------

struct PngSpec {
    int width = 0, height = 0;
    int color_type = PNG_COLOR_TYPE_RGB;
    int bit_depth = 8;
    bool interlace = false;
    Bytes rows;                      // packed rows as PNG stores them (16-bit big-endian)
    std::vector<png_color> palette;  // PLTE
    Bytes trns_alpha;                // tRNS for palette images
    bool trns_color = false;         // tRNS for gray/RGB images
    png_color_16 trns_value{};
};

bool write_png_guarded(png_structp png, png_infop info, std::FILE* fp, const PngSpec* s) {
    if (setjmp(png_jmpbuf(png))) return false;
    png_init_io(png, fp);
    png_set_IHDR(png, info, static_cast<png_uint_32>(s->width), static_cast<png_uint_32>(s->height), s->bit_depth,
                 s->color_type, s->interlace ? PNG_INTERLACE_ADAM7 : PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT,
                 PNG_FILTER_TYPE_DEFAULT);
    if (!s->palette.empty()) png_set_PLTE(png, info, s->palette.data(), static_cast<int>(s->palette.size()));
    if (!s->trns_alpha.empty())
        png_set_tRNS(png, info, s->trns_alpha.data(), static_cast<int>(s->trns_alpha.size()), nullptr);
    if (s->trns_color) png_set_tRNS(png, info, nullptr, 0, &s->trns_value);
    png_write_info(png, info);
    const std::size_t rowbytes = s->rows.size() / static_cast<std::size_t>(s->height);
    const int passes = png_set_interlace_handling(png);
    for (int pass = 0; pass < passes; ++pass)
        for (int y = 0; y < s->height; ++y) png_write_row(png, s->rows.data() + rowbytes * static_cast<std::size_t>(y));
    png_write_end(png, nullptr);
    return true;
}

void write_png_spec(const std::string& path, const PngSpec& s) {
    std::FILE* fp = std::fopen(path.c_str(), "wb");
    REQUIRE(fp);
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, nullptr, nullptr, nullptr);
    png_infop info = png_create_info_struct(png);
    const bool ok = write_png_guarded(png, info, fp, &s);
    png_destroy_write_struct(&png, &info);
    REQUIRE(std::fclose(fp) == 0);
    REQUIRE(ok);
}

void put16(Bytes& b, std::uint32_t v) {
    b.push_back(static_cast<std::uint8_t>(v >> 8));
    b.push_back(static_cast<std::uint8_t>(v & 0xff));
}

// ---- JPEG writer for test inputs (gray, CMYK) ------------------------------------------------

void write_jpeg_raw(const std::string& path, int w, int h, int components, J_COLOR_SPACE space, const Bytes& data,
                    int quality = 95) {
    std::FILE* fp = std::fopen(path.c_str(), "wb");
    REQUIRE(fp);
    jpeg_compress_struct cinfo{};
    jpeg_error_mgr err{};
    cinfo.err = jpeg_std_error(&err);  // test input: default handler exits on failure
    jpeg_create_compress(&cinfo);
    jpeg_stdio_dest(&cinfo, fp);
    cinfo.image_width = static_cast<JDIMENSION>(w);
    cinfo.image_height = static_cast<JDIMENSION>(h);
    cinfo.input_components = components;
    cinfo.in_color_space = space;
    jpeg_set_defaults(&cinfo);
    jpeg_set_quality(&cinfo, quality, TRUE);
    jpeg_start_compress(&cinfo, TRUE);
    const std::size_t stride = static_cast<std::size_t>(w) * static_cast<std::size_t>(components);
    while (cinfo.next_scanline < cinfo.image_height) {
        JSAMPROW row = const_cast<JSAMPROW>(data.data() + stride * cinfo.next_scanline);
        jpeg_write_scanlines(&cinfo, &row, 1);
    }
    jpeg_finish_compress(&cinfo);
    jpeg_destroy_compress(&cinfo);
    REQUIRE(std::fclose(fp) == 0);
}

// ---- TIFF writer for test inputs ------------------------------------------------------------

struct TiffSpec {
    int width = 0, height = 0;
    int samples = 3;
    int bits = 8;
    int photometric = PHOTOMETRIC_RGB;
    int extra = -1;       // EXTRASAMPLE_* of one extra sample, or -1 for none
    int tile = 0;         // tile side (multiple of 16), or 0 for strips
    int rows_per_strip = 0;
    int compression = COMPRESSION_NONE;
    Bytes data;           // packed contiguous samples, native byte order for 16-bit
    std::vector<std::uint16_t> colormap;  // 3 * 2^bits entries for palette images
};

void write_tiff_dir(TIFF* t, const TiffSpec& s) {
    REQUIRE(TIFFSetField(t, TIFFTAG_IMAGEWIDTH, static_cast<std::uint32_t>(s.width)) == 1);
    REQUIRE(TIFFSetField(t, TIFFTAG_IMAGELENGTH, static_cast<std::uint32_t>(s.height)) == 1);
    REQUIRE(TIFFSetField(t, TIFFTAG_BITSPERSAMPLE, s.bits) == 1);
    REQUIRE(TIFFSetField(t, TIFFTAG_SAMPLESPERPIXEL, s.samples) == 1);
    REQUIRE(TIFFSetField(t, TIFFTAG_PHOTOMETRIC, s.photometric) == 1);
    REQUIRE(TIFFSetField(t, TIFFTAG_PLANARCONFIG, PLANARCONFIG_CONTIG) == 1);
    REQUIRE(TIFFSetField(t, TIFFTAG_COMPRESSION, s.compression) == 1);
    if (s.extra >= 0) {
        const std::uint16_t types[1] = {static_cast<std::uint16_t>(s.extra)};
        REQUIRE(TIFFSetField(t, TIFFTAG_EXTRASAMPLES, 1, types) == 1);
    }
    if (!s.colormap.empty()) {
        const std::size_t n = s.colormap.size() / 3;
        REQUIRE(TIFFSetField(t, TIFFTAG_COLORMAP, s.colormap.data(), s.colormap.data() + n, s.colormap.data() + 2 * n) ==
                1);
    }
    const std::size_t row_bytes =
        (static_cast<std::size_t>(s.width) * static_cast<std::size_t>(s.samples) * static_cast<std::size_t>(s.bits) + 7) / 8;
    if (s.tile > 0) {
        REQUIRE(TIFFSetField(t, TIFFTAG_TILEWIDTH, static_cast<std::uint32_t>(s.tile)) == 1);
        REQUIRE(TIFFSetField(t, TIFFTAG_TILELENGTH, static_cast<std::uint32_t>(s.tile)) == 1);
        const std::size_t bpp = static_cast<std::size_t>(s.samples * s.bits / 8);
        Bytes tile(static_cast<std::size_t>(s.tile) * static_cast<std::size_t>(s.tile) * bpp, 0);
        for (int ty = 0; ty < s.height; ty += s.tile)
            for (int tx = 0; tx < s.width; tx += s.tile) {
                std::fill(tile.begin(), tile.end(), std::uint8_t{0});
                for (int y = ty; y < std::min(s.height, ty + s.tile); ++y)
                    for (int x = tx; x < std::min(s.width, tx + s.tile); ++x)
                        std::memcpy(tile.data() + (static_cast<std::size_t>(y - ty) * static_cast<std::size_t>(s.tile) +
                                                   static_cast<std::size_t>(x - tx)) * bpp,
                                    s.data.data() + static_cast<std::size_t>(y) * row_bytes + static_cast<std::size_t>(x) * bpp,
                                    bpp);
                REQUIRE(TIFFWriteTile(t, tile.data(), static_cast<std::uint32_t>(tx), static_cast<std::uint32_t>(ty), 0, 0) >= 0);
            }
    } else {
        const int rps = s.rows_per_strip > 0 ? s.rows_per_strip : s.height;
        REQUIRE(TIFFSetField(t, TIFFTAG_ROWSPERSTRIP, static_cast<std::uint32_t>(rps)) == 1);
        Bytes row(row_bytes);
        for (int y = 0; y < s.height; ++y) {
            std::memcpy(row.data(), s.data.data() + row_bytes * static_cast<std::size_t>(y), row_bytes);
            REQUIRE(TIFFWriteScanline(t, row.data(), static_cast<std::uint32_t>(y), 0) == 1);
        }
    }
    REQUIRE(TIFFWriteDirectory(t) == 1);
}

void write_tiff_spec(const std::string& path, const std::vector<TiffSpec>& pages) {
    TIFF* t = TIFFOpen(path.c_str(), "w");
    REQUIRE(t);
    for (const auto& p : pages) write_tiff_dir(t, p);
    TIFFClose(t);
}

Bytes native16(const std::vector<std::uint16_t>& v) {
    Bytes b(v.size() * 2);
    std::memcpy(b.data(), v.data(), b.size());
    return b;
}

// A baseline uncompressed RGB TIFF laid out by hand: header, IFD, then pixel data, so that
// truncating the file cuts the pixels and keeps the directory.
Bytes handmade_tiff(std::uint32_t w, std::uint32_t h, const Bytes& rgb) {
    Bytes b;
    auto u16 = [&](std::uint32_t v) {
        b.push_back(static_cast<std::uint8_t>(v & 0xff));
        b.push_back(static_cast<std::uint8_t>(v >> 8));
    };
    auto u32 = [&](std::uint32_t v) {
        u16(v & 0xffff);
        u16(v >> 16);
    };
    const std::uint32_t entries = 10;
    const std::uint32_t bps_offset = 8 + 2 + entries * 12 + 4;
    const std::uint32_t data_offset = bps_offset + 6;
    b.insert(b.end(), {'I', 'I', 42, 0});
    u32(8);
    u16(entries);
    auto entry = [&](std::uint32_t tag, std::uint32_t type, std::uint32_t count, std::uint32_t value) {
        u16(tag);
        u16(type);
        u32(count);
        if (type == 3 && count == 1) {
            u16(value);
            u16(0);
        } else {
            u32(value);
        }
    };
    entry(256, 4, 1, w);                 // ImageWidth
    entry(257, 4, 1, h);                 // ImageLength
    entry(258, 3, 3, bps_offset);        // BitsPerSample 8,8,8
    entry(259, 3, 1, 1);                 // Compression none
    entry(262, 3, 1, 2);                 // RGB
    entry(273, 4, 1, data_offset);       // StripOffsets
    entry(277, 3, 1, 3);                 // SamplesPerPixel
    entry(278, 4, 1, h);                 // RowsPerStrip
    entry(279, 4, 1, w * h * 3);         // StripByteCounts
    entry(284, 3, 1, 1);                 // PlanarConfiguration
    u32(0);
    u16(8);
    u16(8);
    u16(8);
    REQUIRE(b.size() == data_offset);
    b.insert(b.end(), rgb.begin(), rgb.end());
    return b;
}

// A PNG made of its signature, an IHDR with a valid CRC and an IEND: enough for the header.
Bytes png_with_ihdr(std::uint32_t w, std::uint32_t h) {
    Bytes b = {0x89, 'P', 'N', 'G', 0x0d, 0x0a, 0x1a, 0x0a};
    auto chunk = [&](const char* type, const Bytes& data) {
        const auto n = static_cast<std::uint32_t>(data.size());
        for (int s = 24; s >= 0; s -= 8) b.push_back(static_cast<std::uint8_t>(n >> s));
        Bytes body(type, type + 4);
        body.insert(body.end(), data.begin(), data.end());
        b.insert(b.end(), body.begin(), body.end());
        const auto crc = static_cast<std::uint32_t>(crc32(0, body.data(), static_cast<uInt>(body.size())));
        for (int s = 24; s >= 0; s -= 8) b.push_back(static_cast<std::uint8_t>(crc >> s));
    };
    Bytes ihdr;
    for (std::uint32_t v : {w, h})
        for (int s = 24; s >= 0; s -= 8) ihdr.push_back(static_cast<std::uint8_t>(v >> s));
    ihdr.insert(ihdr.end(), {8, 2, 0, 0, 0});  // 8-bit RGB
    chunk("IHDR", ihdr);
    chunk("IEND", {});
    return b;
}

// Keeps files small for a while: writes past the limit fail with EFBIG.
class FileSizeLimit {
public:
    explicit FileSizeLimit(rlim_t bytes) {
        REQUIRE(::getrlimit(RLIMIT_FSIZE, &old_) == 0);
        old_handler_ = std::signal(SIGXFSZ, SIG_IGN);
        rlimit lim = old_;
        lim.rlim_cur = bytes;
        REQUIRE(::setrlimit(RLIMIT_FSIZE, &lim) == 0);
    }
    ~FileSizeLimit() {
        ::setrlimit(RLIMIT_FSIZE, &old_);
        std::signal(SIGXFSZ, old_handler_);
    }

private:
    rlimit old_{};
    void (*old_handler_)(int) = nullptr;
};

}  // namespace

// ================================================================================================

TEST_CASE("format_from_extension and format_name", "[io]") {
    CHECK(vn::format_from_extension("a.png") == ImageFormat::Png);
    CHECK(vn::format_from_extension("dir.d/A.PNG") == ImageFormat::Png);
    CHECK(vn::format_from_extension("x.jpg") == ImageFormat::Jpeg);
    CHECK(vn::format_from_extension("x.JPEG") == ImageFormat::Jpeg);
    CHECK(vn::format_from_extension("x.tif") == ImageFormat::Tiff);
    CHECK(vn::format_from_extension("/a.b/x.TiFf") == ImageFormat::Tiff);
    CHECK_THAT(error_of(ErrorKind::Usage, [] { vn::format_from_extension("x.bmp"); }), Catch::Contains("'.bmp'"));
    error_of(ErrorKind::Usage, [] { vn::format_from_extension("noext"); });
    error_of(ErrorKind::Usage, [] { vn::format_from_extension("dir.png/noext"); });
    CHECK(std::string(vn::format_name(ImageFormat::Png)) == "PNG");
    CHECK(std::string(vn::format_name(ImageFormat::Jpeg)) == "JPEG");
    CHECK(std::string(vn::format_name(ImageFormat::Tiff)) == "TIFF");
}

TEST_CASE("PNG and TIFF round trips are exact", "[io]") {
    TempDir dir;
    const std::pair<int, int> sizes[] = {{1, 1}, {1, 7}, {7, 1}, {17, 13}, {256, 3}, {300, 257}, {5000, 20}};
    std::uint64_t seed = 1;
    for (const auto& [w, h] : sizes) {
        for (const char* ext : {"png", "tif", "tiff"}) {
            INFO(w << "x" << h << " ." << ext);
            const RgbImage img = vn::test::random_image(w, h, seed++);
            const std::string path = dir.file("rt." + std::string(ext));
            vn::write_image(path, img.view());
            ImageInfo info;
            const RgbImage back = vn::read_image(path, &info);
            CHECK(same_pixels(img, back));
            CHECK(info.width == w);
            CHECK(info.height == h);
            CHECK(info.conversion.empty());
            CHECK(info.format == (ext[0] == 'p' ? ImageFormat::Png : ImageFormat::Tiff));
        }
    }
    CHECK(list_dir(dir.path()) == std::vector<std::string>{"rt.png", "rt.tif", "rt.tiff"});
}

TEST_CASE("the resolution (DPI) goes through every format", "[io]") {
    TempDir dir;
    const RgbImage img = vn::test::random_image(40, 30, 11);
    for (const char* ext : {"png", "jpg", "tif"}) {
        INFO(ext);
        const std::string path = dir.file(std::string("dpi.") + ext);
        vn::WriteOptions wo;
        wo.pixels_per_metre_x = 300 / 0.0254;  // 300 x 150 dpi
        wo.pixels_per_metre_y = 150 / 0.0254;
        vn::write_image(path, img.view(), wo);
        ImageInfo info;
        vn::read_image(path, &info);
        // PNG stores whole pixels per metre (11811: 299.999 dpi), JPEG whole dots per inch, TIFF a float.
        CHECK(info.pixels_per_metre_x * 0.0254 == Approx(300).margin(0.02));
        CHECK(info.pixels_per_metre_y * 0.0254 == Approx(150).margin(0.02));  // PNG: +-0.5 px/m
        const std::string plain = dir.file(std::string("plain.") + ext);
        vn::write_image(plain, img.view());
        vn::read_image(plain, &info);
        CHECK(info.pixels_per_metre_x == 0);
        CHECK(info.pixels_per_metre_y == 0);
    }
}

TEST_CASE("writers honour the view's stride", "[io]") {
    TempDir dir;
    const RgbImage big = vn::test::random_image(40, 30, 7);
    vn::RgbView sub = big.view();  // the 25x20 block at (10, 5)
    sub.data = big.pixels.data() + 5 * big.stride() + 10 * 3;
    sub.width = 25;
    sub.height = 20;
    RgbImage expect(25, 20);
    for (int y = 0; y < 20; ++y) std::memcpy(expect.span().row(y), sub.row(y), 75);
    for (const char* name : {"s.png", "s.tif"}) {
        vn::write_image(dir.file(name), sub);
        CHECK(same_pixels(vn::read_image(dir.file(name)), expect));
    }
    // JPEG: a smooth picture, so that a wrong stride could not hide in the coding error.
    const RgbImage smooth = smooth_image(40, 30);
    sub.data = smooth.pixels.data() + 5 * smooth.stride() + 10 * 3;
    for (int y = 0; y < 20; ++y) std::memcpy(expect.span().row(y), sub.row(y), 75);
    vn::write_image(dir.file("s.jpg"), sub, {95});
    CHECK(mean_abs_diff(vn::read_image(dir.file("s.jpg")), expect) < 2.0);
}

TEST_CASE("written TIFFs are stripped, deflated RGB", "[io]") {
    TempDir dir;
    const RgbImage img = vn::test::random_image(300, 500, 3);
    vn::write_image(dir.file("a.tif"), img.view());
    TIFF* t = TIFFOpen(dir.file("a.tif").c_str(), "r");
    REQUIRE(t);
    std::uint16_t compression = 0, bits = 0, spp = 0, photometric = 0;
    std::uint32_t rps = 0;
    TIFFGetField(t, TIFFTAG_COMPRESSION, &compression);
    TIFFGetField(t, TIFFTAG_BITSPERSAMPLE, &bits);
    TIFFGetField(t, TIFFTAG_SAMPLESPERPIXEL, &spp);
    TIFFGetField(t, TIFFTAG_PHOTOMETRIC, &photometric);
    TIFFGetField(t, TIFFTAG_ROWSPERSTRIP, &rps);
    CHECK((compression == COMPRESSION_ADOBE_DEFLATE || compression == COMPRESSION_DEFLATE));
    CHECK(bits == 8);
    CHECK(spp == 3);
    CHECK(photometric == PHOTOMETRIC_RGB);
    CHECK(TIFFIsTiled(t) == 0);
    CHECK(rps == 65536 / 900);
    CHECK(TIFFNumberOfStrips(t) == (500 + rps - 1) / rps);
    TIFFClose(t);
}

TEST_CASE("JPEG round trip is close", "[io]") {
    TempDir dir;
    for (const auto& [w, h] : {std::pair{1, 1}, std::pair{97, 61}, std::pair{640, 480}}) {
        INFO(w << "x" << h);
        const RgbImage img = smooth_image(w, h);
        vn::write_image(dir.file("a.jpg"), img.view());
        ImageInfo info;
        const RgbImage back = vn::read_image(dir.file("a.jpg"), &info);
        REQUIRE(back.width == w);
        REQUIRE(back.height == h);
        CHECK(info.format == ImageFormat::Jpeg);
        CHECK(info.conversion.empty());
        CHECK(mean_abs_diff(img, back) < 2.0);
        vn::write_image(dir.file("b.JPEG"), img.view(), {50});
        CHECK(mean_abs_diff(img, vn::read_image(dir.file("b.JPEG"))) < 4.0);
    }
    const RgbImage img = smooth_image(8, 8);
    error_of(ErrorKind::Usage, [&] { vn::write_image(dir.file("q.jpg"), img.view(), {0}); });
    error_of(ErrorKind::Usage, [&] { vn::write_image(dir.file("q.jpg"), img.view(), {101}); });
    CHECK(list_dir(dir.path()) == std::vector<std::string>{"a.jpg", "b.JPEG"});
}

TEST_CASE("RGBA PNG is composited onto white exactly", "[io][png]") {
    TempDir dir;
    for (const bool interlace : {false, true}) {
        PngSpec s;
        s.width = 256;
        s.height = 3;
        s.color_type = PNG_COLOR_TYPE_RGB_ALPHA;
        s.interlace = interlace;
        const int base[3] = {0, 200, 255};
        for (int y = 0; y < 3; ++y)
            for (int a = 0; a < 256; ++a)
                s.rows.insert(s.rows.end(), {static_cast<std::uint8_t>(base[y]), static_cast<std::uint8_t>(255 - base[y]),
                                             static_cast<std::uint8_t>(a / 2 + y), static_cast<std::uint8_t>(a)});
        write_png_spec(dir.file("rgba.png"), s);
        ImageInfo info;
        const RgbImage img = vn::read_image(dir.file("rgba.png"), &info);
        CHECK_THAT(info.conversion, Catch::Contains("RGBA") && Catch::Contains("white"));
        for (int y = 0; y < 3; ++y)
            for (int a = 0; a < 256; ++a) {
                INFO("interlace " << interlace << " y " << y << " alpha " << a);
                const auto p = px(img, a, y);
                CHECK(int(p[0]) == over_white(base[y], a, 255));
                CHECK(int(p[1]) == over_white(255 - base[y], a, 255));
                CHECK(int(p[2]) == over_white(a / 2 + y, a, 255));
            }
        CHECK(px(img, 0, 1) == std::array<std::uint8_t, 3>{255, 255, 255});
        CHECK(px(img, 255, 1) == std::array<std::uint8_t, 3>{200, 55, 128});
        CHECK(px(img, 128, 0) == std::array<std::uint8_t, 3>{127, 255, 159});  // (0, 255, 64) at alpha 128
    }
}

TEST_CASE("gray and gray+alpha PNG expand to RGB", "[io][png]") {
    TempDir dir;
    PngSpec g;
    g.width = 256;
    g.height = 2;
    g.color_type = PNG_COLOR_TYPE_GRAY;
    for (int y = 0; y < 2; ++y)
        for (int x = 0; x < 256; ++x) g.rows.push_back(static_cast<std::uint8_t>(y ? 255 - x : x));
    write_png_spec(dir.file("g.png"), g);
    ImageInfo info;
    RgbImage img = vn::read_image(dir.file("g.png"), &info);
    CHECK_THAT(info.conversion, Catch::Contains("grayscale"));
    for (int x = 0; x < 256; ++x) {
        const auto v = static_cast<std::uint8_t>(x);
        CHECK(px(img, x, 0) == std::array<std::uint8_t, 3>{v, v, v});
    }

    PngSpec ga = g;
    ga.color_type = PNG_COLOR_TYPE_GRAY_ALPHA;
    ga.rows.clear();
    for (int y = 0; y < 2; ++y)
        for (int x = 0; x < 256; ++x) ga.rows.insert(ga.rows.end(), {static_cast<std::uint8_t>(y * 100), static_cast<std::uint8_t>(x)});
    write_png_spec(dir.file("ga.png"), ga);
    img = vn::read_image(dir.file("ga.png"), &info);
    CHECK_THAT(info.conversion, Catch::Contains("grayscale") && Catch::Contains("white"));
    for (int y = 0; y < 2; ++y)
        for (int x = 0; x < 256; ++x) {
            const auto v = static_cast<std::uint8_t>(over_white(y * 100, x, 255));
            CHECK(px(img, x, y) == std::array<std::uint8_t, 3>{v, v, v});
        }
}

TEST_CASE("1, 2 and 4-bit gray PNG expand to 8-bit", "[io][png]") {
    TempDir dir;
    for (const int bits : {1, 2, 4}) {
        INFO(bits << "-bit");
        const int levels = 1 << bits;
        const int w = 13, h = 3;
        PngSpec s;
        s.width = w;
        s.height = h;
        s.color_type = PNG_COLOR_TYPE_GRAY;
        s.bit_depth = bits;
        const int rowbytes = (w * bits + 7) / 8;
        std::vector<int> values;
        for (int y = 0; y < h; ++y) {
            Bytes row(static_cast<std::size_t>(rowbytes), 0);
            for (int x = 0; x < w; ++x) {
                const int v = (x + 5 * y) % levels;
                values.push_back(v);
                const int bit = x * bits;
                row[static_cast<std::size_t>(bit / 8)] |= static_cast<std::uint8_t>(v << (8 - bits - bit % 8));
            }
            s.rows.insert(s.rows.end(), row.begin(), row.end());
        }
        write_png_spec(dir.file("low.png"), s);
        ImageInfo info;
        const RgbImage img = vn::read_image(dir.file("low.png"), &info);
        CHECK_THAT(info.conversion, Catch::Contains("grayscale") && Catch::Contains(std::to_string(bits) + "-bit"));
        for (int y = 0; y < h; ++y)
            for (int x = 0; x < w; ++x) {
                const auto v = static_cast<std::uint8_t>(values[static_cast<std::size_t>(y * w + x)] * 255 / (levels - 1));
                CHECK(px(img, x, y) == std::array<std::uint8_t, 3>{v, v, v});
            }
    }
}

TEST_CASE("palette PNG is expanded, transparency composited", "[io][png]") {
    TempDir dir;
    const std::vector<png_color> palette = {{10, 20, 30}, {200, 100, 50}, {0, 0, 0}, {255, 255, 255}, {1, 2, 3}};
    for (const int bits : {8, 4}) {
        PngSpec s;
        s.width = 5;
        s.height = 2;
        s.color_type = PNG_COLOR_TYPE_PALETTE;
        s.bit_depth = bits;
        s.palette = palette;
        if (bits == 8) {
            s.rows = {0, 1, 2, 3, 4, 4, 3, 2, 1, 0};
        } else {
            s.rows = {0x01, 0x23, 0x40, 0x43, 0x21, 0x00};
        }
        write_png_spec(dir.file("p.png"), s);
        ImageInfo info;
        RgbImage img = vn::read_image(dir.file("p.png"), &info);
        CHECK(info.conversion == "palette expanded");
        for (int x = 0; x < 5; ++x) {
            const auto& c = palette[static_cast<std::size_t>(x)];
            CHECK(px(img, x, 0) == std::array<std::uint8_t, 3>{c.red, c.green, c.blue});
            const auto& d = palette[static_cast<std::size_t>(4 - x)];
            CHECK(px(img, x, 1) == std::array<std::uint8_t, 3>{d.red, d.green, d.blue});
        }

        s.trns_alpha = {0, 128, 255};  // entries 3 and 4 stay opaque
        write_png_spec(dir.file("pt.png"), s);
        img = vn::read_image(dir.file("pt.png"), &info);
        CHECK_THAT(info.conversion, Catch::Contains("palette") && Catch::Contains("white"));
        CHECK(px(img, 0, 0) == std::array<std::uint8_t, 3>{255, 255, 255});
        CHECK(px(img, 1, 0) == std::array<std::uint8_t, 3>{static_cast<std::uint8_t>(over_white(200, 128, 255)),
                                                           static_cast<std::uint8_t>(over_white(100, 128, 255)),
                                                           static_cast<std::uint8_t>(over_white(50, 128, 255))});
        CHECK(px(img, 2, 0) == std::array<std::uint8_t, 3>{0, 0, 0});
        CHECK(px(img, 4, 0) == std::array<std::uint8_t, 3>{1, 2, 3});
    }
}

TEST_CASE("RGB PNG with a transparent colour", "[io][png]") {
    TempDir dir;
    PngSpec s;
    s.width = 2;
    s.height = 1;
    s.rows = {10, 20, 30, 10, 20, 31};
    s.trns_color = true;
    s.trns_value.red = 10;
    s.trns_value.green = 20;
    s.trns_value.blue = 30;
    write_png_spec(dir.file("t.png"), s);
    ImageInfo info;
    const RgbImage img = vn::read_image(dir.file("t.png"), &info);
    CHECK_THAT(info.conversion, Catch::Contains("white"));
    CHECK(px(img, 0, 0) == std::array<std::uint8_t, 3>{255, 255, 255});
    CHECK(px(img, 1, 0) == std::array<std::uint8_t, 3>{10, 20, 31});
}

TEST_CASE("16-bit PNG is reduced with rounding", "[io][png]") {
    TempDir dir;
    for (const bool interlace : {false, true}) {
        PngSpec s;
        s.width = 256;
        s.height = 256;
        s.bit_depth = 16;
        s.interlace = interlace;
        for (std::uint32_t v = 0; v < 65536; ++v) {
            put16(s.rows, v);
            put16(s.rows, 65535 - v);
            put16(s.rows, (v * 7919u) & 0xffffu);
        }
        write_png_spec(dir.file("16.png"), s);
        ImageInfo info;
        const RgbImage img = vn::read_image(dir.file("16.png"), &info);
        CHECK(info.conversion == "16-bit reduced to 8-bit");
        int bad = 0;
        for (std::uint32_t v = 0; v < 65536; ++v) {
            const auto p = px(img, static_cast<int>(v % 256), static_cast<int>(v / 256));
            const auto r = [](std::uint32_t x) { return static_cast<int>(std::lround(x * 255.0 / 65535.0)); };
            bad += int(p[0]) != r(v);
            bad += int(p[1]) != r(65535 - v);
            bad += int(p[2]) != r((v * 7919u) & 0xffffu);
        }
        CHECK(bad == 0);
    }
}

TEST_CASE("16-bit RGBA and gray+alpha PNG are composited exactly", "[io][png]") {
    TempDir dir;
    const std::uint32_t alphas[] = {0, 1, 257, 32767, 32768, 65534, 65535};
    const std::uint32_t colors[] = {0, 1000, 40000, 65535};
    PngSpec s;
    s.width = 7;
    s.height = 4;
    s.bit_depth = 16;
    s.color_type = PNG_COLOR_TYPE_RGB_ALPHA;
    PngSpec g = s;
    g.color_type = PNG_COLOR_TYPE_GRAY_ALPHA;
    for (std::uint32_t c : colors)
        for (std::uint32_t a : alphas) {
            put16(s.rows, c);
            put16(s.rows, 65535 - c);
            put16(s.rows, c / 2);
            put16(s.rows, a);
            put16(g.rows, c);
            put16(g.rows, a);
        }
    write_png_spec(dir.file("s.png"), s);
    write_png_spec(dir.file("g.png"), g);
    ImageInfo info;
    const RgbImage img = vn::read_image(dir.file("s.png"), &info);
    CHECK_THAT(info.conversion, Catch::Contains("RGBA") && Catch::Contains("16-bit"));
    const RgbImage gray = vn::read_image(dir.file("g.png"), &info);
    CHECK_THAT(info.conversion, Catch::Contains("grayscale") && Catch::Contains("16-bit"));
    for (int y = 0; y < 4; ++y)
        for (int x = 0; x < 7; ++x) {
            const double c = colors[y], a = alphas[x];
            INFO("c " << c << " a " << a);
            CHECK(int(px(img, x, y)[0]) == over_white(c, a, 65535));
            CHECK(int(px(img, x, y)[1]) == over_white(65535 - c, a, 65535));
            CHECK(int(px(img, x, y)[2]) == over_white(std::floor(c / 2), a, 65535));
            CHECK(int(px(gray, x, y)[1]) == over_white(c, a, 65535));
        }
}

TEST_CASE("TIFF conversions", "[io][tiff]") {
    TempDir dir;
    const int w = 19, h = 11;
    ImageInfo info;

    SECTION("8-bit gray, min-is-black and min-is-white, strips of 4 rows") {
        TiffSpec s;
        s.width = w;
        s.height = h;
        s.samples = 1;
        s.photometric = PHOTOMETRIC_MINISBLACK;
        s.rows_per_strip = 4;
        s.compression = COMPRESSION_LZW;
        for (int i = 0; i < w * h; ++i) s.data.push_back(static_cast<std::uint8_t>(i * 7));
        write_tiff_spec(dir.file("g.tif"), {s});
        RgbImage img = vn::read_image(dir.file("g.tif"), &info);
        CHECK(info.format == ImageFormat::Tiff);
        CHECK(info.conversion == "grayscale expanded to RGB");
        for (int i = 0; i < w * h; ++i) {
            const auto v = static_cast<std::uint8_t>(i * 7);
            CHECK(px(img, i % w, i / w) == std::array<std::uint8_t, 3>{v, v, v});
        }
        s.photometric = PHOTOMETRIC_MINISWHITE;
        write_tiff_spec(dir.file("gw.tif"), {s});
        img = vn::read_image(dir.file("gw.tif"), &info);
        for (int i = 0; i < w * h; ++i) {
            const auto v = static_cast<std::uint8_t>(255 - static_cast<std::uint8_t>(i * 7));
            CHECK(px(img, i % w, i / w) == std::array<std::uint8_t, 3>{v, v, v});
        }
    }

    SECTION("16-bit RGB and gray, rounded") {
        TiffSpec s;
        s.width = 256;
        s.height = 256;
        s.bits = 16;
        s.compression = COMPRESSION_ADOBE_DEFLATE;
        std::vector<std::uint16_t> rgb, gray;
        for (std::uint32_t v = 0; v < 65536; ++v) {
            rgb.insert(rgb.end(), {static_cast<std::uint16_t>(v), static_cast<std::uint16_t>(65535 - v),
                                   static_cast<std::uint16_t>((v * 7919u) & 0xffffu)});
            gray.push_back(static_cast<std::uint16_t>(v));
        }
        s.data = native16(rgb);
        write_tiff_spec(dir.file("16.tif"), {s});
        TiffSpec g = s;
        g.samples = 1;
        g.photometric = PHOTOMETRIC_MINISBLACK;
        g.data = native16(gray);
        write_tiff_spec(dir.file("16g.tif"), {g});
        const RgbImage img = vn::read_image(dir.file("16.tif"), &info);
        CHECK(info.conversion == "16-bit reduced to 8-bit");
        const RgbImage gimg = vn::read_image(dir.file("16g.tif"), &info);
        CHECK(info.conversion == "grayscale expanded to RGB, 16-bit reduced to 8-bit");
        const auto r = [](std::uint32_t x) { return static_cast<int>(std::lround(x * 255.0 / 65535.0)); };
        int bad = 0;
        for (std::uint32_t v = 0; v < 65536; ++v) {
            const int x = static_cast<int>(v % 256), y = static_cast<int>(v / 256);
            bad += int(px(img, x, y)[0]) != r(v);
            bad += int(px(img, x, y)[1]) != r(65535 - v);
            bad += int(px(img, x, y)[2]) != r((v * 7919u) & 0xffffu);
            bad += int(px(gimg, x, y)[0]) != r(v) || int(px(gimg, x, y)[2]) != r(v);
        }
        CHECK(bad == 0);
    }

    SECTION("RGBA with unassociated and associated alpha") {
        TiffSpec s;
        s.width = 256;
        s.height = 1;
        s.samples = 4;
        s.extra = EXTRASAMPLE_UNASSALPHA;
        for (int a = 0; a < 256; ++a) s.data.insert(s.data.end(), {200, 50, 0, static_cast<std::uint8_t>(a)});
        write_tiff_spec(dir.file("ua.tif"), {s});
        RgbImage img = vn::read_image(dir.file("ua.tif"), &info);
        CHECK(info.conversion == "RGBA composited onto white");
        for (int a = 0; a < 256; ++a) {
            INFO("alpha " << a);
            CHECK(int(px(img, a, 0)[0]) == over_white(200, a, 255));
            CHECK(int(px(img, a, 0)[1]) == over_white(50, a, 255));
            CHECK(int(px(img, a, 0)[2]) == over_white(0, a, 255));
        }
        // The same pixels premultiplied (associated alpha) give the same result.
        s.extra = EXTRASAMPLE_ASSOCALPHA;
        s.data.clear();
        for (int a = 0; a < 256; ++a)
            s.data.insert(s.data.end(), {static_cast<std::uint8_t>((200 * a + 127) / 255),
                                         static_cast<std::uint8_t>((50 * a + 127) / 255), 0, static_cast<std::uint8_t>(a)});
        write_tiff_spec(dir.file("aa.tif"), {s});
        img = vn::read_image(dir.file("aa.tif"), &info);
        for (int a = 0; a < 256; ++a) {
            INFO("alpha " << a);
            CHECK(std::abs(int(px(img, a, 0)[0]) - over_white(200, a, 255)) <= 1);
            CHECK(int(px(img, a, 0)[2]) == 255 - a);
        }
        // Tiled RGBA goes through libtiff's RGBA reader: same answer for unassociated alpha.
        s.extra = EXTRASAMPLE_UNASSALPHA;
        s.data.clear();
        s.height = 3;
        for (int y = 0; y < 3; ++y)
            for (int a = 0; a < 256; ++a) s.data.insert(s.data.end(), {200, 50, 0, static_cast<std::uint8_t>(a)});
        s.tile = 32;
        write_tiff_spec(dir.file("uat.tif"), {s});
        img = vn::read_image(dir.file("uat.tif"), &info);
        CHECK(info.conversion == "RGBA composited onto white");
        for (int a = 0; a < 256; ++a) {
            INFO("alpha " << a);
            CHECK(int(px(img, a, 2)[0]) == over_white(200, a, 255));
            CHECK(int(px(img, a, 2)[1]) == over_white(50, a, 255));
        }
    }

    SECTION("tiled RGB, palette and multi-page") {
        const RgbImage rnd = vn::test::random_image(70, 45, 11);
        TiffSpec s;
        s.width = 70;
        s.height = 45;
        s.tile = 32;
        s.compression = COMPRESSION_ADOBE_DEFLATE;
        s.data = rnd.pixels;
        write_tiff_spec(dir.file("tiled.tif"), {s});
        CHECK(same_pixels(vn::read_image(dir.file("tiled.tif"), &info), rnd));
        CHECK(info.conversion.empty());

        TiffSpec p;
        p.width = 4;
        p.height = 1;
        p.samples = 1;
        p.bits = 8;
        p.photometric = PHOTOMETRIC_PALETTE;
        p.colormap.assign(3 * 256, 0);
        const std::uint16_t colours[4][3] = {{0, 0, 0}, {65535, 0, 0}, {0, 32896, 0}, {65535, 65535, 65535}};
        for (int i = 0; i < 4; ++i)
            for (int c = 0; c < 3; ++c) p.colormap[static_cast<std::size_t>(c * 256 + i)] = colours[i][c];
        p.data = {0, 1, 2, 3};
        write_tiff_spec(dir.file("pal.tif"), {p});
        const RgbImage pal = vn::read_image(dir.file("pal.tif"), &info);
        CHECK(info.conversion == "palette expanded");
        CHECK(px(pal, 0, 0) == std::array<std::uint8_t, 3>{0, 0, 0});
        CHECK(px(pal, 1, 0) == std::array<std::uint8_t, 3>{255, 0, 0});
        CHECK(px(pal, 2, 0) == std::array<std::uint8_t, 3>{0, 128, 0});
        CHECK(px(pal, 3, 0) == std::array<std::uint8_t, 3>{255, 255, 255});

        // Page 0 is read; the second page is a different size.
        TiffSpec second = s;
        second.width = 10;
        second.height = 10;
        second.tile = 0;
        second.data = vn::test::random_image(10, 10, 12).pixels;
        TiffSpec first = s;
        first.tile = 0;
        write_tiff_spec(dir.file("pages.tif"), {first, second});
        CHECK(same_pixels(vn::read_image(dir.file("pages.tif"), &info), rnd));
    }
}

TEST_CASE("JPEG grayscale and Adobe CMYK", "[io][jpeg]") {
    TempDir dir;
    ImageInfo info;
    const int w = 32, h = 16;
    Bytes gray;
    for (int y = 0; y < h; ++y)
        for (int x = 0; x < w; ++x) gray.push_back(static_cast<std::uint8_t>(x < 16 ? 40 : 220));
    write_jpeg_raw(dir.file("g.jpg"), w, h, 1, JCS_GRAYSCALE, gray);
    RgbImage img = vn::read_image(dir.file("g.jpg"), &info);
    CHECK(info.conversion == "grayscale expanded to RGB");
    for (int y = 0; y < h; ++y)
        for (int x = 0; x < w; ++x) {
            const auto p = px(img, x, y);
            CHECK(p[0] == p[1]);
            CHECK(p[1] == p[2]);
            CHECK(std::abs(int(p[0]) - (x < 16 ? 40 : 220)) <= 3);
        }

    // Adobe CMYK stores inverted values: 255 means no ink. Left half: no ink (white); right
    // half: full cyan plus half black -> R = 0, G = B = 255 * (1 - 0.5).
    Bytes cmyk;
    for (int y = 0; y < h; ++y)
        for (int x = 0; x < w; ++x) {
            if (x < 16) cmyk.insert(cmyk.end(), {255, 255, 255, 255});
            else cmyk.insert(cmyk.end(), {0, 255, 255, 128});
        }
    write_jpeg_raw(dir.file("c.jpg"), w, h, 4, JCS_CMYK, cmyk);
    img = vn::read_image(dir.file("c.jpg"), &info);
    CHECK_THAT(info.conversion, Catch::Contains("CMYK"));
    for (int y = 0; y < h; ++y) {
        const auto l = px(img, 4, y), r = px(img, 28, y);
        CHECK(int(l[0]) >= 252);
        CHECK(int(l[1]) >= 252);
        CHECK(int(l[2]) >= 252);
        CHECK(int(r[0]) <= 3);
        CHECK(std::abs(int(r[1]) - 128) <= 3);
        CHECK(std::abs(int(r[2]) - 128) <= 3);
    }
}

TEST_CASE("the format comes from the signature, not the name", "[io]") {
    TempDir dir;
    const RgbImage img = vn::test::random_image(9, 4, 5);
    vn::write_image(dir.file("real.png"), img.view());
    vn::write_image(dir.file("real.tif"), img.view());
    vn::write_image(dir.file("real.jpg"), smooth_image(9, 4).view());
    REQUIRE(::rename(dir.file("real.png").c_str(), dir.file("png.jpg").c_str()) == 0);
    REQUIRE(::rename(dir.file("real.tif").c_str(), dir.file("tif.png").c_str()) == 0);
    REQUIRE(::rename(dir.file("real.jpg").c_str(), dir.file("jpg").c_str()) == 0);
    ImageInfo info;
    CHECK(same_pixels(vn::read_image(dir.file("png.jpg"), &info), img));
    CHECK(info.format == ImageFormat::Png);
    CHECK(same_pixels(vn::read_image(dir.file("tif.png"), &info), img));
    CHECK(info.format == ImageFormat::Tiff);
    CHECK(vn::read_image(dir.file("jpg"), &info).width == 9);
    CHECK(info.format == ImageFormat::Jpeg);
}

TEST_CASE("truncated and corrupt files are input errors", "[io]") {
    TempDir dir;
    const RgbImage rnd = vn::test::random_image(64, 64, 21);
    const RgbImage smooth = smooth_image(256, 256);

    SECTION("PNG") {
        const std::string path = dir.file("t.png");
        vn::write_image(path, rnd.view());
        const Bytes full = read_bytes(path);
        for (const std::size_t keep : {full.size() / 2, full.size() - 12 /* no IEND */, std::size_t{40}, std::size_t{8}}) {
            INFO("kept " << keep << " of " << full.size());
            write_bytes(path, full);
            truncate_to(path, keep);
            const std::string msg = error_of(ErrorKind::Input, [&] { vn::read_image(path); });
            CHECK_THAT(msg, Catch::StartsWith(path + ": "));
            CHECK(msg.find('\n') == std::string::npos);
        }
        // A flipped bit inside the image data: IDAT CRC mismatch.
        Bytes bad = full;
        bad[full.size() / 2] ^= 0x10;
        write_bytes(path, bad);
        CHECK_THAT(error_of(ErrorKind::Input, [&] { vn::read_image(path); }), Catch::Contains("PNG"));
    }

    SECTION("JPEG") {
        const std::string path = dir.file("t.jpg");
        vn::write_image(path, smooth.view());
        const Bytes full = read_bytes(path);
        for (const std::size_t keep : {full.size() * 6 / 10, full.size() - 2 /* no EOI */, std::size_t{100}, std::size_t{3}}) {
            INFO("kept " << keep << " of " << full.size());
            write_bytes(path, full);
            truncate_to(path, keep);
            const std::string msg = error_of(ErrorKind::Input, [&] { vn::read_image(path); });
            CHECK_THAT(msg, Catch::StartsWith(path + ": "));
            if (keep > 1000) CHECK_THAT(msg, Catch::Contains("Premature end"));
        }
    }

    SECTION("TIFF written by us (directory at the end)") {
        const std::string path = dir.file("t.tif");
        vn::write_image(path, rnd.view());
        const Bytes full = read_bytes(path);
        // libtiff puts the directory last; without its final next-directory link it still reads,
        // so cut into the directory entries themselves.
        for (const std::size_t keep : {full.size() / 2, full.size() - 30, std::size_t{8}, std::size_t{4}}) {
            INFO("kept " << keep << " of " << full.size());
            write_bytes(path, full);
            truncate_to(path, keep);
            CHECK_THAT(error_of(ErrorKind::Input, [&] { vn::read_image(path); }), Catch::StartsWith(path + ": "));
        }
    }

    SECTION("TIFF with the pixels last") {
        const std::string path = dir.file("h.tif");
        const Bytes full = handmade_tiff(64, 64, rnd.pixels);
        write_bytes(path, full);
        CHECK(same_pixels(vn::read_image(path), rnd));
        truncate_to(path, full.size() - 1000);
        CHECK_THAT(error_of(ErrorKind::Input, [&] { vn::read_image(path); }), Catch::Contains("TIFF"));
    }

    SECTION("TIFF with corrupt deflate data") {
        // Deflate in TIFF carries no checksum that libtiff checks, so not every corruption can
        // be seen; a broken zlib header can. The first strip starts right after the header.
        const std::string path = dir.file("c.tif");
        vn::write_image(path, smooth.view());
        Bytes bytes = read_bytes(path);
        for (std::size_t i = 8; i < 16; ++i) bytes[i] = 0xff;
        write_bytes(path, bytes);
        CHECK_THAT(error_of(ErrorKind::Input, [&] { vn::read_image(path); }), Catch::Contains("Decoding error"));
    }
}

TEST_CASE("sizes are checked before pixels are allocated", "[io]") {
    TempDir dir;
    write_bytes(dir.file("huge.png"), png_with_ihdr(100000, 100000));
    CHECK(error_of(ErrorKind::Input, [&] { vn::read_image(dir.file("huge.png")); }) ==
          dir.file("huge.png") +
              ": image is 100000x100000 = 10000000000 pixels, more than the limit of 2147483648 (see --max-pixels)");
    write_bytes(dir.file("wide.png"), png_with_ihdr(0x7fffffff, 2));
    CHECK_THAT(error_of(ErrorKind::Input, [&] { vn::read_image(dir.file("wide.png")); }),
               Catch::Contains("2147483647x2 = 4294967294 pixels"));
    // Wider than libpng's default limit of a million but within ours: libpng must not refuse it
    // by its own limit (this file then fails for lack of image data).
    write_bytes(dir.file("wide2.png"), png_with_ihdr(3000000, 1));
    const std::string wide2 = error_of(ErrorKind::Input, [&] { vn::read_image(dir.file("wide2.png")); });
    CHECK(wide2.find("limit") == std::string::npos);
    write_bytes(dir.file("zero.png"), png_with_ihdr(0, 10));
    CHECK_THAT(error_of(ErrorKind::Input, [&] { vn::read_image(dir.file("zero.png")); }), Catch::Contains("no pixels"));
    write_bytes(dir.file("zero2.png"), png_with_ihdr(10, 0));
    error_of(ErrorKind::Input, [&] { vn::read_image(dir.file("zero2.png")); });

    // A JPEG whose frame header claims 60000x60000.
    vn::write_image(dir.file("s.jpg"), smooth_image(16, 16).view());
    Bytes jpg = read_bytes(dir.file("s.jpg"));
    bool patched = false;
    for (std::size_t i = 2; i + 9 < jpg.size(); ++i)
        if (jpg[i] == 0xff && jpg[i + 1] == 0xc0) {
            jpg[i + 5] = 0xea;  // height 60000 = 0xea60
            jpg[i + 6] = 0x60;
            jpg[i + 7] = 0xea;  // width
            jpg[i + 8] = 0x60;
            patched = true;
            break;
        }
    REQUIRE(patched);
    write_bytes(dir.file("huge.jpg"), jpg);
    CHECK_THAT(error_of(ErrorKind::Input, [&] { vn::read_image(dir.file("huge.jpg")); }),
               Catch::Contains("60000x60000 = 3600000000 pixels"));

    // A TIFF directory claiming 100000x100000 (no pixel data behind it).
    write_bytes(dir.file("huge.tif"), handmade_tiff(100000, 100000, {}));
    CHECK_THAT(error_of(ErrorKind::Input, [&] { vn::read_image(dir.file("huge.tif")); }),
               Catch::Contains("100000x100000 = 10000000000 pixels"));

    // The limit is an option.
    const RgbImage img = vn::test::random_image(64, 64, 2);
    for (const char* name : {"l.png", "l.jpg", "l.tif"}) {
        INFO(name);
        vn::write_image(dir.file(name), img.view());
        vn::ReadOptions tight;
        tight.max_pixels = 4095;
        CHECK_THAT(error_of(ErrorKind::Input, [&] { vn::read_image(dir.file(name), nullptr, tight); }),
                   Catch::Contains("64x64 = 4096 pixels, more than the limit of 4095"));
        tight.max_pixels = 4096;
        CHECK(vn::read_image(dir.file(name), nullptr, tight).width == 64);
    }
}

TEST_CASE("missing, unreadable and non-image inputs", "[io]") {
    TempDir dir;
    CHECK(error_of(ErrorKind::Input, [&] { vn::read_image(dir.file("nope.png")); }) ==
          dir.file("nope.png") + ": no such file");
    CHECK(error_of(ErrorKind::Input, [&] { vn::read_image(dir.path()); }) == dir.path() + ": is a directory");
    write_bytes(dir.file("text.png"), Bytes{'h', 'e', 'l', 'l', 'o', '\n'});
    CHECK(error_of(ErrorKind::Input, [&] { vn::read_image(dir.file("text.png")); }) ==
          dir.file("text.png") + ": not a PNG, JPEG or TIFF image");
    write_bytes(dir.file("empty.tif"), Bytes{});
    CHECK_THAT(error_of(ErrorKind::Input, [&] { vn::read_image(dir.file("empty.tif")); }),
               Catch::Contains("not a PNG, JPEG or TIFF image"));
    CHECK_THAT(error_of(ErrorKind::Input, [&] { vn::read_image(dir.file("text.png/x.png")); }),
               Catch::StartsWith(dir.file("text.png/x.png") + ": no such file"));

    vn::write_image(dir.file("locked.png"), vn::test::random_image(2, 2, 1).view());
    REQUIRE(::chmod(dir.file("locked.png").c_str(), 0) == 0);
    if (::geteuid() != 0) {
        CHECK(error_of(ErrorKind::Input, [&] { vn::read_image(dir.file("locked.png")); }) ==
              dir.file("locked.png") + ": permission denied");
    } else {
        WARN("running as root: the permission-denied case cannot be provoked");
    }
}

TEST_CASE("failed writes leave nothing behind", "[io]") {
    TempDir dir;
    const RgbImage img = vn::test::random_image(512, 512, 9);
    for (const char* name : {"a.png", "a.jpg", "a.tif"}) {
        INFO(name);
        const std::string path = dir.file("missing/") + name;
        const std::string msg = error_of(ErrorKind::Output, [&] { vn::write_image(path, img.view()); });
        CHECK_THAT(msg, Catch::StartsWith(path + ": "));
        CHECK_THAT(msg, Catch::Contains("no such directory"));
    }
    error_of(ErrorKind::Usage, [&] { vn::write_image(dir.file("a.bmp"), img.view()); });
    CHECK(list_dir(dir.path()).empty());

    // Short writes: the file-size limit makes write() fail with EFBIG part-way.
    for (const char* name : {"b.png", "b.jpg", "b.tif"}) {
        INFO(name);
        std::string msg;
        {
            FileSizeLimit limit(20000);
            msg = error_of(ErrorKind::Output, [&] { vn::write_image(dir.file(name), img.view(), {100}); });
        }
        CHECK_THAT(msg, Catch::StartsWith(dir.file(name) + ": "));
        CHECK(list_dir(dir.path()).empty());
    }

    // Tiny files: everything sits in stdio's buffer until the final flush or fclose fails.
    const RgbImage tiny = vn::test::random_image(4, 4, 3);
    for (const char* name : {"c.png", "c.jpg", "c.tif"}) {
        INFO(name);
        std::string msg;
        {
            FileSizeLimit limit(30);
            msg = error_of(ErrorKind::Output, [&] { vn::write_image(dir.file(name), tiny.view()); });
        }
        CHECK_THAT(msg, Catch::StartsWith(dir.file(name) + ": ") && Catch::Contains("file too large"));
        CHECK(list_dir(dir.path()).empty());
    }

    // Replacing an existing file: on failure the old one stays as it was.
    const RgbImage small = vn::test::random_image(4, 4, 1);
    vn::write_image(dir.file("keep.png"), small.view());
    {
        FileSizeLimit limit(20000);
        error_of(ErrorKind::Output, [&] { vn::write_image(dir.file("keep.png"), img.view()); });
    }
    CHECK(list_dir(dir.path()) == std::vector<std::string>{"keep.png"});
    CHECK(same_pixels(vn::read_image(dir.file("keep.png")), small));
}

TEST_CASE("readers and writers run in parallel", "[io]") {
    TempDir dir;
    std::atomic<int> failures{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < 8; ++t)
        threads.emplace_back([&, t] {
            try {
                const RgbImage img = vn::test::random_image(97 + t, 61, static_cast<std::uint64_t>(t));
                for (int round = 0; round < 5; ++round) {
                    for (const char* ext : {".png", ".tif"}) {
                        const std::string path = dir.file("p" + std::to_string(t) + ext);
                        vn::write_image(path, img.view());
                        if (!same_pixels(vn::read_image(path), img)) ++failures;
                    }
                    const std::string jpg = dir.file("p" + std::to_string(t) + ".jpg");
                    vn::write_image(jpg, img.view());
                    if (vn::read_image(jpg).width != img.width) ++failures;
                    // A broken TIFF per thread: each thread must see its own error.
                    const std::string bad = dir.file("bad" + std::to_string(t) + ".tif");
                    write_bytes(bad, Bytes{'I', 'I', 42, 0, 0xff, 0xff, 0xff, 0x7f});
                    try {
                        vn::read_image(bad);
                        ++failures;
                    } catch (const vn::Error& e) {
                        if (std::string(e.what()).rfind(bad + ": ", 0) != 0 || e.kind() != ErrorKind::Input) ++failures;
                    }
                }
            } catch (const std::exception&) {
                ++failures;
            }
        });
    for (auto& th : threads) th.join();
    CHECK(failures.load() == 0);
}

TEST_CASE("the shared H&E tiles load", "[io][shared]") {
    if (!vn::test::shared_data_available()) FAIL("shared test data not found at " << vn::test::shared_data("tiles"));
    struct Tile {
        const char* name;
        int width, height;
        bool rgba;
        int mean[3];
    };
    const Tile tiles[] = {
        {"tiatoolbox_target_image.png", 1000, 1000, false, {165, 106, 148}},
        {"torchstain_target.png", 587, 441, true, {176, 167, 208}},
        {"torchstain_source.png", 584, 438, true, {203, 157, 237}},
        {"henorm_example1.png", 1024, 1024, false, {204, 152, 184}},
        {"vahadane_source1.png", 896, 768, false, {204, 188, 227}},
        {"vahadane_target1.png", 300, 300, false, {204, 116, 153}},
        {"vahadane_source2.png", 425, 364, false, {235, 209, 222}},
        {"vahadane_target2.png", 425, 364, false, {202, 103, 146}},
        {"openslide-OS-1_hamamatsu-ndpi_crop.png", 1101, 1101, false, {144, 124, 180}},
        {"openslide-OS-1_olympus-vsi_crop.png", 300, 300, false, {213, 173, 207}},
        {"histolab_tcga-lung-rgb.png", 512, 512, false, {191, 146, 174}},
        {"histolab_high-nuclei-score-level0.png", 956, 779, true, {141, 82, 131}},
        {"histolab_medium-nuclei-score-level0.png", 1001, 777, true, {213, 131, 163}},
        {"torch-staintools_sample.png", 256, 256, false, {186, 98, 170}},
        {"edge_histolab_almost-white-2.png", 512, 512, true, {240, 240, 239}},
        {"edge_histolab_low-nuclei-score-level0.png", 512, 512, true, {234, 227, 231}},
        {"nonHE_skimage_ihc.png", 512, 512, false, {177, 160, 144}},
    };
    for (const auto& t : tiles) {
        INFO(t.name);
        ImageInfo info;
        const RgbImage img = vn::read_image(vn::test::shared_data(std::string("tiles/") + t.name), &info);
        CHECK(info.format == ImageFormat::Png);
        CHECK(img.width == t.width);
        CHECK(img.height == t.height);
        CHECK(info.width == t.width);
        CHECK(info.height == t.height);
        if (t.rgba) CHECK_THAT(info.conversion, Catch::Contains("RGBA"));
        else CHECK(info.conversion.empty());
        double sum[3] = {0, 0, 0};
        for (std::size_t i = 0; i < img.pixels.size(); ++i) sum[i % 3] += img.pixels[i];
        for (int c = 0; c < 3; ++c) CHECK(std::abs(sum[c] / double(img.pixel_count()) - t.mean[c]) < 1.0);
    }
}

TEST_CASE("TIFF slides from the shared data: page 0, or a clear refusal", "[io][shared]") {
    if (!vn::test::shared_data_available()) FAIL("shared test data not found at " << vn::test::shared_data("tiles"));
    ImageInfo info;
    // A tiled generic TIFF pyramid (synthetic boxes).
    RgbImage img = vn::read_image(vn::test::shared_data("slides/synthetic/openslide-python_boxes.tiff"), &info);
    CHECK(info.format == ImageFormat::Tiff);
    CHECK(img.width == 300);
    CHECK(img.height == 250);
    // Aperio SVS with JPEG (YCbCr) tiles: a TIFF whose page 0 is the full image.
    img = vn::read_image(vn::test::shared_data("slides/CMU-1-Small-Region.svs"), &info);
    CHECK(img.width == 2220);
    CHECK(img.height == 2967);
    // JPEG 2000 tiles: libtiff cannot decode them.
    const std::string j2k = vn::test::shared_data("slides/tcga-cr-7395-01a-01-ts1.svs");
    CHECK_THAT(error_of(ErrorKind::Input, [&] { vn::read_image(j2k); }), Catch::StartsWith(j2k + ": "));
}
