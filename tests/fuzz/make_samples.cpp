// Writes small synthetic PNG, JPEG and TIFF files of many kinds with the real codecs
// (libpng, libjpeg-turbo, libtiff) and a few model files. Nothing is copied from elsewhere:
// the pixels come from vn::render_synthetic.
//
//   vn_make_samples seeds DIR             the fuzz seed corpus: DIR/{model,png,jpeg,tiff}/...
//   vn_make_samples image KIND PATH [W H] one image of KIND (see kKinds below) for the
//                                         broken-input tests (tests/broken/)
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

// clang-format off
#include <png.h>
#include <jpeglib.h>
#include <tiffio.h>
// clang-format on

#include "core/image.hpp"
#include "core/model.hpp"
#include "core/synthetic.hpp"

namespace {

using Bytes = std::vector<std::uint8_t>;

[[noreturn]] void die(const std::string& what) {
    std::fprintf(stderr, "vn_make_samples: %s\n", what.c_str());
    std::exit(1);
}

vn::RgbImage he_image(int w, int h, std::uint64_t seed = 7) {
    vn::SyntheticSpec s;
    s.width = w;
    s.height = h;
    s.stains = vn::synthetic_stains_lab_b();
    s.glass_fraction = 0.15;
    s.seed = seed;
    return vn::render_synthetic(s);
}

std::uint8_t luma(const std::uint8_t* p) { return static_cast<std::uint8_t>((p[0] * 77 + p[1] * 150 + p[2] * 29) >> 8); }

// Samples of `img` as `channels` (1 gray, 2 gray+alpha, 3 RGB, 4 RGBA) at 8 or 16 bits,
// 16-bit ones in native order (TIFF) or big-endian (PNG).
Bytes samples(const vn::RgbImage& img, int channels, int bits, bool big_endian) {
    Bytes out;
    auto put = [&](std::uint32_t v8, std::uint32_t fine) {
        if (bits == 8) {
            out.push_back(static_cast<std::uint8_t>(v8));
            return;
        }
        const std::uint16_t v = static_cast<std::uint16_t>(v8 * 257u + (fine % 200u) - 100u * (v8 > 0 && v8 < 255));
        if (big_endian) {
            out.push_back(static_cast<std::uint8_t>(v >> 8));
            out.push_back(static_cast<std::uint8_t>(v & 0xff));
        } else {
            const auto* b = reinterpret_cast<const std::uint8_t*>(&v);
            out.push_back(b[0]);
            out.push_back(b[1]);
        }
    };
    for (int y = 0; y < img.height; ++y)
        for (int x = 0; x < img.width; ++x) {
            const std::uint8_t* p = img.view().row(y) + 3 * x;
            const std::uint32_t fine = static_cast<std::uint32_t>(x * 31 + y * 17);
            const std::uint32_t alpha = (x + y) % 5 == 0 ? 0u : (x % 3 == 0 ? 128u : 255u);
            if (channels <= 2) put(luma(p), fine);
            else
                for (int c = 0; c < 3; ++c) put(p[c], fine + static_cast<std::uint32_t>(c));
            if (channels == 2 || channels == 4) put(alpha, fine);
        }
    return out;
}

void write_file(const std::string& path, const std::string& text) {
    std::FILE* f = std::fopen(path.c_str(), "wb");
    if (!f || std::fwrite(text.data(), 1, text.size(), f) != text.size() || std::fclose(f) != 0) die(path + ": write failed");
}

// ---- PNG ------------------------------------------------------------------------------------

struct PngSpec {
    int color_type = PNG_COLOR_TYPE_RGB;
    int bits = 8;
    bool interlace = false;
    bool trns = false;     // tRNS for gray/RGB/palette
    bool text = false;     // a tEXt chunk and a gAMA chunk
    int palette_size = 16;
};

bool png_body(png_structp png, png_infop info, std::FILE* fp, const vn::RgbImage* img, const PngSpec* s) {
    if (setjmp(png_jmpbuf(png))) return false;
    png_init_io(png, fp);
    png_set_compression_level(png, 9);
    png_set_IHDR(png, info, static_cast<png_uint_32>(img->width), static_cast<png_uint_32>(img->height), s->bits,
                 s->color_type, s->interlace ? PNG_INTERLACE_ADAM7 : PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT,
                 PNG_FILTER_TYPE_DEFAULT);
    std::vector<png_color> palette;
    Bytes trns_alpha;
    if (s->color_type == PNG_COLOR_TYPE_PALETTE) {
        for (int i = 0; i < s->palette_size; ++i)
            palette.push_back(png_color{static_cast<png_byte>(120 + i * 8), static_cast<png_byte>(40 + i * 5),
                                        static_cast<png_byte>(150 + i * 6)});
        png_set_PLTE(png, info, palette.data(), s->palette_size);
        if (s->trns) {
            trns_alpha.assign(static_cast<std::size_t>(s->palette_size), 255);
            trns_alpha[0] = 0;
            trns_alpha[1] = 100;
            png_set_tRNS(png, info, trns_alpha.data(), static_cast<int>(trns_alpha.size()), nullptr);
        }
    } else if (s->trns) {
        png_color_16 v{};
        v.gray = v.red = 200 & ((1 << s->bits) - 1);
        v.green = 30;
        v.blue = 90;
        png_set_tRNS(png, info, nullptr, 0, &v);
    }
    if (s->text) {
        png_text t{};
        t.compression = PNG_TEXT_COMPRESSION_NONE;
        t.key = const_cast<char*>("Software");
        t.text = const_cast<char*>("vahanorm fuzz seed");
        png_set_text(png, info, &t, 1);
        png_set_gAMA(png, info, 0.45455);
    }
    png_write_info(png, info);
    // Rows as PNG stores them.
    const int channels = s->color_type == PNG_COLOR_TYPE_GRAY         ? 1
                         : s->color_type == PNG_COLOR_TYPE_GRAY_ALPHA ? 2
                         : s->color_type == PNG_COLOR_TYPE_RGB        ? 3
                         : s->color_type == PNG_COLOR_TYPE_RGB_ALPHA  ? 4
                                                                      : 1;
    Bytes packed;
    std::size_t rowbytes = 0;
    if (s->color_type == PNG_COLOR_TYPE_PALETTE || s->bits < 8) {
        // Indices or low-bit gray, packed MSB first.
        const int per_byte = 8 / s->bits;
        rowbytes = static_cast<std::size_t>((img->width + per_byte - 1) / per_byte);
        packed.assign(rowbytes * static_cast<std::size_t>(img->height), 0);
        const int levels = s->color_type == PNG_COLOR_TYPE_PALETTE ? s->palette_size : (1 << s->bits);
        for (int y = 0; y < img->height; ++y)
            for (int x = 0; x < img->width; ++x) {
                const int v = luma(img->view().row(y) + 3 * x) * levels / 256;
                const std::size_t at = rowbytes * static_cast<std::size_t>(y) + static_cast<std::size_t>(x / per_byte);
                const int shift = 8 - s->bits * (x % per_byte + 1);
                packed[at] = static_cast<std::uint8_t>(packed[at] | (v << shift));
            }
    } else {
        packed = samples(*img, channels, s->bits, true);
        rowbytes = packed.size() / static_cast<std::size_t>(img->height);
    }
    const int passes = png_set_interlace_handling(png);
    for (int pass = 0; pass < passes; ++pass)
        for (int y = 0; y < img->height; ++y) png_write_row(png, packed.data() + rowbytes * static_cast<std::size_t>(y));
    png_write_end(png, info);
    return true;
}

void write_png(const std::string& path, const vn::RgbImage& img, const PngSpec& s) {
    std::FILE* fp = std::fopen(path.c_str(), "wb");
    if (!fp) die(path + ": " + std::strerror(errno));
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, nullptr, nullptr, nullptr);
    png_infop info = png_create_info_struct(png);
    const bool ok = png_body(png, info, fp, &img, &s);
    png_destroy_write_struct(&png, &info);
    if (std::fclose(fp) != 0 || !ok) die(path + ": PNG write failed");
}

