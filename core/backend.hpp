// The compute backend interface: the CPU implementation lives in core/, the CUDA one in cuda/.
// Everything else (I/O, the slide pipeline, the CLI) talks to this interface only.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/image.hpp"
#include "core/model.hpp"
#include "core/transform.hpp"

namespace vn {

// One tile of a batch: the output may not alias the input.
struct TileJob {
    RgbView src;
    RgbSpan dst;
};

// What per-tile normalisation did with one tile.
struct TileOutcome {
    bool normalized = false;   // false: passed through unchanged (see reason)
    std::string reason;        // why it was passed through, empty when normalized
    StainModel source;         // the tile's own estimate (valid when normalized)
    double tissue_fraction = 0.0;
};

class Backend {
public:
    virtual ~Backend() = default;
    // "cpu (2 threads)", "cuda:0 (NVIDIA H200)", ...
    virtual std::string name() const = 0;

    // Estimates one model from the pooled pixels of `images` (fit, estimate, a slide's sample).
    // Throws Error(Data) when there is too little tissue or the stains come out parallel.
    virtual StainModel estimate(const std::vector<RgbView>& images, const EstimateParams& params) = 0;

    // Fixed-model transform of every tile: dst = T(src).
    virtual void transform(const TransformPlan& plan, const std::vector<TileJob>& tiles) = 0;

    // Per-tile mode: every tile gets its own source estimate, then is transformed to `target`;
    // a tile without a usable estimate is copied through unchanged and says why.
    virtual std::vector<TileOutcome> normalize_tiles(const StainModel& target, const EstimateParams& params,
                                                     const std::vector<TileJob>& tiles) = 0;
};

// Throws Error(Internal) for a job whose sizes differ or whose output aliases its input.
void check_tile_job(const TileJob& job);

// The CPU backend with `threads` worker threads (0: all cores, or SLURM_CPUS_PER_TASK).
std::unique_ptr<Backend> make_cpu_backend(int threads);

// Resolves the thread count: explicit > SLURM_CPUS_PER_TASK > hardware concurrency.
int default_thread_count(int requested);

}  // namespace vn
