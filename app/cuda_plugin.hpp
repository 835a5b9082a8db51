// Finding and loading the CUDA backend module (cuda/plugin.hpp) at run time.
#pragma once

#include <string>

#include "cuda/plugin.hpp"

namespace vn::app {

struct CudaPlugin {
    vahanorm_cuda_device_count_fn device_count = nullptr;
    vahanorm_cuda_make_backend_fn make_backend = nullptr;
    std::string path;
};

// The module, loaded once: $VAHANORM_CUDA_PLUGIN, else libvahanorm-cuda.so next to the
// executable, else ../lib/vahanorm/ from it (compiled into a shared object, as in the Python
// package: next to that object). Null when there is none usable; `why` says why.
const CudaPlugin* load_cuda_plugin(std::string* why);

}  // namespace vn::app
