// The CUDA backend (host interface only: no CUDA headers needed to use it).
//
// CUDA is initialised lazily: nothing here runs before the first call, and no static
// initializer touches the driver.
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include "core/backend.hpp"

namespace vn {

// Number of usable CUDA devices; 0 when there is no driver or no device. Never throws.
int cuda_device_count();

// Why cuda_device_count() is 0, in one line (empty when devices are visible). Never throws.
std::string cuda_unavailable_reason();

// "NVIDIA H200" (throws Error(Device) for a device that does not exist).
std::string cuda_device_name(int device);

struct CudaBackendOptions {
    std::vector<int> devices;                    // empty: every visible device
    int host_threads = 0;                        // host work (sample ranks); 0: all cores
    std::size_t staging_bytes = 64u << 20;       // pinned staging per lane and direction
    int lanes_per_device = 2;                    // streams (and host threads) per device
    int max_tiles_per_batch = 256;               // per-tile mode: tiles estimated together
    std::size_t batch_bytes = 256u << 20;        // per-tile mode: input pixel bytes per batch at most
                                                 // (device memory per lane: about 2x); pageable
                                                 // tiles pass the staging buffer in pieces
    bool shared_memory_histograms = true;        // false: global atomics only (for tests)
};

// A backend on the given devices (the tiles of each call are split between them). Throws
// Error(Device) with a one-line reason when no listed device is usable.
std::unique_ptr<Backend> make_cuda_backend(const std::vector<int>& devices, int host_threads);
std::unique_ptr<Backend> make_cuda_backend(const CudaBackendOptions& options);

}  // namespace vn
