// SNMF (core/snmf.cpp): ground truth on synthetic images, objective against an independent
// reference solver, determinism.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

#include "core/estimate.hpp"
#include "core/snmf.hpp"
#include "core/snmf_math.hpp"
#include "core/synthetic.hpp"
#include "tests/core/snmf_reference.hpp"

using namespace vn;

namespace {

double angle_deg(const std::array<double, 3>& a, const std::array<double, 3>& b) {
    double d = 0, na = 0, nb = 0;
    for (int c = 0; c < 3; ++c) {
        d += a[c] * b[c];
        na += a[c] * a[c];
        nb += b[c] * b[c];
    }
    return std::acos(std::min(1.0, d / std::sqrt(na * nb))) * 180.0 / 3.14159265358979323846;
}

OdSample synthetic_sample(const StainMatrix& stains, std::uint64_t seed, int size, double noise) {
    SyntheticSpec spec;
    spec.width = spec.height = size;
    spec.stains = stains;
    spec.seed = seed;
    spec.noise = noise;
    const RgbImage img = render_synthetic(spec);
    return sample_od(gather_tissue({img.view()}, nullptr), 20000, 1);
}

}  // namespace

TEST_CASE("SNMF recovers known stain vectors from synthetic H&E within 1 degree", "[snmf]") {
    for (int lab = 0; lab < 2; ++lab)
        for (std::uint64_t seed : {1u, 2u, 3u}) {
            const StainMatrix truth = lab == 0 ? synthetic_stains_lab_a() : synthetic_stains_lab_b();
            const OdSample s = synthetic_sample(truth, seed, 384, 1.0);
            const SnmfResult r = snmf(OdSamples{s.r.data(), s.g.data(), s.b.data(), s.r.size()}, 0.1, 200, 1e-7);
            INFO("lab " << lab << " seed " << seed);
            CHECK(angle_deg(r.w[0], truth[0]) < 1.0);
            CHECK(angle_deg(r.w[1], truth[1]) < 1.0);
            CHECK(r.w[0][0] >= r.w[1][0]);  // ordering rule
            for (const auto& row : r.w) {
                CHECK(std::sqrt(row[0] * row[0] + row[1] * row[1] + row[2] * row[2]) == Approx(1.0).epsilon(1e-9));
                for (double v : row) CHECK(v >= 0);
            }
        }
}

TEST_CASE("SNMF objective is no worse than the reference solver's", "[snmf]") {
    const OdSample s = synthetic_sample(synthetic_stains_lab_b(), 11, 256, 2.0);
    const OdSamples x{s.r.data(), s.g.data(), s.b.data(), s.r.size()};
    const SnmfResult r = snmf(x, 0.1, 200, 1e-7);
    // Objective reported equals the objective recomputed in double precision for the returned W.
    CHECK(r.objective == Approx(test::reference_objective(x, r.w, 0.1)).epsilon(1e-5));
    const StainMatrix ref_start{{{0.5626, 0.7201, 0.4062}, {0.2159, 0.8012, 0.5581}}};
    const double best = test::reference_snmf_objective(x, {snmf_start(x), normalize_and_order(ref_start)}, 0.1);
    INFO("ours " << r.objective << " reference " << best);
    CHECK(r.objective <= best * 1.001);
}

TEST_CASE("SNMF is bit-for-bit repeatable and never increases F", "[snmf]") {
    const OdSample s = synthetic_sample(synthetic_stains_lab_a(), 5, 256, 1.0);
    const OdSamples x{s.r.data(), s.g.data(), s.b.data(), s.r.size()};
    const SnmfResult a = snmf(x, 0.1, 200, 1e-7);
    const SnmfResult b = snmf(x, 0.1, 200, 1e-7);
    CHECK(a.w == b.w);
    CHECK(a.objective == b.objective);
    const double f_start = snmf_objective(x, snmf_start(x), 0.1);
    CHECK(a.objective <= f_start * (1 + 1e-6));
    // More iterations never make it worse.
    double prev = f_start;
    for (int it = 1; it <= 5; ++it) {
        const SnmfResult r = snmf(x, 0.1, it, 0.0);
        CHECK(r.objective <= prev * (1 + 1e-6));
        prev = r.objective;
    }
}

TEST_CASE("SNMF start is sane on tiny and degenerate inputs", "[snmf]") {
    const float zero[1] = {0.0f};
    const StainMatrix w = snmf_start(OdSamples{zero, zero, zero, 1});
    CHECK(w[0][0] >= w[1][0]);
    std::vector<float> r(100, 0.5f), g(100, 0.5f), b(100, 0.5f);  // a single colour
    const SnmfResult res = snmf(OdSamples{r.data(), g.data(), b.data(), r.size()}, 0.1, 50, 1e-7);
    for (const auto& row : res.w)
        for (double v : row) CHECK(std::isfinite(v));
    CHECK(std::isfinite(res.objective));
}

TEST_CASE("the start's angle histogram equals sm::angle_bin sample by sample", "[snmf]") {
    // Random OD samples in random planes, plus samples placed on every bin edge (within float
    // rounding), on the axes and at zero, where the histogram must call atan2 itself.
    std::mt19937_64 rng(7);
    std::uniform_real_distribution<double> unit(-1.0, 1.0);
    std::uniform_real_distribution<float> od(0.0f, 3.0f);
    auto direction = [&] {
        double v[3], n = 0;
        for (double& c : v) {
            c = unit(rng);
            n += c * c;
        }
        n = std::sqrt(n);
        return std::array<double, 3>{v[0] / n, v[1] / n, v[2] / n};
    };
    std::vector<std::array<std::array<double, 3>, 2>> planes = {{{{1, 0, 0}, {0, 1, 0}}}, {{{0, 0, -1}, {0, -1, 0}}}};
    for (int i = 0; i < 6; ++i) planes.push_back({direction(), direction()});
    for (const auto& plane : planes) {
        std::vector<float> r, g, b;
        for (int i = 0; i < 200000; ++i) {
            r.push_back(od(rng));
            g.push_back(i % 97 == 0 ? 0.0f : od(rng));
            b.push_back(i % 89 == 0 ? 0.0f : od(rng));
        }
        for (int k = 0; k <= sm::kAngleBins; ++k)  // bin edges in the (r, g) plane, b = 0
            for (double nudge : {-1e-9, 0.0, 1e-9}) {
                const double ang = -sm::kPi + 2 * sm::kPi * k / sm::kAngleBins + nudge;
                r.push_back(static_cast<float>(2 * std::cos(ang)));
                g.push_back(static_cast<float>(2 * std::sin(ang)));
                b.push_back(0.0f);
            }
        for (float v : {0.0f, -0.0f, 1.0f, -1.0f}) {
            r.push_back(v), g.push_back(0.0f), b.push_back(0.0f);
            r.push_back(0.0f), g.push_back(v), b.push_back(-0.0f);
        }
        const double e1[3] = {plane[0][0], plane[0][1], plane[0][2]};
        const double e2[3] = {plane[1][0], plane[1][1], plane[1][2]};
        std::vector<std::uint32_t> want(sm::kAngleBins, 0), got(sm::kAngleBins, 0);
        for (std::size_t i = 0; i < r.size(); ++i) ++want[static_cast<std::size_t>(sm::angle_bin(r[i], g[i], b[i], e1, e2))];
        angle_histogram(OdSamples{r.data(), g.data(), b.data(), r.size()}, e1, e2, got.data());
        CHECK(got == want);
    }
}
