// The ink and artefact filter (px::is_artefact, docs/method.md §2): what it
// leaves out, that it changes nothing on clean H&E, and what painted pen ink does to the
// estimate with and without it. The figures go to the test output (run with -s to see them all).
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <vector>

#include "core/backend.hpp"
#include "core/estimate.hpp"
#include "core/synthetic.hpp"
#include "core/tables.hpp"
#include "core/thread_pool.hpp"
#include "tests/core/ink_paint.hpp"
#include "tests/support/test_support.hpp"

using namespace vn;
using test::estimate_with;
using test::worst_angle;

namespace {

RgbImage synthetic(const StainMatrix& w, std::uint64_t seed) {
    SyntheticSpec spec;
    spec.stains = w;
    spec.seed = seed;
    return render_synthetic(spec);
}

}  // namespace

TEST_CASE("the artefact test: H&E mixtures pass, grey, black, green and dense blue do not", "[ink]") {
    const Tables& t = tables();
    // Every non-negative mix of several published H&E stain pairs, at several densities.
    const double stains[][2][3] = {{{0.650, 0.704, 0.286}, {0.072, 0.990, 0.105}},
                                   {{0.5626, 0.7201, 0.4062}, {0.2159, 0.8012, 0.5581}},
                                   {{0.480, 0.780, 0.400}, {0.180, 0.860, 0.480}},
                                   {{0.735, 0.645, 0.207}, {0.359, 0.887, 0.291}}};
    int mixes = 0;
    for (const auto& w : stains)
        for (double ch = 0; ch <= 2.5; ch += 0.1)
            for (double ce = 0; ce <= 2.0; ce += 0.1) {
                if (ch + ce < 0.3) continue;
                float od[3];
                for (int c = 0; c < 3; ++c) od[c] = static_cast<float>(ch * w[0][c] + ce * w[1][c]);
                INFO("c_H " << ch << " c_E " << ce);
                CHECK_FALSE(px::is_artefact_od(od[0], od[1], od[2]));
                ++mixes;
            }
    CHECK(mixes > 1900);
    // Grey debris, black ink, near-black, green and dense blue ink (8-bit RGB through the OD table).
    const int bad[][3] = {{150, 150, 150}, {90, 92, 95}, {30, 30, 35}, {12, 8, 18}, {30, 120, 80}, {60, 140, 110},
                          {10, 40, 150}};
    for (const auto& p : bad) {
        INFO("rgb " << p[0] << " " << p[1] << " " << p[2]);
        CHECK(px::is_artefact(t.od, p[0], p[1], p[2]));
    }
}

TEST_CASE("the sample is drawn over all tissue pixels: pixels left out only drop their own ranks", "[ink]") {
    // Random colours (many are no H&E mix) in two images, so that ranks run on across images and bands.
    const RgbImage a = test::random_image(97, 61, 5), b = test::random_image(45, 70, 6);
    const std::vector<RgbView> views{a.view(), b.view()};
    const TissuePixels all = gather_tissue(views, nullptr, false);
    const TissuePixels kept = gather_tissue(views, nullptr, true);
    const Tables& t = tables();
    // The ranks recorded are exactly those of the tissue pixels that fail the test.
    std::vector<std::uint64_t> want;
    for (std::uint64_t i = 0; i < all.count(); ++i) {
        const std::uint8_t* p = all.rgb.data() + 3 * i;
        if (px::is_artefact(t.od, p[0], p[1], p[2])) want.push_back(i);
    }
    REQUIRE(want.size() > 100);
    CHECK(kept.artefact_ranks == want);
    CHECK(kept.artefact_pixels == want.size());
    CHECK(kept.all_tissue() == all.count());
    CHECK(all.artefact_ranks.empty());
    ThreadPool pool(3);
    CHECK(gather_tissue(views, &pool, true).artefact_ranks == want);
    // The kept sample = the unfiltered sample less the pixels left out, in the same order.
    for (std::uint64_t k : {500u, 3000u, 100000u}) {
        const std::vector<std::uint64_t> drawn = sample_ranks(all.count(), k, 11);
        std::vector<std::uint8_t> expect;
        for (std::uint64_t r : drawn)
            if (!std::binary_search(want.begin(), want.end(), r))
                expect.insert(expect.end(), all.rgb.begin() + static_cast<long>(3 * r),
                              all.rgb.begin() + static_cast<long>(3 * r + 3));
        std::vector<std::uint8_t> got;
        for (std::uint64_t r : sample_kept_ranks(kept, k, 11)) {
            REQUIRE(r < kept.count());
            got.insert(got.end(), kept.rgb.begin() + static_cast<long>(3 * r), kept.rgb.begin() + static_cast<long>(3 * r + 3));
        }
        INFO("k " << k);
        CHECK(got == expect);
        CHECK(got.size() < 3 * drawn.size());
    }
}

