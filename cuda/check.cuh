// One checking macro family for every CUDA status type (runtime, cuBLAS, cuSOLVER): a failed
// call throws vn::Error with the statement's text and file:line. Never log-and-continue.
//
//   VN_CUDA_CHECK(cudaMemcpyAsync(...));      // cudaError_t, cublasStatus_t or cusolverStatus_t
//   kernel<<<grid, block, 0, stream>>>(...);
//   VN_CUDA_CHECK_LAUNCH();                   // after every kernel launch
//
// Host-only header (plain C++ plus the CUDA headers): usable from .cu and .cpp files alike.
#pragma once

#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <cusolverDn.h>

#include <string>
#include <type_traits>

#include "core/error.hpp"

namespace vn::cuda {

// ---- status → ok / text / error kind, one overload set per library ---------------------------

inline bool status_ok(cudaError_t s) { return s == cudaSuccess; }
inline bool status_ok(cublasStatus_t s) { return s == CUBLAS_STATUS_SUCCESS; }
inline bool status_ok(cusolverStatus_t s) { return s == CUSOLVER_STATUS_SUCCESS; }

inline std::string status_text(cudaError_t s) {
    return std::string(cudaGetErrorName(s)) + ": " + cudaGetErrorString(s);
}
inline std::string status_text(cublasStatus_t s) { return std::string("cuBLAS: ") + cublasGetStatusString(s); }
inline std::string status_text(cusolverStatus_t s) {
    switch (s) {
        case CUSOLVER_STATUS_NOT_INITIALIZED: return "cuSOLVER: not initialized";
        case CUSOLVER_STATUS_ALLOC_FAILED: return "cuSOLVER: allocation failed";
        case CUSOLVER_STATUS_INVALID_VALUE: return "cuSOLVER: invalid value";
        case CUSOLVER_STATUS_ARCH_MISMATCH: return "cuSOLVER: architecture mismatch";
        case CUSOLVER_STATUS_EXECUTION_FAILED: return "cuSOLVER: execution failed";
        case CUSOLVER_STATUS_INTERNAL_ERROR: return "cuSOLVER: internal error";
        case CUSOLVER_STATUS_NOT_SUPPORTED: return "cuSOLVER: not supported";
        default: return "cuSOLVER: status " + std::to_string(static_cast<int>(s));
    }
}

// A wrong argument is our bug (Internal); everything else (no device, out of memory, a faulting
// or timed-out kernel, a driver problem) means the device is not usable (Device).
inline ErrorKind status_kind(cudaError_t s) {
    switch (s) {
        case cudaErrorInvalidValue:
        case cudaErrorInvalidConfiguration:
        case cudaErrorInvalidDevicePointer:
        case cudaErrorInvalidMemcpyDirection:
        case cudaErrorInvalidPitchValue:
        case cudaErrorInvalidResourceHandle:
            return ErrorKind::Internal;
        default:
            return ErrorKind::Device;
    }
}
inline ErrorKind status_kind(cublasStatus_t s) {
    return s == CUBLAS_STATUS_INVALID_VALUE ? ErrorKind::Internal : ErrorKind::Device;
}
inline ErrorKind status_kind(cusolverStatus_t s) {
    return s == CUSOLVER_STATUS_INVALID_VALUE ? ErrorKind::Internal : ErrorKind::Device;
}

template <typename Status>
[[noreturn]] void throw_status(Status s, const char* statement, const char* file, int line) {
    if constexpr (std::is_same_v<Status, cudaError_t>) (void)cudaGetLastError();  // clear a sticky-free error
    throw Error(status_kind(s), "CUDA error " + status_text(s) + " in `" + statement + "` at " + file + ":" +
                                    std::to_string(line));
}

}  // namespace vn::cuda

#define VN_CUDA_CHECK(stmt)                                                                   \
    do {                                                                                      \
        const auto vn_cuda_status_ = (stmt);                                                  \
        if (!::vn::cuda::status_ok(vn_cuda_status_))                                          \
            ::vn::cuda::throw_status(vn_cuda_status_, #stmt, __FILE__, __LINE__);            \
    } while (0)

// After every kernel launch: a bad launch configuration or a missing kernel image shows here.
#define VN_CUDA_CHECK_LAUNCH() VN_CUDA_CHECK(cudaGetLastError())
