// The per-pixel math of the method (docs/method.md §1),
// written once and compiled both for the host and for CUDA devices.
//
// Rules for this file: plain inline functions over small trivially copyable structs; no
// containers, exceptions, logging or globals; no device-only branches. The CPU loops in
// core/ and the kernels in cuda/ call exactly these functions, so the CPU tests cover the
// math the GPU runs, and a GPU test only has to show parity.
#pragma once

#include <cstdint>
#include <cstring>

#if defined(__CUDACC__)
#define VN_HD __host__ __device__ __forceinline__
#else
#define VN_HD inline
#endif

namespace vn {
namespace px {

// ---- constants (docs/method.md §1-§4) ----------------------------------------------------

// Tissue: CIE L* < 80, i.e. Y < (96/116)^3. Y is summed in fixed point (2^28 = 1.0) from
// three exact per-channel tables, so the test is integer arithmetic, identical on every
// backend, and equal to the double-precision formula for every one of the 2^24 colours
// (tests/core/test_pixel_math.cpp checks all of them).
constexpr double kLumaScale = 268435456.0;  // 2^28
constexpr std::uint32_t kLumaThreshold = 152152682u;  // ceil((96/116)^3 * 2^28); (96/116)^3 = 0.5668129

// Regularisation of the per-pixel concentration solve (section 5) and of SNMF (section 4).
constexpr float kLambdaConcentration = 0.01f;
constexpr double kLambdaSnmf = 0.1;

// The rendering table maps x = (W_target^T c')_channel to round(255 exp(-x)), clamped:
// kExpPerUnit bins per unit of optical density over [0, kExpLutSize / kExpPerUnit) = [0, 8).
// Beyond ln(510) = 6.23 every value rounds to 0. A bin is 1/2048 OD wide, so the table is
// within 255 / 4096 = 0.06 LSB of the exact value before rounding.
constexpr int kExpLutSize = 16384;
constexpr float kExpPerUnit = 2048.0f;

// Percentile histogram: a float's exponent and top 10 mantissa bits select the bin, so a bin
// spans a relative width of 2^-10 and its midpoint is within 2^-11 = 4.9e-4 of any value in
// it. Bin 0 holds everything below kHistMin (2^-12); values from 2^8 up share the last bin.
constexpr int kHistMantissaBits = 10;
constexpr int kHistShift = 23 - kHistMantissaBits;
constexpr std::uint32_t kHistMinBits = 0x39800000u;  // 2^-12
constexpr std::uint32_t kHistMaxBits = 0x43800000u;  // 2^8
constexpr int kHistBins = static_cast<int>((kHistMaxBits - kHistMinBits) >> kHistShift) + 1;

// Ink and artefacts (docs/method.md §2): tissue pixels whose optical density
// no non-negative mix of hematoxylin and eosin produces. Both stains absorb green more than they
// absorb red (eosin) or blue (hematoxylin), so an H&E pixel's green OD clearly exceeds the smaller
// of its red and blue ODs; neither stain absorbs red 30% more than green (only saturated nuclei
// come near); and stained tissue is not black in all three channels. Grey, black, green, blue
// and teal pen ink, and grey debris break one of these. Each test is one float multiplication
// and a comparison on the OD table's values (no sums, so no contraction): identical on every
// backend.
constexpr float kArtefactGreenShare = 0.9f;  // min(od_r, od_b) >= 0.9 od_g: grey, black, green
constexpr float kArtefactRedExcess = 1.3f;   // od_r >= 1.3 od_g: blue and teal ink
constexpr float kArtefactBlackOd = 2.5f;     // every channel OD >= 2.5 (values <= 20): near-black

// ---- small structs ------------------------------------------------------------------------

template <typename T>
struct Conc {
    T h;
    T e;
};

// Everything the exact concentration solve needs for one stain matrix W (2 x 3, rows H, E).
template <typename T>
struct Solver {
    T w[2][3];
    T g00, g01, g11;  // G = W W^T
    T i00, i01, i11;  // G^-1 (all zero when G is singular: only single-stain answers then)
    T r00, r11;       // 1 / G_kk (zero for an all-zero row)
    T lambda;
};

// The re-rendering half of the transform: x_c = a[c] * c_H + b[c] * c_E, already in LUT bins,
// where a = W_target[0] * (max_target_H / max_source_H) * kExpPerUnit (likewise b for E).
struct Render {
    float a[3];
    float b[3];
};

// ---- functions ----------------------------------------------------------------------------

VN_HD float bits_to_float(std::uint32_t u) {
    float f;
    std::memcpy(&f, &u, sizeof f);
    return f;
}

VN_HD std::uint32_t float_to_bits(float f) {
    std::uint32_t u;
    std::memcpy(&u, &f, sizeof u);
    return u;
}

// Section 2, with the tables built by core/tables.cpp: luma[c * 256 + v].
VN_HD bool is_tissue(const std::uint32_t* luma, unsigned r, unsigned g, unsigned b) {
    return luma[r] + luma[256u + g] + luma[512u + b] < kLumaThreshold;
}

// The ink and artefact test of a pixel with optical densities (o0, o1, o2) (constants above).
VN_HD bool is_artefact_od(float o0, float o1, float o2) {
    const float rb = o0 < o2 ? o0 : o2;
    const float low = rb < o1 ? rb : o1;
    const bool grey_or_green = rb >= kArtefactGreenShare * o1;
    const bool blue = o0 >= kArtefactRedExcess * o1;
    const bool black = low >= kArtefactBlackOd;
    return grey_or_green | blue | black;
}

// The same from 8-bit RGB through the OD table (core/tables.cpp: od[v] = -ln(max(v, 1) / 255)).
VN_HD bool is_artefact(const float* od, unsigned r, unsigned g, unsigned b) {
    return is_artefact_od(od[r], od[g], od[b]);
}

template <typename T>
VN_HD Solver<T> make_solver(const T w[2][3], T lambda) {
    Solver<T> s{};
    for (int k = 0; k < 2; ++k)
        for (int c = 0; c < 3; ++c) s.w[k][c] = w[k][c];
    s.g00 = w[0][0] * w[0][0] + w[0][1] * w[0][1] + w[0][2] * w[0][2];
    s.g01 = w[0][0] * w[1][0] + w[0][1] * w[1][1] + w[0][2] * w[1][2];
    s.g11 = w[1][0] * w[1][0] + w[1][1] * w[1][1] + w[1][2] * w[1][2];
    const T det = s.g00 * s.g11 - s.g01 * s.g01;
    // Relative test: a determinant below 1e-6 of g00 * g11 means stains within 0.06 degrees.
    if (det > static_cast<T>(1e-6) * s.g00 * s.g11) {
        s.i00 = s.g11 / det;
        s.i01 = -s.g01 / det;
        s.i11 = s.g00 / det;
    } else {
        s.i00 = s.i01 = s.i11 = T(0);
    }
    s.r00 = s.g00 > T(0) ? T(1) / s.g00 : T(0);
    s.r11 = s.g11 > T(0) ? T(1) / s.g11 : T(0);
    s.lambda = lambda;
    return s;
}

// Section 5: the exact minimiser of 1/2 ||od - W^T c||^2 + lambda (c_H + c_E) over c >= 0.
// Interior solution when both entries are positive; else the better single-stain solution.
// For c on axis k the objective is 1/2||od||^2 - max(b_k,0)^2 / (2 G_kk), so the better axis
// is the one with the larger max(b_k,0)^2 / G_kk (ties go to H).
template <typename T>
VN_HD Conc<T> solve(const Solver<T>& s, T o0, T o1, T o2) {
    // Written with selects, not branches, so that CPU loops vectorise and GPU warps do not diverge.
    const T b0 = s.w[0][0] * o0 + s.w[0][1] * o1 + s.w[0][2] * o2 - s.lambda;
    const T b1 = s.w[1][0] * o0 + s.w[1][1] * o1 + s.w[1][2] * o2 - s.lambda;
    const T u0 = s.i00 * b0 + s.i01 * b1;
    const T u1 = s.i01 * b0 + s.i11 * b1;
    const bool interior = (u0 > T(0)) & (u1 > T(0));
    const T p0 = b0 > T(0) ? b0 : T(0);
    const T p1 = b1 > T(0) ? b1 : T(0);
    const bool pick_h = p0 * p0 * s.g11 >= p1 * p1 * s.g00;
    const T axis_h = pick_h ? p0 * s.r00 : T(0);
    const T axis_e = pick_h ? T(0) : p1 * s.r11;
    return Conc<T>{interior ? u0 : axis_h, interior ? u1 : axis_e};
}

// Section 7 from concentrations: the rendering-table bin of channel c.
VN_HD int render_bin(const Render& r, int c, float ch, float ce) {
    const float x = r.a[c] * ch + r.b[c] * ce;  // >= 0: W, scales and c are non-negative
    return x < static_cast<float>(kExpLutSize - 1) ? static_cast<int>(x) : kExpLutSize - 1;
}

// Section 7 from concentrations: one rendering-table lookup per channel.
VN_HD void render(const Render& r, const std::uint8_t* exp_lut, float ch, float ce, std::uint8_t* out) {
    for (int c = 0; c < 3; ++c) out[c] = exp_lut[render_bin(r, c, ch, ce)];
}

// The whole transform of one pixel: OD, concentrations under the source matrix, rescale,
// re-render under the target matrix. `in` and `out` may not alias (never mutate an input).
VN_HD void transform_pixel(const Solver<float>& s, const Render& r, const float* od_lut, const std::uint8_t* exp_lut,
                           const std::uint8_t* in, std::uint8_t* out) {
    const Conc<float> c = solve(s, od_lut[in[0]], od_lut[in[1]], od_lut[in[2]]);
    render(r, exp_lut, c.h, c.e, out);
}

// Section 6: histogram bin of a concentration (non-negative; NaN and tiny values go to bin 0).
VN_HD int hist_bin(float c) {
    if (!(c >= bits_to_float(kHistMinBits))) return 0;
    const std::uint32_t u = float_to_bits(c);
    if (u >= kHistMaxBits) return kHistBins - 1;
    return static_cast<int>((u - kHistMinBits) >> kHistShift) + 1;
}

// The representative (midpoint) value of a histogram bin.
VN_HD float hist_value(int bin) {
    if (bin <= 0) return 0.0f;
    const std::uint32_t base = kHistMinBits + (static_cast<std::uint32_t>(bin - 1) << kHistShift);
    return bits_to_float(base + (1u << (kHistShift - 1)));
}

}  // namespace px
}  // namespace vn
