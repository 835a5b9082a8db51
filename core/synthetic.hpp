// Synthetic H&E-like images with a known answer: Beer-Lambert rendering of nucleus- and
// stroma-like concentration fields under a given stain matrix. Used by `vahanorm demo`,
// the ground-truth tests and the benchmarks; the project ships no third-party images.
#pragma once

#include <cstdint>

#include "core/image.hpp"
#include "core/snmf.hpp"

namespace vn {

struct SyntheticSpec {
    int width = 512;
    int height = 512;
    StainMatrix stains{};        // rows H, E (unit length)
    double max_h = 1.6;          // typical peak concentrations
    double max_e = 1.0;
    double glass_fraction = 0.2; // share of the area left as empty glass
    double noise = 1.0;          // sensor noise, in 8-bit levels (standard deviation)
    std::uint64_t seed = 1;
};

// Two stain matrices as two labs might produce (rows normalised, H first).
StainMatrix synthetic_stains_lab_a();  // Ruifrok & Johnston's H&E vectors
StainMatrix synthetic_stains_lab_b();  // bluer hematoxylin, more purple eosin

RgbImage render_synthetic(const SyntheticSpec& spec);

}  // namespace vn
