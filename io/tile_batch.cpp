#include "io/tile_batch.hpp"

#include <algorithm>
#include <chrono>
#include <memory>

#include "core/host_buffer_pool.hpp"
#include "core/stream.hpp"
#include "core/thread_pool.hpp"
#include "core/transform.hpp"
#include "io/atomic_file.hpp"
#include "io/image_io.hpp"
#include "io/threads.hpp"

namespace vn {
namespace {

using Clock = std::chrono::steady_clock;

double ms_since(Clock::time_point t0) { return std::chrono::duration<double, std::milli>(Clock::now() - t0).count(); }

// One tile image of a batch as it moves through decode, normalize, encode.
struct TileWork {
    std::unique_ptr<OutputLock> lock;  // held from before the decode to after the write
    HostBuffer pixels;                 // from the backend: the decoded tile, then the normalized one
    RgbSpan in, out;                   // both in `pixels`
    double ppm_x = 0, ppm_y = 0;       // the input's resolution, kept on the output
    InputResult result;

    bool pending() const { return result.status != InputStatus::Failed && result.status != InputStatus::Skipped; }
    void fail_with(const Error& e) {
        result.status = InputStatus::Failed;
        result.error = e.kind();
        result.message = e.what();
    }
};

// One stream item: a batch of tiles, decoded, normalized by one backend call and written by
// its worker; what the consumer hands on is the results (and the locks, released in order).
using Batch = std::vector<TileWork>;

void decode(TileWork& w, const InputPlan& plan, const TileBatchOptions& o, HostBufferPool& host) {
    w.result.input = plan.input;
    w.result.output = plan.output;
    const auto t0 = Clock::now();
    try {
        // Lock first, then decide: a complete output is skipped, anything else redone.
        w.lock = std::make_unique<OutputLock>(plan.output);
        if (o.skip_existing && output_is_complete(plan, o.max_pixels)) {
            w.result.status = InputStatus::Skipped;
            return;
        }
        ImageInfo info;
        ReadOptions ro;
        ro.max_pixels = o.max_pixels;
        // Input and output side by side in one host buffer: the backend reads and writes it.
        w.in = read_image_into(
            plan.input,
            [&](int width, int height) {
                const std::size_t stride = static_cast<std::size_t>(width) * 3u;
                const std::size_t bytes = stride * static_cast<std::size_t>(height);
                w.pixels = host.take(2 * bytes);
                w.out = RgbSpan{w.pixels.data() + bytes, width, height, stride};
                return RgbSpan{w.pixels.data(), width, height, stride};
            },
            &info, ro);
        w.ppm_x = info.pixels_per_metre_x;
        w.ppm_y = info.pixels_per_metre_y;
        w.result.size = std::array<int, 2>{w.in.width, w.in.height};
        w.result.conversion = info.conversion;
    } catch (const Error& e) {
        w.fail_with(e);
    }
    w.result.timings_ms.decode = ms_since(t0);
}

void encode(TileWork& w, const TileBatchOptions& o, double normalize_ms) {
    w.result.timings_ms.normalize = normalize_ms;
    const auto t0 = Clock::now();
    try {
        WriteOptions wo;
        wo.jpeg_quality = o.jpeg_quality;
        wo.pixels_per_metre_x = w.ppm_x;
        wo.pixels_per_metre_y = w.ppm_y;
        write_image(w.result.output, RgbView(w.out), wo);
    } catch (const Error& e) {
        w.fail_with(e);
    }
    w.result.timings_ms.encode = ms_since(t0);
}

}  // namespace

void normalize_tile_files(const std::vector<InputPlan>& tiles, Backend& backend, const StainModel& target,
                          const std::optional<StainModel>& fixed_source, const EstimateParams& params,
                          const TileBatchOptions& options, const std::function<void(InputResult&&)>& on_result) {
    const int threads = resolve_thread_count(options.threads);
    ThreadPool io_pool(threads);
    HostBufferPool host(backend);
    const std::size_t batch = std::max(kMinTileBatch, 2 * static_cast<std::size_t>(threads));
    std::optional<TransformPlan> plan;
    std::optional<QcFlags> fixed_qc;
    if (fixed_source) {
        plan = make_plan(*fixed_source, target);
        fixed_qc = qc_flags(*fixed_source, target);
    }

    // A failure of the whole batch (the backend's) propagates: the engine reports the batches
    // before it, then rethrows it.
    const auto produce = [&](std::uint64_t b, int) {
        const std::size_t b0 = static_cast<std::size_t>(b) * batch;
        const std::size_t n = std::min(batch, tiles.size() - b0);
        Batch work(n);
        io_pool.parallel_for(n, [&](std::size_t i) { decode(work[i], tiles[b0 + i], options, host); });

        std::vector<TileJob> jobs;
        std::vector<TileWork*> decoded;
        for (TileWork& w : work)
            if (w.pending()) {
                jobs.push_back(TileJob{RgbView(w.in), w.out});
                decoded.push_back(&w);
            }
        const auto t_norm = Clock::now();
        if (plan) {
            backend.transform(*plan, jobs);
        } else {
            const std::vector<TileOutcome> outcomes = backend.normalize_tiles(target, params, jobs);
            for (std::size_t j = 0; j < outcomes.size(); ++j) {
                InputResult& r = decoded[j]->result;
                const TileOutcome& oc = outcomes[j];
                if (oc.normalized) {
                    r.source_model = oc.source;
                    r.qc = qc_flags(oc.source, target, oc.tissue_fraction);
                    r.warnings = scale_ratio_warnings(*r.qc);
                } else {
                    r.status = InputStatus::PassedThrough;
                    r.message = oc.reason;
                }
            }
        }
        const double normalize_ms = jobs.empty() ? 0.0 : ms_since(t_norm) / static_cast<double>(jobs.size());
        io_pool.parallel_for(decoded.size(), [&](std::size_t j) { encode(*decoded[j], options, normalize_ms); });
        for (TileWork& w : work) {
            host.give_back(std::move(w.pixels));
            w.in = w.out = RgbSpan{};
        }
        return work;
    };

    const auto consume = [&](std::uint64_t, Batch&& work) {
        for (TileWork& w : work) {
            if (fixed_qc && w.pending()) w.result.qc = fixed_qc;
            w.lock.reset();
            on_result(std::move(w.result));
        }
    };

    // One worker for the CPU backend, whose call takes every core; with a device doing the
    // normalization, a second one decodes and encodes the next batch meanwhile. On a stop the
    // engine starts no batch and reports the started ones; the caller sees the flag itself.
    StreamLimits limits;
    limits.workers = backend.properties().kind == BackendKind::Cpu ? 1 : 2;
    limits.stop = options.stop;
    limits.what = "tile batches";
    const std::uint64_t batches = (tiles.size() + batch - 1) / batch;
    try {
        run_ordered<Batch>(batches, limits, [](std::uint64_t) { return std::size_t{0}; }, produce, consume);
    } catch (const Error& e) {
        if (e.kind() != ErrorKind::Interrupted || !options.stop || !options.stop->load()) throw;
    }
}

}  // namespace vn
