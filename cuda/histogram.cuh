// Concentration histograms (docs/method.md §4) of the compacted tissue pixels of many
// segments in one launch, and their percentiles.
#pragma once

#include <cstddef>
#include <cstdint>

#include <cuda_runtime.h>

#include "cuda/common.cuh"

namespace vn::cuda {

// Adds to hist[s * 2 * kHistBins ...] (H bins, then E bins) the px::hist_bin of the
// concentrations (px::solve with solvers[s]) of every tissue pixel of every run of segment s.
// `hist` must be zeroed first. Integer counts: the result does not depend on the order.
// Privatised in shared memory (164 KiB per block) where the device allows it, otherwise
// (or with allow_shared = false) global atomics.
void launch_concentration_histograms(const TablesView& tables, const TissueRun* runs, std::size_t run_count,
                                     const std::uint32_t* tissue, const px::Solver<float>* solvers,
                                     std::uint32_t* hist, bool allow_shared, cudaStream_t stream);

// out[2 * s + k] = percentile q of histogram k (0 = H, 1 = E) of segment s, computed exactly
// like vn::percentile_from_histogram.
void launch_percentiles(const std::uint32_t* hist, std::size_t segment_count, double q, double* out,
                        cudaStream_t stream);

// Whether the shared-memory variant runs on the current device.
bool shared_histograms_supported();

}  // namespace vn::cuda
