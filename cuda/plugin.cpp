#include "cuda/plugin.hpp"

#include <cstdio>
#include <exception>
#include <vector>

#include "core/error.hpp"
#include "cuda/cuda_backend.hpp"

namespace {

void copy_text(const std::string& text, char* out, std::size_t size) {
    if (out && size > 0) std::snprintf(out, size, "%s", text.c_str());
}

}  // namespace

extern "C" {

__attribute__((visibility("default"))) int vahanorm_cuda_abi() { return VAHANORM_CUDA_PLUGIN_ABI; }

__attribute__((visibility("default"))) int vahanorm_cuda_device_count(char* why, std::size_t why_size) {
    const int n = vn::cuda_device_count();
    if (n == 0) copy_text(vn::cuda_unavailable_reason(), why, why_size);
    return n;
}

__attribute__((visibility("default"))) vn::Backend* vahanorm_cuda_make_backend(const int* devices, int count,
                                                                               int host_threads, char* why,
                                                                               std::size_t why_size, int* kind) {
    try {
        const std::vector<int> ids(devices, devices + (count > 0 ? count : 0));
        return vn::make_cuda_backend(ids, host_threads).release();
    } catch (const vn::Error& e) {
        copy_text(e.what(), why, why_size);
        if (kind) *kind = static_cast<int>(e.kind());
    } catch (const std::exception& e) {
        copy_text(e.what(), why, why_size);
        if (kind) *kind = static_cast<int>(vn::ErrorKind::Device);
    }
    return nullptr;
}
}
