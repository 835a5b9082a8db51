// The ordered stream engine (core/stream.hpp): order, window, errors, stop.
#include <catch2/catch.hpp>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <mutex>
#include <set>
#include <thread>
#include <vector>

#include "core/error.hpp"
#include "core/stream.hpp"
#include "tests/support/errors.hpp"

using namespace vn;
using test::error_of;

namespace {

// Uneven work, so that later items often finish before earlier ones.
void busy(std::uint64_t i) {
    for (std::uint64_t k = 0; k < (i * 7919u) % 13u; ++k) std::this_thread::yield();
}

std::size_t one_byte(std::uint64_t) { return 1; }

StreamLimits limits(int workers, std::size_t window_bytes) {
    StreamLimits lim;
    lim.workers = workers;
    lim.window_bytes = window_bytes;
    return lim;
}


// A flag one thread sets and another waits for, without polling.
class Latch {
public:
    void set() {
        {
            std::lock_guard<std::mutex> lock(mu_);
            set_ = true;
        }
        cv_.notify_all();
    }
    void wait() {
        std::unique_lock<std::mutex> lock(mu_);
        cv_.wait(lock, [&] { return set_; });
    }

private:
    std::mutex mu_;
    std::condition_variable cv_;
    bool set_ = false;
};

// Sets its latch when the thread that armed it exits: after a worker's last action.
struct OnThreadExit {
    Latch* latch = nullptr;
    ~OnThreadExit() {
        if (latch) latch->set();
    }
};
thread_local OnThreadExit on_thread_exit;

}  // namespace

TEST_CASE("stream: every item is consumed once, in order, on the calling thread", "[stream]") {
    for (int workers : {1, 3, 8}) {
        const StreamLimits lim = limits(workers, 5);
        std::vector<std::uint64_t> seen;
        std::set<int> worker_ids;
        std::mutex mu;
        const auto caller = std::this_thread::get_id();
        bool on_caller = true;
        run_ordered<std::uint64_t>(
            200, lim, one_byte,
            [&](std::uint64_t i, int w) {
                busy(i);
                std::lock_guard<std::mutex> lock(mu);
                worker_ids.insert(w);
                return i * 3;
            },
            [&](std::uint64_t i, std::uint64_t&& v) {
                on_caller = on_caller && std::this_thread::get_id() == caller;
                CHECK(v == i * 3);
                seen.push_back(i);
            });
        REQUIRE(seen.size() == 200);
        for (std::uint64_t i = 0; i < 200; ++i) CHECK(seen[i] == i);
        CHECK(on_caller);
        CHECK(*worker_ids.rbegin() < workers);
        CHECK(*worker_ids.begin() >= 0);
    }
    // Nothing to do: neither callback runs.
    run_ordered<int>(
        0, StreamLimits{}, one_byte, [](std::uint64_t, int) -> int { FAIL("produce called"); return 0; },
        [](std::uint64_t, int&&) { FAIL("consume called"); });
}

TEST_CASE("stream: items in flight never hold more than the window's bytes", "[stream]") {
    for (std::size_t window : {std::size_t{10}, std::size_t{25}, std::size_t{64}}) {
        const StreamLimits lim = limits(6, window);
        auto bytes = [](std::uint64_t i) { return static_cast<std::size_t>(1 + i % 5); };
        std::atomic<std::size_t> live{0};
        std::size_t most = 0;
        std::mutex mu;
        run_ordered<std::size_t>(
            300, lim, bytes,
            [&](std::uint64_t i, int) {
                const std::size_t now = live += bytes(i);
                {
                    std::lock_guard<std::mutex> lock(mu);
                    most = std::max(most, now);
                }
                busy(i);
                return bytes(i);
            },
            [&](std::uint64_t, std::size_t&& b) { live -= b; });
        CHECK(most <= window);
        CHECK(most >= 1);
        CHECK(live == 0);
    }
    // An item larger than the window still goes through, one at a time.
    const StreamLimits lim = limits(4, 3);
    std::atomic<int> live{0};
    int most = 0;
    run_ordered<int>(
        20, lim, [](std::uint64_t) { return std::size_t{10}; },
        [&](std::uint64_t, int) {
            most = std::max(most, ++live);
            return 0;
        },
        [&](std::uint64_t, int&&) { --live; });
    CHECK(most == 1);
}

