// The CPU backend: the per-pixel math of core/pixel_math.hpp in loops over row bands,
// spread over a thread pool.
#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <new>
#include <string>
#include <thread>

#include "core/backend.hpp"
#include "core/error.hpp"
#include "core/estimate.hpp"
#include "core/thread_pool.hpp"

namespace vn {
namespace {

constexpr int kBandRows = 32;
// Host buffers start on a cache line (and a vector register's width) boundary.
constexpr std::size_t kHostBufferAlignment = 64;

void copy_image(RgbView src, RgbSpan dst) {
    const std::size_t bytes = static_cast<std::size_t>(src.width) * 3u;
    for (int y = 0; y < src.height; ++y) std::memcpy(dst.row(y), src.row(y), bytes);
}

class CpuBackend final : public Backend {
public:
    explicit CpuBackend(int threads) : pool_(threads) {}

    std::string name() const override {
        return "cpu (" + std::to_string(pool_.size()) + (pool_.size() == 1 ? " thread)" : " threads)");
    }

    BackendProperties properties() const override {
        BackendProperties p;
        p.kind = BackendKind::Cpu;
        p.prefers_color_table = true;
        p.host_buffers_pinned = false;
        return p;
    }

    HostBuffer host_buffer(std::size_t bytes) override { return aligned_host_buffer(bytes); }

    StainModel estimate(const std::vector<RgbView>& images, const EstimateParams& params) override {
        return estimate_model(images, params, &pool_);
    }

    void transform(const TransformPlan& plan, const std::vector<TileJob>& tiles) override {
        struct Item {
            std::size_t tile;
            int y0, y1;
        };
        std::vector<Item> items;
        for (std::size_t i = 0; i < tiles.size(); ++i) {
            check_tile_job(tiles[i]);
            for (int y = 0; y < tiles[i].src.height; y += kBandRows)
                items.push_back(Item{i, y, std::min(tiles[i].src.height, y + kBandRows)});
        }
        pool_.parallel_for(items.size(), [&](std::size_t i) {
            const Item& it = items[i];
            transform_rows(plan, tiles[it.tile].src, tiles[it.tile].dst, it.y0, it.y1);
        });
    }

    std::vector<TileOutcome> normalize_tiles(const StainModel& target, const EstimateParams& params,
                                             const std::vector<TileJob>& tiles) override {
        std::vector<TileOutcome> out(tiles.size());
        for (const TileJob& job : tiles) check_tile_job(job);
        auto one = [&](std::size_t i, ThreadPool* inner) {
            const TileJob& job = tiles[i];
            TileOutcome& o = out[i];
            try {
                o.source = estimate_model({job.src}, params, inner);
                o.tissue_fraction = job.src.pixel_count() ? static_cast<double>(o.source.tissue_pixels) /
                                                                static_cast<double>(job.src.pixel_count())
                                                          : 0.0;
                const TransformPlan plan = make_plan(o.source, target);
                if (inner) {
                    const int bands = (job.src.height + kBandRows - 1) / kBandRows;
                    inner->parallel_for(static_cast<std::size_t>(bands), [&](std::size_t b) {
                        const int y0 = static_cast<int>(b) * kBandRows;
                        transform_rows(plan, job.src, job.dst, y0, std::min(job.src.height, y0 + kBandRows));
                    });
                } else {
                    transform_rows(plan, job.src, job.dst, 0, job.src.height);
                }
                o.normalized = true;
            } catch (const Error& e) {
                if (e.kind() != ErrorKind::Data) throw;
                o.normalized = false;
                o.reason = e.what();
                copy_image(job.src, job.dst);
            }
        };
        // Many tiles: one tile per thread. Few tiles: each tile spread over the threads.
        if (tiles.size() >= static_cast<std::size_t>(pool_.size()))
            pool_.parallel_for(tiles.size(), [&](std::size_t i) { one(i, nullptr); });
        else
            for (std::size_t i = 0; i < tiles.size(); ++i) one(i, &pool_);
        return out;
    }

private:
    ThreadPool pool_;
};

}  // namespace

HostBuffer aligned_host_buffer(std::size_t bytes) {
    void* p = nullptr;
    const std::size_t rounded = (std::max<std::size_t>(bytes, 1) + kHostBufferAlignment - 1) / kHostBufferAlignment *
                                kHostBufferAlignment;
    if (::posix_memalign(&p, kHostBufferAlignment, rounded) != 0) throw std::bad_alloc();
    return HostBuffer(static_cast<std::uint8_t*>(p), bytes, [](void* q) noexcept { std::free(q); });
}

void check_tile_job(const TileJob& job) {
    if (job.src.width != job.dst.width || job.src.height != job.dst.height)
        fail(ErrorKind::Internal, "transform: source and destination sizes differ");
    if (job.src.data == job.dst.data && job.src.pixel_count() > 0)
        fail(ErrorKind::Internal, "transform: the output may not alias the input");
}

int pool_thread_count(int requested) {
    if (requested > 0) return requested;
    const unsigned hw = std::thread::hardware_concurrency();
    return hw > 0 ? static_cast<int>(hw) : 1;
}

std::unique_ptr<Backend> make_cpu_backend(int threads) {
    return std::make_unique<CpuBackend>(pool_thread_count(threads));
}

}  // namespace vn
