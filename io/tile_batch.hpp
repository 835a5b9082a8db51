// Tile image files through a backend, as `vahanorm apply TILES... -o DIR/` and the Python
// package's apply_tiles do it (docs/architecture.md, "Apply, tiles"): in batches of
// 2 x threads images (at least kMinTileBatch), each an item of the ordered stream engine
// (core/stream.hpp): decode in parallel into the backend's host buffers, one backend call for
// the batch, encode and write in parallel. Memory is a batch of images per stream worker,
// whatever the number of inputs; outputs are the same bytes for any thread count or batch length.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <vector>

#include "core/backend.hpp"
#include "core/model.hpp"
#include "io/input_plan.hpp"
#include "io/input_result.hpp"

namespace vn {

constexpr std::size_t kMinTileBatch = 4;

struct TileBatchOptions {
    int threads = 0;                         // decode and encode threads (0: resolve_thread_count)
    std::uint64_t max_pixels = 1ull << 31;   // larger images are refused (Error(Input))
    int jpeg_quality = 90;
    bool skip_existing = false;              // an output that exists and reads back is left as it is
    const std::atomic<bool>* stop = nullptr;  // checked before each batch starts
};

// Normalizes `tiles` (plans without an error, none a slide) to `target`: with each image's own
// estimate under `params`, or with `fixed_source` when given. Each output is locked from before
// its decode to after its write. Every input gets one result, passed to `on_result` in input
// order after its batch; a failed input is a result (status Failed) and the others go on.
// Once *stop is set no batch starts: the started ones are finished and reported, the inputs
// of the others get no result. A failure of a whole batch (the backend's) is thrown in its
// turn, after the results of the batches before it.
void normalize_tile_files(const std::vector<InputPlan>& tiles, Backend& backend, const StainModel& target,
                          const std::optional<StainModel>& fixed_source, const EstimateParams& params,
                          const TileBatchOptions& options, const std::function<void(InputResult&&)>& on_result);

}  // namespace vn