TEST_CASE("stream: an item's error is rethrown after the items before it are consumed", "[stream]") {
    SECTION("one worker: nothing after the failing item is produced or consumed") {
        const StreamLimits lim = limits(1, 100);
        std::vector<std::uint64_t> produced, consumed;
        const Error e = error_of([&] {
            run_ordered<int>(
                50, lim, one_byte,
                [&](std::uint64_t i, int) {
                    produced.push_back(i);
                    if (i == 3) fail(ErrorKind::Data, "item 3 is broken");
                    return 0;
                },
                [&](std::uint64_t i, int&&) { consumed.push_back(i); });
        });
        CHECK(e.kind() == ErrorKind::Data);
        CHECK(std::string(e.what()) == "item 3 is broken");
        CHECK(produced == std::vector<std::uint64_t>{0, 1, 2, 3});
        CHECK(consumed == std::vector<std::uint64_t>{0, 1, 2});
    }
    SECTION("the items before the failing one are still consumed, also when they finish after it failed") {
        // Item 2 fails at once; consume(0) holds the consumer until the worker that failed has
        // exited, so the failure is on record before item 1 is taken.
        const StreamLimits lim = limits(3, 100);
        Latch failed_worker_exited;
        std::vector<std::uint64_t> consumed;
        const Error e = error_of([&] {
            run_ordered<int>(
                50, lim, one_byte,
                [&](std::uint64_t i, int) {
                    if (i == 2) {
                        on_thread_exit.latch = &failed_worker_exited;
                        fail(ErrorKind::Data, "item 2 is broken");
                    }
                    return static_cast<int>(i);
                },
                [&](std::uint64_t i, int&& v) {
                    if (i == 0) failed_worker_exited.wait();
                    CHECK(v == static_cast<int>(i));
                    consumed.push_back(i);
                });
        });
        CHECK(e.kind() == ErrorKind::Data);
        CHECK(std::string(e.what()) == "item 2 is broken");
        CHECK(consumed == std::vector<std::uint64_t>{0, 1});
    }
    SECTION("of items failing in any order, the lowest one's error, after every item before it") {
        // Items 7 and 4 fail, 7 first: item 4 waits until 7 has failed.
        const StreamLimits lim = limits(8, 8);
        Latch seven_failed;
        std::vector<std::uint64_t> consumed;
        const Error e = error_of([&] {
            run_ordered<int>(
                8, lim, one_byte,
                [&](std::uint64_t i, int) {
                    if (i == 7) {
                        on_thread_exit.latch = &seven_failed;
                        fail(ErrorKind::Data, "item 7");
                    }
                    if (i == 4) {
                        seven_failed.wait();
                        fail(ErrorKind::Input, "item 4");
                    }
                    return 0;
                },
                [&](std::uint64_t i, int&&) { consumed.push_back(i); });
        });
        CHECK(e.kind() == ErrorKind::Input);
        CHECK(std::string(e.what()) == "item 4");
        CHECK(consumed == std::vector<std::uint64_t>{0, 1, 2, 3});
    }
    SECTION("an item_bytes error counts as its item's") {
        const StreamLimits lim = limits(2, 100);
        std::vector<std::uint64_t> produced, consumed;
        std::mutex mu;
        CHECK_THROWS_WITH(run_ordered<int>(
                              20, lim,
                              [](std::uint64_t i) -> std::size_t {
                                  if (i == 6) fail(ErrorKind::Internal, "no size for item 6");
                                  return 1;
                              },
                              [&](std::uint64_t i, int) {
                                  std::lock_guard<std::mutex> lock(mu);
                                  produced.push_back(i);
                                  return 0;
                              },
                              [&](std::uint64_t i, int&&) { consumed.push_back(i); }),
                          "no size for item 6");
        std::sort(produced.begin(), produced.end());
        CHECK(produced == std::vector<std::uint64_t>{0, 1, 2, 3, 4, 5});
        CHECK(consumed == produced);
    }
    SECTION("many workers, many failing items: every item before the first failing one, then its error") {
        const StreamLimits lim = limits(6, 12);
        std::vector<std::uint64_t> consumed;
        std::atomic<int> thrown{0};
        const Error e = error_of([&] {
            run_ordered<int>(
                1000, lim, one_byte,
                [&](std::uint64_t i, int) {
                    busy(i);
                    if (i >= 10) {
                        ++thrown;
                        fail(ErrorKind::Data, "item " + std::to_string(i));
                    }
                    return 0;
                },
                [&](std::uint64_t i, int&&) { consumed.push_back(i); });
        });
        CHECK(e.kind() == ErrorKind::Data);
        CHECK(std::string(e.what()) == "item 10");
        REQUIRE(consumed.size() == 10);
        for (std::size_t k = 0; k < consumed.size(); ++k) CHECK(consumed[k] == k);
        // No new item starts after an error: at most one per worker besides those admitted.
        CHECK(thrown >= 1);
        CHECK(thrown <= 12);
    }
    SECTION("the consumer's error wins over work not yet done") {
        const StreamLimits lim = limits(3, 4);
        std::atomic<std::uint64_t> produced{0};
        std::vector<std::uint64_t> consumed;
        const Error e = error_of([&] {
            run_ordered<int>(
                500, lim, one_byte,
                [&](std::uint64_t, int) {
                    ++produced;
                    return 0;
                },
                [&](std::uint64_t i, int&&) {
                    consumed.push_back(i);
                    if (i == 5) fail(ErrorKind::Output, "disk full");
                });
        });
        CHECK(e.kind() == ErrorKind::Output);
        CHECK(std::string(e.what()) == "disk full");
        CHECK(consumed == std::vector<std::uint64_t>{0, 1, 2, 3, 4, 5});
        // Item 5 was never released, so at most 5 + window items were ever started.
        CHECK(produced <= 5 + 4);
    }
}

