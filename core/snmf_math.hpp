// The steps of SNMF (docs/method.md §3) as host+device functions (VN_HD): the C-step's
// sums over blocks of 256 samples with their fixed-order double total, the objective from the
// sufficient statistics, the exact W-step, the iteration with safeguarded extrapolation as a
// state machine that needs one C-step per call, the deterministic start from the principal
// plane, and the percentile of a histogram. core/snmf.cpp runs them on the host; the batched
// estimator in cuda/ runs them on the device for many tiles at once. With -ffp-contract=off on
// the host and --fmad=false under nvcc every step rounds alike on both.
//
// Plain inline functions over small trivially copyable structs, as in core/pixel_math.hpp.
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>

#include "core/pixel_math.hpp"

namespace vn::sm {

constexpr double kPi = 3.14159265358979323846;
constexpr int kAngleBins = 4096;                 // angle histogram of the start
constexpr int kBlock = 256;                      // samples per C-step block
constexpr int kPartials = 11;                    // sums of one block
constexpr int kLanes = 8;                        // float accumulators per sum

// std::max's exact semantics ((a < b) ? b : a), NaN handling included.
VN_HD double dmax(double a, double b) { return (a < b) ? b : a; }

// Sufficient statistics of one C-step.
struct Stats {
    double a00, a01, a11;  // C^T C
    double b[2][3];        // C^T X
    double sum_c;          // sum of c_H + c_E
    double sum_x2;         // sum ||x||^2
};

VN_HD void clear(Stats& st) {
    st.a00 = st.a01 = st.a11 = 0;
    for (int k = 0; k < 2; ++k)
        for (int c = 0; c < 3; ++c) st.b[k][c] = 0;
    st.sum_c = st.sum_x2 = 0;
}

// The solver of one C-step: W rounded to float, lambda as float.
VN_HD px::Solver<float> c_step_solver(const double w[2][3], double lambda) {
    float wf[2][3];
    for (int k = 0; k < 2; ++k)
        for (int c = 0; c < 3; ++c) wf[k][c] = static_cast<float>(w[k][c]);
    return px::make_solver<float>(wf, static_cast<float>(lambda));
}

// The sums of one block of `count` (<= kBlock) samples: the block is zero-padded to kBlock samples, sample i is added in float to lane i % 8,
// and the 8 lanes are added in double. Sample j is at r[j * stride] (likewise g, b).
VN_HD void block_partials(const px::Solver<float>& s, const float* r, const float* g, const float* b,
                          std::size_t stride, int count, double out[kPartials]) {
    float acc[kPartials][kLanes];
    for (int k = 0; k < kPartials; ++k)
        for (int l = 0; l < kLanes; ++l) acc[k][l] = 0.0f;
    for (int i0 = 0; i0 < kBlock; i0 += kLanes) {
        for (int l = 0; l < kLanes; ++l) {
            const int i = i0 + l;
            const std::size_t at = static_cast<std::size_t>(i) * stride;
            const float o0 = i < count ? r[at] : 0.0f, o1 = i < count ? g[at] : 0.0f, o2 = i < count ? b[at] : 0.0f;
            const px::Conc<float> c = px::solve(s, o0, o1, o2);
            const float h = c.h, e = c.e;
            acc[0][l] += h * h;
            acc[1][l] += h * e;
            acc[2][l] += e * e;
            acc[3][l] += h * o0;
            acc[4][l] += h * o1;
            acc[5][l] += h * o2;
            acc[6][l] += e * o0;
            acc[7][l] += e * o1;
            acc[8][l] += e * o2;
            acc[9][l] += h + e;
            acc[10][l] += o0 * o0 + o1 * o1 + o2 * o2;
        }
    }
    for (int k = 0; k < kPartials; ++k) {
        double sum = 0;
        for (int l = 0; l < kLanes; ++l) sum += acc[k][l];
        out[k] = sum;
    }
}

// One float lane of block_partials: the kPartials sums of samples lane, lane + 8, ... (the same
// operations in the same order as block_partials does for that lane). block_partials equals
// these 8 lanes added in double in lane order (sum_lanes); the device spreads the lanes over
// threads this way (cuda/snmf.cu).
VN_HD void lane_partials(const px::Solver<float>& s, const float* r, const float* g, const float* b,
                         std::size_t stride, int count, int lane, float acc[kPartials]) {
    for (int k = 0; k < kPartials; ++k) acc[k] = 0.0f;
    for (int i0 = 0; i0 < kBlock; i0 += kLanes) {
        const int i = i0 + lane;
        const std::size_t at = static_cast<std::size_t>(i) * stride;
        const float o0 = i < count ? r[at] : 0.0f, o1 = i < count ? g[at] : 0.0f, o2 = i < count ? b[at] : 0.0f;
        const px::Conc<float> c = px::solve(s, o0, o1, o2);
        const float h = c.h, e = c.e;
        acc[0] += h * h;
        acc[1] += h * e;
        acc[2] += e * e;
        acc[3] += h * o0;
        acc[4] += h * o1;
        acc[5] += h * o2;
        acc[6] += e * o0;
        acc[7] += e * o1;
        acc[8] += e * o2;
        acc[9] += h + e;
        acc[10] += o0 * o0 + o1 * o1 + o2 * o2;
    }
}

// Sum k of a block from its lanes' sums: lane_sum(l) for l = 0..7, added in double in order.
template <typename LaneSum>
VN_HD double sum_lanes(LaneSum lane_sum) {
    double sum = 0;
    for (int l = 0; l < kLanes; ++l) sum += lane_sum(l);
    return sum;
}

// Adds one block's sums; blocks must be added in sample order.
VN_HD void add_partials(Stats& st, const double p[kPartials]) {
    st.a00 += p[0]; st.a01 += p[1]; st.a11 += p[2];
    st.b[0][0] += p[3]; st.b[0][1] += p[4]; st.b[0][2] += p[5];
    st.b[1][0] += p[6]; st.b[1][1] += p[7]; st.b[1][2] += p[8];
    st.sum_c += p[9];
    st.sum_x2 += p[10];
}

// F from the sufficient statistics: 1/2 sum||x||^2 - tr(W B^T) + 1/2 tr(G A) + lambda sum c.
VN_HD double objective_from(const Stats& st, const double w[2][3], double lambda) {
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

VN_HD bool normalize_row(double row[3]) {
    const double n = std::sqrt(row[0] * row[0] + row[1] * row[1] + row[2] * row[2]);
    if (!(n > 1e-12)) return false;
    for (int c = 0; c < 3; ++c) row[c] /= n;
    return true;
}

VN_HD void copy_matrix(double dst[2][3], const double src[2][3]) {
    for (int k = 0; k < 2; ++k)
        for (int c = 0; c < 3; ++c) dst[k][c] = src[k][c];
}

// Rows normalised, hematoxylin (larger red) first.
VN_HD void normalize_and_order(double w[2][3]) {
    normalize_row(w[0]);
    normalize_row(w[1]);
    if (w[0][0] < w[1][0])
        for (int c = 0; c < 3; ++c) {
            const double t = w[0][c];
            w[0][c] = w[1][c];
            w[1][c] = t;
        }
}

// The reference H&E directions (Macenko et al. 2009), unnormalised, for a start direction
// without a positive part. (Written out: a namespace-scope array cannot be read on a device.)
VN_HD void reference_row(int k, double row[3]) {
    row[0] = k == 0 ? 0.5626 : 0.2159;
    row[1] = k == 0 ? 0.7201 : 0.8012;
    row[2] = k == 0 ? 0.4062 : 0.5581;
}

VN_HD void reference_start(double w[2][3]) {
    reference_row(0, w[0]);
    reference_row(1, w[1]);
    normalize_and_order(w);
}

// Exact block-coordinate minimisation over the rows of W for fixed statistics.
VN_HD void w_step(const Stats& st, double w[2][3]) {
    const double a[2][2] = {{st.a00, st.a01}, {st.a01, st.a11}};
    for (int sweep = 0; sweep < 100; ++sweep) {
        double change = 0;
        for (int k = 0; k < 2; ++k) {
            if (!(a[k][k] > 0)) continue;
            const int j = 1 - k;
            double u[3];
            for (int c = 0; c < 3; ++c) u[c] = dmax(0.0, (st.b[k][c] - a[k][j] * w[j][c]) / a[k][k]);
            const double n = std::sqrt(u[0] * u[0] + u[1] * u[1] + u[2] * u[2]);
            if (!(n > 0)) continue;
            if (n > 1)
                for (int c = 0; c < 3; ++c) u[c] /= n;
            for (int c = 0; c < 3; ++c) {
                change = dmax(change, std::fabs(u[c] - w[k][c]));
                w[k][c] = u[c];
            }
        }
        if (change < 1e-12) break;
    }
}

// std::min's exact semantics ((b < a) ? b : a).
VN_HD double dmin(double a, double b) { return (b < a) ? b : a; }

// SNMF as a state machine that needs one C-step per call, so that a whole batch of segments
// can step together on a device. An iteration is a W-step from w, then the C-step
// of the extrapolated point w + beta (next - w) (kept when it lowers F; beta grows), else the
// C-step of the plain step `next` (beta shrinks); it stops when F does not decrease, or
// decreases by less than `tolerance` (relative) on a plain step, or after max_iterations.
enum Phase : int { kStartPhase = 0, kExtrapolatedPhase = 1, kPlainPhase = 2 };
constexpr double kBetaStart = 0.5;
constexpr double kBetaMax = 8.0;

struct State {
    double w[2][3];     // the current iterate: the result
    double next[2][3];  // the plain W-step from w
    double eval[2][3];  // the W whose C-step runs next
    Stats st;           // statistics of w
    double f;           // F/n at w
    double beta;        // extrapolation factor
    double inv_n;
    int iterations;
    int phase;
    int active;         // 1 while another C-step is needed
    int converged;
};

VN_HD void snmf_begin(State& s, const double start[2][3], std::uint64_t n) {
    copy_matrix(s.w, start);
    copy_matrix(s.next, start);
    copy_matrix(s.eval, start);
    clear(s.st);
    s.f = 0.0;
    s.beta = kBetaStart;
    s.inv_n = n ? 1.0 / static_cast<double>(n) : 0.0;
    s.iterations = 0;
    s.phase = kStartPhase;
    s.active = n > 0 ? 1 : 0;
    s.converged = 0;
}

// The W-step of the next iteration and the point to evaluate first.
VN_HD void snmf_begin_iteration(State& s, int max_iterations) {
    if (s.iterations >= max_iterations) {
        s.active = 0;
        return;
    }
    s.iterations += 1;
    copy_matrix(s.next, s.w);
    w_step(s.st, s.next);
    normalize_and_order(s.next);
    if (s.beta > 0) {
        for (int k = 0; k < 2; ++k)
            for (int c = 0; c < 3; ++c) s.eval[k][c] = dmax(0.0, s.next[k][c] + s.beta * (s.next[k][c] - s.w[k][c]));
        normalize_and_order(s.eval);
        s.phase = kExtrapolatedPhase;
    } else {
        copy_matrix(s.eval, s.next);
        s.phase = kPlainPhase;
    }
}

// Accepts (or not) the chosen point of an iteration; `extrapolated`: it came from extrapolation.
VN_HD void snmf_finish_iteration(State& s, const Stats& st, double f, bool extrapolated, int max_iterations,
                                 double tolerance) {
    if (!(f < s.f)) {  // no progress (or rounding noise): done
        s.converged = 1;
        s.active = 0;
        return;
    }
    const double rel = (s.f - f) / dmax(std::fabs(s.f), 1e-30);
    copy_matrix(s.w, s.eval);
    s.st = st;
    s.f = f;
    if (rel < tolerance && !extrapolated) {
        s.converged = 1;
        s.active = 0;
        return;
    }
    snmf_begin_iteration(s, max_iterations);
}

// After the C-step of s.eval produced `st`.
VN_HD void snmf_advance(State& s, const Stats& st, double lambda, int max_iterations, double tolerance) {
    if (!s.active) return;
    const double f = objective_from(st, s.eval, lambda) * s.inv_n;
    if (s.phase == kStartPhase) {
        s.st = st;
        s.f = f;
        snmf_begin_iteration(s, max_iterations);
    } else if (s.phase == kExtrapolatedPhase) {
        if (f < s.f) {
            s.beta = dmin(kBetaMax, s.beta * 1.5);
            snmf_finish_iteration(s, st, f, true, max_iterations, tolerance);
        } else {
            s.beta = s.beta < 0.05 ? 0.0 : s.beta * 0.25;
            copy_matrix(s.eval, s.next);
            s.phase = kPlainPhase;
        }
    } else {
        snmf_finish_iteration(s, st, f, false, max_iterations, tolerance);
    }
}

// Upper bound on the C-steps snmf_advance needs: the start, then two per iteration.
VN_HD int max_c_steps(int max_iterations) { return 1 + 2 * (max_iterations > 0 ? max_iterations : 0); }

// ---- the deterministic start ----------------------------------------------------------------

// Angle bin of one OD sample in the principal plane (e1, e2).
VN_HD int angle_bin(float r, float g, float b, const double e1[3], const double e2[3]) {
    const double t1 = r * e1[0] + g * e1[1] + b * e1[2];
    const double t2 = r * e2[0] + g * e2[1] + b * e2[2];
    const double ang = std::atan2(t2, t1);
    long long bin = static_cast<long long>((ang + kPi) / (2 * kPi) * kAngleBins);
    bin = bin < 0 ? 0 : (bin > kAngleBins - 1 ? kAngleBins - 1 : bin);
    return static_cast<int>(bin);
}

// Linear-interpolated percentile of the angle histogram over [-pi, pi) (bin midpoints).
VN_HD double angle_percentile(const std::uint32_t* hist, double q, std::uint64_t n) {
    const double lo = -kPi, hi = kPi;
    const double pos = q / 100.0 * static_cast<double>(n - 1);
    const auto rank_lo = static_cast<std::uint64_t>(std::floor(pos));
    const double frac = pos - static_cast<double>(rank_lo);
    const double width = (hi - lo) / static_cast<double>(kAngleBins);
    double v[2];
    for (int t = 0; t < 2; ++t) {
        const std::uint64_t rank = rank_lo + static_cast<std::uint64_t>(t);
        v[t] = hi;
        std::uint64_t cum = 0;
        for (int b = 0; b < kAngleBins; ++b) {
            cum += hist[b];
            if (cum > rank) {
                v[t] = lo + (static_cast<double>(b) + 0.5) * width;
                break;
            }
        }
    }
    const double v0 = v[0];
    const double v1 = rank_lo + 1 < n ? v[1] : v0;
    return v0 + frac * (v1 - v0);
}

// Orients eigenvectors into the positive octant (OD is non-negative).
VN_HD void orient(double e[3]) {
    if (e[0] + e[1] + e[2] < 0)
        for (int c = 0; c < 3; ++c) e[c] = -e[c];
}

// The start from the 1st and 99th percentile angles lo, hi in the plane (e1, e2).
VN_HD void start_from_plane(const double e1[3], const double e2[3], double lo, double hi, double w[2][3]) {
    const double angles[2] = {lo, hi};
    for (int k = 0; k < 2; ++k) {
        for (int c = 0; c < 3; ++c) w[k][c] = dmax(0.0, std::cos(angles[k]) * e1[c] + std::sin(angles[k]) * e2[c]);
        if (!normalize_row(w[k])) reference_row(k, w[k]);
    }
    normalize_and_order(w);
    const double dot = w[0][0] * w[1][0] + w[0][1] * w[1][1] + w[0][2] * w[1][2];
    if (dot > 0.99999) reference_start(w);
}

// ---- the scaling statistic ------------------------------------------------------------------

// Percentile q (0..100, numpy's linear interpolation) of the values counted in a concentration
// histogram (px::hist_bin), from the bins' representative values; 0 for an empty histogram.

VN_HD double percentile_from_histogram(const std::uint32_t* hist, int bins, double q) {
    std::uint64_t n = 0;
    for (int i = 0; i < bins; ++i) n += hist[i];
    if (n == 0) return 0.0;
    const double pos = q / 100.0 * static_cast<double>(n - 1);
    const auto rank = static_cast<std::uint64_t>(std::floor(pos));
    double v[2];
    for (int t = 0; t < 2; ++t) {
        const std::uint64_t r = rank + static_cast<std::uint64_t>(t);
        v[t] = static_cast<double>(px::hist_value(bins - 1));
        std::uint64_t cum = 0;
        for (int i = 0; i < bins; ++i) {
            cum += hist[i];
            if (cum > r) {
                v[t] = static_cast<double>(px::hist_value(i));
                break;
            }
        }
    }
    const double v0 = v[0];
    const double v1 = rank + 1 < n ? v[1] : v0;
    return v0 + (pos - static_cast<double>(rank)) * (v1 - v0);
}

}  // namespace vn::sm
