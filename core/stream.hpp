// The one ordered stream engine: items 0..count-1 are produced in parallel on worker threads and
// consumed one by one, in order of their index, on the calling thread. It carries the slide
// pipeline (io/slide_pipeline.cpp: read and decode, normalize, encode -> ordered write), the
// tile batches (io/tile_batch.cpp: decode, normalize, write -> results in input order) and the
// CUDA backend's batches (cuda/cuda_backend.cpp: one worker per lane).
//
//   - produce(i, worker) runs on one of `workers` threads; items are started in order of i, so
//     the items started are always 0..k-1 for some k.
//   - consume(i, item) runs on the calling thread, in order of i.
//   - Memory: items produced or in production and not yet consumed hold at most window_bytes
//     (item_bytes(i) each); one item is always admitted, so a window smaller than an item
//     still makes progress.
//   - An item that fails (produce or item_bytes throws for item i): no new item starts; the
//     items before i are still consumed, in order (those in flight are waited for), then i's
//     exception is rethrown. Items after i that were in flight are joined and dropped. Of
//     several failing items, the lowest index wins, whatever order they failed in.
//   - An exception from consume wins at once: no new item starts, the workers are joined
//     (their items dropped) and it is rethrown.
//   - *stop is checked before every produce, never at consume: once it is seen no item starts,
//     every item that had started is finished and consumed in order, and then, if some item
//     was never started, the stream ends with Error(Interrupted, "<what>: interrupted"). A stop
//     seen after the last item started is no interruption: the stream completes. A caller whose
//     consume should not run after a stop (its output is discarded anyway) checks the flag in
//     consume and throws.
//   - No polling: every wait is on a condition variable that the event it waits for signals.
#pragma once

#include <algorithm>
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
    constexpr std::uint64_t kNone = UINT64_MAX;
    struct State {
        std::mutex mu;
        std::condition_variable ready;  // an item is done, failed, or no more start: the consumer
        std::condition_variable space;  // an item was consumed, or the end: the workers
        std::uint64_t next = 0;         // the next index to start; 0..next-1 have started
        std::size_t reserved = 0;       // the cost (below) of started, unconsumed items
        std::map<std::uint64_t, std::pair<Item, std::size_t>> done;  // with its cost
        std::uint64_t failed = kNone;   // the lowest failing index
        std::exception_ptr failure;     // its exception
        bool stopped = false;           // *stop was seen: no item starts any more
        bool quit = false;              // the consumer is leaving: no item starts any more
    } s;
    const int workers = static_cast<int>(std::min<std::uint64_t>(count, static_cast<std::uint64_t>(std::max(1, limits.workers))));
    // What an item costs out of the window: its bytes, or without a byte bound one unit, of
    // workers + 1 (each worker has at most one unconsumed item beyond the consumer's).
    const std::size_t window = limits.window_bytes != 0 ? limits.window_bytes : static_cast<std::size_t>(workers) + 1;
    const auto cost = [&](std::size_t bytes) { return limits.window_bytes != 0 ? bytes : std::size_t{1}; };
    // Latched under s.mu, so that once one thread saw the flag every thread acts on it.
    const auto see_stop = [&] {
        if (!s.stopped && limits.stop && limits.stop->load(std::memory_order_relaxed)) s.stopped = true;
        return s.stopped;
    };
    // Records item `index`'s exception (of several, the lowest index wins); under s.mu. The
    // caller then wakes the consumer and the workers (ready, space): nothing more starts.
    const auto record_failure = [&](std::uint64_t index) {
        if (index < s.failed) {
            s.failed = index;
            s.failure = std::current_exception();
        }
    };
    const auto wake_all = [&] {
        s.ready.notify_all();
        s.space.notify_all();
    };

    const auto work = [&](int worker) {
        for (;;) {
            std::uint64_t index = 0;
            std::size_t units = 0;
            {
                std::unique_lock<std::mutex> lock(s.mu);
                for (;;) {
                    if (s.quit || s.failed != kNone || s.next >= count) return;
                    if (see_stop()) {
                        lock.unlock();
                        s.ready.notify_all();  // the consumer may wait for an item that will not start
                        return;
                    }
                    try {
                        units = cost(item_bytes(s.next));
                    } catch (...) {
                        record_failure(s.next);
                        lock.unlock();
                        wake_all();
                        return;
                    }
                    if (s.reserved == 0 || s.reserved + units <= window) break;
                    s.space.wait(lock);
                }
                index = s.next++;
                s.reserved += units;
            }
            try {
                Item item = produce(index, worker);
                std::lock_guard<std::mutex> lock(s.mu);
                s.done.emplace(index, std::make_pair(std::move(item), units));
            } catch (...) {
                {
                    std::lock_guard<std::mutex> lock(s.mu);
                    record_failure(index);
                }
                wake_all();
                return;
            }
            s.ready.notify_all();
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
    std::exception_ptr error;
    try {
        for (std::uint64_t index = 0; index < count; ++index) {
            std::pair<Item, std::size_t> item;
            {
                std::unique_lock<std::mutex> lock(s.mu);
                typename decltype(s.done)::iterator it;
                // Item `index` has started, or will, unless a stop or a failure came first.
                // (A failure is always at or after `index`: consumed items never fail.)
                s.ready.wait(lock, [&] {
                    return (it = s.done.find(index)) != s.done.end() || s.failed == index || (index >= s.next && see_stop());
                });
                if (it == s.done.end()) {
                    if (s.failed == index) std::rethrow_exception(s.failure);
                    throw Error(ErrorKind::Interrupted, limits.what + ": interrupted");
                }
                item = std::move(it->second);
                s.done.erase(it);
            }
            consume(index, std::move(item.first));
            {
                std::lock_guard<std::mutex> lock(s.mu);
                s.reserved -= item.second;
            }
            s.space.notify_all();
        }
    } catch (...) {
        error = std::current_exception();
    }
    join();
    if (error) std::rethrow_exception(error);
}

}  // namespace vn
