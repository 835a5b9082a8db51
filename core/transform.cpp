#include "core/transform.hpp"

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

VN_VECTOR_CLONES
void transform_rows(const TransformPlan& plan, RgbView src, RgbSpan dst, int y0, int y1) {
    const Tables& t = tables();
    const px::Solver<float> s = plan.solver;
    const px::Render r = plan.render;
    // Blocks of pixels in three steps, so that the middle one (the solve) vectorises:
    // table lookups, px::solve and px::render_bin over arrays, table lookups. The same functions
    // as px::transform_pixel, in the same order of operations.
    constexpr int kBlock = 64;
    float o0[kBlock], o1[kBlock], o2[kBlock], ch[kBlock], ce[kBlock];
    int k0[kBlock], k1[kBlock], k2[kBlock];
    for (int y = y0; y < y1; ++y) {
        const std::uint8_t* in = src.row(y);
        std::uint8_t* out = dst.row(y);
        for (int x0 = 0; x0 < src.width; x0 += kBlock) {
            const int n = src.width - x0 < kBlock ? src.width - x0 : kBlock;
            const std::uint8_t* p = in + 3 * x0;
#pragma GCC unroll 4
            for (int i = 0; i < n; ++i) {
                o0[i] = t.od[p[3 * i]];
                o1[i] = t.od[p[3 * i + 1]];
                o2[i] = t.od[p[3 * i + 2]];
            }
            for (int i = 0; i < n; ++i) {
                const px::Conc<float> c = px::solve(s, o0[i], o1[i], o2[i]);
                ch[i] = c.h;
                ce[i] = c.e;
            }
            for (int i = 0; i < n; ++i) k0[i] = px::render_bin(r, 0, ch[i], ce[i]);
            for (int i = 0; i < n; ++i) k1[i] = px::render_bin(r, 1, ch[i], ce[i]);
            for (int i = 0; i < n; ++i) k2[i] = px::render_bin(r, 2, ch[i], ce[i]);
            std::uint8_t* q = out + 3 * x0;
#pragma GCC unroll 4
            for (int i = 0; i < n; ++i) {
                q[3 * i] = t.exp_out[k0[i]];
                q[3 * i + 1] = t.exp_out[k1[i]];
                q[3 * i + 2] = t.exp_out[k2[i]];
            }
        }
    }
}

}  // namespace vn
