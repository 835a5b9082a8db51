// The one ordered stream engine: items 0..count-1 are produced in parallel on worker threads and
// consumed one by one, in order of their index, on the calling thread. It carries the slide
// pipeline (io/slide_pipeline.cpp: read and decode, normalize, encode -> ordered write) and the
// CUDA backend's batches (cuda/cuda_backend.cpp: one worker per lane).
//
//   - produce(i, worker) runs on one of `workers` threads; items are started in order of i.
//   - consume(i, item) runs on the calling thread, in order of i.
//   - Memory: items produced or in production and not yet consumed hold at most window_bytes
//     (item_bytes(i) each); one item is always admitted, so a window smaller than an item
//     still makes progress.
//   - The first exception, from a worker or from consume, wins: no new item is started, the
//     workers are joined and it is rethrown.
//   - *stop is checked before every produce and every consume: Error(Interrupted).
//   - No polling: every wait is on a condition variable that the event it waits for signals.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "core/error.hpp"
#include "core/thread_pool.hpp"

namespace vn {

struct StreamLimits {
    int workers = 1;                          // threads running produce (at least one)
    std::size_t window_bytes = 0;             // 0: one item in flight per worker
    const std::atomic<bool>* stop = nullptr;  // a signal's flag
    std::string what = "stream";              // the Error(Interrupted) message: "<what>: interrupted"
};

template <typename Item>
void run_ordered(std::uint64_t count, const StreamLimits& limits,
                 const std::function<std::size_t(std::uint64_t)>& item_bytes,
                 const std::function<Item(std::uint64_t index, int worker)>& produce,
                 const std::function<void(std::uint64_t index, Item&& item)>& consume) {
    if (count == 0) return;
    struct State {
        std::mutex mu;
        std::condition_variable ready;  // an item is done, or an error: the consumer
        std::condition_variable space;  // bytes were released, or an error: the workers
        std::uint64_t next = 0;         // the next index to start
        std::size_t reserved = 0;       // bytes of started, unconsumed items
        std::map<std::uint64_t, std::pair<Item, std::size_t>> done;
        std::exception_ptr error;
        bool quit = false;
    } s;
    const int workers = static_cast<int>(std::min<std::uint64_t>(count, static_cast<std::uint64_t>(std::max(1, limits.workers))));
    const std::size_t window = limits.window_bytes;
    const auto stopped = [&] { return limits.stop && limits.stop->load(std::memory_order_relaxed); };
    const auto interrupted = [&] { return Error(ErrorKind::Interrupted, limits.what + ": interrupted"); };
    const auto set_error = [&](std::exception_ptr e) {
        {
            std::lock_guard<std::mutex> lock(s.mu);
            if (!s.error) s.error = std::move(e);
            s.quit = true;
        }
        s.ready.notify_all();
        s.space.notify_all();
    };
    // Without a byte bound, each worker has at most one unconsumed item beyond the consumer's.
    const std::uint64_t max_items = window == 0 ? static_cast<std::uint64_t>(workers) + 1 : UINT64_MAX;
    std::uint64_t consumed = 0;  // guarded by s.mu once the workers run

    const auto work = [&](int worker) {
        try {
            for (;;) {
                std::uint64_t index = 0;
                std::size_t bytes = 0;
                {
                    std::unique_lock<std::mutex> lock(s.mu);
                    for (;;) {
                        if (s.quit || s.next >= count) return;
                        bytes = item_bytes(s.next);
                        const bool fits = window == 0 ? s.next - consumed < max_items
                                                      : s.reserved == 0 || s.reserved + bytes <= window;
                        if (fits) break;
                        s.space.wait(lock);
                    }
                    index = s.next++;
                    s.reserved += bytes;
                }
                if (stopped()) throw interrupted();
                Item item = produce(index, worker);
                {
                    std::lock_guard<std::mutex> lock(s.mu);
                    s.done.emplace(index, std::make_pair(std::move(item), bytes));
                }
                s.ready.notify_all();
            }
        } catch (...) {
            set_error(std::current_exception());
        }
    };

    std::vector<std::thread> threads;
    const auto join = [&]() noexcept {
        {
            std::lock_guard<std::mutex> lock(s.mu);
            s.quit = true;
        }
        s.space.notify_all();
        for (std::thread& t : threads)
            if (t.joinable()) t.join();
    };
    try {
        threads.reserve(static_cast<std::size_t>(workers));
        for (int w = 0; w < workers; ++w) threads.emplace_back(work, w);
    } catch (...) {
        join();
        rethrow_thread_start_error();
    }
    try {
        for (std::uint64_t index = 0; index < count; ++index) {
            std::pair<Item, std::size_t> item;
            {
                std::unique_lock<std::mutex> lock(s.mu);
                typename decltype(s.done)::iterator it;
                s.ready.wait(lock, [&] { return s.error || stopped() || (it = s.done.find(index)) != s.done.end(); });
                if (s.error) std::rethrow_exception(s.error);
                if (stopped()) throw interrupted();
                item = std::move(it->second);
                s.done.erase(it);
            }
            consume(index, std::move(item.first));
            {
                std::lock_guard<std::mutex> lock(s.mu);
                s.reserved -= item.second;
                consumed = index + 1;
            }
            s.space.notify_all();
        }
    } catch (...) {
        set_error(std::current_exception());
    }
    join();
    if (s.error) std::rethrow_exception(s.error);
}

}  // namespace vn
