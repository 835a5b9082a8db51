// A lane: one stream on one device with its own pinned staging and device buffers. The backend
// runs a host thread per lane; two lanes per device give the double buffering: while one lane
// packs its next batch on the host and copies it in, the other runs its kernels and copies its
// results out (separate copy engines for each direction).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "cuda/raii.cuh"

namespace vn::cuda {

// Rows of RGB bytes in host memory to copy in: `rows` rows of `row_bytes`, `stride` apart,
// to the device at `device_offset` (tightly packed there).
struct HostRowsIn {
    const std::uint8_t* data;
    std::size_t stride;
    std::size_t row_bytes;
    int rows;
    std::size_t device_offset;
};
struct HostRowsOut {
    std::uint8_t* data;
    std::size_t stride;
    std::size_t row_bytes;
    int rows;
    std::size_t device_offset;
};

// Whether [p, p + bytes) is page-locked host memory (cudaMallocHost / cudaHostRegister).
bool is_pinned(const void* p, std::size_t bytes);

// Named device scratch buffers of a lane; each grows on demand and is reused between batches.
enum class Slot : int {
    Chunks, Counts, Offsets, Tissue, Segments, ItemSegment, Ranks, SampleR, SampleG, SampleB, Cov, Eigenvalues,
    EigenInfo, EigenWork, States, Partials, Active, Runs, Solvers, Histograms, Maxima, Plans, Count_
};

class Lane {
public:
    Lane(int device, std::size_t staging_bytes);
    ~Lane();
    Lane(const Lane&) = delete;
    Lane& operator=(const Lane&) = delete;

    int device() const { return device_; }
    cudaStream_t stream() const;
    void synchronize() const;

    // Device pixel buffers of at least `bytes` (contents lost when they grow).
    std::uint8_t* pixels_in(std::size_t bytes);
    std::uint8_t* pixels_out(std::size_t bytes);

    template <typename T>
    T* scratch(Slot slot, std::size_t count) {
        return reinterpret_cast<T*>(grow(slot, count * sizeof(T)));
    }
    // Copies `v` to the slot (asynchronously, through pinned memory; `v` may go away at once).
    template <typename T>
    T* upload(Slot slot, const std::vector<T>& v) {
        T* d = scratch<T>(slot, v.size() ? v.size() : 1);
        put(d, v.data(), v.size() * sizeof(T));
        return d;
    }
    // Copies count elements from the device after the work queued so far (synchronises).
    template <typename T>
    std::vector<T> download(const T* d, std::size_t count) {
        std::vector<T> v(count);
        get(v.data(), d, count * sizeof(T));
        return v;
    }

    // Pixel rows in and out. Page-locked host rows are copied directly (2D DMA, any stride);
    // pageable ones go through the lane's pinned staging buffer. download_rows returns when
    // the rows are in host memory.
    void upload_rows(const std::vector<HostRowsIn>& parts, std::uint8_t* device_base);
    void download_rows(const std::vector<HostRowsOut>& parts, const std::uint8_t* device_base);

    cusolverDnHandle_t solver();
    syevjInfo_t syevj_params();

private:
    struct Resources;
    void* grow(Slot slot, std::size_t bytes);
    void put(void* device, const void* host, std::size_t bytes);
    void get(void* host, const void* device, std::size_t bytes);

    int device_;
    std::size_t staging_bytes_;
    std::unique_ptr<Resources> res_;
};

}  // namespace vn::cuda
