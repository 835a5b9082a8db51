// The per-pixel math (core/pixel_math.hpp) against docs/method.md §1 in double precision.
#include <catch2/catch.hpp>

#include <cmath>
#include <random>

#include "core/pixel_math.hpp"
#include "core/tables.hpp"
#include "tests/core/reference.hpp"

using namespace vn;

namespace {

void random_unit_row(std::mt19937_64& rng, double row[3]) {
    std::uniform_real_distribution<double> u(0.0, 1.0);
    double n = 0;
    do {
        for (int c = 0; c < 3; ++c) row[c] = u(rng);
        n = std::sqrt(row[0] * row[0] + row[1] * row[1] + row[2] * row[2]);
    } while (n < 1e-3);
    for (int c = 0; c < 3; ++c) row[c] /= n;
}

double objective(const double w[2][3], const double od[3], double lambda, double h, double e) {
    double f = 0;
    for (int c = 0; c < 3; ++c) {
        const double r = od[c] - w[0][c] * h - w[1][c] * e;
        f += 0.5 * r * r;
    }
    return f + lambda * (h + e);
}

}  // namespace

TEST_CASE("optical density table is exact", "[pixel]") {
    const Tables& t = tables();
    for (int v = 0; v < 256; ++v) REQUIRE(t.od[v] == static_cast<float>(-std::log(std::max(v, 1) / 255.0)));
    CHECK(t.od[255] == 0.0f);
    CHECK(t.od[0] == Approx(5.5413).epsilon(1e-4));
}

TEST_CASE("tissue test equals the L* formula for all 2^24 colours", "[pixel]") {
    const Tables& t = tables();
    double lin[256];
    for (int v = 0; v < 256; ++v) {
        const double x = v / 255.0;
        lin[v] = x <= 0.04045 ? x / 12.92 : std::pow((x + 0.055) / 1.055, 2.4);
    }
    std::size_t mismatches = 0, tissue = 0;
    for (int r = 0; r < 256; ++r)
        for (int g = 0; g < 256; ++g)
            for (int b = 0; b < 256; ++b) {
                const double y = 0.212671 * lin[r] + 0.715160 * lin[g] + 0.072169 * lin[b];
                const double l = y > 0.008856 ? 116.0 * std::cbrt(y) - 16.0 : 903.3 * y;
                const bool expected = l / 100.0 < 0.8;
                const bool got = px::is_tissue(t.luma, static_cast<unsigned>(r), static_cast<unsigned>(g), static_cast<unsigned>(b));
                mismatches += expected != got;
                tissue += got;
            }
    CHECK(mismatches == 0);
    CHECK(tissue > 0);
    CHECK(tissue < (1u << 24));
    CHECK_FALSE(px::is_tissue(t.luma, 255, 255, 255));
    CHECK(px::is_tissue(t.luma, 0, 0, 0));
}

TEST_CASE("rendering table is within 0.07 LSB of 255 exp(-x) before rounding", "[pixel]") {
    const Tables& t = tables();
    px::Render r{};
    for (int c = 0; c < 3; ++c) r.a[c] = px::kExpPerUnit;  // x = c_H
    for (double x = 0; x < 7.0; x += 1.0 / 8192) {
        std::uint8_t out[3];
        px::render(r, t.exp_out, static_cast<float>(x), 0.0f, out);
        const double exact = 255.0 * std::exp(-x);
        INFO("x = " << x);
        REQUIRE(std::fabs(out[0] - exact) <= 0.5 + 0.07);
    }
    std::uint8_t out[3];
    px::render(r, t.exp_out, 1e30f, 0.0f, out);
    CHECK(out[0] == 0);
    px::render(r, t.exp_out, 0.0f, 0.0f, out);
    CHECK(out[0] == 255);
}