// ---- JPEG -----------------------------------------------------------------------------------

struct JpegSpec {
    J_COLOR_SPACE in = JCS_RGB;  // JCS_GRAYSCALE, JCS_RGB, JCS_CMYK
    J_COLOR_SPACE stored = JCS_UNKNOWN;  // jpeg_set_colorspace when set (JCS_RGB, JCS_YCCK)
    bool progressive = false;
    bool arithmetic = false;
    int restart_rows = 0;
    int quality = 75;
    int h_samp = 2, v_samp = 2;  // of the first component
};

void write_jpeg(const std::string& path, const vn::RgbImage& img, const JpegSpec& s) {
    std::FILE* fp = std::fopen(path.c_str(), "wb");
    if (!fp) die(path + ": " + std::strerror(errno));
    jpeg_compress_struct cinfo{};
    jpeg_error_mgr err{};
    cinfo.err = jpeg_std_error(&err);  // a failure here exits: this is a test-data tool
    jpeg_create_compress(&cinfo);
    jpeg_stdio_dest(&cinfo, fp);
    cinfo.image_width = static_cast<JDIMENSION>(img.width);
    cinfo.image_height = static_cast<JDIMENSION>(img.height);
    const int comps = s.in == JCS_GRAYSCALE ? 1 : s.in == JCS_CMYK ? 4 : 3;
    cinfo.input_components = comps;
    cinfo.in_color_space = s.in;
    jpeg_set_defaults(&cinfo);
    if (s.stored != JCS_UNKNOWN) jpeg_set_colorspace(&cinfo, s.stored);
    jpeg_set_quality(&cinfo, s.quality, TRUE);
    if (comps >= 3) {
        cinfo.comp_info[0].h_samp_factor = s.h_samp;
        cinfo.comp_info[0].v_samp_factor = s.v_samp;
    }
    if (s.progressive) jpeg_simple_progression(&cinfo);
    cinfo.arith_code = s.arithmetic ? TRUE : FALSE;
    cinfo.restart_in_rows = s.restart_rows;
    if (s.in == JCS_CMYK) cinfo.write_Adobe_marker = TRUE;
    jpeg_start_compress(&cinfo, TRUE);
    Bytes row(static_cast<std::size_t>(img.width) * static_cast<std::size_t>(comps));
    while (cinfo.next_scanline < cinfo.image_height) {
        const std::uint8_t* p = img.view().row(static_cast<int>(cinfo.next_scanline));
        for (int x = 0; x < img.width; ++x, p += 3) {
            std::uint8_t* d = row.data() + static_cast<std::size_t>(x) * static_cast<std::size_t>(comps);
            if (comps == 1) d[0] = luma(p);
            else if (comps == 3) std::memcpy(d, p, 3);
            else {
                // Adobe-style inverted CMYK (255 = no ink).
                const std::uint8_t k = std::max({p[0], p[1], p[2]});
                for (int c = 0; c < 3; ++c) d[c] = static_cast<std::uint8_t>(k ? p[c] * 255 / k : 255);
                d[3] = k;
            }
        }
        JSAMPROW r = row.data();
        jpeg_write_scanlines(&cinfo, &r, 1);
    }
    jpeg_finish_compress(&cinfo);
    jpeg_destroy_compress(&cinfo);
    if (std::fclose(fp) != 0) die(path + ": JPEG write failed");
}

