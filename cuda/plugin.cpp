#include "cuda/plugin.hpp"

#include <cstdio>
#include <exception>
#include <new>
#include <vector>

#include "core/error.hpp"
#include "cuda/cuda_backend.hpp"

namespace {

void copy_text(const std::string& text, char* out, std::size_t size) {
    if (out && size > 0) std::snprintf(out, size, "%s", text.c_str());
}

// The last error a backend call let out of the module, per calling thread.
struct LastError {
    bool set = false;
    vn::ErrorKind kind = vn::ErrorKind::Internal;
    std::string message;
};
thread_local LastError g_last_error;

// Runs a backend call: whatever it throws leaves the module as a vn::Error that keeps its kind
// (anything that is not a vn::Error becomes Internal, out of memory Device, each with its
// message), and is also kept for vahanorm_cuda_last_error.
template <typename F>
auto guarded(F&& call) -> decltype(call()) {
    try {
        g_last_error.set = false;
        return call();
    } catch (const vn::Error& e) {
        g_last_error = {true, e.kind(), e.what()};
    } catch (const std::bad_alloc&) {
        g_last_error = {true, vn::ErrorKind::Device, "out of host memory in the CUDA backend"};
    } catch (const std::exception& e) {
        g_last_error = {true, vn::ErrorKind::Internal, std::string("CUDA backend: ") + e.what()};
    } catch (...) {
        g_last_error = {true, vn::ErrorKind::Internal, "CUDA backend: an exception of unknown type"};
    }
    throw vn::Error(g_last_error.kind, g_last_error.message);
}

// The backend the module hands out: the CUDA backend behind guarded() calls.
class GuardedBackend final : public vn::Backend {
public:
    explicit GuardedBackend(std::unique_ptr<vn::Backend> inner) : inner_(std::move(inner)) {}
    std::string name() const override {
        return guarded([&] { return inner_->name(); });
    }
    vn::BackendProperties properties() const override {
        return guarded([&] { return inner_->properties(); });
    }
    vn::HostBuffer host_buffer(std::size_t bytes) override {
        return guarded([&] { return inner_->host_buffer(bytes); });
    }
    vn::StainModel estimate(const std::vector<vn::RgbView>& images, const vn::EstimateParams& params) override {
        return guarded([&] { return inner_->estimate(images, params); });
    }
    void transform(const vn::TransformPlan& plan, const std::vector<vn::TileJob>& tiles) override {
        guarded([&] { inner_->transform(plan, tiles); });
    }
    std::vector<vn::TileOutcome> normalize_tiles(const vn::StainModel& target, const vn::EstimateParams& params,
                                                 const std::vector<vn::TileJob>& tiles) override {
        return guarded([&] { return inner_->normalize_tiles(target, params, tiles); });
    }

private:
    std::unique_ptr<vn::Backend> inner_;
};

}  // namespace

extern "C" {

__attribute__((visibility("default"))) int vahanorm_cuda_abi() { return VAHANORM_CUDA_PLUGIN_ABI; }

__attribute__((visibility("default"))) void vahanorm_cuda_layout_of(vahanorm_cuda_layout* out) {
    if (out) *out = vahanorm_cuda_expected_layout();
}

__attribute__((visibility("default"))) int vahanorm_cuda_device_count(char* why, std::size_t why_size) {
    try {
        const int n = vn::cuda_device_count();
        if (n == 0) copy_text(vn::cuda_unavailable_reason(), why, why_size);
        return n;
    } catch (const std::exception& e) {
        copy_text(std::string("CUDA runtime: ") + e.what(), why, why_size);
    } catch (...) {
        copy_text("CUDA runtime: an exception of unknown type", why, why_size);
    }
    return 0;
}

__attribute__((visibility("default"))) vn::Backend* vahanorm_cuda_make_backend(const int* devices, int count,
                                                                               int host_threads, char* why,
                                                                               std::size_t why_size, int* kind) {
    try {
        const std::vector<int> ids(devices, devices + (count > 0 ? count : 0));
        return new GuardedBackend(vn::make_cuda_backend(ids, host_threads));
    } catch (const vn::Error& e) {
        copy_text(e.what(), why, why_size);
        if (kind) *kind = static_cast<int>(e.kind());
    } catch (const std::exception& e) {
        copy_text(std::string("CUDA backend: ") + e.what(), why, why_size);
        if (kind) *kind = static_cast<int>(vn::ErrorKind::Internal);
    } catch (...) {
        copy_text("CUDA backend: an exception of unknown type", why, why_size);
        if (kind) *kind = static_cast<int>(vn::ErrorKind::Internal);
    }
    return nullptr;
}

__attribute__((visibility("default"))) int vahanorm_cuda_last_error(char* why, std::size_t why_size, int* kind) {
    if (!g_last_error.set) return 0;
    copy_text(g_last_error.message, why, why_size);
    if (kind) *kind = static_cast<int>(g_last_error.kind);
    return 1;
}
}
