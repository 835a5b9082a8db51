// Small pieces: the thread pool.
#include <catch2/catch.hpp>

#include <atomic>
#include <stdexcept>
#include <vector>

#include "core/error.hpp"
#include "core/thread_pool.hpp"

using namespace vn;

TEST_CASE("thread pool runs every item once and propagates exceptions", "[misc]") {
    ThreadPool pool(3);
    std::vector<std::atomic<int>> hits(1000);
    pool.parallel_for(hits.size(), [&](std::size_t i) { ++hits[i]; });
    for (auto& h : hits) REQUIRE(h == 1);
    CHECK_THROWS_AS(pool.parallel_for(100, [](std::size_t i) { if (i == 37) throw std::runtime_error("x"); }),
                    std::runtime_error);
    std::atomic<int> n{0};
    pool.parallel_for(10, [&](std::size_t) { pool.parallel_for(10, [&](std::size_t) { ++n; }); });
    CHECK(n == 100);
}