// ---- TIFF -----------------------------------------------------------------------------------

struct TiffSpec {
    int channels = 3;  // 1 gray, 2 gray+alpha, 3 RGB, 4 RGBA
    int bits = 8;      // 1 (gray only), 8, 16
    std::uint16_t photometric = PHOTOMETRIC_RGB;
    std::uint16_t compression = COMPRESSION_NONE;
    std::uint16_t extra = EXTRASAMPLE_UNASSALPHA;
    std::uint16_t orientation = ORIENTATION_TOPLEFT;
    std::uint16_t planar = PLANARCONFIG_CONTIG;
    std::uint16_t predictor = 0;
    bool tiled = false;
    bool bigtiff = false;
    bool ycbcr_jpeg = false;  // COMPRESSION_JPEG with PHOTOMETRIC_YCBCR
    std::uint32_t rows_per_strip = 8;
    int pages = 1;
};

[[noreturn]] void tiff_die(const std::string& path, const char* what) { die(path + ": TIFF " + what); }

void write_tiff(const std::string& path, const vn::RgbImage& img, const TiffSpec& s) {
    TIFF* t = TIFFOpen(path.c_str(), s.bigtiff ? "w8" : "w");
    if (!t) tiff_die(path, "open failed");
    for (int page = 0; page < s.pages; ++page) {
        const auto w = static_cast<std::uint32_t>(img.width), h = static_cast<std::uint32_t>(img.height);
        TIFFSetField(t, TIFFTAG_IMAGEWIDTH, w);
        TIFFSetField(t, TIFFTAG_IMAGELENGTH, h);
        TIFFSetField(t, TIFFTAG_BITSPERSAMPLE, s.bits);
        TIFFSetField(t, TIFFTAG_SAMPLESPERPIXEL, s.channels);
        TIFFSetField(t, TIFFTAG_PLANARCONFIG, s.planar);
        TIFFSetField(t, TIFFTAG_ORIENTATION, s.orientation);
        TIFFSetField(t, TIFFTAG_COMPRESSION, s.compression);
        if (s.predictor) TIFFSetField(t, TIFFTAG_PREDICTOR, s.predictor);
        if (s.channels == 2 || s.channels == 4) {
            std::uint16_t extra = s.extra;
            TIFFSetField(t, TIFFTAG_EXTRASAMPLES, 1, &extra);
        }
        std::vector<std::uint16_t> map_r, map_g, map_b;
        if (s.photometric == PHOTOMETRIC_PALETTE) {
            const std::size_t n = std::size_t{1} << s.bits;
            for (std::size_t i = 0; i < n; ++i) {
                map_r.push_back(static_cast<std::uint16_t>((120 + i * 8 % 130) * 257));
                map_g.push_back(static_cast<std::uint16_t>((40 + i * 5 % 200) * 257));
                map_b.push_back(static_cast<std::uint16_t>((150 + i * 6 % 100) * 257));
            }
            TIFFSetField(t, TIFFTAG_COLORMAP, map_r.data(), map_g.data(), map_b.data());
        }
        if (s.ycbcr_jpeg) {
            TIFFSetField(t, TIFFTAG_PHOTOMETRIC, PHOTOMETRIC_YCBCR);
            TIFFSetField(t, TIFFTAG_YCBCRSUBSAMPLING, 2, 2);
            TIFFSetField(t, TIFFTAG_JPEGQUALITY, 75);
            TIFFSetField(t, TIFFTAG_JPEGCOLORMODE, JPEGCOLORMODE_RGB);
        } else {
            TIFFSetField(t, TIFFTAG_PHOTOMETRIC, s.photometric);
        }
        if (s.pages > 1) {
            TIFFSetField(t, TIFFTAG_SUBFILETYPE, page == 0 ? 0 : FILETYPE_REDUCEDIMAGE);
        }
        Bytes px;
        if (s.photometric == PHOTOMETRIC_PALETTE || s.bits < 8) {
            // One sample, packed MSB first.
            const int per_byte = 8 / s.bits;
            const std::size_t rowbytes = (w + per_byte - 1) / per_byte;
            px.assign(rowbytes * h, 0);
            for (std::uint32_t y = 0; y < h; ++y)
                for (std::uint32_t x = 0; x < w; ++x) {
                    const int v = luma(img.view().row(static_cast<int>(y)) + 3 * x) * (1 << s.bits) / 256;
                    const int shift = 8 - s.bits * (static_cast<int>(x) % per_byte + 1);
                    px[rowbytes * y + x / per_byte] = static_cast<std::uint8_t>(px[rowbytes * y + x / per_byte] | (v << shift));
                }
        } else {
            px = samples(img, s.channels, s.bits, false);
        }
        const std::size_t row_bytes = px.size() / h;
        if (s.planar == PLANARCONFIG_SEPARATE) {
            // Samples of one plane after another, strips of each plane in turn.
            const std::size_t bps = static_cast<std::size_t>(s.bits / 8);
            const std::size_t plane_row = static_cast<std::size_t>(w) * bps;
            TIFFSetField(t, TIFFTAG_ROWSPERSTRIP, h);
            for (int c = 0; c < s.channels; ++c) {
                Bytes plane(plane_row * h);
                for (std::size_t i = 0; i < static_cast<std::size_t>(w) * h; ++i)
                    std::memcpy(plane.data() + i * bps, px.data() + (i * static_cast<std::size_t>(s.channels) + static_cast<std::size_t>(c)) * bps, bps);
                if (TIFFWriteEncodedStrip(t, static_cast<std::uint32_t>(c), plane.data(), static_cast<tmsize_t>(plane.size())) < 0)
                    tiff_die(path, "strip write failed");
            }
        } else if (s.tiled) {
            const std::uint32_t tw = 16, th = 16;
            TIFFSetField(t, TIFFTAG_TILEWIDTH, tw);
            TIFFSetField(t, TIFFTAG_TILELENGTH, th);
            const std::size_t pix_bytes = row_bytes / w;
            Bytes tile(tw * th * pix_bytes);
            for (std::uint32_t ty = 0; ty < h; ty += th)
                for (std::uint32_t tx = 0; tx < w; tx += tw) {
                    std::fill(tile.begin(), tile.end(), 0);
                    for (std::uint32_t y = 0; y < th && ty + y < h; ++y)
                        for (std::uint32_t x = 0; x < tw && tx + x < w; ++x)
                            std::memcpy(tile.data() + (y * tw + x) * pix_bytes, px.data() + (ty + y) * row_bytes + (tx + x) * pix_bytes, pix_bytes);
                    if (TIFFWriteTile(t, tile.data(), tx, ty, 0, 0) < 0) tiff_die(path, "tile write failed");
                }
        } else {
            const std::uint32_t rps = s.ycbcr_jpeg ? 16 : std::min(s.rows_per_strip, h);
            TIFFSetField(t, TIFFTAG_ROWSPERSTRIP, rps);
            for (std::uint32_t y0 = 0, strip = 0; y0 < h; y0 += rps, ++strip) {
                const std::uint32_t rows = std::min(rps, h - y0);
                Bytes chunk(px.begin() + static_cast<long>(row_bytes * y0), px.begin() + static_cast<long>(row_bytes * (y0 + rows)));
                if (TIFFWriteEncodedStrip(t, strip, chunk.data(), static_cast<tmsize_t>(chunk.size())) < 0)
                    tiff_die(path, "strip write failed");
            }
        }
        if (!TIFFWriteDirectory(t)) tiff_die(path, "directory write failed");
    }
    TIFFClose(t);
}

