#include "cuda/tissue.cuh"

#include <cub/block/block_reduce.cuh>
#include <cub/block/block_scan.cuh>

#include "cuda/check.cuh"
#include "cuda/device_tables.cuh"
#include "core/snmf_math.hpp"

namespace vn::cuda {
namespace {

constexpr int kBlock = 256;

__device__ void load_tables(std::uint32_t* sh_luma, float* sh_od, const std::uint32_t* luma, const float* od) {
    for (int i = threadIdx.x; i < 768; i += blockDim.x) sh_luma[i] = luma[i];
    for (int i = threadIdx.x; i < 256; i += blockDim.x) sh_od[i] = od[i];
    __syncthreads();
}

// 0: not tissue, 1: tissue kept, 2: tissue left out as ink or artefact (core/estimate.cpp
// gather_tissue, the same px functions).
__device__ __forceinline__ unsigned classify(const std::uint32_t* luma, const float* od, int exclude_artefacts,
                                             unsigned r, unsigned g, unsigned b) {
    const bool tissue = px::is_tissue(luma, r, g, b);
    const bool artefact = tissue & (exclude_artefacts != 0) & px::is_artefact(od, r, g, b);
    return tissue ? (artefact ? 2u : 1u) : 0u;
}

__global__ void __launch_bounds__(kBlock) count_tissue_kernel(const std::uint32_t* __restrict__ luma_g,
                                                              const float* __restrict__ od_g,
                                                              int exclude_artefacts,
                                                              const PixelChunk* __restrict__ chunks,
                                                              std::size_t chunk_count,
                                                              const std::uint8_t* __restrict__ pixels,
                                                              std::uint32_t* __restrict__ counts) {
    __shared__ std::uint32_t luma[768];
    __shared__ float od[256];
    using Reduce = cub::BlockReduce<std::uint32_t, kBlock>;
    __shared__ typename Reduce::TempStorage tmp;
    load_tables(luma, od, luma_g, od_g);
    for (std::size_t c = blockIdx.x; c < chunk_count; c += gridDim.x) {
        const PixelChunk ch = chunks[c];
        const std::uint8_t* p = pixels + ch.byte_offset;
        std::uint32_t n = 0, left_out = 0;
        for (std::uint32_t i = threadIdx.x; i < ch.count; i += kBlock) {
            const unsigned k = classify(luma, od, exclude_artefacts, p[3 * i], p[3 * i + 1], p[3 * i + 2]);
            n += k == 1u ? 1u : 0u;
            left_out += k == 2u ? 1u : 0u;
        }
        const std::uint32_t total = Reduce(tmp).Sum(n);
        __syncthreads();  // tmp is reused
        const std::uint32_t total_left_out = Reduce(tmp).Sum(left_out);
        if (threadIdx.x == 0) {
            counts[c] = total;
            counts[chunk_count + c] = total_left_out;
        }
        __syncthreads();  // tmp is reused by the next chunk
    }
}

__global__ void __launch_bounds__(kBlock) compact_tissue_kernel(const std::uint32_t* __restrict__ luma_g,
                                                                const float* __restrict__ od_g,
                                                                const PixelChunk* __restrict__ chunks,
                                                                std::size_t chunk_count,
                                                                const std::uint8_t* __restrict__ pixels,
                                                                const std::uint64_t* __restrict__ offsets,
                                                                std::uint32_t* __restrict__ out,
                                                                std::uint32_t* __restrict__ artefact_out) {
    __shared__ std::uint32_t luma[768];
    __shared__ float od[256];
    using Scan = cub::BlockScan<std::uint32_t, kBlock>;
    __shared__ typename Scan::TempStorage tmp;
    load_tables(luma, od, luma_g, od_g);
    for (std::size_t c = blockIdx.x; c < chunk_count; c += gridDim.x) {
        const PixelChunk ch = chunks[c];
        const std::uint8_t* p = pixels + ch.byte_offset;
        std::uint64_t next = offsets[c];
        std::uint64_t next_artefact = offsets[chunk_count + c];
        std::uint64_t rank = offsets[2 * chunk_count + c];  // segment rank of the next tissue pixel
        const int exclude_artefacts = offsets[3 * chunk_count + c] != 0 ? 1 : 0;
        for (std::uint32_t base = 0; base < ch.count; base += kBlock) {
            const std::uint32_t i = base + threadIdx.x;
            // Kept pixels counted in the low half, left-out ones in the high half (at most
            // kBlock of each per step, so neither half overflows).
            std::uint32_t flag = 0, packed = 0;
            if (i < ch.count) {
                const unsigned r = p[3 * i], g = p[3 * i + 1], b = p[3 * i + 2];
                const unsigned k = classify(luma, od, exclude_artefacts, r, g, b);
                flag = k == 1u ? 1u : k == 2u ? 0x10000u : 0u;
                packed = r | g << 8 | b << 16;
            }
            std::uint32_t pos = 0, total = 0;
            Scan(tmp).ExclusiveSum(flag, pos, total);
            const std::uint32_t kept_before = pos & 0xFFFFu, left_out_before = pos >> 16;
            if (flag == 1u) out[next + kept_before] = packed;
            if (flag == 0x10000u)
                artefact_out[next_artefact + left_out_before] =
                    static_cast<std::uint32_t>(rank + kept_before + left_out_before);
            next += total & 0xFFFFu;
            next_artefact += total >> 16;
            rank += (total & 0xFFFFu) + (total >> 16);
            __syncthreads();
        }
    }
}

__global__ void __launch_bounds__(sm::kBlock) gather_sample_kernel(const float* __restrict__ od_g,
                                                                   const SampleSegment* __restrict__ segments,
                                                                   const std::uint32_t* __restrict__ item_segment,
                                                                   std::size_t total_items,
                                                                   const std::uint32_t* __restrict__ ranks,
                                                                   const std::uint32_t* __restrict__ tissue,
                                                                   float* __restrict__ r, float* __restrict__ g,
                                                                   float* __restrict__ b) {
    __shared__ float od[256];
    for (int i = threadIdx.x; i < 256; i += blockDim.x) od[i] = od_g[i];
    __syncthreads();
    for (std::size_t item = blockIdx.x; item < total_items; item += gridDim.x) {
        const SampleSegment seg = segments[item_segment[item]];
        const std::uint64_t k = static_cast<std::uint64_t>(item - seg.item_begin) * sm::kBlock + threadIdx.x;
        if (k >= seg.sample_count) continue;
        const std::uint32_t v = tissue[seg.tissue_begin + ranks[seg.sample_begin + k]];
        const std::size_t at = static_cast<std::size_t>(threadIdx.x) * total_items + item;
        r[at] = od[v & 255u];
        g[at] = od[(v >> 8) & 255u];
        b[at] = od[(v >> 16) & 255u];
    }
}

}  // namespace

void launch_count_tissue(const TablesView& tables, bool exclude_artefacts, const PixelChunk* chunks,
                         std::size_t chunk_count, const std::uint8_t* pixels, std::uint32_t* counts,
                         cudaStream_t stream) {
    if (chunk_count == 0) return;
    count_tissue_kernel<<<grid_for(chunk_count, 1), kBlock, 0, stream>>>(
        tables.luma, tables.od, exclude_artefacts ? 1 : 0, chunks, chunk_count, pixels, counts);
    VN_CUDA_CHECK_LAUNCH();
}

void launch_compact_tissue(const TablesView& tables, const PixelChunk* chunks, std::size_t chunk_count,
                           const std::uint8_t* pixels, const std::uint64_t* offsets, std::uint32_t* out,
                           std::uint32_t* artefact_out, cudaStream_t stream) {
    if (chunk_count == 0) return;
    compact_tissue_kernel<<<grid_for(chunk_count, 1), kBlock, 0, stream>>>(tables.luma, tables.od, chunks,
                                                                           chunk_count, pixels, offsets, out,
                                                                           artefact_out);
    VN_CUDA_CHECK_LAUNCH();
}

void launch_gather_sample(const TablesView& tables, const SampleSegment* segments, const std::uint32_t* item_segment,
                          std::size_t total_items, const std::uint32_t* ranks, const std::uint32_t* tissue,
                          float* r, float* g, float* b, cudaStream_t stream) {
    if (total_items == 0) return;
    gather_sample_kernel<<<grid_for(total_items, 1), sm::kBlock, 0, stream>>>(tables.od, segments, item_segment,
                                                                              total_items, ranks, tissue, r, g, b);
    VN_CUDA_CHECK_LAUNCH();
}

}  // namespace vn::cuda
