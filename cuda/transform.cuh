// The transform kernels (docs/method.md §1): px::transform_pixel, one thread per 4 pixels.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include <cuda_runtime.h>

#include "core/transform.hpp"
#include "cuda/common.cuh"

namespace vn::cuda {

// out = T(in) for `pixels` packed RGB pixels in device memory (in and out may not overlap).
void launch_transform(const TablesView& tables, const TransformPlan& plan, const std::uint8_t* in, std::uint8_t* out,
                      std::size_t pixels, cudaStream_t stream);

// Per-tile transform of a packed batch: each chunk with the plan of its image.
void launch_transform_chunks(const TablesView& tables, const TilePlan* plans, const PixelChunk* chunks,
                             std::size_t chunk_count, const std::uint8_t* in, std::uint8_t* out, cudaStream_t stream);

// Whether this build has a kernel image for the current device; `why` says why not.
bool kernels_runnable(std::string& why);

}  // namespace vn::cuda
