// Exact lookup tables for the per-pixel math (built once, in double precision, on the host).
#pragma once

#include <cstdint>

#include "core/pixel_math.hpp"

namespace vn {

struct Tables {
    float od[256];                         // -ln(max(v, 1) / 255)
    std::uint32_t luma[3 * 256];           // per-channel Y contribution, fixed point 2^28
    std::uint8_t exp_out[px::kExpLutSize]; // clamp(round(255 exp(-(i + 0.5) / kExpPerUnit)))
};

// The process-wide tables (thread-safe lazy construction).
const Tables& tables();

// Double-precision definitions the tables are built from (also used by reference tests).
double od_exact(int v);
double luma_exact(int r, int g, int b);  // CIE Y of an sRGB pixel (docs/method.md §1)
bool is_tissue_exact(int r, int g, int b);

}  // namespace vn
