#include "cuda/lane.cuh"

#include <algorithm>
#include <cstring>

namespace vn::cuda {

struct Lane::Resources {
    Stream stream;
    PinnedBuffer<std::uint8_t> staging_in, staging_out, meta;
    std::size_t meta_used = 0;   // bump allocation in `meta`, reset after each synchronisation
    bool staging_in_busy = false;  // copies out of `staging_in` may still be queued
    DeviceBuffer<std::uint8_t> pixels_in, pixels_out;
    std::array<DeviceBuffer<std::uint8_t>, static_cast<std::size_t>(Slot::Count_)> slots;
    std::unique_ptr<SolverHandle> solver;
    std::unique_ptr<SyevjInfo> syevj;
};

bool is_pinned(const void* p, std::size_t bytes) {
    if (p == nullptr || bytes == 0) return false;
    auto pinned_at = [](const void* q) {
        cudaPointerAttributes attr{};
        if (cudaPointerGetAttributes(&attr, q) != cudaSuccess) {
            (void)cudaGetLastError();
            return false;
        }
        return attr.type == cudaMemoryTypeHost;
    };
    return pinned_at(p) && pinned_at(static_cast<const std::uint8_t*>(p) + bytes - 1);
}

Lane::Lane(int device, std::size_t staging_bytes) : device_(device), staging_bytes_(staging_bytes) {
    DeviceGuard guard(device);
    res_ = std::make_unique<Resources>();
}

Lane::~Lane() {
    // Release on the lane's device; never throw from here.
    int previous = 0;
    const bool have_previous = cudaGetDevice(&previous) == cudaSuccess;
    (void)cudaSetDevice(device_);
    (void)cudaStreamSynchronize(res_->stream.get());
    res_.reset();
    if (have_previous) (void)cudaSetDevice(previous);
}

cudaStream_t Lane::stream() const { return res_->stream.get(); }

void Lane::synchronize() const {
    res_->stream.synchronize();
    res_->meta_used = 0;
    res_->staging_in_busy = false;
}

std::uint8_t* Lane::pixels_in(std::size_t bytes) { return res_->pixels_in.reserve(std::max<std::size_t>(bytes, 16)); }
std::uint8_t* Lane::pixels_out(std::size_t bytes) { return res_->pixels_out.reserve(std::max<std::size_t>(bytes, 16)); }

void* Lane::grow(Slot slot, std::size_t bytes) {
    return res_->slots[static_cast<std::size_t>(slot)].reserve(std::max<std::size_t>(bytes, 16));
}

void Lane::put(void* device, const void* host, std::size_t bytes) {
    if (bytes == 0) return;
    const std::size_t aligned = (bytes + 255) & ~std::size_t{255};
    if (res_->meta_used + aligned > res_->meta.size()) {
        synchronize();  // pending copies out of `meta` are done; start over in a bigger buffer
        if (aligned > res_->meta.size()) res_->meta.reset(std::max<std::size_t>(aligned * 2, 1 << 20));
    }
    std::uint8_t* h = res_->meta.get() + res_->meta_used;
    res_->meta_used += aligned;
    std::memcpy(h, host, bytes);
    VN_CUDA_CHECK(cudaMemcpyAsync(device, h, bytes, cudaMemcpyHostToDevice, stream()));
}

void Lane::get(void* host, const void* device, std::size_t bytes) {
    synchronize();  // the work queued so far is done, and so are the copies out of `meta`
    if (bytes == 0) return;
    if (bytes > res_->meta.size()) res_->meta.reset(std::max<std::size_t>(bytes * 2, 1 << 20));
    VN_CUDA_CHECK(cudaMemcpyAsync(res_->meta.get(), device, bytes, cudaMemcpyDeviceToHost, stream()));
    synchronize();
    std::memcpy(host, res_->meta.get(), bytes);
}

void Lane::upload_rows(const std::vector<HostRowsIn>& parts, std::uint8_t* device_base) {
    if (res_->staging_in_busy) synchronize();
    std::size_t used = 0;
    for (const HostRowsIn& p : parts) {
        if (p.rows <= 0 || p.row_bytes == 0) continue;
        const std::size_t span = static_cast<std::size_t>(p.rows - 1) * p.stride + p.row_bytes;
        if (is_pinned(p.data, span)) {
            VN_CUDA_CHECK(cudaMemcpy2DAsync(device_base + p.device_offset, p.row_bytes, p.data, p.stride, p.row_bytes,
                                            static_cast<std::size_t>(p.rows), cudaMemcpyHostToDevice, stream()));
            continue;
        }
        if (res_->staging_in.size() < std::max(staging_bytes_, p.row_bytes)) {
            res_->stream.synchronize();
            res_->staging_in.reset(std::max(staging_bytes_, p.row_bytes));
            used = 0;
        }
        const std::size_t cap = res_->staging_in.size();
        for (int row = 0; row < p.rows;) {
            if (used + p.row_bytes > cap) {  // the staging buffer is full: wait until its copies are done
                res_->stream.synchronize();
                used = 0;
            }
            const int n = static_cast<int>(std::min<std::size_t>(static_cast<std::size_t>(p.rows - row),
                                                                 (cap - used) / p.row_bytes));
            std::uint8_t* h = res_->staging_in.get() + used;
            const std::size_t bytes = static_cast<std::size_t>(n) * p.row_bytes;
            if (p.stride == p.row_bytes) {
                std::memcpy(h, p.data + static_cast<std::size_t>(row) * p.stride, bytes);
            } else {
                for (int y = 0; y < n; ++y)
                    std::memcpy(h + static_cast<std::size_t>(y) * p.row_bytes,
                                p.data + static_cast<std::size_t>(row + y) * p.stride, p.row_bytes);
            }
            VN_CUDA_CHECK(cudaMemcpyAsync(device_base + p.device_offset + static_cast<std::size_t>(row) * p.row_bytes,
                                          h, bytes, cudaMemcpyHostToDevice, stream()));
            res_->staging_in_busy = true;
            used += bytes;
            row += n;
        }
    }
}

void Lane::download_rows(const std::vector<HostRowsOut>& parts, const std::uint8_t* device_base) {
    struct Pending {
        std::uint8_t* dst;
        std::size_t stride, row_bytes;
        int rows;
        std::size_t staging_offset;
    };
    std::vector<Pending> pending;
    std::size_t used = 0;
    auto flush = [&] {
        res_->stream.synchronize();
        for (const Pending& q : pending) {
            const std::uint8_t* h = res_->staging_out.get() + q.staging_offset;
            if (q.stride == q.row_bytes) {
                std::memcpy(q.dst, h, static_cast<std::size_t>(q.rows) * q.row_bytes);
            } else {
                for (int y = 0; y < q.rows; ++y)
                    std::memcpy(q.dst + static_cast<std::size_t>(y) * q.stride,
                                h + static_cast<std::size_t>(y) * q.row_bytes, q.row_bytes);
            }
        }
        pending.clear();
        used = 0;
    };
    for (const HostRowsOut& p : parts) {
        if (p.rows <= 0 || p.row_bytes == 0) continue;
        const std::size_t span = static_cast<std::size_t>(p.rows - 1) * p.stride + p.row_bytes;
        if (is_pinned(p.data, span)) {
            VN_CUDA_CHECK(cudaMemcpy2DAsync(p.data, p.stride, device_base + p.device_offset, p.row_bytes, p.row_bytes,
                                            static_cast<std::size_t>(p.rows), cudaMemcpyDeviceToHost, stream()));
            continue;
        }
        if (res_->staging_out.size() < std::max(staging_bytes_, p.row_bytes)) {
            flush();
            res_->staging_out.reset(std::max(staging_bytes_, p.row_bytes));
        }
        const std::size_t cap = res_->staging_out.size();
        for (int row = 0; row < p.rows;) {
            if (used + p.row_bytes > cap) flush();
            const int n = static_cast<int>(std::min<std::size_t>(static_cast<std::size_t>(p.rows - row),
                                                                 (cap - used) / p.row_bytes));
            const std::size_t bytes = static_cast<std::size_t>(n) * p.row_bytes;
            VN_CUDA_CHECK(cudaMemcpyAsync(res_->staging_out.get() + used,
                                          device_base + p.device_offset + static_cast<std::size_t>(row) * p.row_bytes,
                                          bytes, cudaMemcpyDeviceToHost, stream()));
            pending.push_back(Pending{p.data + static_cast<std::size_t>(row) * p.stride, p.stride, p.row_bytes, n, used});
            used += bytes;
            row += n;
        }
    }
    flush();
    synchronize();
}

cusolverDnHandle_t Lane::solver() {
    if (!res_->solver) res_->solver = std::make_unique<SolverHandle>();
    return res_->solver->get();
}

syevjInfo_t Lane::syevj_params() {
    if (!res_->syevj) res_->syevj = std::make_unique<SyevjInfo>();
    return res_->syevj->get();
}

}  // namespace vn::cuda
