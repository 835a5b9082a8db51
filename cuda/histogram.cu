#include "cuda/histogram.cuh"

#include <cub/block/block_scan.cuh>

#include "cuda/check.cuh"
#include "cuda/device_tables.cuh"

namespace vn::cuda {
namespace {

constexpr int kSharedBlock = 1024;  // one 164 KiB block per SM: many threads to hide latency
constexpr int kGlobalBlock = 256;
constexpr std::size_t kSharedBytes = (2u * px::kHistBins + 256u) * sizeof(std::uint32_t);

__device__ __forceinline__ px::Conc<float> concentrations(const px::Solver<float>& s, const float* od,
                                                          std::uint32_t v) {
    return px::solve(s, od[v & 255u], od[(v >> 8) & 255u], od[(v >> 16) & 255u]);
}

// Each block takes a contiguous range of runs (runs are ordered by segment), so consecutive
// runs of one segment share one privatised histogram: it is zeroed once per block, and flushed
// (non-zero bins only, zeroing them as it goes) only when the segment changes or the range ends,
// not once per 65,536-pixel run. Integer counts: the result does not depend on the split.
__global__ void __launch_bounds__(kSharedBlock) hist_shared_kernel(const float* __restrict__ od_g,
                                                                   const TissueRun* __restrict__ runs,
                                                                   std::size_t run_count,
                                                                   const std::uint32_t* __restrict__ tissue,
                                                                   const px::Solver<float>* __restrict__ solvers,
                                                                   std::uint32_t* __restrict__ hist) {
    extern __shared__ std::uint32_t sh[];
    std::uint32_t* sh_hist = sh;  // H bins, then E bins
    float* od = reinterpret_cast<float*>(sh + 2 * px::kHistBins);
    const std::size_t per_block = (run_count + gridDim.x - 1) / gridDim.x;
    const std::size_t r0 = static_cast<std::size_t>(blockIdx.x) * per_block;
    const std::size_t r1 = r0 + per_block < run_count ? r0 + per_block : run_count;
    if (r0 >= r1) return;  // the whole block leaves together
    for (int i = threadIdx.x; i < 256; i += blockDim.x) od[i] = od_g[i];
    for (int i = threadIdx.x; i < 2 * px::kHistBins; i += blockDim.x) sh_hist[i] = 0;
    __syncthreads();
    for (std::size_t r = r0; r < r1; ++r) {
        const TissueRun run = runs[r];
        const px::Solver<float> s = solvers[run.segment];
        const std::uint32_t* p = tissue + run.begin;
        for (std::uint32_t i = threadIdx.x; i < run.count; i += blockDim.x) {
            const px::Conc<float> c = concentrations(s, od, p[i]);
            atomicAdd(&sh_hist[px::hist_bin(c.h)], 1u);
            atomicAdd(&sh_hist[px::kHistBins + px::hist_bin(c.e)], 1u);
        }
        // Uniform over the block: every thread reads the same runs.
        if (r + 1 == r1 || runs[r + 1].segment != run.segment) {
            __syncthreads();
            std::uint32_t* g = hist + static_cast<std::size_t>(run.segment) * 2 * px::kHistBins;
            for (int i = threadIdx.x; i < 2 * px::kHistBins; i += blockDim.x) {
                const std::uint32_t v = sh_hist[i];
                if (v) {
                    atomicAdd(&g[i], v);
                    sh_hist[i] = 0;
                }
            }
            __syncthreads();
        }
    }
}

__global__ void __launch_bounds__(kGlobalBlock) hist_global_kernel(const float* __restrict__ od_g,
                                                                   const TissueRun* __restrict__ runs,
                                                                   std::size_t run_count,
                                                                   const std::uint32_t* __restrict__ tissue,
                                                                   const px::Solver<float>* __restrict__ solvers,
                                                                   std::uint32_t* __restrict__ hist) {
    __shared__ float od[256];
    for (int i = threadIdx.x; i < 256; i += blockDim.x) od[i] = od_g[i];
    __syncthreads();
    for (std::size_t r = blockIdx.x; r < run_count; r += gridDim.x) {
        const TissueRun run = runs[r];
        const px::Solver<float> s = solvers[run.segment];
        const std::uint32_t* p = tissue + run.begin;
        std::uint32_t* g = hist + static_cast<std::size_t>(run.segment) * 2 * px::kHistBins;
        for (std::uint32_t i = threadIdx.x; i < run.count; i += blockDim.x) {
            const px::Conc<float> c = concentrations(s, od, p[i]);
            atomicAdd(&g[px::hist_bin(c.h)], 1u);
            atomicAdd(&g[px::kHistBins + px::hist_bin(c.e)], 1u);
        }
    }
}

// One block per histogram: the same value as sm::percentile_from_histogram (and so as
// vn::percentile_from_histogram), found with a block scan instead of three serial passes.
constexpr int kPercentileBlock = 256;

__global__ void __launch_bounds__(kPercentileBlock) percentile_kernel(const std::uint32_t* __restrict__ hist,
                                                                      std::size_t count, double q,
                                                                      double* __restrict__ out) {
    using Scan = cub::BlockScan<unsigned long long, kPercentileBlock>;
    __shared__ typename Scan::TempStorage tmp;
    __shared__ double value[2];
    constexpr int kPer = (px::kHistBins + kPercentileBlock - 1) / kPercentileBlock;
    const int b0 = static_cast<int>(threadIdx.x) * kPer;
    const int b1 = b0 + kPer < px::kHistBins ? b0 + kPer : px::kHistBins;
    for (std::size_t idx = blockIdx.x; idx < count; idx += gridDim.x) {
        const std::uint32_t* h = hist + idx * px::kHistBins;
        unsigned long long mine = 0, before = 0, n = 0;
        for (int i = b0; i < b1; ++i) mine += h[i];
        Scan(tmp).ExclusiveSum(mine, before, n);
        if (threadIdx.x == 0) value[0] = value[1] = static_cast<double>(px::hist_value(px::kHistBins - 1));
        __syncthreads();
        const double pos = q / 100.0 * static_cast<double>(n - 1);
        const auto rank = static_cast<unsigned long long>(std::floor(pos));
        for (int t = 0; t < 2; ++t) {
            const unsigned long long r = rank + static_cast<unsigned long long>(t);
            if (n > 0 && before <= r && r < before + mine) {  // the first bin whose running count passes r
                unsigned long long cum = before;
                for (int i = b0; i < b1; ++i) {
                    cum += h[i];
                    if (cum > r) {
                        value[t] = static_cast<double>(px::hist_value(i));
                        break;
                    }
                }
            }
        }
        __syncthreads();
        if (threadIdx.x == 0) {
            const double v0 = value[0];
            const double v1 = rank + 1 < n ? value[1] : v0;
            out[idx] = n == 0 ? 0.0 : v0 + (pos - static_cast<double>(rank)) * (v1 - v0);
        }
        __syncthreads();
    }
}

}  // namespace

bool shared_histograms_supported() {
    int device = 0, optin = 0;
    VN_CUDA_CHECK(cudaGetDevice(&device));
    VN_CUDA_CHECK(cudaDeviceGetAttribute(&optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, device));
    return static_cast<std::size_t>(optin) >= kSharedBytes;
}

void launch_concentration_histograms(const TablesView& tables, const TissueRun* runs, std::size_t run_count,
                                     const std::uint32_t* tissue, const px::Solver<float>* solvers,
                                     std::uint32_t* hist, bool allow_shared, cudaStream_t stream) {
    if (run_count == 0) return;
    if (allow_shared && shared_histograms_supported()) {
        VN_CUDA_CHECK(cudaFuncSetAttribute(hist_shared_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                           static_cast<int>(kSharedBytes)));
        const unsigned grid = grid_for(run_count, 1, 1);
        hist_shared_kernel<<<grid, kSharedBlock, kSharedBytes, stream>>>(tables.od, runs, run_count, tissue, solvers,
                                                                          hist);
    } else {
        const unsigned grid = grid_for(run_count, 1, 8);
        hist_global_kernel<<<grid, kGlobalBlock, 0, stream>>>(tables.od, runs, run_count, tissue, solvers, hist);
    }
    VN_CUDA_CHECK_LAUNCH();
}

void launch_percentiles(const std::uint32_t* hist, std::size_t segment_count, double q, double* out,
                        cudaStream_t stream) {
    const std::size_t n = 2 * segment_count;
    if (n == 0) return;
    percentile_kernel<<<grid_for(n, 1), kPercentileBlock, 0, stream>>>(hist, n, q, out);
    VN_CUDA_CHECK_LAUNCH();
}

}  // namespace vn::cuda
