// Estimation (core/estimate.cpp): sampling, percentiles, whole estimates, failure modes.
#include <catch2/catch.hpp>

#include <cmath>
#include <random>
#include <set>

#include "core/backend.hpp"
#include "core/error.hpp"
#include "core/estimate.hpp"
#include "core/synthetic.hpp"
#include "core/tables.hpp"
#include "core/thread_pool.hpp"
#include "tests/core/reference.hpp"
#include "tests/support/test_support.hpp"

using namespace vn;

namespace {

RgbImage synthetic(std::uint64_t seed, int size = 320) {
    SyntheticSpec spec;
    spec.width = spec.height = size;
    spec.stains = synthetic_stains_lab_b();
    spec.seed = seed;
    return render_synthetic(spec);
}

}  // namespace

TEST_CASE("sample ranks are a sorted, distinct, uniform, repeatable sample", "[estimate]") {
    const auto a = sample_ranks(100000, 5000, 3);
    REQUIRE(a.size() == 5000);
    CHECK(std::is_sorted(a.begin(), a.end()));
    CHECK(std::set<std::uint64_t>(a.begin(), a.end()).size() == a.size());
    CHECK(a.back() < 100000);
    double mean = 0;
    for (auto v : a) mean += static_cast<double>(v);
    mean /= static_cast<double>(a.size());
    CHECK(std::fabs(mean - 50000) < 2000);  // about 5 standard errors
    CHECK(sample_ranks(100000, 5000, 3) == a);
    CHECK(sample_ranks(100000, 5000, 4) != a);
    const auto all = sample_ranks(10, 50, 1);
    REQUIRE(all.size() == 10);
    CHECK(all.front() == 0);
    CHECK(all.back() == 9);
    CHECK(sample_ranks(0, 10, 1).empty());
}

TEST_CASE("histogram percentile is within 1e-3 of numpy's percentile", "[estimate][percentile]") {
    std::mt19937_64 rng(9);
    for (int trial = 0; trial < 20; ++trial) {
        std::lognormal_distribution<double> dist(-0.5 + 0.1 * trial, 0.6);
        const int n = trial == 0 ? 1 : 1 + static_cast<int>(rng() % 50000);
        std::vector<std::uint32_t> hist(px::kHistBins, 0);
        std::vector<double> values;
        for (int i = 0; i < n; ++i) {
            const auto v = static_cast<float>(dist(rng));
            values.push_back(v);
            ++hist[static_cast<std::size_t>(px::hist_bin(v))];
        }
        for (double q : {1.0, 50.0, 99.0, 100.0}) {
            const double exact = test::reference_percentile(values, q);
            const double got = percentile_from_histogram(hist.data(), px::kHistBins, q);
            INFO("n " << n << " q " << q);
            REQUIRE(std::fabs(got - exact) <= 1e-3 * exact);
        }
    }
    std::vector<std::uint32_t> empty(px::kHistBins, 0);
    CHECK(percentile_from_histogram(empty.data(), px::kHistBins, 99) == 0.0);
}

TEST_CASE("tissue gathering keeps exactly the tissue pixels, in order", "[estimate]") {
    const RgbImage img = test::random_image(97, 61, 5);
    const TissuePixels t = gather_tissue({img.view()}, nullptr, false);
    const TissuePixels kept = gather_tissue({img.view()}, nullptr, true);
    const Tables& tab = tables();
    UninitializedBytes expected, expected_kept;
    std::uint64_t artefacts = 0;
    for (std::size_t i = 0; i < img.pixel_count(); ++i) {
        const std::uint8_t* p = img.pixels.data() + 3 * i;
        if (!is_tissue_exact(p[0], p[1], p[2])) continue;
        expected.insert(expected.end(), p, p + 3);
        if (px::is_artefact(tab.od, p[0], p[1], p[2]))
            ++artefacts;
        else
            expected_kept.insert(expected_kept.end(), p, p + 3);
    }
    CHECK(t.rgb == expected);
    CHECK(t.artefact_pixels == 0);
    CHECK(kept.rgb == expected_kept);
    CHECK(kept.artefact_pixels == artefacts);
    CHECK(artefacts > 0);  // random colours: many are no H&E mix
    CHECK(t.total_pixels == img.pixel_count());
    ThreadPool pool(2);
    CHECK(gather_tissue({img.view(), img.view()}, &pool).count() == 2 * kept.count());
}

