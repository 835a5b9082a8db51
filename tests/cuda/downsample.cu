#include "tests/cuda/downsample.cuh"

#include "cuda/check.cuh"

namespace vn::cuda {
namespace {

__global__ void downsample_kernel(const std::uint8_t* __restrict__ src, std::size_t src_pitch, int width, int height,
                                  std::uint8_t* __restrict__ dst, std::size_t dst_pitch, int out_w, int out_h) {
    const int ox = static_cast<int>(blockIdx.x * blockDim.x + threadIdx.x);
    if (ox >= out_w) return;
    const int x0 = 2 * ox, x1 = min(2 * ox + 1, width - 1);
    const int row_step = static_cast<int>(gridDim.y * blockDim.y);
    for (int oy = static_cast<int>(blockIdx.y * blockDim.y + threadIdx.y); oy < out_h; oy += row_step) {
        const int y0 = 2 * oy, y1 = min(2 * oy + 1, height - 1);
        const std::uint8_t* r0 = src + static_cast<std::size_t>(y0) * src_pitch;
        const std::uint8_t* r1 = src + static_cast<std::size_t>(y1) * src_pitch;
        std::uint8_t* out = dst + static_cast<std::size_t>(oy) * dst_pitch + 3 * static_cast<std::size_t>(ox);
        for (int c = 0; c < 3; ++c) {
            const unsigned sum =
                static_cast<unsigned>(r0[3 * x0 + c]) + r0[3 * x1 + c] + r1[3 * x0 + c] + r1[3 * x1 + c];
            out[c] = static_cast<std::uint8_t>((sum + 2u) / 4u);
        }
    }
}

}  // namespace

void launch_downsample_2x2(const std::uint8_t* src, std::size_t src_pitch, int width, int height, std::uint8_t* dst,
                           std::size_t dst_pitch, cudaStream_t stream) {
    if (width <= 0 || height <= 0) return;
    const int out_w = (width + 1) / 2, out_h = (height + 1) / 2;
    const dim3 block(32, 8);
    const int rows = (out_h + 7) / 8;
    const dim3 grid(static_cast<unsigned>((out_w + 31) / 32), static_cast<unsigned>(rows < 65535 ? rows : 65535));
    downsample_kernel<<<grid, block, 0, stream>>>(src, src_pitch, width, height, dst, dst_pitch, out_w, out_h);
    VN_CUDA_CHECK_LAUNCH();
}

}  // namespace vn::cuda