// ---- models ---------------------------------------------------------------------------------

void write_model_seeds(const std::string& dir) {
    write_file(dir + "/builtin.json", vn::to_json(vn::builtin_reference()));
    write_file(dir + "/minimal.json",
               R"({"format":"vahanorm-model","version":1,"stain_matrix":[[0.5626,0.7201,0.4062],[0.2159,0.8012,0.5581]],)"
               R"("max_concentrations":[1.9705,1.0308]})");
    write_file(dir + "/params.json",
               R"({"format":"vahanorm-model","version":1,"method":"vahadane",)"
               R"("stain_matrix":[[0.65,0.70,0.29],[0.07,0.99,0.11]],"max_concentrations":[1.5e0,0.9],)"
               R"("params":{"lambda":0.1,"lambda_concentration":0.01,"percentile":99,"min_stain_angle_deg":5.0,)"
               R"("sample_size":20000,"seed":20160801},"source":{"path":"a\u00e9\n.png","sha256":"00ff","tissue_pixels":18446744073709551615},)"
               R"("fit":{"objective":1e-3,"iterations":12}})");
    write_file(dir + "/not-model.json", R"({"format":"other","version":1,"list":[1,-2.5e-308,true,false,null,"x"]})");
    write_file(dir + "/array.json", R"([[0.6,0.8,0.0],[0.6,0.8,0.0]])");
}

