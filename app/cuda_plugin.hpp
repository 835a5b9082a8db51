// Finding and loading the CUDA backend module (cuda/plugin.hpp) at run time.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/backend.hpp"
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

// The device list of "cuda:N[,M...]"; empty for "cpu", "cuda", "cuda:all" and "auto".
// Error(Usage) for anything else; `option` names the setting in its message ("--device" for
// the CLI, "device" for the Python package).
std::vector<int> parse_device(const std::string& device, const std::string& option);

// The backend for a device of parse_device with `threads` CPU threads: the CPU's, or the CUDA
// module's on the devices asked for ("cuda": device 0, "cuda:all": every one). "auto" is the
// CPU's when no CUDA device answers, and `on_cpu_fallback` (when given) gets the reason.
// Error(Device) (or the module's kind) naming `option` when the CUDA backend cannot be made.
std::unique_ptr<Backend> make_device_backend(const std::string& device, int threads, const std::string& option,
                                             const std::function<void(const std::string&)>& on_cpu_fallback = {});

}  // namespace vn::app
