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

// One warp per segment; each sum keeps the order of core's snmf_start (samples in order, in
// double): lanes 0-2 each sum one channel for the mean, then lanes 0-5 each one entry (p <= q)
// of the covariance. The same additions in the same order as one thread doing all of them, so
// the same bits; three to six independent chains of loads instead of one.
constexpr int kWarp = 32;
constexpr int kMomentsWarps = 4;

__device__ __forceinline__ float channel(const float* r, const float* g, const float* b, int c, std::size_t i) {
    return c == 0 ? r[i] : c == 1 ? g[i] : b[i];
}

__global__ void __launch_bounds__(kWarp * kMomentsWarps) moments_kernel(const SampleSegment* __restrict__ segments,
                                                                        std::size_t segment_count,
                                                                        std::size_t total_items,
                                                                        const float* __restrict__ r,
                                                                        const float* __restrict__ g,
                                                                        const float* __restrict__ b,
                                                                        double* __restrict__ cov_out) {
    __shared__ double mean_sh[kMomentsWarps][3];
    const int lane = static_cast<int>(threadIdx.x) % kWarp;
    const int warp = static_cast<int>(threadIdx.x) / kWarp;
    const std::size_t s = static_cast<std::size_t>(blockIdx.x) * kMomentsWarps + static_cast<std::size_t>(warp);
    if (s >= segment_count) return;  // the whole warp: only warp-level barriers below
    const SampleSegment seg = segments[s];
    // Covariance entry of lane l < 6: (p, q) = (0,0) (0,1) (0,2) (1,1) (1,2) (2,2).
    const int p = lane < 3 ? 0 : lane < 5 ? 1 : 2;
    const int q = lane < 3 ? lane : lane < 5 ? lane - 2 : 2;
    double cov = 0;
    if (seg.sample_count >= 2) {
        if (lane < 3) {
            double mean = 0;
            for (std::uint32_t k = 0; k < seg.sample_count; ++k) mean += channel(r, g, b, lane, sample_at(seg, total_items, k));
            mean_sh[warp][lane] = mean / static_cast<double>(seg.sample_count);
        }
        __syncwarp();
        if (lane < 6) {
            const double mp = mean_sh[warp][p], mq = mean_sh[warp][q];
            for (std::uint32_t k = 0; k < seg.sample_count; ++k) {
                const std::size_t i = sample_at(seg, total_items, k);
                const double dp = channel(r, g, b, p, i) - mp;
                const double dq = channel(r, g, b, q, i) - mq;
                cov += dp * dq;
            }
        }
    }
    if (lane < 6) {  // column-major 3x3, both triangles (zero for fewer than 2 samples)
        cov_out[9 * s + 3 * q + p] = cov;
        cov_out[9 * s + 3 * p + q] = cov;
    }
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

// The C-step: sm::block_partials of each block of 256 samples, spread over 8 threads per block
// (one per float lane of block_partials: lane l sums samples l, l + 8, ... in float, in order),
// then the 8 lanes added in double in lane order by one thread, exactly as block_partials does.
// A CUDA block holds 32 sample blocks ("items"): warp l computes lane l of all 32, so a warp's
// loads of one sample row are 32 consecutive floats.
constexpr int kStepItems = kWarp;                  // items per CUDA block
constexpr int kStepBlock = kStepItems * sm::kLanes;  // 256 threads

__global__ void __launch_bounds__(kStepBlock) c_step_kernel(const SampleSegment* __restrict__ segments,
                                                            const std::uint32_t* __restrict__ item_segment,
                                                            std::size_t total_items, const float* __restrict__ r,
                                                            const float* __restrict__ g, const float* __restrict__ b,
                                                            const sm::State* __restrict__ states, double lambda,
                                                            double* __restrict__ partials) {
    __shared__ float lane_sums[sm::kLanes][sm::kPartials][kStepItems];
    const int t = static_cast<int>(threadIdx.x) % kStepItems;  // item within the CUDA block
    const int l = static_cast<int>(threadIdx.x) / kStepItems;  // float lane
    const std::size_t item = static_cast<std::size_t>(blockIdx.x) * kStepItems + static_cast<std::size_t>(t);
    std::uint32_t s = 0;
    bool live = item < total_items;
    if (live) {
        s = item_segment[item];
        live = states[s].active;
    }
    if (live) {
        const SampleSegment seg = segments[s];
        const std::uint32_t first = (static_cast<std::uint32_t>(item) - seg.item_begin) * sm::kBlock;
        const std::uint32_t left = seg.sample_count - first;
        const int count = left < static_cast<std::uint32_t>(sm::kBlock) ? static_cast<int>(left) : sm::kBlock;
        const px::Solver<float> solver = sm::c_step_solver(states[s].eval, lambda);
        float acc[sm::kPartials];
        sm::lane_partials(solver, r + item, g + item, b + item, total_items, count, l, acc);
#pragma unroll
        for (int k = 0; k < sm::kPartials; ++k) lane_sums[l][k][t] = acc[k];
    }
    __syncthreads();
    if (live && l == 0) {
        for (int k = 0; k < sm::kPartials; ++k)
            partials[item * sm::kPartials + k] = sm::sum_lanes([&](int j) { return lane_sums[j][k][t]; });
    }
}

// One warp per segment: lane k < kPartials adds sum k of the segment's blocks in block order
// (sm::add_partials does the same additions, field by field), then lane 0 advances the state.
constexpr int kUpdateWarps = 4;

__global__ void __launch_bounds__(kWarp * kUpdateWarps) update_kernel(const SampleSegment* __restrict__ segments,
                                                                      std::size_t segment_count,
                                                                      const double* __restrict__ partials,
                                                                      sm::State* __restrict__ states, double lambda,
                                                                      int max_iterations, double tolerance) {
    __shared__ double sums[kUpdateWarps][sm::kPartials];
    const int lane = static_cast<int>(threadIdx.x) % kWarp;
    const int warp = static_cast<int>(threadIdx.x) / kWarp;
    const std::size_t s = static_cast<std::size_t>(blockIdx.x) * kUpdateWarps + static_cast<std::size_t>(warp);
    if (s >= segment_count || !states[s].active) return;  // the whole warp
    const SampleSegment seg = segments[s];
    if (lane < sm::kPartials) {
        double sum = 0;
        for (std::uint32_t i = 0; i < seg.item_count; ++i)
            sum += partials[static_cast<std::size_t>(seg.item_begin + i) * sm::kPartials + static_cast<std::size_t>(lane)];
        sums[warp][lane] = sum;
    }
    __syncwarp();
    if (lane == 0) {
        const double* p = sums[warp];
        sm::Stats st;
        st.a00 = p[0]; st.a01 = p[1]; st.a11 = p[2];
        st.b[0][0] = p[3]; st.b[0][1] = p[4]; st.b[0][2] = p[5];
        st.b[1][0] = p[6]; st.b[1][1] = p[7]; st.b[1][2] = p[8];
        st.sum_c = p[9];
        st.sum_x2 = p[10];
        sm::State state = states[s];
        sm::snmf_advance(state, st, lambda, max_iterations, tolerance);
        states[s] = state;
    }
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
    moments_kernel<<<blocks(segment_count, kMomentsWarps), kWarp * kMomentsWarps, 0, stream>>>(segments, segment_count,
                                                                                              total_items, r, g, b, cov);
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
    c_step_kernel<<<blocks(total_items, kStepItems), kStepBlock, 0, stream>>>(segments, item_segment, total_items, r,
                                                                              g, b, states, lambda, partials);
    VN_CUDA_CHECK_LAUNCH();
}

void launch_snmf_update(const SampleSegment* segments, std::size_t segment_count, const double* partials,
                        sm::State* states, double lambda, int max_iterations, double tolerance, cudaStream_t stream) {
    if (segment_count == 0) return;
    update_kernel<<<blocks(segment_count, kUpdateWarps), kWarp * kUpdateWarps, 0, stream>>>(
        segments, segment_count, partials, states, lambda, max_iterations, tolerance);
    VN_CUDA_CHECK_LAUNCH();
}

void launch_count_active(const sm::State* states, std::size_t segment_count, int* active, cudaStream_t stream) {
    count_active_kernel<<<1, kCountBlock, 0, stream>>>(states, segment_count, active);
    VN_CUDA_CHECK_LAUNCH();
}

}  // namespace vn::cuda