// ---- kinds ----------------------------------------------------------------------------------

using Writer = std::function<void(const std::string& path, int w, int h)>;

std::map<std::string, Writer> kinds() {
    std::map<std::string, Writer> k;
    auto png = [&k](const std::string& name, PngSpec s) {
        k["png-" + name] = [s](const std::string& p, int w, int h) { write_png(p, he_image(w, h), s); };
    };
    auto jpeg = [&k](const std::string& name, JpegSpec s) {
        k["jpeg-" + name] = [s](const std::string& p, int w, int h) { write_jpeg(p, he_image(w, h), s); };
    };
    auto tiff = [&k](const std::string& name, TiffSpec s) {
        k["tiff-" + name] = [s](const std::string& p, int w, int h) { write_tiff(p, he_image(w, h), s); };
    };
    PngSpec ps;
    png("rgb", ps);
    ps.interlace = true;
    png("rgb-interlaced", ps);
    ps = {};
    ps.trns = true;
    ps.text = true;
    png("rgb-trns", ps);
    ps = {};
    ps.bits = 16;
    png("rgb16", ps);
    ps.color_type = PNG_COLOR_TYPE_RGB_ALPHA;
    png("rgba16", ps);
    ps.bits = 8;
    png("rgba", ps);
    ps.interlace = true;
    png("rgba-interlaced", ps);
    ps = {};
    ps.color_type = PNG_COLOR_TYPE_GRAY;
    png("gray", ps);
    ps.bits = 16;
    png("gray16", ps);
    for (int b : {1, 2, 4}) {
        ps.bits = b;
        ps.trns = b == 4;
        png("gray" + std::to_string(b), ps);
    }
    ps = {};
    ps.color_type = PNG_COLOR_TYPE_GRAY_ALPHA;
    png("gray-alpha", ps);
    ps = {};
    ps.color_type = PNG_COLOR_TYPE_PALETTE;
    ps.trns = true;
    png("palette", ps);
    ps.bits = 4;
    ps.interlace = true;
    png("palette4-interlaced", ps);
    ps.bits = 1;
    ps.palette_size = 2;
    ps.interlace = false;
    png("palette1", ps);

    JpegSpec js;
    jpeg("rgb", js);
    js.h_samp = js.v_samp = 1;
    jpeg("rgb444", js);
    js.h_samp = 2;
    js.restart_rows = 1;
    jpeg("rgb422-restart", js);
    js = {};
    js.progressive = true;
    jpeg("progressive", js);
    js = {};
    js.arithmetic = true;
    jpeg("arithmetic", js);
    js.progressive = true;
    jpeg("arithmetic-progressive", js);
    js = {};
    js.in = JCS_GRAYSCALE;
    jpeg("gray", js);
    js.progressive = true;
    jpeg("gray-progressive", js);
    js = {};
    js.stored = JCS_RGB;
    jpeg("stored-rgb", js);
    js = {};
    js.in = JCS_CMYK;
    jpeg("cmyk", js);
    js.stored = JCS_YCCK;
    jpeg("ycck", js);

    TiffSpec ts;
    tiff("rgb", ts);
    ts.compression = COMPRESSION_LZW;
    ts.predictor = PREDICTOR_HORIZONTAL;
    tiff("rgb-lzw", ts);
    ts.compression = COMPRESSION_ADOBE_DEFLATE;
    tiff("rgb-deflate", ts);
    ts.predictor = 0;
    ts.compression = COMPRESSION_PACKBITS;
    tiff("rgb-packbits", ts);
    ts = {};
    ts.tiled = true;
    tiff("rgb-tiled", ts);
    ts.compression = COMPRESSION_ADOBE_DEFLATE;
    tiff("rgb-tiled-deflate", ts);
    ts = {};
    ts.bigtiff = true;
    tiff("rgb-bigtiff", ts);
    ts = {};
    ts.orientation = ORIENTATION_BOTLEFT;
    tiff("rgb-botleft", ts);
    ts = {};
    ts.planar = PLANARCONFIG_SEPARATE;
    tiff("rgb-planar", ts);
    ts = {};
    ts.ycbcr_jpeg = true;
    ts.compression = COMPRESSION_JPEG;
    tiff("ycbcr-jpeg", ts);
    ts = {};
    ts.bits = 16;
    tiff("rgb16", ts);
    ts.channels = 4;
    tiff("rgba16", ts);
    ts = {};
    ts.channels = 4;
    tiff("rgba", ts);
    ts.extra = EXTRASAMPLE_ASSOCALPHA;
    tiff("rgba-assoc", ts);
    ts.extra = EXTRASAMPLE_UNSPECIFIED;
    tiff("rgba-unspecified", ts);
    ts = {};
    ts.channels = 1;
    ts.photometric = PHOTOMETRIC_MINISBLACK;
    tiff("gray", ts);
    ts.bits = 16;
    tiff("gray16", ts);
    ts.bits = 1;
    ts.photometric = PHOTOMETRIC_MINISWHITE;
    tiff("bilevel", ts);
    ts.bits = 8;
    ts.channels = 2;
    ts.photometric = PHOTOMETRIC_MINISBLACK;
    tiff("gray-alpha", ts);
    ts = {};
    ts.channels = 1;
    ts.bits = 8;
    ts.photometric = PHOTOMETRIC_PALETTE;
    tiff("palette", ts);
    ts.bits = 4;
    tiff("palette4", ts);
    k["tiff-cmyk"] = [](const std::string& p, int w, int h) {
        // Four samples with no extra-samples tag: ink values from the RGB channels.
        TIFF* t = TIFFOpen(p.c_str(), "w");
        if (!t) tiff_die(p, "open failed");
        const vn::RgbImage img = he_image(w, h);
        TIFFSetField(t, TIFFTAG_IMAGEWIDTH, static_cast<std::uint32_t>(w));
        TIFFSetField(t, TIFFTAG_IMAGELENGTH, static_cast<std::uint32_t>(h));
        TIFFSetField(t, TIFFTAG_BITSPERSAMPLE, 8);
        TIFFSetField(t, TIFFTAG_SAMPLESPERPIXEL, 4);
        TIFFSetField(t, TIFFTAG_PHOTOMETRIC, PHOTOMETRIC_SEPARATED);
        TIFFSetField(t, TIFFTAG_PLANARCONFIG, PLANARCONFIG_CONTIG);
        TIFFSetField(t, TIFFTAG_ROWSPERSTRIP, static_cast<std::uint32_t>(h));
        Bytes px;
        for (std::size_t i = 0; i < img.pixel_count(); ++i) {
            const std::uint8_t* q = img.pixels.data() + 3 * i;
            for (int c = 0; c < 3; ++c) px.push_back(static_cast<std::uint8_t>(255 - q[c]));
            px.push_back(0);
        }
        if (TIFFWriteEncodedStrip(t, 0, px.data(), static_cast<tmsize_t>(px.size())) < 0) tiff_die(p, "strip write failed");
        TIFFClose(t);
    };
    ts = {};
    ts.pages = 2;
    tiff("rgb-2pages", ts);
    return k;
}

