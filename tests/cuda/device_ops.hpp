// Device operations outside the Backend interface, with host-memory arguments, for the parity
// tests (tests/cuda/parity_checks.cpp) and the GPU benchmark (cuda/bench/bench_gpu.cpp); the
// product does not use them. Each call is synchronous.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "core/image.hpp"
#include "core/pixel_math.hpp"
#include "core/transform.hpp"

namespace vn {

// Page-locked host memory (cudaMallocHost). Tiles in such memory are copied to and from the
// device directly (2D DMA, no staging copy); the backend's own host buffers
// (Backend::host_buffer, cuda/cuda_backend.cpp) are such memory.
struct PinnedDeleter {
    void operator()(std::uint8_t* p) const noexcept;
};
using PinnedBytes = std::unique_ptr<std::uint8_t[], PinnedDeleter>;
PinnedBytes cuda_alloc_pinned(std::size_t bytes);

// The fixed-model transform of one image through the flat-buffer kernel, with the device
// copies of src and dst starting `misalign` bytes past an aligned address (0..15: 0 takes the
// 16-byte vector path, 4, 8 and 12 the 32-bit word path, the others the byte-wise path).
RgbImage cuda_transform_image(const TransformPlan& plan, RgbView src, int device, std::size_t misalign = 0);

// 2x2 box downsampling ((a + b + c + d + 2) / 4 per channel; odd last row/column replicated)
// on `device`. Output ceil(w/2) x ceil(h/2).
RgbImage cuda_downsample_2x2(RgbView src, int device);

// Concentration histograms (H then E, px::kHistBins each) of the tissue pixels of `images`
// under `solver`, and their percentile q, computed on `device`.
struct CudaConcentrationStats {
    std::vector<std::uint32_t> histograms;
    double percentile[2] = {0, 0};
    std::uint64_t tissue_pixels = 0;
};
CudaConcentrationStats cuda_concentration_stats(const std::vector<RgbView>& images, const px::Solver<float>& solver,
                                                double q, int device, bool shared_memory_histograms = true);

}  // namespace vn
