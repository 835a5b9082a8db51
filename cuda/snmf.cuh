// SNMF of many segments at once (docs/method.md §3; core/snmf.cpp, step for step):
// sample moments, principal axes (cuSOLVER batched Jacobi), the deterministic start, then
// alternating C-steps (one thread per block of 256 samples, summed like the CPU's c_step) and
// updates (one thread per segment: fixed-order double totals, exact W-step, extrapolation,
// stopping rule: core/snmf_math.hpp).
#pragma once

#include <cstddef>
#include <cstdint>

#include <cuda_runtime.h>
#include <cusolverDn.h>

#include "cuda/common.cuh"
#include "core/snmf_math.hpp"

namespace vn::cuda {

// Mean and covariance of each segment's sample, summed in sample order in double (as
// snmf_start does); cov[9 s ...] column-major 3x3 (zero for fewer than 2 samples).
void launch_sample_moments(const SampleSegment* segments, std::size_t segment_count, std::size_t total_items,
                           const float* r, const float* g, const float* b, double* cov, cudaStream_t stream);

// Eigenvectors (in place, columns, ascending eigenvalues) of `batch` symmetric 3x3 matrices.
std::size_t principal_axes_workspace(cusolverDnHandle_t handle, syevjInfo_t params, double* cov, double* eigenvalues,
                                     int batch);  // in doubles
void launch_principal_axes(cusolverDnHandle_t handle, syevjInfo_t params, double* cov, double* eigenvalues,
                           double* work, std::size_t work_size, int* info, int batch, cudaStream_t stream);

// The start of each segment (principal-plane extreme angles) into states (sm::snmf_begin).
void launch_snmf_start(const SampleSegment* segments, std::size_t segment_count, std::size_t total_items,
                       const float* r, const float* g, const float* b, const double* axes, sm::State* states,
                       cudaStream_t stream);

// The C-step of every active segment's W to evaluate (State::eval): sm::kPartials sums per
// block of samples (sm::block_partials).
void launch_c_step(const SampleSegment* segments, const std::uint32_t* item_segment, std::size_t total_items,
                   const float* r, const float* g, const float* b, const sm::State* states, double lambda,
                   double* partials, cudaStream_t stream);

// One step of every active segment (sm::snmf_advance on its blocks' sums, added in order).
void launch_snmf_update(const SampleSegment* segments, std::size_t segment_count, const double* partials,
                        sm::State* states, double lambda, int max_iterations, double tolerance, cudaStream_t stream);

// *active = number of segments still iterating.
void launch_count_active(const sm::State* states, std::size_t segment_count, int* active, cudaStream_t stream);

}  // namespace vn::cuda