void make_dir(const std::string& d) {
    if (::mkdir(d.c_str(), 0755) != 0 && errno != EEXIST) die(d + ": " + std::strerror(errno));
}

}  // namespace

int main(int argc, char** argv) {
    // libtiff prints warnings (e.g. about unknown tags) to stderr: not wanted in test logs.
    TIFFSetWarningHandler(nullptr);
    const std::map<std::string, Writer> all = kinds();
    const std::string mode = argc > 1 ? argv[1] : "";
    if (mode == "seeds" && argc == 3) {
        const std::string dir = argv[2];
        make_dir(dir);
        for (const char* sub : {"model", "png", "jpeg", "tiff"}) make_dir(dir + "/" + sub);
        write_model_seeds(dir + "/model");
        int n = 0;
        for (const auto& [name, writer] : all) {
            const std::string sub = name.substr(0, name.find('-'));
            const std::string ext = sub == "jpeg" ? "jpg" : sub == "tiff" ? "tif" : "png";
            // Small, odd sizes: fast to decode, and partial MCUs, tiles and strips.
            writer(dir + "/" + sub + "/" + name + "." + ext, 24, 17);
            if (name == "png-rgb" || name == "jpeg-rgb" || name == "tiff-rgb") {
                writer(dir + "/" + sub + "/" + name + "-1x1." + ext, 1, 1);
                writer(dir + "/" + sub + "/" + name + "-40x33." + ext, 40, 33);
            }
            ++n;
        }
        std::printf("wrote %d image kinds and the model seeds under %s\n", n, dir.c_str());
        return 0;
    }
    if (mode == "image" && (argc == 4 || argc == 6)) {
        const auto it = all.find(argv[2]);
        if (it == all.end()) die(std::string("unknown kind ") + argv[2]);
        const int w = argc == 6 ? std::atoi(argv[4]) : 64;
        const int h = argc == 6 ? std::atoi(argv[5]) : 64;
        if (w <= 0 || h <= 0) die("sizes must be positive");
        it->second(argv[3], w, h);
        return 0;
    }
    if (mode == "list") {
        for (const auto& [name, writer] : all) std::printf("%s\n", name.c_str());
        return 0;
    }
    std::fprintf(stderr,
                 "usage: vn_make_samples seeds DIR\n"
                 "       vn_make_samples image KIND PATH [WIDTH HEIGHT]\n"
                 "       vn_make_samples list\n");
    return 2;
}
