// The loops that come in an AVX2 version (core/vector_clones.hpp), as the CPU runs them, against
// the portable code. The tissue scan (core/tissue_scan.hpp): the threshold table against
// px::is_tissue and px::is_artefact for every color, and the scan against the portable one (the
// same packed bytes, ranks and colors left out, nothing written outside the band's room). The
// concentration histogram against px::solve and px::hist_bin per pixel. (The transform's row
// loop is held to px::transform_pixel in test_transform.cpp.)
#include <catch2/catch.hpp>

#include <cstdint>
#include <vector>

#include "core/estimate.hpp"
#include "core/synthetic.hpp"
#include "core/tables.hpp"
#include "core/thread_pool.hpp"
#include "core/tissue_scan.hpp"
#include "tests/core/ink_paint.hpp"
#include "tests/support/test_support.hpp"

using namespace vn;

namespace {

struct Scan {
    std::vector<std::uint8_t> rgb;
    LeftOut left_out;
};

constexpr std::size_t kGuard = 64;
constexpr std::uint8_t kCanary = 0xa5;

// Scans rows [y0, y1) into room for exactly those rows, with canaries on both sides.
template <typename F>
Scan scan(F&& fn, const RgbView& img, int y0, int y1, bool exclude) {
    const std::size_t room = 3u * static_cast<std::size_t>(img.width) * static_cast<std::size_t>(y1 - y0);
    std::vector<std::uint8_t> buf(room + 2 * kGuard, kCanary);
    Scan s;
    const std::size_t n = fn(img, y0, y1, exclude, buf.data() + kGuard, s.left_out);
    REQUIRE(n <= room);
    REQUIRE(n % 3 == 0);
    for (std::size_t i = 0; i < kGuard; ++i) {
        REQUIRE(buf[i] == kCanary);
        REQUIRE(buf[kGuard + room + i] == kCanary);
    }
    s.rgb.assign(buf.begin() + kGuard, buf.begin() + static_cast<std::ptrdiff_t>(kGuard + n));
    return s;
}

void check_same_scan(const RgbView& img, int y0, int y1, bool exclude) {
    INFO("width " << img.width << ", rows " << y0 << "-" << y1 << ", exclude " << exclude);
    const Scan want = scan(scan_tissue_band_portable, img, y0, y1, exclude);
    const Scan got = scan(scan_tissue_band, img, y0, y1, exclude);
    CHECK(got.rgb == want.rgb);
    CHECK(got.left_out.ranks == want.left_out.ranks);
    CHECK(got.left_out.rgb == want.left_out.rgb);
}

}  // namespace

TEST_CASE("tissue scan: the threshold table holds both tests for every color", "[vector_versions]") {
    const Tables& t = tables();
    const std::uint32_t* th = tissue_thresholds();
    std::uint64_t wrong_tissue = 0, wrong_artefact = 0, tissue = 0, artefact = 0;
    for (unsigned g = 0; g < 256; ++g)
        for (unsigned b = 0; b < 256; ++b) {
            const std::uint32_t e = th[g * 256 + b];
            const unsigned tissue_below = e & 0xffffu, artefact_below = e >> 16;
            REQUIRE(tissue_below <= 256);
            REQUIRE(artefact_below <= 256);
            for (unsigned r = 0; r < 256; ++r) {
                const bool is_t = px::is_tissue(t.luma, r, g, b), is_a = px::is_artefact(t.od, r, g, b);
                tissue += is_t;
                artefact += is_a;
                wrong_tissue += (r < tissue_below) != is_t;
                wrong_artefact += (r < artefact_below) != is_a;
            }
        }
    CHECK(wrong_tissue == 0);
    CHECK(wrong_artefact == 0);
    // Neither test is trivial.
    CHECK(tissue > (1u << 22));
    CHECK(artefact > (1u << 20));
}

TEST_CASE("tissue scan: the scan the CPU runs equals the portable one", "[vector_versions]") {
    // Random colors: tissue, glass and artefacts mixed in every vector of eight.
    for (int width : {1, 7, 8, 9, 10, 15, 16, 17, 23, 64, 101, 512}) {
        const RgbImage img = test::random_image(width, 37, static_cast<std::uint64_t>(width));
        for (bool exclude : {false, true}) {
            check_same_scan(img.view(), 0, img.height, exclude);
            check_same_scan(img.view(), 5, 21, exclude);
            check_same_scan(img.view(), 36, 37, exclude);
        }
    }
    // Synthetic H&E (glass, tissue, few artefacts), with and without a stroke of each ink, as
    // a view with a row stride wider than its pixels.
    SyntheticSpec spec;
    spec.width = 203;
    spec.height = 96;
    spec.stains = synthetic_stains_lab_a();
    const RgbImage he = render_synthetic(spec);
    std::vector<RgbImage> images{he};
    for (const test::Ink& ink : test::kInks) images.push_back(test::paint_ink(he, ink, 1.0, false, 0.05, 3));
    for (const RgbImage& img : images) {
        const RgbView narrow{img.pixels.data(), img.width - 11, img.height, img.stride()};
        for (bool exclude : {false, true})
            for (int y0 = 0; y0 < img.height; y0 += 16) {
                check_same_scan(img.view(), y0, y0 + 16, exclude);
                check_same_scan(narrow, y0, y0 + 16, exclude);
            }
    }
}

TEST_CASE("concentration histogram: the counts of px::hist_bin(px::solve) per pixel", "[vector_versions]") {
    const Tables& t = tables();
    float w[2][3];
    const StainMatrix stains = synthetic_stains_lab_b();
    for (int k = 0; k < 2; ++k)
        for (int c = 0; c < 3; ++c) w[k][c] = static_cast<float>(stains[k][c]);
    const px::Solver<float> solver = px::make_solver<float>(w, px::kLambdaConcentration);
    // Pixel counts around the block (64) and vector (8) sizes; every color value occurs.
    for (std::size_t count : {0u, 1u, 7u, 8u, 9u, 63u, 64u, 65u, 1000u, 70001u}) {
        const RgbImage img = test::random_image(static_cast<int>(count), 1, count);
        TissuePixels tissue;
        tissue.rgb.assign(img.pixels.begin(), img.pixels.end());
        std::vector<std::uint32_t> want(2 * px::kHistBins, 0);
        for (std::size_t i = 0; i < count; ++i) {
            const std::uint8_t* p = &img.pixels[3 * i];
            const px::Conc<float> c = px::solve(solver, t.od[p[0]], t.od[p[1]], t.od[p[2]]);
            ++want[static_cast<std::size_t>(px::hist_bin(c.h))];
            ++want[static_cast<std::size_t>(px::kHistBins + px::hist_bin(c.e))];
        }
        INFO("pixels " << count);
        CHECK(concentration_histograms(tissue, solver, nullptr) == want);
        ThreadPool pool(2);
        CHECK(concentration_histograms(tissue, solver, &pool) == want);
    }
}
