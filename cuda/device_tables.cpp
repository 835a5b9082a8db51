#include "cuda/device_tables.cuh"

#include <algorithm>

#include "core/tables.hpp"

namespace vn::cuda {

DeviceTables::DeviceTables() : od_(256), luma_(3 * 256), exp_out_(px::kExpLutSize) {
    const Tables& t = tables();
    VN_CUDA_CHECK(cudaMemcpy(od_.get(), t.od, sizeof t.od, cudaMemcpyHostToDevice));
    VN_CUDA_CHECK(cudaMemcpy(luma_.get(), t.luma, sizeof t.luma, cudaMemcpyHostToDevice));
    VN_CUDA_CHECK(cudaMemcpy(exp_out_.get(), t.exp_out, sizeof t.exp_out, cudaMemcpyHostToDevice));
}

int multiprocessor_count() {
    int device = 0, sms = 0;
    VN_CUDA_CHECK(cudaGetDevice(&device));
    VN_CUDA_CHECK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device));
    return std::max(1, sms);
}

unsigned grid_for(std::size_t work, int block, int blocks_per_sm) {
    const std::size_t needed = (work + static_cast<std::size_t>(block) - 1) / static_cast<std::size_t>(block);
    const std::size_t full = static_cast<std::size_t>(multiprocessor_count()) * static_cast<std::size_t>(blocks_per_sm);
    return static_cast<unsigned>(std::max<std::size_t>(1, std::min(needed, full)));
}

}  // namespace vn::cuda
