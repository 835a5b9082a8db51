#include "cuda/snmf.cuh"

#include <cub/block/block_reduce.cuh>

#include "cuda/check.cuh"
#include "cuda/device_tables.cuh"

namespace vn::cuda {
namespace {

// Sample k of a segment in the block-interleaved layout.
__device__ __forceinline__ std::size_t sample_at(const SampleSegment& seg, std::size_t total_items, std::uint32_t k) {
    return static_cast<std::size_t>(k % sm::kBlock) * total_items + seg.item_begin + k / sm::kBlock;
}

__global__ void moments_kernel(const SampleSegment* __restrict__ segments, std::size_t segment_count,
                               std::size_t total_items, const float* __restrict__ r, const float* __restrict__ g,
                               const float* __restrict__ b, double* __restrict__ cov_out) {
    const std::size_t s = static_cast<std::size_t>(blockIdx.x) * blockDim.x + threadIdx.x;
    if (s >= segment_count) return;
    const SampleSegment seg = segments[s];
    double cov[3][3] = {};
    if (seg.sample_count >= 2) {
        double mean[3] = {0, 0, 0};
        for (std::uint32_t k = 0; k < seg.sample_count; ++k) {
            const std::size_t i = sample_at(seg, total_items, k);
            mean[0] += r[i];
            mean[1] += g[i];
            mean[2] += b[i];
        }
        for (int c = 0; c < 3; ++c) mean[c] /= static_cast<double>(seg.sample_count);
        for (std::uint32_t k = 0; k < seg.sample_count; ++k) {
            const std::size_t i = sample_at(seg, total_items, k);
            const double d[3] = {r[i] - mean[0], g[i] - mean[1], b[i] - mean[2]};
            for (int p = 0; p < 3; ++p)
                for (int q = p; q < 3; ++q) cov[p][q] += d[p] * d[q];
        }
        for (int p = 0; p < 3; ++p)
            for (int q = 0; q < p; ++q) cov[p][q] = cov[q][p];
    }
    for (int p = 0; p < 3; ++p)
        for (int q = 0; q < 3; ++q) cov_out[9 * s + 3 * q + p] = cov[p][q];
}

constexpr int kStartBlock = 256;

__global__ void __launch_bounds__(kStartBlock) start_kernel(const SampleSegment* __restrict__ segments,
                                                            std::size_t segment_count, std::size_t total_items,
                                                            const float* __restrict__ r, const float* __restrict__ g,
                                                            const float* __restrict__ b,
                                                            const double* __restrict__ axes,
                                                            sm::State* __restrict__ states) {
    __shared__ std::uint32_t hist[sm::kAngleBins];
    for (std::size_t s = blockIdx.x; s < segment_count; s += gridDim.x) {
        const SampleSegment seg = segments[s];
        const std::uint32_t n = seg.sample_count;
        if (n < 2) {
            if (threadIdx.x == 0) {
                double w[2][3];
                sm::reference_start(w);
                sm::snmf_begin(states[s], w, n);
            }
            continue;
        }
        // syevj sorts ascending: the principal plane is spanned by columns 2 and 1.
        double e1[3], e2[3];
        for (int c = 0; c < 3; ++c) {
            e1[c] = axes[9 * s + 6 + c];
            e2[c] = axes[9 * s + 3 + c];
        }
        sm::orient(e1);
        sm::orient(e2);
        for (int i = threadIdx.x; i < sm::kAngleBins; i += blockDim.x) hist[i] = 0;
        __syncthreads();
        for (std::uint32_t k = threadIdx.x; k < n; k += blockDim.x) {
            const std::size_t i = sample_at(seg, total_items, k);
            atomicAdd(&hist[sm::angle_bin(r[i], g[i], b[i], e1, e2)], 1u);
        }
        __syncthreads();
        if (threadIdx.x == 0) {
            const double lo = sm::angle_percentile(hist, 1.0, n);
            const double hi = sm::angle_percentile(hist, 99.0, n);
            double w[2][3];
            sm::start_from_plane(e1, e2, lo, hi, w);
            sm::snmf_begin(states[s], w, n);
        }
        __syncthreads();
    }
}

constexpr int kStepBlock = 128;

__global__ void __launch_bounds__(kStepBlock) c_step_kernel(const SampleSegment* __restrict__ segments,
                                                            const std::uint32_t* __restrict__ item_segment,
                                                            std::size_t total_items, const float* __restrict__ r,
                                                            const float* __restrict__ g, const float* __restrict__ b,
                                                            const sm::State* __restrict__ states, double lambda,
                                                            double* __restrict__ partials) {
    const std::size_t item = static_cast<std::size_t>(blockIdx.x) * blockDim.x + threadIdx.x;
    if (item >= total_items) return;
    const std::uint32_t s = item_segment[item];
    if (!states[s].active) return;
    const SampleSegment seg = segments[s];
    const std::uint32_t first = (static_cast<std::uint32_t>(item) - seg.item_begin) * sm::kBlock;
    const std::uint32_t left = seg.sample_count - first;
    const int count = left < static_cast<std::uint32_t>(sm::kBlock) ? static_cast<int>(left) : sm::kBlock;
    const px::Solver<float> solver = sm::c_step_solver(states[s].eval, lambda);
    double out[sm::kPartials];
    sm::block_partials(solver, r + item, g + item, b + item, total_items, count, out);
    for (int k = 0; k < sm::kPartials; ++k) partials[item * sm::kPartials + k] = out[k];
}

__global__ void update_kernel(const SampleSegment* __restrict__ segments, std::size_t segment_count,
                              const double* __restrict__ partials, sm::State* __restrict__ states, double lambda,
                              int max_iterations, double tolerance) {
    const std::size_t s = static_cast<std::size_t>(blockIdx.x) * blockDim.x + threadIdx.x;
    if (s >= segment_count || !states[s].active) return;
    const SampleSegment seg = segments[s];
    sm::Stats st;
    sm::clear(st);
    for (std::uint32_t i = 0; i < seg.item_count; ++i)
        sm::add_partials(st, partials + static_cast<std::size_t>(seg.item_begin + i) * sm::kPartials);
    sm::State state = states[s];
    sm::snmf_advance(state, st, lambda, max_iterations, tolerance);
    states[s] = state;
}

constexpr int kCountBlock = 256;

__global__ void __launch_bounds__(kCountBlock) count_active_kernel(const sm::State* __restrict__ states,
                                                                   std::size_t segment_count, int* active) {
    using Reduce = cub::BlockReduce<int, kCountBlock>;
    __shared__ typename Reduce::TempStorage tmp;
    int n = 0;
    for (std::size_t s = threadIdx.x; s < segment_count; s += kCountBlock) n += states[s].active ? 1 : 0;
    const int total = Reduce(tmp).Sum(n);
    if (threadIdx.x == 0) *active = total;
}

unsigned blocks(std::size_t n, int block) { return static_cast<unsigned>((n + static_cast<std::size_t>(block) - 1) / block); }

}  // namespace

void launch_sample_moments(const SampleSegment* segments, std::size_t segment_count, std::size_t total_items,
                           const float* r, const float* g, const float* b, double* cov, cudaStream_t stream) {
    if (segment_count == 0) return;
    moments_kernel<<<blocks(segment_count, 64), 64, 0, stream>>>(segments, segment_count, total_items, r, g, b, cov);
    VN_CUDA_CHECK_LAUNCH();
}

std::size_t principal_axes_workspace(cusolverDnHandle_t handle, syevjInfo_t params, double* cov, double* eigenvalues,
                                     int batch) {
    if (batch == 0) return 0;
    int lwork = 0;
    VN_CUDA_CHECK(cusolverDnDsyevjBatched_bufferSize(handle, CUSOLVER_EIG_MODE_VECTOR, CUBLAS_FILL_MODE_LOWER, 3, cov,
                                                     3, eigenvalues, &lwork, params, batch));
    return static_cast<std::size_t>(lwork);
}

void launch_principal_axes(cusolverDnHandle_t handle, syevjInfo_t params, double* cov, double* eigenvalues,
                           double* work, std::size_t work_size, int* info, int batch, cudaStream_t stream) {
    if (batch == 0) return;
    VN_CUDA_CHECK(cusolverDnSetStream(handle, stream));
    VN_CUDA_CHECK(cusolverDnDsyevjBatched(handle, CUSOLVER_EIG_MODE_VECTOR, CUBLAS_FILL_MODE_LOWER, 3, cov, 3,
                                          eigenvalues, work, static_cast<int>(work_size), info, params, batch));
}

void launch_snmf_start(const SampleSegment* segments, std::size_t segment_count, std::size_t total_items,
                       const float* r, const float* g, const float* b, const double* axes, sm::State* states,
                       cudaStream_t stream) {
    if (segment_count == 0) return;
    start_kernel<<<grid_for(segment_count, 1), kStartBlock, 0, stream>>>(segments, segment_count, total_items, r, g,
                                                                         b, axes, states);
    VN_CUDA_CHECK_LAUNCH();
}

void launch_c_step(const SampleSegment* segments, const std::uint32_t* item_segment, std::size_t total_items,
                   const float* r, const float* g, const float* b, const sm::State* states, double lambda,
                   double* partials, cudaStream_t stream) {
    if (total_items == 0) return;
    c_step_kernel<<<blocks(total_items, kStepBlock), kStepBlock, 0, stream>>>(segments, item_segment, total_items, r,
                                                                              g, b, states, lambda, partials);
    VN_CUDA_CHECK_LAUNCH();
}

void launch_snmf_update(const SampleSegment* segments, std::size_t segment_count, const double* partials,
                        sm::State* states, double lambda, int max_iterations, double tolerance, cudaStream_t stream) {
    if (segment_count == 0) return;
    update_kernel<<<blocks(segment_count, 64), 64, 0, stream>>>(segments, segment_count, partials, states, lambda,
                                                                max_iterations, tolerance);
    VN_CUDA_CHECK_LAUNCH();
}

void launch_count_active(const sm::State* states, std::size_t segment_count, int* active, cudaStream_t stream) {
    count_active_kernel<<<1, kCountBlock, 0, stream>>>(states, segment_count, active);
    VN_CUDA_CHECK_LAUNCH();
}

}  // namespace vn::cuda