TEST_CASE("an estimate on synthetic H&E: stains, and percentiles over tissue pixels", "[estimate]") {
    const RgbImage img = synthetic(21);
    EstimateParams p;
    ThreadPool pool(2);
    const StainModel m = estimate_model({img.view()}, p, &pool);
    validate(m, "estimate");
    CHECK(stain_angle_deg(m) > 10);
    // max_conc equals the exact 99th percentile of the exact concentrations over tissue pixels.
    double w[2][3];
    for (int k = 0; k < 2; ++k)
        for (int c = 0; c < 3; ++c) w[k][c] = m.stain[k][c];
    std::vector<double> ch, ce;
    for (std::size_t i = 0; i < img.pixel_count(); ++i) {
        const std::uint8_t* px_ = img.pixels.data() + 3 * i;
        if (!is_tissue_exact(px_[0], px_[1], px_[2])) continue;
        const double od[3] = {od_exact(px_[0]), od_exact(px_[1]), od_exact(px_[2])};
        const test::Conc2 c = test::reference_solve(w, od, 0.01);
        ch.push_back(c.h);
        ce.push_back(c.e);
    }
    CHECK(m.tissue_pixels == ch.size());
    CHECK(m.max_conc[0] == Approx(test::reference_percentile(ch, 99)).epsilon(1e-3));
    CHECK(m.max_conc[1] == Approx(test::reference_percentile(ce, 99)).epsilon(1e-3));
}

TEST_CASE("estimates refuse blank, single-colour and single-stain images", "[estimate]") {
    EstimateParams p;
    RgbImage white(256, 256);
    std::fill(white.pixels.begin(), white.pixels.end(), std::uint8_t{255});
    REQUIRE_THROWS_AS(estimate_model({white.view()}, p, nullptr), Error);
    try {
        estimate_model({white.view()}, p, nullptr);
    } catch (const Error& e) {
        CHECK(e.kind() == ErrorKind::Data);
        CHECK(std::string(e.what()).find("tissue") != std::string::npos);
    }
    RgbImage flat(256, 256);
    for (std::size_t i = 0; i < flat.pixel_count(); ++i) {
        flat.pixels[3 * i] = 120;
        flat.pixels[3 * i + 1] = 60;
        flat.pixels[3 * i + 2] = 140;
    }
    try {
        estimate_model({flat.view()}, p, nullptr);
        FAIL("a single-colour image gave an estimate");
    } catch (const Error& e) {
        CHECK(e.kind() == ErrorKind::Data);
    }
    RgbImage black(64, 64);  // all zero: OD saturates, one direction only
    try {
        estimate_model({black.view()}, p, nullptr);
        FAIL("an all-black image gave an estimate");
    } catch (const Error& e) {
        CHECK(e.kind() == ErrorKind::Data);
    }
}

TEST_CASE("results are identical for 1 and 2 threads", "[estimate][determinism]") {
    const RgbImage img = synthetic(33, 300);
    EstimateParams p;
    auto one = make_cpu_backend(1);
    auto two = make_cpu_backend(2);
    const StainModel a = one->estimate({img.view()}, p);
    const StainModel b = two->estimate({img.view()}, p);
    CHECK(a.stain == b.stain);
    CHECK(a.max_conc == b.max_conc);
    const StainModel target = builtin_reference();
    RgbImage out1(img.width, img.height), out2(img.width, img.height), out3(img.width, img.height);
    one->normalize_tiles(target, p, {TileJob{img.view(), out1.span()}});
    two->normalize_tiles(target, p, {TileJob{img.view(), out2.span()}});
    two->normalize_tiles(target, p, {TileJob{img.view(), out3.span()}});
    CHECK(out1.pixels == out2.pixels);
    CHECK(out2.pixels == out3.pixels);
}

TEST_CASE("per-tile mode passes a blank tile through unchanged and says why", "[estimate]") {
    auto be = make_cpu_backend(2);
    RgbImage white(128, 128);
    std::fill(white.pixels.begin(), white.pixels.end(), std::uint8_t{250});
    const RgbImage tissue = synthetic(4, 128);
    RgbImage o1(128, 128), o2(128, 128);
    const auto res = be->normalize_tiles(builtin_reference(), EstimateParams{},
                                         {TileJob{white.view(), o1.span()}, TileJob{tissue.view(), o2.span()}});
    REQUIRE(res.size() == 2);
    CHECK_FALSE(res[0].normalized);
    CHECK(res[0].reason.find("tissue") != std::string::npos);
    CHECK(o1.pixels == white.pixels);
    CHECK(res[1].normalized);
    CHECK(o2.pixels != tissue.pixels);
}
