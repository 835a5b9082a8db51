// RAII owners for every CUDA handle the backend uses: device buffers, pinned host buffers,
// streams, events, cuSOLVER handles, and a guard that restores the current device.
// Destructors never throw (errors while releasing are ignored: the context may be gone).
// Host-only header.
#pragma once

#include <cstddef>
#include <utility>

#include "cuda/check.cuh"

namespace vn::cuda {

// Makes `device` current for a scope and restores the previous one.
class DeviceGuard {
public:
    explicit DeviceGuard(int device) {
        VN_CUDA_CHECK(cudaGetDevice(&previous_));
        if (device != previous_) VN_CUDA_CHECK(cudaSetDevice(device));
    }
    ~DeviceGuard() { (void)cudaSetDevice(previous_); }
    DeviceGuard(const DeviceGuard&) = delete;
    DeviceGuard& operator=(const DeviceGuard&) = delete;

private:
    int previous_ = 0;
};

// Memory of `count` elements of T (uninitialised) from one CUDA allocator: the owner of
// device memory (cudaMalloc) and of page-locked host memory (cudaMallocHost), the only host
// memory that DMA copies run asynchronously from.
struct DeviceAllocator {
    static void allocate(void** p, std::size_t bytes) { VN_CUDA_CHECK(cudaMalloc(p, bytes)); }
    static void release(void* p) noexcept { (void)cudaFree(p); }
};
struct PinnedAllocator {
    static void allocate(void** p, std::size_t bytes) { VN_CUDA_CHECK(cudaMallocHost(p, bytes)); }
    static void release(void* p) noexcept { (void)cudaFreeHost(p); }
};

template <typename T, typename Allocator>
class CudaBuffer {
public:
    CudaBuffer() = default;
    explicit CudaBuffer(std::size_t count) { reset(count); }
    ~CudaBuffer() { release(); }
    CudaBuffer(CudaBuffer&& o) noexcept : ptr_(std::exchange(o.ptr_, nullptr)), count_(std::exchange(o.count_, 0)) {}
    CudaBuffer& operator=(CudaBuffer&& o) noexcept {
        if (this != &o) {
            release();
            ptr_ = std::exchange(o.ptr_, nullptr);
            count_ = std::exchange(o.count_, 0);
        }
        return *this;
    }
    CudaBuffer(const CudaBuffer&) = delete;
    CudaBuffer& operator=(const CudaBuffer&) = delete;

    // Drops the contents and allocates `count` elements.
    void reset(std::size_t count) {
        release();
        if (count == 0) return;
        void* p = nullptr;
        Allocator::allocate(&p, count * sizeof(T));
        ptr_ = static_cast<T*>(p);
        count_ = count;
    }
    // At least `count` elements; the contents are lost when it grows.
    T* reserve(std::size_t count) {
        if (count > count_) reset(count + count / 4);
        return ptr_;
    }
    T* get() const { return ptr_; }
    std::size_t size() const { return count_; }

private:
    void release() noexcept {
        if (ptr_) Allocator::release(ptr_);
        ptr_ = nullptr;
        count_ = 0;
    }
    T* ptr_ = nullptr;
    std::size_t count_ = 0;
};

// Device memory, on the current device.
template <typename T>
using DeviceBuffer = CudaBuffer<T, DeviceAllocator>;
// Page-locked host memory.
template <typename T>
using PinnedBuffer = CudaBuffer<T, PinnedAllocator>;

// A non-blocking stream on the current device.
class Stream {
public:
    Stream() { VN_CUDA_CHECK(cudaStreamCreateWithFlags(&s_, cudaStreamNonBlocking)); }
    ~Stream() {
        if (s_) (void)cudaStreamDestroy(s_);
    }
    Stream(const Stream&) = delete;
    Stream& operator=(const Stream&) = delete;
    cudaStream_t get() const { return s_; }
    void synchronize() const { VN_CUDA_CHECK(cudaStreamSynchronize(s_)); }

private:
    cudaStream_t s_ = nullptr;
};

// An event; `timing` for benchmarks, otherwise the cheaper synchronisation-only kind.
class Event {
public:
    explicit Event(bool timing = false) {
        VN_CUDA_CHECK(cudaEventCreateWithFlags(&e_, timing ? cudaEventDefault : cudaEventDisableTiming));
    }
    ~Event() {
        if (e_) (void)cudaEventDestroy(e_);
    }
    Event(const Event&) = delete;
    Event& operator=(const Event&) = delete;
    cudaEvent_t get() const { return e_; }
    void record(cudaStream_t s) { VN_CUDA_CHECK(cudaEventRecord(e_, s)); }
    void synchronize() const { VN_CUDA_CHECK(cudaEventSynchronize(e_)); }
    // Milliseconds from `start` to this event (both recorded with timing).
    float since(const Event& start) const {
        float ms = 0;
        VN_CUDA_CHECK(cudaEventElapsedTime(&ms, start.e_, e_));
        return ms;
    }

private:
    cudaEvent_t e_ = nullptr;
};

// A cuSOLVER dense handle bound to a stream.
class SolverHandle {
public:
    SolverHandle() { VN_CUDA_CHECK(cusolverDnCreate(&h_)); }
    ~SolverHandle() {
        if (h_) (void)cusolverDnDestroy(h_);
    }
    SolverHandle(const SolverHandle&) = delete;
    SolverHandle& operator=(const SolverHandle&) = delete;
    cusolverDnHandle_t get() const { return h_; }

private:
    cusolverDnHandle_t h_ = nullptr;
};

// Parameters of the Jacobi eigensolver (cusolverDn*syevj*).
class SyevjInfo {
public:
    SyevjInfo() { VN_CUDA_CHECK(cusolverDnCreateSyevjInfo(&p_)); }
    ~SyevjInfo() {
        if (p_) (void)cusolverDnDestroySyevjInfo(p_);
    }
    SyevjInfo(const SyevjInfo&) = delete;
    SyevjInfo& operator=(const SyevjInfo&) = delete;
    syevjInfo_t get() const { return p_; }

private:
    syevjInfo_t p_ = nullptr;
};

}  // namespace vn::cuda
