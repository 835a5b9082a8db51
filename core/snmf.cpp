#include "core/snmf.hpp"

#include <algorithm>
#include <cmath>
#include <vector>

#include "core/pixel_math.hpp"

namespace vn {
namespace {

constexpr double kPi = 3.14159265358979323846;
constexpr int kAngleBins = 4096;

// Eigen-decomposition of a symmetric 3x3 matrix by cyclic Jacobi rotations (deterministic).
// On return the columns of v are eigenvectors, eigenvalues in d, sorted descending.
void eigen_sym3(double a[3][3], double d[3], double v[3][3]) {
    for (int i = 0; i < 3; ++i)
        for (int j = 0; j < 3; ++j) v[i][j] = i == j ? 1.0 : 0.0;
    for (int sweep = 0; sweep < 50; ++sweep) {
        const double off = a[0][1] * a[0][1] + a[0][2] * a[0][2] + a[1][2] * a[1][2];
        if (off < 1e-30) break;
        for (int p = 0; p < 2; ++p)
            for (int q = p + 1; q < 3; ++q) {
                if (std::fabs(a[p][q]) < 1e-300) continue;
                const double theta = (a[q][q] - a[p][p]) / (2.0 * a[p][q]);
                const double t = (theta >= 0 ? 1.0 : -1.0) / (std::fabs(theta) + std::sqrt(theta * theta + 1.0));
                const double c = 1.0 / std::sqrt(t * t + 1.0);
                const double s = t * c;
                for (int k = 0; k < 3; ++k) {  // A <- A J
                    const double akp = a[k][p], akq = a[k][q];
                    a[k][p] = c * akp - s * akq;
                    a[k][q] = s * akp + c * akq;
                }
                for (int k = 0; k < 3; ++k) {  // A <- J^T A
                    const double apk = a[p][k], aqk = a[q][k];
                    a[p][k] = c * apk - s * aqk;
                    a[q][k] = s * apk + c * aqk;
                }
                for (int k = 0; k < 3; ++k) {
                    const double vkp = v[k][p], vkq = v[k][q];
                    v[k][p] = c * vkp - s * vkq;
                    v[k][q] = s * vkp + c * vkq;
                }
            }
    }
    for (int i = 0; i < 3; ++i) d[i] = a[i][i];
    for (int i = 0; i < 2; ++i)  // selection sort, descending
        for (int j = i + 1; j < 3; ++j)
            if (d[j] > d[i]) {
                std::swap(d[i], d[j]);
                for (int k = 0; k < 3; ++k) std::swap(v[k][i], v[k][j]);
            }
}

// Linear-interpolated percentile (numpy's default) of values given as a histogram over
// [lo, hi) with bin midpoints as representatives.
double histogram_percentile(const std::vector<std::uint32_t>& hist, double lo, double hi, double q, std::size_t n) {
    const double pos = q / 100.0 * static_cast<double>(n - 1);
    const auto rank_lo = static_cast<std::size_t>(std::floor(pos));
    const double frac = pos - static_cast<double>(rank_lo);
    const double width = (hi - lo) / static_cast<double>(hist.size());
    auto value_at_rank = [&](std::size_t rank) {
        std::size_t cum = 0;
        for (std::size_t b = 0; b < hist.size(); ++b) {
            cum += hist[b];
            if (cum > rank) return lo + (static_cast<double>(b) + 0.5) * width;
        }
        return hi;
    };
    const double v0 = value_at_rank(rank_lo);
    const double v1 = rank_lo + 1 < n ? value_at_rank(rank_lo + 1) : v0;
    return v0 + frac * (v1 - v0);
}

// The reference H&E directions (used when a start direction has no positive part).
constexpr double kRefH[3] = {0.5626, 0.7201, 0.4062};
constexpr double kRefE[3] = {0.2159, 0.8012, 0.5581};

bool normalize_row(std::array<double, 3>& row) {
    const double n = std::sqrt(row[0] * row[0] + row[1] * row[1] + row[2] * row[2]);
    if (!(n > 1e-12)) return false;
    for (double& v : row) v /= n;
    return true;
}

struct Stats {
    double a00 = 0, a01 = 0, a11 = 0;  // C^T C
    double b[2][3] = {};                // C^T X
    double sum_c = 0;                   // sum of c_H + c_E
    double sum_x2 = 0;                  // sum ||x||^2
};

// One C-step: concentrations with W, accumulated into sufficient statistics. Blocks of
// kBlock pixels: the solve runs over arrays (vectorised), the sums go into kLanes independent
// float partial sums per statistic (vectorised), which are added in double in a fixed order.
Stats c_step(const OdSamples& x, const StainMatrix& w, double lambda) {
    float wf[2][3];
    for (int k = 0; k < 2; ++k)
        for (int c = 0; c < 3; ++c) wf[k][c] = static_cast<float>(w[k][c]);
    const px::Solver<float> s = px::make_solver<float>(wf, static_cast<float>(lambda));
    Stats st;
    constexpr std::size_t kBlock = 256;
    constexpr std::size_t kLanes = 8;
    float o0[kBlock], o1[kBlock], o2[kBlock], ch[kBlock], ce[kBlock];
    for (std::size_t i0 = 0; i0 < x.n; i0 += kBlock) {
        const std::size_t m = std::min(x.n - i0, kBlock);
        for (std::size_t i = 0; i < kBlock; ++i) {  // the tail is zero: it adds nothing
            o0[i] = i < m ? x.r[i0 + i] : 0.0f;
            o1[i] = i < m ? x.g[i0 + i] : 0.0f;
            o2[i] = i < m ? x.b[i0 + i] : 0.0f;
        }
        for (std::size_t i = 0; i < kBlock; ++i) {
            const px::Conc<float> c = px::solve(s, o0[i], o1[i], o2[i]);
            ch[i] = c.h;
            ce[i] = c.e;
        }
        float acc[11][kLanes] = {};
        for (std::size_t i = 0; i < kBlock; i += kLanes)
            for (std::size_t l = 0; l < kLanes; ++l) {
                const float h = ch[i + l], e = ce[i + l], a = o0[i + l], b = o1[i + l], c = o2[i + l];
                acc[0][l] += h * h;
                acc[1][l] += h * e;
                acc[2][l] += e * e;
                acc[3][l] += h * a;
                acc[4][l] += h * b;
                acc[5][l] += h * c;
                acc[6][l] += e * a;
                acc[7][l] += e * b;
                acc[8][l] += e * c;
                acc[9][l] += h + e;
                acc[10][l] += a * a + b * b + c * c;
            }
        double sum[11] = {};
        for (int k = 0; k < 11; ++k)
            for (std::size_t l = 0; l < kLanes; ++l) sum[k] += acc[k][l];
        st.a00 += sum[0]; st.a01 += sum[1]; st.a11 += sum[2];
        st.b[0][0] += sum[3]; st.b[0][1] += sum[4]; st.b[0][2] += sum[5];
        st.b[1][0] += sum[6]; st.b[1][1] += sum[7]; st.b[1][2] += sum[8];
        st.sum_c += sum[9];
        st.sum_x2 += sum[10];
    }
    return st;
}

// F from the sufficient statistics: 1/2 sum||x||^2 - tr(W B^T) + 1/2 tr(G A) + lambda sum c.
double objective_from(const Stats& st, const StainMatrix& w, double lambda) {
    double wb = 0;
    for (int k = 0; k < 2; ++k)
        for (int c = 0; c < 3; ++c) wb += w[k][c] * st.b[k][c];
    double g00 = 0, g01 = 0, g11 = 0;
    for (int c = 0; c < 3; ++c) {
        g00 += w[0][c] * w[0][c];
        g01 += w[0][c] * w[1][c];
        g11 += w[1][c] * w[1][c];
    }
    const double ga = g00 * st.a00 + 2.0 * g01 * st.a01 + g11 * st.a11;
    return 0.5 * st.sum_x2 - wb + 0.5 * ga + lambda * st.sum_c;
}

// Exact block-coordinate minimisation over the rows of W for fixed statistics.
void w_step(const Stats& st, StainMatrix& w) {
    const double a[2][2] = {{st.a00, st.a01}, {st.a01, st.a11}};
    for (int sweep = 0; sweep < 100; ++sweep) {
        double change = 0;
        for (int k = 0; k < 2; ++k) {
            if (!(a[k][k] > 0)) continue;  // stain unused: keep its direction
            const int j = 1 - k;
            std::array<double, 3> u{};
            for (int c = 0; c < 3; ++c) u[c] = std::max(0.0, (st.b[k][c] - a[k][j] * w[j][c]) / a[k][k]);
            const double n = std::sqrt(u[0] * u[0] + u[1] * u[1] + u[2] * u[2]);
            if (!(n > 0)) continue;
            if (n > 1) for (double& v : u) v /= n;
            for (int c = 0; c < 3; ++c) {
                change = std::max(change, std::fabs(u[c] - w[k][c]));
                w[k][c] = u[c];
            }
        }
        if (change < 1e-12) break;
    }
}

}  // namespace

StainMatrix normalize_and_order(StainMatrix w) {
    normalize_row(w[0]);
    normalize_row(w[1]);
    if (w[0][0] < w[1][0]) std::swap(w[0], w[1]);
    return w;
}

StainMatrix snmf_start(const OdSamples& x) {
    StainMatrix ref{{{kRefH[0], kRefH[1], kRefH[2]}, {kRefE[0], kRefE[1], kRefE[2]}}};
    if (x.n < 2) return normalize_and_order(ref);
    double mean[3] = {0, 0, 0};
    for (std::size_t i = 0; i < x.n; ++i) {
        mean[0] += x.r[i];
        mean[1] += x.g[i];
        mean[2] += x.b[i];
    }
    for (double& m : mean) m /= static_cast<double>(x.n);
    double cov[3][3] = {};
    for (std::size_t i = 0; i < x.n; ++i) {
        const double d[3] = {x.r[i] - mean[0], x.g[i] - mean[1], x.b[i] - mean[2]};
        for (int p = 0; p < 3; ++p)
            for (int q = p; q < 3; ++q) cov[p][q] += d[p] * d[q];
    }
    for (int p = 0; p < 3; ++p)
        for (int q = 0; q < p; ++q) cov[p][q] = cov[q][p];
    double eval[3], evec[3][3];
    eigen_sym3(cov, eval, evec);
    double e1[3], e2[3];
    for (int c = 0; c < 3; ++c) {
        e1[c] = evec[c][0];
        e2[c] = evec[c][1];
    }
    // Orientation: OD is non-negative, so the principal direction points into the positive octant.
    if (e1[0] + e1[1] + e1[2] < 0) for (double& v : e1) v = -v;
    if (e2[0] + e2[1] + e2[2] < 0) for (double& v : e2) v = -v;

    std::vector<std::uint32_t> hist(kAngleBins, 0);
    for (std::size_t i = 0; i < x.n; ++i) {
        const double t1 = x.r[i] * e1[0] + x.g[i] * e1[1] + x.b[i] * e1[2];
        const double t2 = x.r[i] * e2[0] + x.g[i] * e2[1] + x.b[i] * e2[2];
        const double ang = std::atan2(t2, t1);
        auto bin = static_cast<long>((ang + kPi) / (2 * kPi) * kAngleBins);
        bin = std::clamp(bin, 0L, static_cast<long>(kAngleBins - 1));
        ++hist[static_cast<std::size_t>(bin)];
    }
    const double lo = histogram_percentile(hist, -kPi, kPi, 1.0, x.n);
    const double hi = histogram_percentile(hist, -kPi, kPi, 99.0, x.n);
    StainMatrix w{};
    const double angles[2] = {lo, hi};
    for (int k = 0; k < 2; ++k) {
        for (int c = 0; c < 3; ++c) w[k][c] = std::max(0.0, std::cos(angles[k]) * e1[c] + std::sin(angles[k]) * e2[c]);
        if (!normalize_row(w[k])) w[k] = ref[k];
    }
    w = normalize_and_order(w);
    // A degenerate start (both directions equal) gets the reference instead.
    const double dot = w[0][0] * w[1][0] + w[0][1] * w[1][1] + w[0][2] * w[1][2];
    if (dot > 0.99999) w = normalize_and_order(ref);
    return w;
}

double snmf_objective(const OdSamples& x, const StainMatrix& w, double lambda) {
    const double wd[2][3] = {{w[0][0], w[0][1], w[0][2]}, {w[1][0], w[1][1], w[1][2]}};
    const px::Solver<double> s = px::make_solver<double>(wd, lambda);
    double f = 0;
    for (std::size_t i = 0; i < x.n; ++i) {
        const double o[3] = {x.r[i], x.g[i], x.b[i]};
        const px::Conc<double> c = px::solve(s, o[0], o[1], o[2]);
        for (int ch = 0; ch < 3; ++ch) {
            const double r = o[ch] - w[0][ch] * c.h - w[1][ch] * c.e;
            f += 0.5 * r * r;
        }
        f += lambda * (c.h + c.e);
    }
    return x.n ? f / static_cast<double>(x.n) : 0.0;
}

SnmfResult snmf(const OdSamples& x, double lambda, int max_iterations, double tolerance) {
    SnmfResult res;
    StainMatrix w = snmf_start(x);
    if (x.n == 0) {
        res.w = w;
        return res;
    }
    const double inv_n = 1.0 / static_cast<double>(x.n);
    Stats st = c_step(x, w, lambda);
    double f = objective_from(st, w, lambda) * inv_n;
    // Alternating minimisation converges linearly along a nearly fixed direction, so each
    // W-step is followed by a safeguarded extrapolation W + beta (W_next - W): kept only when it
    // lowers F (its C-step then serves the next iteration), else the plain step is taken and
    // beta shrinks. F decreases monotonically either way.
    double beta = 0.5;
    constexpr double kBetaMax = 8.0;
    for (int it = 1; it <= max_iterations; ++it) {
        StainMatrix next = w;
        w_step(st, next);
        // Rows at the norm bound are optimal scale-wise; a row inside the ball is normalised
        // (scaling w up and c down keeps the fit and lowers the L1 term).
        next = normalize_and_order(next);
        res.iterations = it;
        StainMatrix chosen = next;
        Stats st_chosen;
        double f_chosen = 0;
        bool have = false;
        if (beta > 0) {
            StainMatrix cand;
            for (int k = 0; k < 2; ++k)
                for (int c = 0; c < 3; ++c) cand[k][c] = std::max(0.0, next[k][c] + beta * (next[k][c] - w[k][c]));
            cand = normalize_and_order(cand);
            const Stats st_cand = c_step(x, cand, lambda);
            const double f_cand = objective_from(st_cand, cand, lambda) * inv_n;
            if (f_cand < f) {
                chosen = cand;
                st_chosen = st_cand;
                f_chosen = f_cand;
                have = true;
                beta = std::min(kBetaMax, beta * 1.5);
            } else {
                beta = beta < 0.05 ? 0.0 : beta * 0.25;
            }
        }
        if (!have) {
            st_chosen = c_step(x, next, lambda);
            f_chosen = objective_from(st_chosen, next, lambda) * inv_n;
        }
        if (!(f_chosen < f)) {  // no progress (or rounding noise): done
            res.converged = true;
            break;
        }
        const double rel = (f - f_chosen) / std::max(std::fabs(f), 1e-30);
        w = chosen;
        st = st_chosen;
        f = f_chosen;
        if (rel < tolerance && !have) {  // converged on a plain step, not on a lucky extrapolation
            res.converged = true;
            break;
        }
    }
    res.w = w;
    res.objective = f;
    return res;
}

}  // namespace vn
