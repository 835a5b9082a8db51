#include "core/transform.hpp"

#include <cstddef>

#include "core/pixel_vectors.hpp"
#include "core/tables.hpp"
#include "core/vector_clones.hpp"

namespace vn {

TransformPlan make_plan(const StainModel& source, const StainModel& target) {
    TransformPlan plan{};
    float w[2][3];
    for (int k = 0; k < 2; ++k)
        for (int c = 0; c < 3; ++c) w[k][c] = static_cast<float>(source.stain[k][c]);
    plan.solver = px::make_solver<float>(w, static_cast<float>(source.params.lambda_conc));
    const double scale_h = target.max_conc[0] / source.max_conc[0];
    const double scale_e = target.max_conc[1] / source.max_conc[1];
    for (int c = 0; c < 3; ++c) {
        plan.render.a[c] = static_cast<float>(target.stain[0][c] * scale_h * px::kExpPerUnit);
        plan.render.b[c] = static_cast<float>(target.stain[1][c] * scale_e * px::kExpPerUnit);
    }
    return plan;
}

namespace {

// The row loop works on blocks of pixels in three steps, so that the middle one (the solve)
// vectorises: table lookups, px::solve and px::render_bin over arrays, table lookups. The same
// functions as px::transform_pixel, in the same order of operations.
constexpr int kBlock = 64;

struct Block {
    float o0[kBlock], o1[kBlock], o2[kBlock], ch[kBlock], ce[kBlock];
    int k0[kBlock], k1[kBlock], k2[kBlock];
};

// The middle step, inlined into each version of the row loop (and vectorised for its target).
__attribute__((always_inline)) inline void solve_block(const px::Solver<float>& s, const px::Render& r, int n,
                                                       Block& b) {
    for (int i = 0; i < n; ++i) {
        const px::Conc<float> c = px::solve(s, b.o0[i], b.o1[i], b.o2[i]);
        b.ch[i] = c.h;
        b.ce[i] = c.e;
    }
    for (int i = 0; i < n; ++i) b.k0[i] = px::render_bin(r, 0, b.ch[i], b.ce[i]);
    for (int i = 0; i < n; ++i) b.k1[i] = px::render_bin(r, 1, b.ch[i], b.ce[i]);
    for (int i = 0; i < n; ++i) b.k2[i] = px::render_bin(r, 2, b.ch[i], b.ce[i]);
}

__attribute__((always_inline)) inline void od_lookup(const Tables& t, const std::uint8_t* p, int i0, int n, Block& b) {
#pragma GCC unroll 4
    for (int i = i0; i < n; ++i) {
        b.o0[i] = t.od[p[3 * i]];
        b.o1[i] = t.od[p[3 * i + 1]];
        b.o2[i] = t.od[p[3 * i + 2]];
    }
}

__attribute__((always_inline)) inline void render_lookup(const Tables& t, const Block& b, int i0, int n, std::uint8_t* q) {
#pragma GCC unroll 4
    for (int i = i0; i < n; ++i) {
        q[3 * i] = t.exp_out[b.k0[i]];
        q[3 * i + 1] = t.exp_out[b.k1[i]];
        q[3 * i + 2] = t.exp_out[b.k2[i]];
    }
}

}  // namespace

// The versions have external linkage: Clang takes an internal one for an unused function.
namespace versions {

#if VN_HAVE_VERSIONS

// The lookups by gathers, eight pixels at a time (core/pixel_vectors.hpp), the rest as above.
VN_VERSION_AVX2
void transform_rows(const TransformPlan& plan, RgbView src, RgbSpan dst, int y0, int y1) {
    const Tables& t = tables();
    static_assert(offsetof(Tables, exp_out) >= 3, "avx2::lookup8 reads three bytes before the table");
    const px::Solver<float> s = plan.solver;
    const px::Render r = plan.render;
    Block b;
    for (int y = y0; y < y1; ++y) {
        const std::uint8_t* in = src.row(y);
        std::uint8_t* out = dst.row(y);
        for (int x0 = 0; x0 < src.width; x0 += kBlock) {
            const int n = src.width - x0 < kBlock ? src.width - x0 : kBlock;
            const std::uint8_t* p = in + 3 * x0;
            int i = 0;
            for (; i + 8 <= n; i += 8) avx2::od8(t.od, p + 3 * i, b.o0 + i, b.o1 + i, b.o2 + i);
            od_lookup(t, p, i, n, b);
            solve_block(s, r, n, b);
            std::uint8_t* q = out + 3 * x0;
            for (i = 0; i + 8 <= n; i += 8) avx2::lookup8(t.exp_out, b.k0 + i, b.k1 + i, b.k2 + i, q + 3 * i);
            render_lookup(t, b, i, n, q);
        }
    }
}

VN_VERSION_DEFAULT
#endif
void transform_rows(const TransformPlan& plan, RgbView src, RgbSpan dst, int y0, int y1) {
    const Tables& t = tables();
    const px::Solver<float> s = plan.solver;
    const px::Render r = plan.render;
    Block b;
    for (int y = y0; y < y1; ++y) {
        const std::uint8_t* in = src.row(y);
        std::uint8_t* out = dst.row(y);
        for (int x0 = 0; x0 < src.width; x0 += kBlock) {
            const int n = src.width - x0 < kBlock ? src.width - x0 : kBlock;
            od_lookup(t, in + 3 * x0, 0, n, b);
            solve_block(s, r, n, b);
            render_lookup(t, b, 0, n, out + 3 * x0);
        }
    }
}

}  // namespace versions

void transform_rows(const TransformPlan& plan, RgbView src, RgbSpan dst, int y0, int y1) {
    versions::transform_rows(plan, src, dst, y0, y1);
}

}  // namespace vn
