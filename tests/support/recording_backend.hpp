// The CPU backend behind the properties of a backend of `kind` (of kind Cuda: a GPU's, that is
// pinned host buffers and batches rather than the color table), recording the host buffers it
// hands out and the tiles it is given, to see where a pipeline's pixels live. Its
// `fail_call`-th transform or normalize_tiles call (from 1) throws Error(Device, "device lost").
#pragma once

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <new>
#include <string>
#include <utility>
#include <vector>

#include "core/backend.hpp"
#include "core/error.hpp"

namespace vn::test {

class RecordingBackend final : public Backend {
public:
    explicit RecordingBackend(BackendKind kind, int fail_call = 0)
        : inner_(make_cpu_backend(1)), kind_(kind), fail_call_(fail_call) {}

    // Host buffers of all instances not yet released.
    static inline std::atomic<int> live{0};

    std::string name() const override { return "recording (" + inner_->name() + ")"; }
    BackendProperties properties() const override {
        BackendProperties p = inner_->properties();
        p.kind = kind_;
        if (kind_ == BackendKind::Cuda) {
            p.prefers_color_table = false;
            p.host_buffers_pinned = true;
        }
        return p;
    }
    HostBuffer host_buffer(std::size_t bytes) override {
        void* p = nullptr;
        if (::posix_memalign(&p, 64, std::max<std::size_t>(bytes, 1)) != 0) throw std::bad_alloc();
        const int now = ++live;
        std::lock_guard<std::mutex> lock(mu_);
        max_live = std::max(max_live, now);
        buffers_.emplace_back(static_cast<const std::uint8_t*>(p), static_cast<const std::uint8_t*>(p) + bytes);
        return HostBuffer(static_cast<std::uint8_t*>(p), bytes, [](void* q) noexcept {
            --live;
            std::free(q);
        });
    }
    StainModel estimate(const std::vector<RgbView>& images, const EstimateParams& params) override {
        return inner_->estimate(images, params);
    }
    void transform(const TransformPlan& plan, const std::vector<TileJob>& tiles) override {
        record(tiles);
        inner_->transform(plan, tiles);
    }
    std::vector<TileOutcome> normalize_tiles(const StainModel& target, const EstimateParams& params,
                                             const std::vector<TileJob>& tiles) override {
        record(tiles);
        return inner_->normalize_tiles(target, params, tiles);
    }

    // Read after the run (written under a mutex while it runs).
    int calls = 0;                  // transform and normalize_tiles calls
    std::uint64_t tiles_seen = 0;   // tiles in those calls
    std::uint64_t src_outside = 0;  // tiles whose source pixels lie in no host buffer of this backend
    std::uint64_t dst_outside = 0;  // the same for the destination
    int max_live = 0;               // the most host buffers held at once
    std::size_t buffers() const { return buffers_.size(); }  // host buffers handed out

private:
    void record(const std::vector<TileJob>& tiles) {
        std::lock_guard<std::mutex> lock(mu_);
        if (++calls == fail_call_) throw Error(ErrorKind::Device, "device lost");
        // The bytes from a tile's first pixel to its last one lie in one buffer.
        const auto inside = [&](const std::uint8_t* data, int width, int height, std::size_t stride) {
            const std::uint8_t* end = data + stride * static_cast<std::size_t>(height - 1) + 3u * static_cast<std::size_t>(width);
            return std::any_of(buffers_.begin(), buffers_.end(),
                               [&](const auto& b) { return data >= b.first && end <= b.second; });
        };
        for (const TileJob& t : tiles) {
            ++tiles_seen;
            src_outside += !inside(t.src.data, t.src.width, t.src.height, t.src.stride);
            dst_outside += !inside(t.dst.data, t.dst.width, t.dst.height, t.dst.stride);
        }
    }

    std::unique_ptr<Backend> inner_;
    BackendKind kind_;
    int fail_call_;
    std::mutex mu_;
    std::vector<std::pair<const std::uint8_t*, const std::uint8_t*>> buffers_;
};

}  // namespace vn::test
