// The compute backend interface: the CPU implementation lives in core/, the CUDA one in cuda/.
// Everything else (I/O, the slide pipeline, the CLI) talks to this interface only.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
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

// What kind of executor a backend is, and what its callers may rely on: read from here, never
// from the backend's name.
enum class BackendKind { Cpu, Cuda };

struct BackendProperties {
    BackendKind kind = BackendKind::Cpu;
    // A fixed-model transform of a whole slide is cheaper as one table of all 2^24 colors made
    // by one transform call and one lookup a pixel (io/slide_pipeline.hpp, ColorLut::Auto).
    bool prefers_color_table = false;
    // host_buffer() memory is page-locked: the device reads and writes it by DMA, without a
    // copy through a staging buffer.
    bool host_buffers_pinned = false;
};

// Host memory handed out by a backend (Backend::host_buffer) for pixels it reads or writes:
// page-locked for a GPU, plain aligned memory for the CPU. Move-only; the memory goes back
// to the backend's allocator when the buffer is destroyed (also after its backend is gone).
class HostBuffer {
public:
    using Release = void (*)(void* data) noexcept;
    HostBuffer() = default;
    HostBuffer(std::uint8_t* data, std::size_t bytes, Release release) noexcept
        : data_(data), bytes_(bytes), release_(release) {}
    ~HostBuffer() { reset(); }
    HostBuffer(HostBuffer&& o) noexcept
        : data_(std::exchange(o.data_, nullptr)), bytes_(std::exchange(o.bytes_, 0)), release_(o.release_) {}
    HostBuffer& operator=(HostBuffer&& o) noexcept {
        if (this != &o) {
            reset();
            data_ = std::exchange(o.data_, nullptr);
            bytes_ = std::exchange(o.bytes_, 0);
            release_ = o.release_;
        }
        return *this;
    }
    HostBuffer(const HostBuffer&) = delete;
    HostBuffer& operator=(const HostBuffer&) = delete;

    std::uint8_t* data() const { return data_; }
    std::size_t size() const { return bytes_; }
    void reset() noexcept {
        if (data_ && release_) release_(data_);
        data_ = nullptr;
        bytes_ = 0;
    }

private:
    std::uint8_t* data_ = nullptr;
    std::size_t bytes_ = 0;
    Release release_ = nullptr;
};

class Backend {
public:
    virtual ~Backend() = default;
    // "cpu (2 threads)", "cuda:0 (NVIDIA H200)", ... (for people: logs and reports)
    virtual std::string name() const = 0;

    virtual BackendProperties properties() const = 0;

    // `bytes` of host memory for the pixels of tile jobs (uninitialized). Callers that reuse
    // buffers for many calls (the slide pipeline) decode straight into them.
    virtual HostBuffer host_buffer(std::size_t bytes) = 0;

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

// Plain host memory aligned for vector loads (the CPU backend's host_buffer).
HostBuffer aligned_host_buffer(std::size_t bytes);

// The CPU backend with pool_thread_count(threads) worker threads.
std::unique_ptr<Backend> make_cpu_backend(int threads);

// `requested` when > 0, else one thread per hardware thread (std::thread::hardware_concurrency,
// at least 1). Reads no environment: the thread-count policy of the CLI and the Python package
// ($SLURM_CPUS_PER_TASK, the usable CPUs, the limit) is io/threads.hpp's, applied before.
int pool_thread_count(int requested);

}  // namespace vn
