// A stand-in for the CUDA module (cuda/plugin.hpp), to test the executable's side of the module
// boundary without a GPU: it reports one device and hands out a backend whose every call
// throws, as $VAHANORM_FAKE_PLUGIN_MODE says:
//   data     a vn::Error(Data)                                   -> the CLI exits 65
//   std      a std::runtime_error, recorded as Input             -> 66 (kind from vahanorm_cuda_last_error)
//   unknown  an int, recorded as Device                          -> 69
//   layout   reports a struct layout that differs from the executable's -> refused at load, 69
// Built like the real module (hidden visibility, static libraries' symbols kept local).
#include <cstdio>
#include <cstdlib>
#include <stdexcept>
#include <string>

#include "cuda/plugin.hpp"

namespace {

struct Recorded {
    bool set = false;
    int kind = 0;
    std::string message;
};
thread_local Recorded g_last;

std::string mode() {
    const char* m = std::getenv("VAHANORM_FAKE_PLUGIN_MODE");
    return m ? m : "data";
}

class ThrowingBackend final : public vn::Backend {
public:
    std::string name() const override { return "cuda:0 (fake module)"; }
    vn::BackendProperties properties() const override {
        vn::BackendProperties p;
        p.kind = vn::BackendKind::Cuda;
        p.host_buffers_pinned = true;
        return p;
    }
    vn::HostBuffer host_buffer(std::size_t bytes) override { return vn::aligned_host_buffer(bytes); }
    vn::StainModel estimate(const std::vector<vn::RgbView>&, const vn::EstimateParams&) override { raise(); }
    void transform(const vn::TransformPlan&, const std::vector<vn::TileJob>&) override { raise(); }
    std::vector<vn::TileOutcome> normalize_tiles(const vn::StainModel&, const vn::EstimateParams&,
                                                 const std::vector<vn::TileJob>&) override {
        raise();
    }

private:
    [[noreturn]] static void raise() {
        const std::string m = mode();
        if (m == "std") {
            g_last = {true, static_cast<int>(vn::ErrorKind::Input), "fake module: a std::runtime_error"};
            throw std::runtime_error(g_last.message);
        }
        if (m == "unknown") {
            g_last = {true, static_cast<int>(vn::ErrorKind::Device), "fake module: an int was thrown"};
            throw 42;
        }
        g_last = {true, static_cast<int>(vn::ErrorKind::Data), "fake module: no tissue on the fake device"};
        throw vn::Error(vn::ErrorKind::Data, g_last.message);
    }
};

void copy_text(const std::string& text, char* out, std::size_t size) {
    if (out && size > 0) std::snprintf(out, size, "%s", text.c_str());
}

}  // namespace

extern "C" {

__attribute__((visibility("default"))) int vahanorm_cuda_abi() { return VAHANORM_CUDA_PLUGIN_ABI; }

__attribute__((visibility("default"))) void vahanorm_cuda_layout_of(vahanorm_cuda_layout* out) {
    *out = vahanorm_cuda_expected_layout();
    if (mode() == "layout") out->size[3] += 8;  // TileOutcome grew
}

__attribute__((visibility("default"))) int vahanorm_cuda_device_count(char*, std::size_t) { return 1; }

__attribute__((visibility("default"))) vn::Backend* vahanorm_cuda_make_backend(const int*, int, int, char*, std::size_t,
                                                                               int*) {
    return new ThrowingBackend;
}

__attribute__((visibility("default"))) int vahanorm_cuda_last_error(char* why, std::size_t why_size, int* kind) {
    if (!g_last.set) return 0;
    copy_text(g_last.message, why, why_size);
    *kind = g_last.kind;
    return 1;
}
}
