// Double-precision references of docs/method.md used by the tests: written from the contract's
// formulas directly (no tables, no histograms), independent of the production code paths.
#pragma once

#include <algorithm>
#include <cmath>
#include <vector>

#include "core/image.hpp"
#include "core/model.hpp"
#include "core/tables.hpp"

namespace vn::test {

struct Conc2 {
    double h, e;
};

// Section 5 by brute force over the three candidate sets (interior, H axis, E axis),
// choosing the feasible candidate with the lowest objective.
inline Conc2 reference_solve(const double w[2][3], const double od[3], double lambda) {
    auto objective = [&](double h, double e) {
        double f = 0;
        for (int c = 0; c < 3; ++c) {
            const double r = od[c] - w[0][c] * h - w[1][c] * e;
            f += 0.5 * r * r;
        }
        return f + lambda * (h + e);
    };
    double g00 = 0, g01 = 0, g11 = 0, b0 = -lambda, b1 = -lambda;
    for (int c = 0; c < 3; ++c) {
        g00 += w[0][c] * w[0][c];
        g01 += w[0][c] * w[1][c];
        g11 += w[1][c] * w[1][c];
        b0 += w[0][c] * od[c];
        b1 += w[1][c] * od[c];
    }
    std::vector<Conc2> candidates = {{0, 0}};
    if (g00 > 0) candidates.push_back({std::max(0.0, b0 / g00), 0});
    if (g11 > 0) candidates.push_back({0, std::max(0.0, b1 / g11)});
    const double det = g00 * g11 - g01 * g01;
    if (det > 0) {
        const double h = (g11 * b0 - g01 * b1) / det, e = (g00 * b1 - g01 * b0) / det;
        if (h >= 0 && e >= 0) candidates.push_back({h, e});
    }
    Conc2 best = candidates[0];
    for (const Conc2& c : candidates)
        if (objective(c.h, c.e) < objective(best.h, best.e)) best = c;
    return best;
}

// numpy.percentile(values, q) with the default linear interpolation.
inline double reference_percentile(std::vector<double> v, double q) {
    if (v.empty()) return 0;
    std::sort(v.begin(), v.end());
    const double pos = q / 100.0 * static_cast<double>(v.size() - 1);
    const auto lo = static_cast<std::size_t>(std::floor(pos));
    const std::size_t hi = std::min(lo + 1, v.size() - 1);
    return v[lo] + (pos - static_cast<double>(lo)) * (v[hi] - v[lo]);
}

// Sections 5-7 in double precision for given models: the exact percentiles of the source
// model are taken as given (model.max_conc), as in production.
inline RgbImage reference_transform(RgbView src, const StainModel& source, const StainModel& target) {
    RgbImage out(src.width, src.height);
    double w[2][3];
    for (int k = 0; k < 2; ++k)
        for (int c = 0; c < 3; ++c) w[k][c] = source.stain[k][c];
    for (int y = 0; y < src.height; ++y)
        for (int x = 0; x < src.width; ++x) {
            const std::uint8_t* p = src.row(y) + 3 * x;
            const double od[3] = {od_exact(p[0]), od_exact(p[1]), od_exact(p[2])};
            const Conc2 c = reference_solve(w, od, source.params.lambda_conc);
            const double h = c.h * target.max_conc[0] / source.max_conc[0];
            const double e = c.e * target.max_conc[1] / source.max_conc[1];
            for (int ch = 0; ch < 3; ++ch) {
                const double v = 255.0 * std::exp(-(target.stain[0][ch] * h + target.stain[1][ch] * e));
                out.pixels[(static_cast<std::size_t>(y) * src.width + x) * 3 + ch] =
                    static_cast<std::uint8_t>(std::clamp(std::nearbyint(v), 0.0, 255.0));
            }
        }
    return out;
}

}  // namespace vn::test
