#include "core/synthetic.hpp"

#include <algorithm>
#include <cmath>
#include <random>
#include <vector>

namespace vn {
namespace {

StainMatrix normalized(StainMatrix w) { return normalize_and_order(w); }

// Smooth random field in [0, 1]: bilinear interpolation of a coarse random grid, two octaves.
class ValueNoise {
public:
    ValueNoise(int width, int height, int cell, std::mt19937_64& rng) : cell_(cell) {
        gw_ = width / cell + 2;
        gh_ = height / cell + 2;
        grid_.resize(static_cast<std::size_t>(gw_) * static_cast<std::size_t>(gh_));
        std::uniform_real_distribution<double> u(0.0, 1.0);
        for (double& v : grid_) v = u(rng);
    }
    double at(int x, int y) const {
        const double fx = static_cast<double>(x) / cell_, fy = static_cast<double>(y) / cell_;
        const int ix = static_cast<int>(fx), iy = static_cast<int>(fy);
        const double tx = smooth(fx - ix), ty = smooth(fy - iy);
        const double a = g(ix, iy), b = g(ix + 1, iy), c = g(ix, iy + 1), d = g(ix + 1, iy + 1);
        return (a * (1 - tx) + b * tx) * (1 - ty) + (c * (1 - tx) + d * tx) * ty;
    }

private:
    static double smooth(double t) { return t * t * (3 - 2 * t); }
    double g(int x, int y) const { return grid_[static_cast<std::size_t>(y) * static_cast<std::size_t>(gw_) + static_cast<std::size_t>(x)]; }
    int cell_, gw_ = 0, gh_ = 0;
    std::vector<double> grid_;
};

struct Nucleus {
    double cx, cy, rx, ry, cos_a, sin_a, density;
};

}  // namespace

StainMatrix synthetic_stains_lab_a() { return normalized({{{0.650, 0.704, 0.286}, {0.072, 0.990, 0.105}}}); }

StainMatrix synthetic_stains_lab_b() { return normalized({{{0.480, 0.780, 0.400}, {0.180, 0.860, 0.480}}}); }

RgbImage render_synthetic(const SyntheticSpec& spec) {
    RgbImage img(spec.width, spec.height);
    std::mt19937_64 rng(spec.seed);
    const int scale = std::max(8, std::min(spec.width, spec.height) / 6);
    ValueNoise tissue(spec.width, spec.height, std::max(4, scale), rng);
    ValueNoise fibres(spec.width, spec.height, std::max(2, scale / 6), rng);
    ValueNoise cyto(spec.width, spec.height, std::max(2, scale / 3), rng);

    // Nuclei: dark hematoxylin ellipses, about one per 900 px^2 of tissue.
    std::uniform_real_distribution<double> u(0.0, 1.0);
    const int count = std::max(1, spec.width * spec.height / 900);
    std::vector<Nucleus> nuclei;
    nuclei.reserve(static_cast<std::size_t>(count));
    for (int i = 0; i < count; ++i) {
        const double a = u(rng) * 3.14159265358979;
        nuclei.push_back(Nucleus{u(rng) * spec.width, u(rng) * spec.height, 3.0 + 5.0 * u(rng), 2.5 + 3.5 * u(rng),
                                 std::cos(a), std::sin(a), 0.6 + 0.4 * u(rng)});
    }
    // Rasterise nuclei into an H field.
    std::vector<float> h(static_cast<std::size_t>(spec.width) * static_cast<std::size_t>(spec.height), 0.0f);
    for (const Nucleus& n : nuclei) {
        const double r = std::max(n.rx, n.ry) + 1;
        const int x0 = std::max(0, static_cast<int>(n.cx - r)), x1 = std::min(spec.width - 1, static_cast<int>(n.cx + r));
        const int y0 = std::max(0, static_cast<int>(n.cy - r)), y1 = std::min(spec.height - 1, static_cast<int>(n.cy + r));
        for (int y = y0; y <= y1; ++y)
            for (int x = x0; x <= x1; ++x) {
                const double dx = x - n.cx, dy = y - n.cy;
                const double px_ = (dx * n.cos_a + dy * n.sin_a) / n.rx, py = (-dx * n.sin_a + dy * n.cos_a) / n.ry;
                const double d2 = px_ * px_ + py * py;
                if (d2 < 1.0) {
                    float& v = h[static_cast<std::size_t>(y) * static_cast<std::size_t>(spec.width) + static_cast<std::size_t>(x)];
                    v = std::max(v, static_cast<float>(n.density * (1.0 - 0.5 * d2)));
                }
            }
    }

    std::normal_distribution<double> noise(0.0, spec.noise);
    for (int y = 0; y < spec.height; ++y) {
        std::uint8_t* row = img.pixels.data() + static_cast<std::size_t>(y) * img.stride();
        for (int x = 0; x < spec.width; ++x) {
            // Tissue where the coarse field is above the glass quantile (soft edge).
            const double t = tissue.at(x, y);
            const double inside = std::clamp((t - spec.glass_fraction) * 8.0, 0.0, 1.0);
            const double nuc = h[static_cast<std::size_t>(y) * static_cast<std::size_t>(spec.width) + static_cast<std::size_t>(x)];
            // Stroma: fibrous eosin. Nuclei are pure hematoxylin, so the sparse factorisation has
            // an exact answer to find.
            const double f = fibres.at(x, y), cy = cyto.at(x, y);
            double ce = inside * spec.max_e * (0.15 + 0.85 * std::pow(f, 1.5)) * (0.6 + 0.4 * cy);
            double ch = inside * spec.max_h * nuc;
            if (nuc > 0) ce = 0.0;
            for (int c = 0; c < 3; ++c) {
                const double od = spec.stains[0][c] * ch + spec.stains[1][c] * ce;
                const double v = 255.0 * std::exp(-od) + (spec.noise > 0 ? noise(rng) : 0.0);
                row[3 * x + c] = static_cast<std::uint8_t>(std::clamp(std::nearbyint(v), 0.0, 255.0));
            }
        }
    }
    return img;
}

}  // namespace vn
