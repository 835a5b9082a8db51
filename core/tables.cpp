#include "core/tables.hpp"

#include <algorithm>
#include <cmath>

namespace vn {
namespace {

double srgb_to_linear(int v) {
    const double x = v / 255.0;
    return x <= 0.04045 ? x / 12.92 : std::pow((x + 0.055) / 1.055, 2.4);
}

constexpr double kLumaCoef[3] = {0.212671, 0.715160, 0.072169};

Tables build_tables() {
    Tables t{};
    for (int v = 0; v < 256; ++v) {
        t.od[v] = static_cast<float>(od_exact(v));
        for (int c = 0; c < 3; ++c)
            t.luma[c * 256 + v] = static_cast<std::uint32_t>(std::lround(kLumaCoef[c] * srgb_to_linear(v) * px::kLumaScale));
    }
    for (int i = 0; i < px::kExpLutSize; ++i) {
        const double x = (i + 0.5) / static_cast<double>(px::kExpPerUnit);
        const double v = std::nearbyint(255.0 * std::exp(-x));
        t.exp_out[i] = static_cast<std::uint8_t>(std::clamp(v, 0.0, 255.0));
    }
    return t;
}

}  // namespace

double od_exact(int v) { return -std::log(std::max(v, 1) / 255.0); }

double luma_exact(int r, int g, int b) {
    return kLumaCoef[0] * srgb_to_linear(r) + kLumaCoef[1] * srgb_to_linear(g) + kLumaCoef[2] * srgb_to_linear(b);
}

bool is_tissue_exact(int r, int g, int b) {
    const double y = luma_exact(r, g, b);
    const double l = y > 0.008856 ? 116.0 * std::cbrt(y) - 16.0 : 903.3 * y;
    return l / 100.0 < 0.8;
}

const Tables& tables() {
    static const Tables t = build_tables();
    return t;
}

}  // namespace vn
