// An independent double-precision reference solver for the SNMF objective of docs/method.md §3
// section 4: W is parametrised by two spherical angles per row (rows unit length, the norm
// bound is active at any optimum), C is solved exactly per pixel, and F(W) is minimised by
// Nelder-Mead from several starts. Slow and simple on purpose.
#pragma once

#include <algorithm>
#include <array>
#include <cmath>
#include <vector>

#include "core/snmf.hpp"
#include "tests/core/reference.hpp"

namespace vn::test {

inline StainMatrix angles_to_w(const std::array<double, 4>& a) {
    StainMatrix w{};
    for (int k = 0; k < 2; ++k) {
        const double t = a[2 * k], p = a[2 * k + 1];
        // Clamp into the positive octant: W >= 0.
        const double tc = std::clamp(t, 0.0, 1.5707963267948966), pc = std::clamp(p, 0.0, 1.5707963267948966);
        w[k] = {std::sin(tc) * std::cos(pc), std::sin(tc) * std::sin(pc), std::cos(tc)};
    }
    return w;
}

inline std::array<double, 4> w_to_angles(const StainMatrix& w) {
    std::array<double, 4> a{};
    for (int k = 0; k < 2; ++k) {
        a[2 * k] = std::acos(std::clamp(w[k][2], -1.0, 1.0));
        a[2 * k + 1] = std::atan2(w[k][1], w[k][0]);
    }
    return a;
}

inline double reference_objective(const OdSamples& x, const StainMatrix& w, double lambda) {
    const double wd[2][3] = {{w[0][0], w[0][1], w[0][2]}, {w[1][0], w[1][1], w[1][2]}};
    double f = 0;
    for (std::size_t i = 0; i < x.n; ++i) {
        const double od[3] = {x.r[i], x.g[i], x.b[i]};
        const Conc2 c = reference_solve(wd, od, lambda);
        for (int ch = 0; ch < 3; ++ch) {
            const double r = od[ch] - wd[0][ch] * c.h - wd[1][ch] * c.e;
            f += 0.5 * r * r;
        }
        f += lambda * (c.h + c.e);
    }
    return f / static_cast<double>(x.n);
}

inline double nelder_mead_best(const OdSamples& x, std::array<double, 4> start, double lambda, int evals) {
    using P = std::array<double, 4>;
    auto f = [&](const P& p) { return reference_objective(x, angles_to_w(p), lambda); };
    std::vector<P> s(5, start);
    std::vector<double> fs(5);
    for (int i = 0; i < 4; ++i) s[i + 1][i] += 0.08;
    for (int i = 0; i < 5; ++i) fs[i] = f(s[i]);
    for (int it = 0; it < evals; ++it) {
        std::vector<int> idx = {0, 1, 2, 3, 4};
        std::sort(idx.begin(), idx.end(), [&](int a, int b) { return fs[a] < fs[b]; });
        const int worst = idx[4], second = idx[3], best = idx[0];
        P c{};
        for (int i : idx)
            if (i != worst)
                for (int d = 0; d < 4; ++d) c[d] += s[i][d] / 4;
        auto along = [&](double t) {
            P p;
            for (int d = 0; d < 4; ++d) p[d] = c[d] + t * (s[worst][d] - c[d]);
            return p;
        };
        const P r = along(-1);
        const double fr = f(r);
        if (fr < fs[best]) {
            const P e = along(-2);
            const double fe = f(e);
            if (fe < fr) { s[worst] = e; fs[worst] = fe; } else { s[worst] = r; fs[worst] = fr; }
        } else if (fr < fs[second]) {
            s[worst] = r;
            fs[worst] = fr;
        } else {
            const P k = along(0.5);
            const double fk = f(k);
            if (fk < fs[worst]) {
                s[worst] = k;
                fs[worst] = fk;
            } else {
                for (int i : idx)
                    if (i != best) {
                        for (int d = 0; d < 4; ++d) s[i][d] = s[best][d] + 0.5 * (s[i][d] - s[best][d]);
                        fs[i] = f(s[i]);
                    }
            }
        }
    }
    return *std::min_element(fs.begin(), fs.end());
}

// Best F/n the reference reaches from the given starts.
inline double reference_snmf_objective(const OdSamples& x, const std::vector<StainMatrix>& starts, double lambda,
                                       int evals = 300) {
    double best = 1e300;
    for (const StainMatrix& w : starts) best = std::min(best, nelder_mead_best(x, w_to_angles(w), lambda, evals));
    return best;
}

}  // namespace vn::test
