// Whole slides: detection, the per-slide estimate, streaming normalisation into pyramidal TIFFs,
// the pieces they are built from (tile grid, pyramid builder, LZW), and failures.
#include <catch2/catch.hpp>

#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>
#include <map>
#include <random>
#include <string>
#include <vector>

#include <tiffio.h>

#include "core/backend.hpp"
#include "core/error.hpp"
#include "core/model.hpp"
#include "core/transform.hpp"
#include "io/atomic_file.hpp"
#include "io/pyramid.hpp"
#include "io/slide_pipeline.hpp"
#include "io/slide_reader.hpp"
#include "io/slide_tiff_reader.hpp"
#include "io/tiff_writer.hpp"
#include "tests/support/errors.hpp"
#include "tests/support/recording_backend.hpp"
#include "tests/support/test_support.hpp"

#ifndef VAHANORM_TEST_PYTHON
#define VAHANORM_TEST_PYTHON "/usr/bin/python3"
#endif

using vn::ErrorKind;
using vn::RgbImage;
using vn::test::shared_data;
using vn::test::TempDir;

namespace {

bool have_data() {
    if (vn::test::shared_data_available()) return true;
    WARN("[SKIPPED] shared slides not found under " << shared_data(""));
    return false;
}

vn::Backend& backend() {
    static auto b = vn::make_cpu_backend(2);
    return *b;
}

ErrorKind kind_of(const std::function<void()>& f, std::string* message = nullptr) {
    const vn::Error e = vn::test::error_of(f);
    if (message) *message = e.what();
    return e.kind();
}

std::vector<std::string> list_dir(const std::string& dir) {
    std::vector<std::string> names;
    if (DIR* d = ::opendir(dir.c_str())) {
        while (dirent* e = ::readdir(d))
            if (std::strcmp(e->d_name, ".") != 0 && std::strcmp(e->d_name, "..") != 0) names.emplace_back(e->d_name);
        ::closedir(d);
    }
    std::sort(names.begin(), names.end());
    return names;
}

bool exists(const std::string& p) {
    struct stat st {};
    return ::stat(p.c_str(), &st) == 0;
}

void copy_file(const std::string& from, const std::string& to, std::size_t max_bytes = SIZE_MAX) {
    std::ifstream in(from, std::ios::binary);
    std::vector<char> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    bytes.resize(std::min(bytes.size(), max_bytes));
    std::ofstream out(to, std::ios::binary);
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

RgbImage read_level(const std::string& path, int level = 0) {
    vn::SlideReader s(path);
    const vn::SlideLevel& l = s.level(level);
    RgbImage img(static_cast<int>(l.width), static_cast<int>(l.height));
    s.read_region(level, 0, 0, img.span());
    return img;
}

int run_python_checks(const std::string& out, const std::string& in, const std::string& format, bool lossless) {
    const std::string cmd = std::string(VAHANORM_TEST_PYTHON) + " " + VAHANORM_SOURCE_DIR + "/tests/io/slide_checks.py '" +
                            out + "' --input '" + in + "' --format " + format + (lossless ? " --lossless" : "") + " 2>&1";
    std::FILE* p = ::popen(cmd.c_str(), "r");
    if (!p) return -1;
    std::string text;
    char buf[512];
    while (std::fgets(buf, sizeof buf, p)) text += buf;
    const int rc = ::pclose(p);
    INFO(text);
    CHECK(rc == 0);
    return rc;
}

// Mean absolute difference between horizontally and vertically adjacent pixels that straddle a
// tile border, and between pairs inside tiles at the same phase of the 16-pixel JPEG block grid
// (block edges differ more than block interiors in JPEG-compressed inputs).
struct Seams {
    double border = 0, inside = 0;
    double ratio() const { return inside > 0 ? border / inside : 0; }
};

Seams seam_stats(const RgbImage& img, int tile) {
    double sb = 0, si = 0;
    std::uint64_t nb = 0, ni = 0;
    auto pair = [&](const std::uint8_t* a, const std::uint8_t* b, int pos) {
        if (pos % 16 != 0) return;
        double d = 0;
        for (int c = 0; c < 3; ++c) d += std::abs(a[c] - b[c]);
        if (pos % tile == 0) {
            sb += d / 3;
            ++nb;
        } else {
            si += d / 3;
            ++ni;
        }
    };
    for (int y = 0; y < img.height; ++y) {
        const std::uint8_t* r = img.view().row(y);
        for (int x = 16; x < img.width; x += 16) pair(r + 3 * x, r + 3 * (x - 1), x);
        if (y > 0 && y % 16 == 0) {
            const std::uint8_t* up = img.view().row(y - 1);
            for (int x = 0; x < img.width; ++x) pair(r + 3 * x, up + 3 * x, y);
        }
    }
    Seams s;
    s.border = nb ? sb / static_cast<double>(nb) : 0;
    s.inside = ni ? si / static_cast<double>(ni) : 0;
    return s;
}

vn::StainModel model_for(const std::string& slide) {
    try {
        vn::SlideEstimateOptions eo;
        eo.hash_source = false;
        return vn::estimate_slide(slide, backend(), vn::EstimateParams{}, eo);
    } catch (const vn::Error& e) {
        // The two synthetic OpenSlide fixtures hold no H&E: any model will do for I/O checks.
        if (e.kind() != ErrorKind::Data) throw;
        return vn::builtin_reference();
    }
}

vn::SlideOptions lossless_options() {
    vn::SlideOptions o;
    o.compression = vn::TileCompression::Deflate;
    o.threads = 2;
    return o;
}

}  // namespace

// ---- pieces --------------------------------------------------------------------------------

TEST_CASE("pyramid levels halve down to one tile and tiles never outgrow a level", "[slide]") {
    const auto l = vn::pyramid_levels(2220, 2967, 256);
    REQUIRE(l.size() == 5);
    CHECK(l[1].width == 1110);
    CHECK(l[1].height == 1483);
    CHECK(l[4].width == 138);
    CHECK(l[4].height == 185);
    CHECK(vn::pyramid_levels(16, 16, 256).size() == 1);
    CHECK(vn::pyramid_levels(256, 256, 256).size() == 1);
    CHECK(vn::pyramid_levels(257, 100, 256).size() == 2);
    // A very wide strip stops before a side drops under 16 pixels.
    const auto wide = vn::pyramid_levels(40000, 300, 256);
    CHECK(wide.back().height >= 16);

    const vn::TileGrid g0 = vn::tile_grid({2220, 2967}, 256);
    CHECK(g0.tile_w == 256);
    CHECK(g0.cols == 9);
    CHECK(g0.rows == 12);
    const vn::TileGrid g4 = vn::tile_grid({138, 185}, 256);
    CHECK(g4.tile_w == 128);
    CHECK(g4.tile_h == 176);
    CHECK(g4.cols == 2);
    CHECK(g4.rows == 2);
    const vn::TileGrid tiny = vn::tile_grid({10, 300}, 256);
    CHECK(tiny.tile_w == 16);
}

TEST_CASE("the streaming pyramid equals a direct 2x2 reduction of the whole image", "[slide]") {
    for (auto [w, h] : std::vector<std::pair<int, int>>{{1000, 700}, {129, 515}, {64, 64}, {300, 33}}) {
        const int ts = 64;
        const RgbImage img = vn::test::random_image(w, h, static_cast<std::uint64_t>(w * 7919 + h));
        const auto levels = vn::pyramid_levels(w, h, ts);
        std::vector<RgbImage> got(levels.size());
        for (std::size_t k = 1; k < levels.size(); ++k)
            got[k] = RgbImage(static_cast<int>(levels[k].width), static_cast<int>(levels[k].height));
        std::map<int, std::int64_t> next_row;
        vn::PyramidBuilder b(levels, ts, [&](int level, std::int64_t srow, vn::RgbView strip) {
            CHECK(next_row[level] == srow);  // strips in order, none twice
            next_row[level] = srow + 1;
            for (int y = 0; y < strip.height; ++y)
                std::memcpy(got[static_cast<std::size_t>(level)].span().row(static_cast<int>(srow * ts) + y), strip.row(y),
                            static_cast<std::size_t>(strip.width) * 3);
        });
        const std::int64_t ntx = (w + ts - 1) / ts, nty = (h + ts - 1) / ts;
        for (std::int64_t ty = 0; ty < nty; ++ty)
            for (std::int64_t tx = 0; tx < ntx; ++tx) {
                const int tw = static_cast<int>(std::min<std::int64_t>(ts, w - tx * ts));
                const int th = static_cast<int>(std::min<std::int64_t>(ts, h - ty * ts));
                const vn::RgbView v{img.pixels.data() + static_cast<std::size_t>(ty * ts) * img.stride() +
                                        static_cast<std::size_t>(tx * ts) * 3,
                                    tw, th, img.stride()};
                b.add_tile(tx, ty, v);
            }
        CHECK(b.complete());
        RgbImage ref = img;
        for (std::size_t k = 1; k < levels.size(); ++k) {
            RgbImage next(static_cast<int>(levels[k].width), static_cast<int>(levels[k].height));
            vn::shrink_2x2(ref.view(), next.span());
            INFO("size " << w << "x" << h << " level " << k);
            CHECK(next.pixels == got[k].pixels);
            ref = std::move(next);
        }
    }
}

TEST_CASE("area resize keeps a flat image flat and averages blocks", "[slide]") {
    RgbImage img(100, 60);
    for (int y = 0; y < 60; ++y)
        for (int x = 0; x < 100; ++x)
            for (int c = 0; c < 3; ++c) img.span().row(y)[3 * x + c] = static_cast<std::uint8_t>(x < 50 ? 40 : 200);
    const RgbImage r = vn::resize_area(img.view(), 10, 6);
    CHECK(r.width == 10);
    CHECK(r.view().row(3)[0] == 40);
    CHECK(r.view().row(3)[3 * 9] == 200);
}

TEST_CASE("LZW tiles decode with libtiff", "[slide]") {
    std::mt19937_64 rng(5);
    std::vector<std::vector<std::uint8_t>> inputs;
    inputs.emplace_back();                                // empty
    inputs.emplace_back(1, 7);                            // one byte
    inputs.emplace_back(200000, 0);                       // long runs (deep codes)
    std::vector<std::uint8_t> noise(300000);              // many table resets
    for (auto& v : noise) v = static_cast<std::uint8_t>(rng() >> 60);
    inputs.push_back(noise);
    std::vector<std::uint8_t> ramp(100000);
    for (std::size_t i = 0; i < ramp.size(); ++i) ramp[i] = static_cast<std::uint8_t>((i * 7) ^ (i >> 9));
    inputs.push_back(ramp);
    TempDir dir;
    for (std::size_t t = 0; t < inputs.size(); ++t) {
        const auto& data = inputs[t];
        if (data.empty()) continue;
        std::vector<std::uint8_t> enc;
        vn::lzw_encode(data.data(), data.size(), &enc);
        const std::string path = dir.file("lzw" + std::to_string(t) + ".tif");
        TIFF* w = TIFFOpen(path.c_str(), "w");
        REQUIRE(w);
        TIFFSetField(w, TIFFTAG_IMAGEWIDTH, static_cast<std::uint32_t>(data.size()));
        TIFFSetField(w, TIFFTAG_IMAGELENGTH, 1u);
        TIFFSetField(w, TIFFTAG_BITSPERSAMPLE, 8);
        TIFFSetField(w, TIFFTAG_SAMPLESPERPIXEL, 1);
        TIFFSetField(w, TIFFTAG_PHOTOMETRIC, PHOTOMETRIC_MINISBLACK);
        TIFFSetField(w, TIFFTAG_COMPRESSION, COMPRESSION_LZW);
        TIFFSetField(w, TIFFTAG_ROWSPERSTRIP, 1u);
        REQUIRE(TIFFWriteRawStrip(w, 0, enc.data(), static_cast<tmsize_t>(enc.size())) >= 0);
        TIFFClose(w);
        TIFF* r = TIFFOpen(path.c_str(), "r");
        REQUIRE(r);
        std::vector<std::uint8_t> back(data.size());
        CHECK(TIFFReadEncodedStrip(r, 0, back.data(), static_cast<tmsize_t>(back.size())) ==
              static_cast<tmsize_t>(back.size()));
        TIFFClose(r);
        INFO("input " << t);
        CHECK(back == data);
    }
}

// ---- detection -------------------------------------------------------------------------------

TEST_CASE("is_slide: vendor formats and tiled TIFFs yes, plain TIFFs and other files no", "[slide]") {
    if (!have_data()) return;
    CHECK(vn::is_slide(shared_data("slides/CMU-1-Small-Region.svs")));
    CHECK(vn::is_slide(shared_data("slides/tcga-cr-7395-01a-01-ts1.svs")));
    CHECK(vn::is_slide(shared_data("slides/stritt_test3-DAPI-2-387.ndpi")));
    CHECK(vn::is_slide(shared_data("slides/synthetic/openslide-python_boxes.tiff")));
    CHECK_FALSE(vn::is_slide(shared_data("tiles/torch-staintools_sample.png")));
    TempDir dir;
    {
        std::ofstream(dir.file("notes.svs")) << "not a slide\n";
        CHECK_FALSE(vn::is_slide(dir.file("notes.svs")));
        CHECK_FALSE(vn::is_slide(dir.file("missing.svs")));
        // A plain stripped single-page TIFF is a tile image.
        TIFF* t = TIFFOpen(dir.file("plain.tif").c_str(), "w");
        REQUIRE(t);
        TIFFSetField(t, TIFFTAG_IMAGEWIDTH, 64u);
        TIFFSetField(t, TIFFTAG_IMAGELENGTH, 64u);
        TIFFSetField(t, TIFFTAG_BITSPERSAMPLE, 8);
        TIFFSetField(t, TIFFTAG_SAMPLESPERPIXEL, 3);
        TIFFSetField(t, TIFFTAG_PHOTOMETRIC, PHOTOMETRIC_RGB);
        TIFFSetField(t, TIFFTAG_ROWSPERSTRIP, 64u);
        std::vector<std::uint8_t> px(64 * 64 * 3, 200);
        TIFFWriteEncodedStrip(t, 0, px.data(), static_cast<tmsize_t>(px.size()));
        TIFFClose(t);
        CHECK_FALSE(vn::is_slide(dir.file("plain.tif")));
    }
}

// ---- the shared slides ------------------------------------------------------------------------

TEST_CASE("every shared slide normalises into a pyramid that matches the tile-mode transform", "[slide]") {
    if (!have_data()) return;
    const std::vector<std::string> slides = {"slides/CMU-1-Small-Region.svs", "slides/tcga-cr-7395-01a-01-ts1.svs",
                                             "slides/synthetic/openslide-python_small.svs",
                                             "slides/synthetic/openslide-python_boxes.tiff"};
    const vn::StainModel target = vn::builtin_reference();
    for (const std::string& rel : slides) {
        const std::string in = shared_data(rel);
        INFO(rel);
        TempDir dir;
        const std::string out = dir.file("out.tif");
        const vn::StainModel source = model_for(in);
        const vn::SlideResult r = vn::normalize_slide(in, out, source, target, backend(), lossless_options());
        REQUIRE(exists(out));
        CHECK(list_dir(dir.path()) == std::vector<std::string>{"out.tif"});
        CHECK(r.levels.size() == vn::pyramid_levels(r.width, r.height, 256).size());
        CHECK(r.mpx_per_second > 0);

        // Independent readers.
        run_python_checks(out, in, "svs", true);

        // Level 0 equals the transform of the whole composited level 0 (tile-mode transform).
        const RgbImage src = read_level(in);
        RgbImage expected(src.width, src.height);
        backend().transform(vn::make_plan(source, target), {vn::TileJob{src.view(), expected.span()}});
        const RgbImage got = read_level(out);
        REQUIRE(got.width == src.width);
        REQUIRE(got.height == src.height);
        std::size_t off = 0, far = 0;
        for (std::size_t i = 0; i < got.pixels.size(); ++i) {
            const int d = std::abs(got.pixels[i] - expected.pixels[i]);
            off += d > 0;
            far += d > 1;
        }
        CHECK(static_cast<double>(far) <= 0.001 * static_cast<double>(got.pixels.size()));
        CHECK(off == 0);  // lossless output, same pixels in: bit-exact

        // No seams: differences across output tile borders are no larger than inside tiles,
        // relative to what the input already shows there (a JPEG 2000 input tiled on the same
        // 256 grid has seams of its own).
        if (got.width > 256 || got.height > 256) {
            const Seams so = seam_stats(got, 256), si = seam_stats(src, 256);
            INFO("output border " << so.border << " inside " << so.inside << "; input border " << si.border << " inside "
                                  << si.inside);
            CHECK(so.ratio() <= std::max(1.0, si.ratio()) * 1.05 + 0.02);
        }
    }
}

TEST_CASE("the libtiff fast path reads the same pixels as OpenSlide", "[slide]") {
    if (!have_data()) return;
    for (const char* rel : {"slides/CMU-1-Small-Region.svs", "slides/synthetic/openslide-python_boxes.tiff"}) {
        INFO(rel);
        vn::SlideReader s(shared_data(rel));
        std::string why;
        auto direct = vn::make_tiff_source(s, &why);
        INFO(why);
        REQUIRE(direct);
        auto os = vn::make_openslide_source(s);
        // Regions off the TIFF tile grid exercise the decoded-tile cache.
        for (auto [x, y, w, h] : std::vector<std::array<int, 4>>{{0, 0, 256, 256}, {100, 37, 300, 200},
                                                                  {static_cast<int>(s.width()) - 50, 0, 50, 64}}) {
            RgbImage a(std::min<int>(w, static_cast<int>(s.width()) - x), std::min<int>(h, static_cast<int>(s.height()) - y));
            RgbImage b(a.width, a.height);
            direct->read(x, y, a.span());
            os->read(x, y, b.span());
            CHECK(a.pixels == b.pixels);
        }
    }
    vn::SlideReader jp2k(shared_data("slides/tcga-cr-7395-01a-01-ts1.svs"));
    CHECK_FALSE(vn::make_tiff_source(jp2k));  // JPEG 2000 stays with OpenSlide
}

TEST_CASE("every compression and layout writes a readable pyramid", "[slide]") {
    if (!have_data()) return;
    const std::string in = shared_data("slides/CMU-1-Small-Region.svs");
    const vn::StainModel target = vn::builtin_reference();
    const vn::StainModel source = model_for(in);
    TempDir dir;
    RgbImage reference;
    for (const char* c : {"deflate", "zstd", "lzw", "none", "jpeg"}) {
        INFO(c);
        vn::SlideOptions o = lossless_options();
        o.compression = vn::parse_compression(c);
        if (!vn::compression_available(o.compression)) {
            WARN("libtiff without " << c);
            continue;
        }
        const std::string out = dir.file(std::string("c_") + c + ".svs");
        vn::normalize_slide(in, out, source, target, backend(), o);
        const RgbImage got = read_level(out);
        const RgbImage last = read_level(out, vn::SlideReader(out).level_count() - 1);
        CHECK(last.width > 0);
        if (reference.width == 0) {
            reference = got;
            continue;
        }
        if (o.compression == vn::TileCompression::Jpeg) {
            double sum = 0;
            for (std::size_t i = 0; i < got.pixels.size(); ++i) sum += std::abs(got.pixels[i] - reference.pixels[i]);
            CHECK(sum / static_cast<double>(got.pixels.size()) < 3.0);
        } else {
            CHECK(got.pixels == reference.pixels);
        }
    }
    for (const char* f : {"tiff", "ome"}) {
        INFO(f);
        vn::SlideOptions o = lossless_options();
        o.format = vn::parse_slide_format(f);
        const std::string out = dir.file(std::string("f_") + f + ".tif");
        vn::normalize_slide(in, out, source, target, backend(), o);
        run_python_checks(out, in, f, true);
        CHECK(read_level(out).pixels == reference.pixels);
    }
    {
        // JPEG at the default settings opens everywhere too (tifffile without imagecodecs
        // cannot decode JPEG, so no pixel comparison there).
        vn::SlideOptions o;
        o.threads = 2;
        const std::string out = dir.file("default.svs");
        vn::normalize_slide(in, out, source, target, backend(), o);
        run_python_checks(out, in, "svs", false);
    }
}

TEST_CASE("the color table gives the same pixels as transforming every tile", "[slide]") {
    if (!have_data()) return;
    const std::string in = shared_data("slides/CMU-1-Small-Region.svs");
    const vn::StainModel source = model_for(in), target = vn::builtin_reference();
    TempDir dir;
    vn::SlideOptions o = lossless_options();
    o.color_lut = vn::ColorLut::Always;
    const vn::SlideResult a = vn::normalize_slide(in, dir.file("lut.svs"), source, target, backend(), o);
    o.color_lut = vn::ColorLut::Never;
    const vn::SlideResult b = vn::normalize_slide(in, dir.file("batches.svs"), source, target, backend(), o);
    CHECK(a.color_lut);
    CHECK_FALSE(b.color_lut);
    CHECK(read_level(dir.file("lut.svs")).pixels == read_level(dir.file("batches.svs")).pixels);
}

TEST_CASE("the readers decode into the backend's host buffers, reused, and the pixels stay the same", "[slide]") {
    if (!have_data()) return;
    const std::string in = shared_data("slides/CMU-1-Small-Region.svs");
    const vn::StainModel source = model_for(in), target = vn::builtin_reference();
    TempDir dir;
    vn::SlideOptions o = lossless_options();
    o.threads = 3;
    o.batch_tiles = 4;
    vn::test::RecordingBackend rec(vn::BackendKind::Cuda);
    o.color_lut = vn::ColorLut::Auto;  // the properties say batches
    const vn::SlideResult a = vn::normalize_slide(in, dir.file("host.svs"), source, target, rec, o);
    o.color_lut = vn::ColorLut::Never;
    vn::normalize_slide(in, dir.file("plain.svs"), source, target, backend(), o);
    CHECK_FALSE(a.color_lut);
    CHECK(rec.tiles_seen == a.tiles);
    CHECK(rec.src_outside == 0);
    // One buffer per item in flight, not one per item.
    CHECK(rec.buffers() >= 1);
    CHECK(rec.buffers() < a.tiles / 4);
    CHECK(vn::test::RecordingBackend::live == 0);
    CHECK(read_level(dir.file("host.svs")).pixels == read_level(dir.file("plain.svs")).pixels);
}

TEST_CASE("BigTIFF when asked, thumbnail and metadata in the SVS layout", "[slide]") {
    if (!have_data()) return;
    const std::string in = shared_data("slides/CMU-1-Small-Region.svs");
    TempDir dir;
    vn::SlideOptions o = lossless_options();
    o.bigtiff = vn::BigTiffMode::Always;
    const std::string out = dir.file("big.svs");
    const vn::SlideResult r = vn::normalize_slide(in, out, vn::builtin_reference(), vn::builtin_reference(), backend(), o);
    CHECK(r.bigtiff);
    std::ifstream f(out, std::ios::binary);
    char magic[4] = {};
    f.read(magic, 4);
    CHECK(magic[2] == 43);  // BigTIFF
    vn::SlideReader s(out);
    CHECK(s.vendor() == "aperio");
    CHECK(s.mpp_x() == Approx(0.499));
    CHECK(s.objective_power() == 20);
    CHECK(s.property("openslide.comment").rfind("Aperio Image Library vahanorm ", 0) == 0);
    const auto names = s.associated_names();
    CHECK(names == std::vector<std::string>{"thumbnail"});  // label and macro dropped by default
    const RgbImage thumb = s.read_associated("thumbnail");
    CHECK(std::max(thumb.width, thumb.height) <= 1024);
    CHECK(std::max(thumb.width, thumb.height) >= 1000);
    // Nothing that could identify a patient is copied.
    for (const char* field : {"Filename", "User", "Date", "Barcode", "ScanScope ID", "Time"})
        CHECK(s.property("openslide.comment").find(field) == std::string::npos);
}

TEST_CASE("label and macro are kept only on request, with Aperio descriptions", "[slide]") {
    if (!have_data()) return;
    const std::string in = shared_data("slides/CMU-1-Small-Region.svs");
    TempDir dir;
    vn::SlideOptions o = lossless_options();
    o.keep_associated = true;
    const std::string out = dir.file("assoc.svs");
    vn::normalize_slide(in, out, vn::builtin_reference(), vn::builtin_reference(), backend(), o);
    vn::SlideReader s(out), src(in);
    const auto names = s.associated_names();
    CHECK(std::find(names.begin(), names.end(), "label") != names.end());
    CHECK(std::find(names.begin(), names.end(), "macro") != names.end());
    const RgbImage a = s.read_associated("label"), b = src.read_associated("label");
    CHECK(a.width == b.width);
    CHECK(a.pixels == b.pixels);  // LZW: lossless
    run_python_checks(out, in, "svs", true);
}

TEST_CASE("label and macro: ome writes them as images of their own, tiff refuses", "[slide]") {
    if (!have_data()) return;
    const std::string in = shared_data("slides/CMU-1-Small-Region.svs");
    TempDir dir;
    vn::SlideOptions o = lossless_options();
    o.keep_associated = true;
    o.format = vn::SlideFormat::Ome;
    const std::string out = dir.file("assoc.ome.tif");
    vn::normalize_slide(in, out, vn::builtin_reference(), vn::builtin_reference(), backend(), o);
    TIFF* t = TIFFOpen(out.c_str(), "r");
    REQUIRE(t);
    char* xml = nullptr;
    REQUIRE(TIFFGetField(t, TIFFTAG_IMAGEDESCRIPTION, &xml) == 1);
    const std::string ome = xml;
    CHECK(ome.find("Name=\"label\"") != std::string::npos);
    CHECK(ome.find("Name=\"macro\"") != std::string::npos);
    CHECK(ome.find("<TiffData IFD=\"1\"") != std::string::npos);
    CHECK(ome.find("<TiffData IFD=\"2\"") != std::string::npos);
    // Top-level directories: level 0 (reduced levels are its SubIFDs), label, macro.
    CHECK(TIFFNumberOfDirectories(t) == 3);
    vn::SlideReader src(in);
    const RgbImage label = src.read_associated("label");
    REQUIRE(TIFFSetDirectory(t, 1));
    std::uint32_t w = 0, h = 0;
    TIFFGetField(t, TIFFTAG_IMAGEWIDTH, &w);
    TIFFGetField(t, TIFFTAG_IMAGELENGTH, &h);
    CHECK(static_cast<int>(w) == label.width);
    CHECK(static_cast<int>(h) == label.height);
    TIFFClose(t);

    o.format = vn::SlideFormat::Tiff;
    std::string msg;
    CHECK(kind_of([&] { vn::normalize_slide(in, dir.file("assoc.tif"), vn::builtin_reference(), vn::builtin_reference(), backend(), o); },
                  &msg) == ErrorKind::Usage);
    CHECK(msg.find("--keep-associated") != std::string::npos);
    CHECK(!exists(dir.file("assoc.tif")));
}

TEST_CASE("an output says it was normalized, and with which models; normalizing it again warns", "[slide]") {
    if (!have_data()) return;
    const std::string in = shared_data("slides/CMU-1-Small-Region.svs");
    TempDir dir;
    vn::StainModel source = vn::builtin_reference();
    source.stain[0] = {0.6, 0.8, 0.0};  // a unit row
    source.max_conc = {1.5, 0.75};
    vn::StainModel target = vn::builtin_reference();
    target.max_conc = {2.0, 1.25};
    for (const auto& [format, name] : {std::pair{vn::SlideFormat::Svs, "p.svs"}, std::pair{vn::SlideFormat::Tiff, "p.tif"},
                                       std::pair{vn::SlideFormat::Ome, "p.ome.tif"}}) {
        INFO(name);
        vn::SlideOptions o = lossless_options();
        o.format = format;
        const std::string out = dir.file(name);
        const vn::SlideResult first = vn::normalize_slide(in, out, source, target, backend(), o);
        for (const std::string& w : first.warnings) CHECK(w.find("already") == std::string::npos);
        vn::SlideReader s(out);
        std::string text = format == vn::SlideFormat::Svs ? s.property("aperio.vahanorm") : s.property("tiff.ImageDescription");
        if (format == vn::SlideFormat::Ome) {
            CHECK(text.find("<MapAnnotation") != std::string::npos);
            for (std::string::size_type at; (at = text.find("&quot;")) != std::string::npos;) text.replace(at, 6, "\"");
        }
        CHECK(text.find("{\"normalized\":true,\"software\":\"vahanorm\",\"version\":\"" VAHANORM_VERSION "\"") !=
              std::string::npos);
        CHECK(text.find("\"source\":{\"stain_matrix\":[[0.6,0.8,0],") != std::string::npos);
        CHECK(text.find("\"max_concentrations\":[1.5,0.75]}") != std::string::npos);
        CHECK(text.find("\"max_concentrations\":[2,1.25]}") != std::string::npos);

        std::vector<std::string> log;
        o.callbacks.log = [&](const std::string& m) { log.push_back(m); };
        const vn::SlideResult again =
            vn::normalize_slide(out, dir.file(std::string("again-") + name), source, target, backend(), o);
        bool warned = false;
        for (const std::string& w : again.warnings)
            warned |= w.find("normalized by vahanorm " VAHANORM_VERSION " already") != std::string::npos;
        CHECK(warned);
        bool logged = false;
        for (const std::string& m : log) logged |= m.find("warning: this slide was normalized") != std::string::npos;
        CHECK(logged);
    }
}

TEST_CASE("the input's ICC profile is kept on every level", "[slide]") {
    if (!have_data()) return;
    // The TCGA slide carries an sRGB profile (3144 bytes) in its first directory.
    const std::string in = shared_data("slides/tcga-cr-7395-01a-01-ts1.svs");
    auto icc_of = [](TIFF* t) {
        std::uint32_t n = 0;
        void* data = nullptr;
        if (TIFFGetField(t, TIFFTAG_ICCPROFILE, &n, &data) != 1 || !data) return std::string();
        return std::string(static_cast<const char*>(data), n);
    };
    TIFF* src = TIFFOpen(in.c_str(), "r");
    REQUIRE(src);
    const std::string want = icc_of(src);
    TIFFClose(src);
    REQUIRE(want.size() == 3144);
    TempDir dir;
    vn::SlideOptions o;
    o.threads = 2;
    const std::string out = dir.file("icc.svs");
    vn::normalize_slide(in, out, vn::builtin_reference(), vn::builtin_reference(), backend(), o);
    TIFF* t = TIFFOpen(out.c_str(), "r");
    REQUIRE(t);
    int dirs = 0;
    do {
        CHECK(icc_of(t) == want);
        ++dirs;
    } while (TIFFReadDirectory(t));
    TIFFClose(t);
    CHECK(dirs >= 3);
    // A slide without one gets none.
    const std::string out2 = dir.file("no-icc.svs");
    vn::normalize_slide(shared_data("slides/CMU-1-Small-Region.svs"), out2, vn::builtin_reference(), vn::builtin_reference(),
                        backend(), lossless_options());
    TIFF* t2 = TIFFOpen(out2.c_str(), "r");
    REQUIRE(t2);
    CHECK(icc_of(t2).empty());
    TIFFClose(t2);
}

TEST_CASE("QC images are written on request", "[slide]") {
    if (!have_data()) return;
    const std::string in = shared_data("slides/CMU-1-Small-Region.svs");
    TempDir dir;
    vn::SlideOptions o = lossless_options();
    o.qc_dir = dir.file("qc");
    const vn::SlideResult r = vn::normalize_slide(in, dir.file("o.svs"), model_for(in), vn::builtin_reference(), backend(), o);
    REQUIRE(r.qc_files.size() == 6);  // overview, before-after, stains, before, after, mask
    for (const std::string& f : r.qc_files) CHECK(exists(f));
    // A directory given with a trailing slash does not double it in the reported paths.
    o.qc_dir = dir.file("qc2") + "/";
    const vn::SlideResult r2 = vn::normalize_slide(in, dir.file("o2.svs"), model_for(in), vn::builtin_reference(), backend(), o);
    REQUIRE(r2.qc_files.size() == 6);
    for (const std::string& f : r2.qc_files) {
        CHECK(f.find("//") == std::string::npos);
        CHECK(exists(f));
    }
    CHECK(r.tissue_fraction > 0.1);
    CHECK(r.tissue_fraction < 0.9);
}

TEST_CASE("QC images are named after the input's stem, cut at its last dot", "[slide]") {
    if (!have_data()) return;
    TempDir dir;
    const std::string in = dir.file("a.b.svs");
    copy_file(shared_data("slides/CMU-1-Small-Region.svs"), in);
    vn::SlideOptions o = lossless_options();
    o.qc_dir = dir.file("qc");
    const vn::SlideResult r = vn::normalize_slide(in, dir.file("a.b.tif"), model_for(in), vn::builtin_reference(), backend(), o);
    REQUIRE(r.qc_files.size() == 6);
    for (const std::string& f : r.qc_files) {
        INFO(f);
        CHECK(f.rfind(dir.file("qc") + "/a.b.", 0) == 0);
        CHECK(exists(f));
    }
}

// ---- the estimate -----------------------------------------------------------------------------

TEST_CASE("the slide estimate is repeatable and samples regions over the whole slide", "[slide]") {
    if (!have_data()) return;
    const std::string in = shared_data("slides/tcga-cr-7395-01a-01-ts1.svs");
    vn::SlideEstimateOptions eo;
    eo.hash_source = true;
    vn::SlideEstimateInfo info;
    const vn::StainModel a = vn::estimate_slide(in, backend(), vn::EstimateParams{}, eo, &info);
    const vn::StainModel b = vn::estimate_slide(in, backend(), vn::EstimateParams{}, eo);
    CHECK(vn::to_json(a) == vn::to_json(b));
    CHECK(a.source_sha256.size() == 64);
    CHECK(info.regions.size() == 64);
    CHECK(info.tissue_fraction > 0.2);
    std::int64_t min_y = info.height, max_y = 0, min_x = info.width, max_x = 0;
    for (const vn::SlideRegion& r : info.regions) {
        min_x = std::min(min_x, r.x);
        max_x = std::max(max_x, r.x);
        min_y = std::min(min_y, r.y);
        max_y = std::max(max_y, r.y);
    }
    CHECK(max_y - min_y > info.height / 2);
    CHECK(max_x - min_x > info.width / 3);
    // The same regions are available to pool with other references.
    const std::vector<RgbImage> regions = vn::sample_slide(in, vn::EstimateParams{}.seed);
    REQUIRE(regions.size() == 64);
    CHECK(regions[0].width == 256);
}

// ---- failures -----------------------------------------------------------------------------------

TEST_CASE("a fluorescence slide is refused as having no brightfield tissue", "[slide]") {
    if (!have_data()) return;
    std::string msg;
    CHECK(kind_of([] { vn::estimate_slide(shared_data("slides/stritt_test3-DAPI-2-387.ndpi"), backend(), vn::EstimateParams{}); },
                  &msg) == ErrorKind::Data);
    CHECK(msg.find("stritt_test3-DAPI-2-387.ndpi") != std::string::npos);
    CHECK(msg.find("not a brightfield H&E slide") != std::string::npos);
}

TEST_CASE("unreadable, truncated and corrupt slides fail with Error(Input) and leave nothing", "[slide]") {
    if (!have_data()) return;
    const std::string cmu = shared_data("slides/CMU-1-Small-Region.svs");
    const vn::StainModel m = vn::builtin_reference();
    TempDir dir;
    std::string msg;

    // A text file named .svs.
    std::ofstream(dir.file("text.svs")) << "hello\n";
    CHECK(kind_of([&] { vn::normalize_slide(dir.file("text.svs"), dir.file("o1.svs"), m, m, backend(), {}); }, &msg) ==
          ErrorKind::Input);
    CHECK(msg.find("text.svs") != std::string::npos);
    CHECK(msg.find('\n') == std::string::npos);
    CHECK(kind_of([&] { vn::estimate_slide(dir.file("text.svs"), backend(), vn::EstimateParams{}); }) == ErrorKind::Input);

    // A missing file.
    CHECK(kind_of([&] { vn::normalize_slide(dir.file("missing.svs"), dir.file("o2.svs"), m, m, backend(), {}); }) ==
          ErrorKind::Input);

    // Truncated copies: at 60% the level-0 directory is gone; at 95% tiles or later directories.
    for (double frac : {0.6, 0.95}) {
        INFO("truncated at " << frac);
        std::ifstream probe(cmu, std::ios::binary | std::ios::ate);
        const auto size = static_cast<std::size_t>(probe.tellg());
        copy_file(cmu, dir.file("trunc.svs"), static_cast<std::size_t>(static_cast<double>(size) * frac));
        CHECK(kind_of([&] { vn::normalize_slide(dir.file("trunc.svs"), dir.file("o3.svs"), m, m, backend(), lossless_options()); },
                      &msg) == ErrorKind::Input);
        CHECK(msg.find("trunc.svs") != std::string::npos);
        CHECK(kind_of([&] { vn::estimate_slide(dir.file("trunc.svs"), backend(), vn::EstimateParams{}); }) == ErrorKind::Input);
    }

    // A corrupt tile in the middle of level 0: both readers.
    {
        copy_file(cmu, dir.file("corrupt.svs"));
        TIFF* t = TIFFOpen(dir.file("corrupt.svs").c_str(), "r");
        REQUIRE(t);
        std::uint64_t* offsets = nullptr;
        std::uint64_t* counts = nullptr;
        REQUIRE(TIFFGetField(t, TIFFTAG_TILEOFFSETS, &offsets));
        REQUIRE(TIFFGetField(t, TIFFTAG_TILEBYTECOUNTS, &counts));
        const std::uint64_t off = offsets[60], len = counts[60];
        TIFFClose(t);
        std::fstream f(dir.file("corrupt.svs"), std::ios::binary | std::ios::in | std::ios::out);
        f.seekp(static_cast<std::streamoff>(off));
        std::vector<char> junk(static_cast<std::size_t>(len), '\x5a');
        f.write(junk.data(), static_cast<std::streamsize>(junk.size()));
        f.close();
        for (bool direct : {true, false}) {
            INFO("direct libtiff reader " << direct);
            vn::SlideOptions o = lossless_options();
            o.direct_tiff = direct;
            CHECK(kind_of([&] { vn::normalize_slide(dir.file("corrupt.svs"), dir.file("o4.svs"), m, m, backend(), o); }, &msg) ==
                  ErrorKind::Input);
            CHECK(msg.find("corrupt.svs") != std::string::npos);
        }
    }
    // Nothing was left behind: no output, no temporary file.
    for (const std::string& name : list_dir(dir.path())) {
        INFO(name);
        CHECK(name.rfind("o", 0) != 0);
        CHECK_FALSE(vn::is_temp_name(name));
    }
}

TEST_CASE("a stop request ends normalisation promptly with Error(Interrupted) and no output", "[slide]") {
    if (!have_data()) return;
    TempDir dir;
    std::atomic<bool> stop{false};
    vn::SlideOptions o = lossless_options();
    o.stop = &stop;
    o.batch_tiles = 4;
    int calls = 0;
    o.callbacks.progress = [&](const vn::SlideProgress& p) {
        ++calls;
        CHECK(p.tiles_done <= p.tiles_total);
        stop = true;
    };
    const vn::StainModel m = vn::builtin_reference();
    CHECK(kind_of([&] {
              vn::normalize_slide(shared_data("slides/CMU-1-Small-Region.svs"), dir.file("o.svs"), m, m, backend(), o);
          }) == ErrorKind::Interrupted);
    CHECK(calls == 1);
    CHECK(list_dir(dir.path()).empty());
}

TEST_CASE("the output may not overwrite the input", "[slide]") {
    if (!have_data()) return;
    TempDir dir;
    copy_file(shared_data("slides/synthetic/openslide-python_small.svs"), dir.file("s.svs"));
    const vn::StainModel m = vn::builtin_reference();
    CHECK(kind_of([&] { vn::normalize_slide(dir.file("s.svs"), dir.file("s.svs"), m, m, backend(), {}); }) == ErrorKind::Output);
    CHECK(vn::slide_output_is_complete(dir.file("s.svs")));
    std::ofstream(dir.file("partial.svs")) << "II*";
    CHECK_FALSE(vn::slide_output_is_complete(dir.file("partial.svs")));
}
