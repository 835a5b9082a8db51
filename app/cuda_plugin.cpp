#include "app/cuda_plugin.hpp"

#include <dlfcn.h>
#include <limits.h>
#include <unistd.h>

#include <cstdlib>
#include <mutex>
#include <vector>

namespace vn::app {
namespace {

std::string executable_dir() {
    char buf[PATH_MAX];
    const ssize_t n = ::readlink("/proc/self/exe", buf, sizeof buf - 1);
    if (n <= 0) return ".";
    std::string p(buf, static_cast<std::size_t>(n));
    const auto slash = p.find_last_of('/');
    return slash == std::string::npos ? "." : p.substr(0, slash);
}

}  // namespace

const CudaPlugin* load_cuda_plugin(std::string* why) {
    static std::once_flag once;
    static CudaPlugin plugin;
    static const CudaPlugin* loaded = nullptr;
    static std::string failure;
    std::call_once(once, [] {
        std::vector<std::string> candidates;
        if (const char* env = std::getenv("VAHANORM_CUDA_PLUGIN"); env && *env) {
            candidates.push_back(env);
        } else {
            const std::string dir = executable_dir();
            candidates.push_back(dir + "/libvahanorm-cuda.so");
            candidates.push_back(dir + "/../lib/vahanorm/libvahanorm-cuda.so");
        }
        failure = "this build of vahanorm has no CUDA backend (no " + candidates.front() + ")";
        for (const std::string& path : candidates) {
            if (::access(path.c_str(), F_OK) != 0) continue;
            // Never unloaded: backends made by the module live until the process ends.
            void* handle = ::dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
            if (!handle) {
                const char* err = ::dlerror();
                failure = "cannot load the CUDA backend " + path + ": " + (err ? err : "unknown error");
                return;
            }
            auto abi = reinterpret_cast<vahanorm_cuda_abi_fn>(::dlsym(handle, "vahanorm_cuda_abi"));
            plugin.device_count =
                reinterpret_cast<vahanorm_cuda_device_count_fn>(::dlsym(handle, "vahanorm_cuda_device_count"));
            plugin.make_backend =
                reinterpret_cast<vahanorm_cuda_make_backend_fn>(::dlsym(handle, "vahanorm_cuda_make_backend"));
            if (!abi || !plugin.device_count || !plugin.make_backend || abi() != VAHANORM_CUDA_PLUGIN_ABI) {
                failure = path + ": not a CUDA backend of this vahanorm version";
                return;
            }
            plugin.path = path;
            loaded = &plugin;
            return;
        }
    });
    if (!loaded && why) *why = failure;
    return loaded;
}

}  // namespace vn::app