TEST_CASE("concentration solve is the exact minimiser (random pixels and stains)", "[pixel][solver]") {
    std::mt19937_64 rng(42);
    std::uniform_real_distribution<double> od_dist(0.0, 3.0);
    const double lambda = 0.01;
    int interior = 0, axis = 0, zero = 0;
    for (int trial = 0; trial < 2000; ++trial) {
        double w[2][3];
        random_unit_row(rng, w[0]);
        random_unit_row(rng, w[1]);
        const px::Solver<double> sd = px::make_solver<double>(w, lambda);
        float wf[2][3];
        for (int k = 0; k < 2; ++k)
            for (int c = 0; c < 3; ++c) wf[k][c] = static_cast<float>(w[k][c]);
        const px::Solver<float> sf = px::make_solver<float>(wf, static_cast<float>(lambda));
        for (int i = 0; i < 50; ++i) {
            double od[3] = {od_dist(rng), od_dist(rng), od_dist(rng)};
            if (i == 0) od[0] = od[1] = od[2] = 0.0;  // white: zero OD
            const test::Conc2 ref = test::reference_solve(w, od, lambda);
            const px::Conc<double> cd = px::solve(sd, od[0], od[1], od[2]);
            REQUIRE(cd.h >= 0);
            REQUIRE(cd.e >= 0);
            const double f_ref = objective(w, od, lambda, ref.h, ref.e);
            REQUIRE(objective(w, od, lambda, cd.h, cd.e) <= f_ref + 1e-9 * (1 + f_ref));
            const px::Conc<float> cf = px::solve(sf, static_cast<float>(od[0]), static_cast<float>(od[1]), static_cast<float>(od[2]));
            REQUIRE(std::isfinite(cf.h));
            REQUIRE(std::isfinite(cf.e));
            REQUIRE(objective(w, od, lambda, cf.h, cf.e) <= f_ref + 1e-4 * (1 + f_ref));
            // Optimality conditions: gradient G c - b is zero on a positive entry, >= 0 on a zero one.
            const double b0 = w[0][0] * od[0] + w[0][1] * od[1] + w[0][2] * od[2] - lambda;
            const double b1 = w[1][0] * od[0] + w[1][1] * od[1] + w[1][2] * od[2] - lambda;
            const double gr0 = sd.g00 * cd.h + sd.g01 * cd.e - b0, gr1 = sd.g01 * cd.h + sd.g11 * cd.e - b1;
            if (cd.h > 0) REQUIRE(std::fabs(gr0) < 1e-9); else REQUIRE(gr0 > -1e-9);
            if (cd.e > 0) REQUIRE(std::fabs(gr1) < 1e-9); else REQUIRE(gr1 > -1e-9);
            interior += cd.h > 0 && cd.e > 0;
            axis += (cd.h > 0) != (cd.e > 0);
            zero += cd.h == 0 && cd.e == 0;
        }
    }
    // All three regimes were exercised.
    CHECK(interior > 100);
    CHECK(axis > 100);
    CHECK(zero > 10);
}

TEST_CASE("concentration solve with nearly parallel and identical stains", "[pixel][solver]") {
    std::mt19937_64 rng(7);
    std::uniform_real_distribution<double> od_dist(0.0, 3.0);
    for (double deg : {5.0, 1.0, 0.1, 0.01, 0.0}) {
        const double a = deg * 3.14159265358979 / 180.0;
        double w[2][3] = {{std::cos(a / 2), std::sin(a / 2), 0.0}, {std::cos(a / 2), -std::sin(a / 2), 0.0}};
        // Rotate into the positive octant.
        for (auto& row : w) {
            const double x = row[0], y = row[1];
            row[0] = 0.6 * x - 0.3 * y;
            row[1] = 0.6 * x + 0.3 * y + 0.1;
            row[2] = 0.5 * x;
            const double n = std::sqrt(row[0] * row[0] + row[1] * row[1] + row[2] * row[2]);
            for (double& v : row) v /= n;
        }
        float wf[2][3];
        for (int k = 0; k < 2; ++k)
            for (int c = 0; c < 3; ++c) wf[k][c] = static_cast<float>(w[k][c]);
        const px::Solver<float> sf = px::make_solver<float>(wf, 0.01f);
        for (int i = 0; i < 2000; ++i) {
            const double od[3] = {od_dist(rng), od_dist(rng), od_dist(rng)};
            const test::Conc2 ref = test::reference_solve(w, od, 0.01);
            const px::Conc<float> c = px::solve(sf, static_cast<float>(od[0]), static_cast<float>(od[1]), static_cast<float>(od[2]));
            INFO("angle " << deg);
            REQUIRE(std::isfinite(c.h));
            REQUIRE(std::isfinite(c.e));
            REQUIRE(c.h >= 0);
            REQUIRE(c.e >= 0);
            const double f_ref = objective(w, od, 0.01, ref.h, ref.e);
            REQUIRE(objective(w, od, 0.01, c.h, c.e) <= f_ref + 1e-3 * (1 + f_ref));
        }
    }
}

TEST_CASE("percentile histogram bins are within 2^-11 relative", "[pixel][percentile]") {
    int prev_bin = -1;
    for (double v = 1.0 / 4096; v < 256; v *= 1.0001) {
        const int bin = px::hist_bin(static_cast<float>(v));
        REQUIRE(bin >= 1);
        REQUIRE(bin < px::kHistBins);
        REQUIRE(bin >= prev_bin);
        prev_bin = bin;
        REQUIRE(std::fabs(px::hist_value(bin) - v) <= v * (1.0 / 2048) * 1.0001);
    }
    CHECK(px::hist_bin(0.0f) == 0);
    CHECK(px::hist_bin(std::nanf("")) == 0);
    CHECK(px::hist_bin(1e9f) == px::kHistBins - 1);
    CHECK(px::hist_value(0) == 0.0f);
}
