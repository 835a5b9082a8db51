#include "core/snmf.hpp"

#include <algorithm>
#include <cmath>
#include <vector>

#include "core/pixel_math.hpp"
#include "core/snmf_math.hpp"
#include "core/vector_clones.hpp"

namespace vn {
namespace {

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

using Matrix = double[2][3];

void to_array(const StainMatrix& w, Matrix out) {
    for (int k = 0; k < 2; ++k)
        for (int c = 0; c < 3; ++c) out[k][c] = w[k][c];
}

StainMatrix from_array(const Matrix w) {
    StainMatrix out{};
    for (int k = 0; k < 2; ++k)
        for (int c = 0; c < 3; ++c) out[k][c] = w[k][c];
    return out;
}

// The W-dependent sums of one full block (kPartials - 1 of them: the last one, sum ||x||^2,
// does not depend on W, so sum_x2 below forms it once per fit), as sm::block_partials forms
// them: the same float operations in the same order, lane by lane, in loops over arrays that the
// host compiler vectorises: px::solve, then the lane sums. sm::block_partials keeps the
// one-sample-at-a-time form that suits a GPU thread; the test "device stepping of SNMF vs core"
// holds the two to the same bits.
constexpr int kWSums = sm::kPartials - 1;

inline void block_w_sums(const px::Solver<float>& s, const float* o0, const float* o1, const float* o2,
                         double out[kWSums]) {
    constexpr int kBlock = sm::kBlock, kLanes = sm::kLanes;
    float ch[kBlock], ce[kBlock];
    for (int i = 0; i < kBlock; ++i) {
        const px::Conc<float> c = px::solve(s, o0[i], o1[i], o2[i]);
        ch[i] = c.h;
        ce[i] = c.e;
    }
    float acc[kWSums][kLanes] = {};
    for (int i = 0; i < kBlock; i += kLanes)
        for (int l = 0; l < kLanes; ++l) {
            const float h = ch[i + l], e = ce[i + l], a = o0[i + l], bb = o1[i + l], c = o2[i + l];
            acc[0][l] += h * h;
            acc[1][l] += h * e;
            acc[2][l] += e * e;
            acc[3][l] += h * a;
            acc[4][l] += h * bb;
            acc[5][l] += h * c;
            acc[6][l] += e * a;
            acc[7][l] += e * bb;
            acc[8][l] += e * c;
            acc[9][l] += h + e;
        }
    for (int k = 0; k < kWSums; ++k) {
        double sum = 0;
        for (int l = 0; l < kLanes; ++l) sum += acc[k][l];
        out[k] = sum;
    }
}

// The samples of the block at i0, zero-padded to sm::kBlock when the block is the last, partial
// one (a full block is read in place).
struct BlockView {
    const float *r, *g, *b;
    float pad[3][sm::kBlock];
};

inline void block_view(const OdSamples& x, std::size_t i0, BlockView& v) {
    const std::size_t count = std::min<std::size_t>(x.n - i0, sm::kBlock);
    if (count == sm::kBlock) {
        v.r = x.r + i0;
        v.g = x.g + i0;
        v.b = x.b + i0;
        return;
    }
    for (std::size_t i = 0; i < sm::kBlock; ++i) {
        v.pad[0][i] = i < count ? x.r[i0 + i] : 0.0f;
        v.pad[1][i] = i < count ? x.g[i0 + i] : 0.0f;
        v.pad[2][i] = i < count ? x.b[i0 + i] : 0.0f;
    }
    v.r = v.pad[0];
    v.g = v.pad[1];
    v.b = v.pad[2];
}

// Sum ||x||^2 over the samples as sm::block_partials forms it (its last sum, per block, in float
// lanes, then the blocks in order): the same in every C-step of a fit.
double sum_x2(const OdSamples& x) {
    constexpr int kLanes = sm::kLanes;
    double total = 0;
    BlockView v;
    for (std::size_t i0 = 0; i0 < x.n; i0 += sm::kBlock) {
        block_view(x, i0, v);
        float acc[kLanes] = {};
        for (int i = 0; i < sm::kBlock; i += kLanes)
            for (int l = 0; l < kLanes; ++l) {
                const float a = v.r[i + l], bb = v.g[i + l], c = v.b[i + l];
                acc[l] += a * a + bb * bb + c * c;
            }
        double sum = 0;
        for (int l = 0; l < kLanes; ++l) sum += acc[l];
        total += sum;
    }
    return total;
}

// One C-step with W: the sufficient statistics, block by block in sample order, with the fit's
// sum ||x||^2 (sum_x2). The blocks' sums are added in sample order, as sm::add_partials does.
VN_VECTOR_CLONES
void c_step_sums(const OdSamples& x, const px::Solver<float>& solver, sm::Stats& st) {
    double partials[sm::kPartials];
    partials[sm::kPartials - 1] = 0.0;  // sum ||x||^2: set once by the caller
    BlockView v;
    for (std::size_t i0 = 0; i0 < x.n; i0 += sm::kBlock) {
        block_view(x, i0, v);
        block_w_sums(solver, v.r, v.g, v.b, partials);
        sm::add_partials(st, partials);
    }
}

sm::Stats c_step(const OdSamples& x, const Matrix w, double lambda, double x2) {
    sm::Stats st;
    sm::clear(st);
    c_step_sums(x, sm::c_step_solver(w, lambda), st);
    st.sum_x2 = x2;
    return st;
}

// atan2(y, x) for non-zero finite x and y, within 1e-10 of the exact angle (what
// angle_histogram needs; not a replacement for atan2): the octant by selects, then the Taylor
// series of atan to z^21 over |z| <= tan(pi/8). The series alternates with decreasing terms,
// so the first omitted one bounds the error: tan(pi/8)^23 / 23 < 7e-11; rounding adds about
// 1e-15. Written with selects so that it vectorises.
inline double approx_atan2(double y, double x) {
    constexpr double kTanPi8 = 0.41421356237309503;
    const double ax = std::fabs(x), ay = std::fabs(y);
    const double mx = ax > ay ? ax : ay, mn = ax > ay ? ay : ax;
    // atan(mn / mx) = pi/4 + atan(z), z = (mn - mx) / (mn + mx), above tan(pi/8).
    const bool big = mn > kTanPi8 * mx;
    const double z = (big ? mn - mx : mn) / (big ? mn + mx : mx);
    const double z2 = z * z;
    double p = 1.0 / 21.0;  // Horner over z^2: sum_k (-1)^k z^2k / (2k + 1), k = 0..10
    for (int k = 9; k >= 0; --k) p = (k % 2 == 0 ? 1.0 : -1.0) / (2 * k + 1) + z2 * p;
    double t = (big ? sm::kPi / 4 : 0.0) + z * p;  // atan(mn / mx), in [0, pi/4]
    t = ay > ax ? sm::kPi / 2 - t : t;
    t = x < 0 ? sm::kPi - t : t;
    return y < 0 ? -t : t;
}

}  // namespace

// sm::angle_bin truncates (atan2(t2, t1) + pi) / (2 pi) * kAngleBins. Here that position is
// formed from approx_atan2 instead; its error (below 1e-10 radians, 1e-7 bins; atan2's own is a
// few ulp) cannot move the truncation unless the position lies within kMargin of a bin edge, and
// only those samples (about 2 in 10,000) and those on an axis (t1 or t2 zero, where the sign of
// a zero decides between -pi and pi) call sm::angle_bin itself. So every bin is sm::angle_bin's.
VN_VECTOR_CLONES
void angle_histogram(const OdSamples& x, const double e1[3], const double e2[3], std::uint32_t* hist) {
    constexpr double kMargin = 1e-4;  // bins; 1,000 times the error bound above
    constexpr std::size_t kChunk = 256;
    double pos[kChunk];
    for (std::size_t i0 = 0; i0 < x.n; i0 += kChunk) {
        const std::size_t m = std::min(kChunk, x.n - i0);
        const float *r = x.r + i0, *g = x.g + i0, *b = x.b + i0;
        for (std::size_t i = 0; i < m; ++i) {
            // The same projections as sm::angle_bin, operation for operation.
            const double t1 = r[i] * e1[0] + g[i] * e1[1] + b[i] * e1[2];
            const double t2 = r[i] * e2[0] + g[i] * e2[1] + b[i] * e2[2];
            const bool off_axis = (t1 != 0.0) & (t2 != 0.0);
            pos[i] = off_axis ? (approx_atan2(t2, t1) + sm::kPi) / (2 * sm::kPi) * sm::kAngleBins : -1.0;
        }
        for (std::size_t i = 0; i < m; ++i) {
            const double p = pos[i];
            // p is NaN (t1 or t2 not finite) or -1 (on an axis): the comparisons fail.
            const bool safe = p >= kMargin && p <= sm::kAngleBins - kMargin &&
                              p - std::floor(p) >= kMargin && p - std::floor(p) <= 1.0 - kMargin;
            ++hist[safe ? static_cast<int>(p) : sm::angle_bin(r[i], g[i], b[i], e1, e2)];
        }
    }
}

StainMatrix normalize_and_order(StainMatrix w) {
    Matrix m;
    to_array(w, m);
    sm::normalize_and_order(m);
    return from_array(m);
}

StainMatrix snmf_start(const OdSamples& x) {
    Matrix w;
    if (x.n < 2) {
        sm::reference_start(w);
        return from_array(w);
    }
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
    sm::orient(e1);
    sm::orient(e2);
    std::vector<std::uint32_t> hist(sm::kAngleBins, 0);
    angle_histogram(x, e1, e2, hist.data());
    const double lo = sm::angle_percentile(hist.data(), 1.0, x.n);
    const double hi = sm::angle_percentile(hist.data(), 99.0, x.n);
    sm::start_from_plane(e1, e2, lo, hi, w);
    return from_array(w);
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
    Matrix start;
    to_array(snmf_start(x), start);
    const double x2 = sum_x2(x);
    sm::State state;
    sm::snmf_begin(state, start, x.n);
    // Each pass evaluates the point the state machine asks for (sm::snmf_advance documents the
    // iteration: W-step, safeguarded extrapolation, stopping rule).
    while (state.active) sm::snmf_advance(state, c_step(x, state.eval, lambda, x2), lambda, max_iterations, tolerance);
    SnmfResult res;
    res.w = from_array(state.w);
    res.objective = state.f;
    res.iterations = state.iterations;
    res.converged = state.converged != 0;
    return res;
}

}  // namespace vn
