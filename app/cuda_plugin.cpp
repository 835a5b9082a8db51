#include "app/cuda_plugin.hpp"

#include <dlfcn.h>
#include <limits.h>
#include <unistd.h>

#include <cstdlib>
#include <exception>
#include <memory>
#include <mutex>
#include <sstream>
#include <vector>

#include "core/error.hpp"

namespace vn::app {
namespace {

// Room for the CUDA module's reason why it cannot serve (cuda/plugin.hpp).
constexpr std::size_t kReasonBytes = 512;
// A device number of cuda:N[,M...] has at most this many digits.
constexpr std::size_t kMaxDeviceDigits = 6;

vahanorm_cuda_make_backend_fn g_make_backend = nullptr;
vahanorm_cuda_last_error_fn g_last_error = nullptr;

// Rethrows what a module call threw as this executable's vn::Error with the module's kind and
// message: a vn::Error whose type information the two sides share passes unchanged; otherwise
// the module's record of the error (vahanorm_cuda_last_error) gives the kind.
[[noreturn]] void rethrow_from_module() {
    try {
        throw;
    } catch (const Error&) {
        throw;
    } catch (const std::exception& e) {
        char why[1024] = "";
        int kind = static_cast<int>(ErrorKind::Internal);
        if (!g_last_error || !g_last_error(why, sizeof why, &kind)) kind = static_cast<int>(ErrorKind::Internal);
        fail(static_cast<ErrorKind>(kind), e.what());
    } catch (...) {
        char why[1024] = "an exception of unknown type";
        int kind = static_cast<int>(ErrorKind::Internal);
        if (g_last_error) (void)g_last_error(why, sizeof why, &kind);
        fail(static_cast<ErrorKind>(kind), std::string("CUDA backend: ") + why);
    }
}

// The module's backend behind calls that turn its exceptions into ours.
class PluginBackend final : public Backend {
public:
    explicit PluginBackend(Backend* inner) : inner_(inner) {}
    std::string name() const override {
        try {
            return inner_->name();
        } catch (...) {
            rethrow_from_module();
        }
    }
    BackendProperties properties() const override {
        try {
            return inner_->properties();
        } catch (...) {
            rethrow_from_module();
        }
    }
    HostBuffer host_buffer(std::size_t bytes) override {
        try {
            return inner_->host_buffer(bytes);
        } catch (...) {
            rethrow_from_module();
        }
    }
    StainModel estimate(const std::vector<RgbView>& images, const EstimateParams& params) override {
        try {
            return inner_->estimate(images, params);
        } catch (...) {
            rethrow_from_module();
        }
    }
    void transform(const TransformPlan& plan, const std::vector<TileJob>& tiles) override {
        try {
            inner_->transform(plan, tiles);
        } catch (...) {
            rethrow_from_module();
        }
    }
    std::vector<TileOutcome> normalize_tiles(const StainModel& target, const EstimateParams& params,
                                             const std::vector<TileJob>& tiles) override {
        try {
            return inner_->normalize_tiles(target, params, tiles);
        } catch (...) {
            rethrow_from_module();
        }
    }

private:
    std::unique_ptr<Backend> inner_;
};

Backend* make_wrapped_backend(const int* devices, int count, int host_threads, char* why, std::size_t why_size,
                              int* kind) {
    Backend* b = g_make_backend(devices, count, host_threads, why, why_size, kind);
    return b ? new PluginBackend(b) : nullptr;
}

std::string executable_dir() {
    char buf[PATH_MAX];
    const ssize_t n = ::readlink("/proc/self/exe", buf, sizeof buf - 1);
    if (n <= 0) return ".";
    std::string p(buf, static_cast<std::size_t>(n));
    const auto slash = p.find_last_of('/');
    return slash == std::string::npos ? "." : p.substr(0, slash);
}

// The folder of the shared object this loader is compiled into (the Python package's extension
// module, beside which its CUDA module is installed); empty when it is in the executable.
std::string shared_object_dir() {
    Dl_info info{};
    if (::dladdr(reinterpret_cast<void*>(&shared_object_dir), &info) == 0 || !info.dli_fname || info.dli_fname[0] != '/')
        return "";
    char self[PATH_MAX], exe[PATH_MAX];
    if (!::realpath(info.dli_fname, self)) return "";
    if (::realpath("/proc/self/exe", exe) && std::string(self) == exe) return "";
    const std::string p = self;
    return p.substr(0, p.find_last_of('/'));
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
        } else if (const std::string so = shared_object_dir(); !so.empty()) {
            candidates.push_back(so + "/libvahanorm-cuda.so");
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
            auto layout = reinterpret_cast<vahanorm_cuda_layout_fn>(::dlsym(handle, "vahanorm_cuda_layout_of"));
            plugin.device_count =
                reinterpret_cast<vahanorm_cuda_device_count_fn>(::dlsym(handle, "vahanorm_cuda_device_count"));
            g_make_backend =
                reinterpret_cast<vahanorm_cuda_make_backend_fn>(::dlsym(handle, "vahanorm_cuda_make_backend"));
            g_last_error = reinterpret_cast<vahanorm_cuda_last_error_fn>(::dlsym(handle, "vahanorm_cuda_last_error"));
            if (!abi || !layout || !plugin.device_count || !g_make_backend || !g_last_error ||
                abi() != VAHANORM_CUDA_PLUGIN_ABI) {
                failure = path + ": not a CUDA backend of this vahanorm version";
                return;
            }
            // The structs and exceptions that cross the boundary must have the same layout on
            // both sides (a module built from other headers or by another compiler is refused).
            vahanorm_cuda_layout theirs{};
            layout(&theirs);
            const std::string mismatch = vahanorm_cuda_layout_mismatch(vahanorm_cuda_expected_layout(), theirs);
            if (!mismatch.empty()) {
                failure = path + ": not a CUDA backend of this vahanorm build (" + mismatch + ")";
                return;
            }
            plugin.make_backend = make_wrapped_backend;
            plugin.path = path;
            loaded = &plugin;
            return;
        }
    });
    if (!loaded && why) *why = failure;
    return loaded;
}

