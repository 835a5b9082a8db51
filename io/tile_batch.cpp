#include "io/tile_batch.hpp"

#include <algorithm>
#include <chrono>
#include <memory>

#include "io/atomic_file.hpp"
#include "core/thread_pool.hpp"
#include "core/transform.hpp"
#include "io/image_io.hpp"
#include "io/threads.hpp"

namespace vn {
namespace {

using Clock = std::chrono::steady_clock;

double ms_since(Clock::time_point t0) { return std::chrono::duration<double, std::milli>(Clock::now() - t0).count(); }

// One tile image of a batch as it moves through decode, normalize, encode.
struct TileWork {
    std::unique_ptr<OutputLock> lock;  // held from before the decode to after the write
    RgbImage in, out;
    double ppm_x = 0, ppm_y = 0;  // the input's resolution, kept on the output
    InputResult result;

    bool pending() const { return result.status != InputStatus::Failed && result.status != InputStatus::Skipped; }
    void fail_with(const Error& e) {
        result.status = InputStatus::Failed;
        result.error = e.kind();
        result.message = e.what();
    }
};

void decode(TileWork& w, const InputPlan& plan, const TileBatchOptions& o) {
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
        w.in = read_image(plan.input, &info, ro);
        w.out = RgbImage(w.in.width, w.in.height);
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
        write_image(w.result.output, w.out.view(), wo);
    } catch (const Error& e) {
        w.fail_with(e);
    }
    w.result.timings_ms.encode = ms_since(t0);
    w.in = RgbImage();
    w.out = RgbImage();
}

}  // namespace

void normalize_tile_files(const std::vector<InputPlan>& tiles, Backend& backend, const StainModel& target,
                          const std::optional<StainModel>& fixed_source, const EstimateParams& params,
                          const TileBatchOptions& options, const std::function<void(InputResult&&)>& on_result) {
    const int threads = resolve_thread_count(options.threads);
    ThreadPool io_pool(threads);
    const std::size_t batch = std::max(kMinTileBatch, 2 * static_cast<std::size_t>(threads));
    std::optional<TransformPlan> plan;
    std::optional<QcFlags> fixed_qc;
    if (fixed_source) {
        plan = make_plan(*fixed_source, target);
        fixed_qc = qc_flags(*fixed_source, target);
    }
    for (std::size_t b0 = 0; b0 < tiles.size(); b0 += batch) {
        if (options.stop && options.stop->load()) return;
        const std::size_t n = std::min(batch, tiles.size() - b0);
        std::vector<TileWork> work(n);
        io_pool.parallel_for(n, [&](std::size_t i) { decode(work[i], tiles[b0 + i], options); });

        std::vector<TileJob> jobs;
        std::vector<TileWork*> decoded;
        for (TileWork& w : work)
            if (w.pending()) {
                jobs.push_back(TileJob{w.in.view(), w.out.span()});
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
            if (fixed_qc && w.pending()) w.result.qc = fixed_qc;
            w.lock.reset();
            on_result(std::move(w.result));
        }
    }
}

}  // namespace vn
