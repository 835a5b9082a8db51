// Host buffers from a backend (Backend::host_buffer), kept for reuse from one stream item to the
// next, so that pinned memory is allocated once per item in flight rather than once per item.
// Thread-safe. A free buffer too small for a request is let go and a larger one taken instead.
#pragma once

#include <algorithm>
#include <cstddef>
#include <mutex>
#include <utility>
#include <vector>

#include "core/backend.hpp"

namespace vn {

class HostBufferPool {
public:
    explicit HostBufferPool(Backend& backend) : backend_(backend) {}

    // A buffer of at least `bytes`.
    HostBuffer take(std::size_t bytes) {
        HostBuffer small;  // let go outside the lock
        {
            std::lock_guard<std::mutex> lock(mu_);
            const auto fits =
                std::find_if(free_.begin(), free_.end(), [&](const HostBuffer& b) { return b.size() >= bytes; });
            if (fits != free_.end()) {
                HostBuffer b = std::move(*fits);
                free_.erase(fits);
                return b;
            }
            if (!free_.empty()) {
                small = std::move(free_.back());
                free_.pop_back();
            }
        }
        small.reset();
        return backend_.host_buffer(bytes);
    }

    void give_back(HostBuffer b) {
        if (!b.data()) return;
        std::lock_guard<std::mutex> lock(mu_);
        free_.push_back(std::move(b));
    }

private:
    Backend& backend_;
    std::mutex mu_;
    std::vector<HostBuffer> free_;
};

}  // namespace vn