TEST_CASE("stream: the stop flag starts no new item: the started ones are consumed, then Error(Interrupted)", "[stream]") {
    std::atomic<bool> stop{false};
    StreamLimits lim = limits(4, 8);
    lim.stop = &stop;
    lim.what = "slide.svs";
    std::atomic<std::uint64_t> produced{0};
    std::vector<std::uint64_t> consumed;
    const auto consumed_all_produced = [&] {
        REQUIRE(consumed.size() == produced.load());
        for (std::size_t k = 0; k < consumed.size(); ++k) CHECK(consumed[k] == k);
    };
    SECTION("set while consuming: the items already finished or in flight are consumed too") {
        // One worker: when produce(6) is entered, item 5 is finished and waits to be consumed.
        lim.workers = 1;
        Latch six_started;
        const Error e = error_of([&] {
            run_ordered<int>(
                10000, lim, one_byte,
                [&](std::uint64_t i, int) {
                    ++produced;
                    if (i == 6) six_started.set();
                    return 0;
                },
                [&](std::uint64_t i, int&&) {
                    consumed.push_back(i);
                    if (i == 4) {
                        six_started.wait();
                        stop = true;
                    }
                });
        });
        CHECK(e.kind() == ErrorKind::Interrupted);
        CHECK(std::string(e.what()) == "slide.svs: interrupted");
        CHECK(consumed.size() >= 7);
        consumed_all_produced();
    }
    SECTION("set by a worker while the consumer waits") {
        const Error e = error_of([&] {
            run_ordered<int>(
                10000, lim, one_byte,
                [&](std::uint64_t i, int) {
                    ++produced;
                    busy(i);
                    if (i == 2) stop = true;
                    return 0;
                },
                [&](std::uint64_t i, int&&) { consumed.push_back(i); });
        });
        CHECK(e.kind() == ErrorKind::Interrupted);
        CHECK(consumed.size() >= 3);
        CHECK(consumed.size() <= 3 + 8);
        consumed_all_produced();
    }
    SECTION("set before the start: nothing is produced or consumed") {
        stop = true;
        CHECK_THROWS_AS(run_ordered<int>(
                            100, lim, one_byte,
                            [&](std::uint64_t, int) {
                                ++produced;
                                return 0;
                            },
                            [&](std::uint64_t i, int&&) { consumed.push_back(i); }),
                        Error);
        CHECK(produced == 0);
        CHECK(consumed.empty());
    }
    SECTION("set after the last item started: no interruption, every item is consumed") {
        lim.workers = 1;
        Latch last_started;
        run_ordered<int>(
            3, lim, one_byte,
            [&](std::uint64_t i, int) {
                ++produced;
                if (i == 2) last_started.set();
                return 0;
            },
            [&](std::uint64_t i, int&&) {
                if (i == 0) {
                    last_started.wait();
                    stop = true;
                }
                consumed.push_back(i);
            });
        CHECK(consumed == std::vector<std::uint64_t>{0, 1, 2});
    }
    SECTION("a consumer that throws on a stop ends the stream at once") {
        // The slide pipeline's writer does this: its output is discarded on a stop anyway.
        // One worker: when produce(6) is entered, item 5 is finished and waits to be consumed.
        lim.workers = 1;
        Latch six_started;
        const Error e = error_of([&] {
            run_ordered<int>(
                10000, lim, one_byte,
                [&](std::uint64_t i, int) {
                    if (i == 6) six_started.set();
                    return 0;
                },
                [&](std::uint64_t i, int&&) {
                    if (stop) fail(ErrorKind::Interrupted, "out.svs: interrupted");
                    consumed.push_back(i);
                    if (i == 4) {
                        six_started.wait();
                        stop = true;
                    }
                });
        });
        CHECK(e.kind() == ErrorKind::Interrupted);
        CHECK(std::string(e.what()) == "out.svs: interrupted");
        CHECK(consumed == std::vector<std::uint64_t>{0, 1, 2, 3, 4});
    }
}