TEST_CASE("clean synthetic H&E: nothing is left out, the model is unchanged", "[ink]") {
    auto be = make_cpu_backend(2);
    for (const StainMatrix& w : {synthetic_stains_lab_a(), synthetic_stains_lab_b()})
        for (std::uint64_t seed : {1u, 2u, 3u}) {
            const RgbImage img = synthetic(w, seed);
            const StainModel off = estimate_with(*be, img, false), on = estimate_with(*be, img, true);
            std::printf("clean synthetic (seed %d): %llu of %llu tissue pixels left out, model moves %.4f deg\n",
                        static_cast<int>(seed), static_cast<unsigned long long>(on.artefact_pixels),
                        static_cast<unsigned long long>(off.tissue_pixels), worst_angle(on, off));
            CHECK(on.artefact_pixels == 0);
            CHECK(off.artefact_pixels == 0);
            CHECK(worst_angle(on, off) < 0.05);
            CHECK(on.max_conc[0] == off.max_conc[0]);
        }
}

TEST_CASE("under 1 in 1,000 tissue pixels failing the test, nothing is left out", "[ink]") {
    auto be = make_cpu_backend(2);
    const RgbImage clean = synthetic(synthetic_stains_lab_a(), 1);
    const StainModel ref = estimate_with(*be, clean, false);
    for (double cover : {0.0002, 0.0009, 0.0011, 0.002}) {
        std::size_t painted = 0;
        const RgbImage img = test::paint_ink(clean, test::kInks[0], 1.5, false, cover, 7, &painted);
        const StainModel off = estimate_with(*be, img, false), on = estimate_with(*be, img, true);
        std::printf("synthetic, opaque green ink on %.2f%% of tissue: %llu of %zu painted pixels left out; "
                    "without filter %.3f deg, with %.3f deg\n",
                    100 * cover, static_cast<unsigned long long>(on.artefact_pixels), painted, worst_angle(off, ref),
                    worst_angle(on, ref));
        INFO("cover " << cover << ", " << painted << " painted of " << off.tissue_pixels);
        REQUIRE(painted > 0);
        const TissuePixels all = gather_tissue({img.view()}, nullptr, false);
        ThreadPool pool(3);
        const TissuePixels gated = gather_tissue({img.view()}, &pool, true);
        if (painted * kArtefactMinShareInverse < off.tissue_pixels) {
            // Every tissue pixel, in order, as without the filter.
            CHECK(gated.rgb == all.rgb);
            CHECK(gated.artefact_pixels == 0);
            CHECK(gated.artefact_ranks.empty());
            CHECK(on.artefact_pixels == 0);
            CHECK(on.tissue_pixels == off.tissue_pixels);
            CHECK(on.stain == off.stain);
            CHECK(on.max_conc == off.max_conc);
        } else {
            CHECK(gated.count() + painted == all.count());
            CHECK(on.artefact_pixels == painted);
            CHECK(on.tissue_pixels + painted == off.tissue_pixels);
        }
    }
}

TEST_CASE("painted pen ink on synthetic H&E, with and without the filter", "[ink]") {
    auto be = make_cpu_backend(2);
    test::check_painted_ink(*be, synthetic(synthetic_stains_lab_a(), 1), "synthetic");
}
