// Sparse NMF stain separation (docs/method.md §3).
//
//   F(W, C) = 1/2 sum_i ||x_i - W^T c_i||^2 + lambda sum_i (c_iH + c_iE),  C >= 0, W >= 0, ||w_k|| <= 1
//
// Solved by alternating exact minimisation from a deterministic start:
//   C-step: every c_i exactly, in closed form (px::solve with lambda);
//   W-step: exact block-coordinate minimisation of the quadratic in W given the sufficient
//           statistics A = C^T C (2 x 2) and B = C^T X (2 x 3), each row projected onto
//           {w >= 0, ||w|| <= 1} (exact for an isotropic block);
// until F/n decreases by less than `tolerance` (relative). F never increases.
// Start: the two extreme directions (1st and 99th percentile angles) of X in its top-2
// principal plane (Macenko et al.), clipped to non-negative and normalised.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>

namespace vn {

using StainMatrix = std::array<std::array<double, 3>, 2>;

// Optical densities of n pixels, structure of arrays.
struct OdSamples {
    const float* r = nullptr;
    const float* g = nullptr;
    const float* b = nullptr;
    std::size_t n = 0;
};

struct SnmfResult {
    StainMatrix w{};        // rows unit length, ordered H then E (docs/method.md §3)
    double objective = 0.0; // F / n with C solved exactly for w
    int iterations = 0;
    bool converged = false;
};

// The deterministic start: principal-plane extremes, ordered. Falls back to the built-in
// reference vectors for a direction that has no positive part.
StainMatrix snmf_start(const OdSamples& x);

// Adds the sm::angle_bin of every sample in the plane (e1, e2) to hist (sm::kAngleBins counts),
// calling atan2 only for the few samples near a bin edge or on an axis.
void angle_histogram(const OdSamples& x, const double e1[3], const double e2[3], std::uint32_t* hist);

SnmfResult snmf(const OdSamples& x, double lambda, int max_iterations, double tolerance);

// F / n for a given W (C solved exactly), in double precision.
double snmf_objective(const OdSamples& x, const StainMatrix& w, double lambda);

// Normalises rows and orders them hematoxylin first (larger red OD).
StainMatrix normalize_and_order(StainMatrix w);

}  // namespace vn
