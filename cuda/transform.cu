// One math, two executors: these kernels call px::transform_pixel, the function the CPU's
// core/transform.cpp calls; the tables are the host-built exact tables, copied to the device.
#include "cuda/transform.cuh"

#include "cuda/check.cuh"
#include "cuda/device_tables.cuh"

namespace vn::cuda {
namespace {

constexpr int kBlock = 256;

// The tables in shared memory: 1 KiB of OD, 16 KiB of rendering table.
struct SharedTables {
    float od[256];
    std::uint8_t exp_out[px::kExpLutSize];
};

__device__ void load_tables(SharedTables& sh, const TablesView t) {
    for (int i = threadIdx.x; i < 256; i += blockDim.x) sh.od[i] = t.od[i];
    const auto* src = reinterpret_cast<const std::uint32_t*>(t.exp_out);
    auto* dst = reinterpret_cast<std::uint32_t*>(sh.exp_out);
    for (int i = threadIdx.x; i < px::kExpLutSize / 4; i += blockDim.x) dst[i] = src[i];
    __syncthreads();
}

// Four pixels = 12 bytes = three aligned 32-bit words in and out.
__device__ __forceinline__ void transform4(const px::Solver<float>& s, const px::Render& r, const SharedTables& sh,
                                           const std::uint32_t* in, std::uint32_t* out) {
    const std::uint32_t w[3] = {in[0], in[1], in[2]};
    std::uint8_t p[12], q[12];
#pragma unroll
    for (int i = 0; i < 12; ++i) p[i] = static_cast<std::uint8_t>(w[i / 4] >> (8 * (i % 4)));
#pragma unroll
    for (int k = 0; k < 4; ++k) px::transform_pixel(s, r, sh.od, sh.exp_out, p + 3 * k, q + 3 * k);
#pragma unroll
    for (int j = 0; j < 3; ++j)
        out[j] = static_cast<std::uint32_t>(q[4 * j]) | static_cast<std::uint32_t>(q[4 * j + 1]) << 8 |
                 static_cast<std::uint32_t>(q[4 * j + 2]) << 16 | static_cast<std::uint32_t>(q[4 * j + 3]) << 24;
}

// Sixteen pixels = 48 bytes = three aligned 16-byte vectors in and out (four transform4 groups).
__device__ __forceinline__ void transform16(const px::Solver<float>& s, const px::Render& r, const SharedTables& sh,
                                            const uint4* in, uint4* out) {
    const uint4 a = in[0], b = in[1], c = in[2];
    const std::uint32_t w[12] = {a.x, a.y, a.z, a.w, b.x, b.y, b.z, b.w, c.x, c.y, c.z, c.w};
    std::uint32_t o[12];
#pragma unroll
    for (int k = 0; k < 4; ++k) transform4(s, r, sh, w + 3 * k, o + 3 * k);
    out[0] = make_uint4(o[0], o[1], o[2], o[3]);
    out[1] = make_uint4(o[4], o[5], o[6], o[7]);
    out[2] = make_uint4(o[8], o[9], o[10], o[11]);
}

// Flat buffer. Align: the alignment of both in and out (16, 4 or 1 bytes): groups of 16 pixels
// move as 16-byte vectors, groups of 4 as 32-bit words, the rest byte by byte. Every pixel goes
// through the same px::transform_pixel, so the path changes no result.
template <int Align>
__global__ void __launch_bounds__(kBlock) transform_kernel(px::Solver<float> s, px::Render r, TablesView t,
                                                           const std::uint8_t* __restrict__ in,
                                                           std::uint8_t* __restrict__ out, std::size_t pixels) {
    __shared__ SharedTables sh;
    load_tables(sh, t);
    const std::size_t stride = static_cast<std::size_t>(gridDim.x) * blockDim.x;
    const std::size_t first = static_cast<std::size_t>(blockIdx.x) * blockDim.x + threadIdx.x;
    std::size_t done = 0;
    if (Align >= 16) {
        const std::size_t groups = pixels / 16;
        const auto* in128 = reinterpret_cast<const uint4*>(in);
        auto* out128 = reinterpret_cast<uint4*>(out);
        for (std::size_t g = first; g < groups; g += stride) transform16(s, r, sh, in128 + 3 * g, out128 + 3 * g);
        done = groups * 16;
    }
    if (Align >= 4) {
        const std::size_t groups = pixels / 4;
        const auto* in32 = reinterpret_cast<const std::uint32_t*>(in);
        auto* out32 = reinterpret_cast<std::uint32_t*>(out);
        for (std::size_t g = done / 4 + first; g < groups; g += stride) transform4(s, r, sh, in32 + 3 * g, out32 + 3 * g);
        done = groups * 4;
    }
    for (std::size_t i = done + first; i < pixels; i += stride)
        px::transform_pixel(s, r, sh.od, sh.exp_out, in + 3 * i, out + 3 * i);
}

// Per-tile plans over a batch's chunks. Chunks start 16-byte aligned in the batch layout
// (estimator.cpp layout_images), checked here all the same: 16-pixel vector groups, then 4-pixel
// word groups, then single pixels.
__global__ void __launch_bounds__(kBlock) transform_chunks_kernel(TablesView t, const TilePlan* __restrict__ plans,
                                                                  const PixelChunk* __restrict__ chunks,
                                                                  std::size_t chunk_count,
                                                                  const std::uint8_t* __restrict__ in,
                                                                  std::uint8_t* __restrict__ out) {
    __shared__ SharedTables sh;
    load_tables(sh, t);
    for (std::size_t c = blockIdx.x; c < chunk_count; c += gridDim.x) {
        const PixelChunk ch = chunks[c];
        const TilePlan plan = plans[ch.image];
        const std::uint8_t* src = in + ch.byte_offset;
        std::uint8_t* dst = out + ch.byte_offset;
        const bool vec = ((reinterpret_cast<std::uintptr_t>(src) | reinterpret_cast<std::uintptr_t>(dst)) & 15u) == 0;
        const std::uint32_t groups16 = vec ? ch.count / 16 : 0;
        const std::uint32_t groups = ch.count / 4;
        const auto* src128 = reinterpret_cast<const uint4*>(src);
        auto* dst128 = reinterpret_cast<uint4*>(dst);
        const auto* src32 = reinterpret_cast<const std::uint32_t*>(src);
        auto* dst32 = reinterpret_cast<std::uint32_t*>(dst);
        if (plan.copy) {
            for (std::uint32_t i = threadIdx.x; i < 3 * groups16; i += blockDim.x) dst128[i] = src128[i];
            for (std::uint32_t i = 12 * groups16 + threadIdx.x; i < 3 * groups; i += blockDim.x) dst32[i] = src32[i];
            for (std::uint32_t i = 12 * groups + threadIdx.x; i < 3 * ch.count; i += blockDim.x) dst[i] = src[i];
        } else {
            for (std::uint32_t g = threadIdx.x; g < groups16; g += blockDim.x)
                transform16(plan.solver, plan.render, sh, src128 + 3 * g, dst128 + 3 * g);
            for (std::uint32_t g = 4 * groups16 + threadIdx.x; g < groups; g += blockDim.x)
                transform4(plan.solver, plan.render, sh, src32 + 3 * g, dst32 + 3 * g);
            for (std::uint32_t i = 4 * groups + threadIdx.x; i < ch.count; i += blockDim.x)
                px::transform_pixel(plan.solver, plan.render, sh.od, sh.exp_out, src + 3 * i, dst + 3 * i);
        }
    }
}

}  // namespace

void launch_transform(const TablesView& tables, const TransformPlan& plan, const std::uint8_t* in, std::uint8_t* out,
                      std::size_t pixels, cudaStream_t stream) {
    if (pixels == 0) return;
    const std::uintptr_t bits = reinterpret_cast<std::uintptr_t>(in) | reinterpret_cast<std::uintptr_t>(out);
    if ((bits & 15u) == 0) {
        transform_kernel<16><<<grid_for((pixels + 15) / 16, kBlock), kBlock, 0, stream>>>(plan.solver, plan.render,
                                                                                         tables, in, out, pixels);
    } else if ((bits & 3u) == 0) {
        transform_kernel<4><<<grid_for((pixels + 3) / 4, kBlock), kBlock, 0, stream>>>(plan.solver, plan.render, tables,
                                                                                       in, out, pixels);
    } else {
        transform_kernel<1><<<grid_for(pixels, kBlock), kBlock, 0, stream>>>(plan.solver, plan.render, tables, in, out,
                                                                             pixels);
    }
    VN_CUDA_CHECK_LAUNCH();
}

void launch_transform_chunks(const TablesView& tables, const TilePlan* plans, const PixelChunk* chunks,
                             std::size_t chunk_count, const std::uint8_t* in, std::uint8_t* out, cudaStream_t stream) {
    if (chunk_count == 0) return;
    const unsigned grid = grid_for(chunk_count, 1);
    transform_chunks_kernel<<<grid, kBlock, 0, stream>>>(tables, plans, chunks, chunk_count, in, out);
    VN_CUDA_CHECK_LAUNCH();
}

bool kernels_runnable(std::string& why) {
    cudaFuncAttributes attr{};
    const cudaError_t e = cudaFuncGetAttributes(&attr, transform_kernel<16>);
    if (e == cudaSuccess) return true;
    (void)cudaGetLastError();
    why = cudaGetErrorString(e);
    return false;
}

}  // namespace vn::cuda
