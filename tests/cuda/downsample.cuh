// 2x2 box downsampling of RGB8 on the device, checked against a host reference by the parity
// tests (tests/cuda/parity_checks.cpp): each output channel is
// (a + b + c + d + 2) / 4 of the 2x2 block at (2x, 2y); an odd last column or row is
// replicated (the block uses it twice). Output size ceil(w/2) x ceil(h/2).
#pragma once

#include <cstddef>
#include <cstdint>

#include <cuda_runtime.h>

namespace vn::cuda {

// src: width x height pixels, rows src_pitch bytes apart; dst: rows dst_pitch bytes apart.
void launch_downsample_2x2(const std::uint8_t* src, std::size_t src_pitch, int width, int height, std::uint8_t* dst,
                           std::size_t dst_pitch, cudaStream_t stream);

}  // namespace vn::cuda