std::vector<int> parse_device(const std::string& device, const std::string& option) {
    if (device == "cpu" || device == "auto" || device == "cuda" || device == "cuda:all") return {};
    if (device.rfind("cuda:", 0) != 0)
        fail(ErrorKind::Usage,
             option + ": expected cpu, cuda, cuda:N[,M...], cuda:all or auto, got '" + device + "'");
    std::vector<int> ids;
    std::stringstream ss(device.substr(5));
    std::string item;
    while (std::getline(ss, item, ',')) {
        if (item.empty() || item.size() > kMaxDeviceDigits || item.find_first_not_of("0123456789") != std::string::npos) {
            ids.clear();
            break;
        }
        ids.push_back(std::atoi(item.c_str()));
    }
    if (ids.empty() || device.back() == ',')
        fail(ErrorKind::Usage, option + ": expected cuda:N[,M...], got " + device);
    return ids;
}

std::unique_ptr<Backend> make_device_backend(const std::string& device, int threads, const std::string& option,
                                             const std::function<void(const std::string&)>& on_cpu_fallback) {
    std::vector<int> ids = parse_device(device, option);
    if (device == "cpu") return make_cpu_backend(threads);
    if (ids.empty()) ids = {0};
    std::string why;
    const CudaPlugin* plugin = load_cuda_plugin(&why);
    char reason[kReasonBytes] = "";
    const int count = plugin ? plugin->device_count(reason, sizeof reason) : 0;
    if (plugin && count == 0) why = reason;
    if (device == "auto" && count == 0) {
        if (on_cpu_fallback) on_cpu_fallback(why);
        return make_cpu_backend(threads);
    }
    if (!plugin) fail(ErrorKind::Device, option + " " + device + ": " + why);
    if (device == "cuda:all") {
        ids.clear();
        for (int i = 0; i < count; ++i) ids.push_back(i);
    }
    int kind = static_cast<int>(ErrorKind::Device);
    Backend* b = plugin->make_backend(ids.data(), static_cast<int>(ids.size()), threads, reason, sizeof reason, &kind);
    if (!b) fail(static_cast<ErrorKind>(kind), option + " " + device + ": " + reason);
    return std::unique_ptr<Backend>(b);
}

}  // namespace vn::app
