// The CUDA backend: batches of tiles run through lanes (cuda/lane.cuh), two per device; the
// tiles of one call are shared by all lanes of all devices (one host thread per lane).
#include "cuda/cuda_backend.hpp"

#include <algorithm>
#include <cstdlib>
#include <mutex>
#include <set>

#include "core/error.hpp"
#include "core/stream.hpp"
#include "core/thread_pool.hpp"
#include "cuda/check.cuh"
#include "cuda/device_tables.cuh"
#include "cuda/estimator.cuh"
#include "cuda/lane.cuh"
#include "cuda/transform.cuh"

namespace vn {

// ---- device discovery (never throws, never runs before it is called) ------------------------

namespace {

cudaError_t device_count_status(int& n) {
    n = 0;
    const cudaError_t e = cudaGetDeviceCount(&n);
    if (e != cudaSuccess) {
        (void)cudaGetLastError();
        n = 0;
    }
    return e;
}

}  // namespace

int cuda_device_count() {
    int n = 0;
    device_count_status(n);  // a C call: nothing to catch
    return n;
}

std::string cuda_unavailable_reason() {
    try {
        int n = 0;
        const cudaError_t e = device_count_status(n);
        std::string why;
        if (e == cudaSuccess && n > 0) return "";
        if (e == cudaSuccess || e == cudaErrorNoDevice)
            why = "no CUDA-capable device is visible";
        else if (e == cudaErrorInsufficientDriver)
            why = "no NVIDIA driver (libcuda.so) found, or it is older than this build's CUDA runtime";
        else
            why = std::string(cudaGetErrorName(e)) + ": " + cudaGetErrorString(e);
        if (const char* v = std::getenv("CUDA_VISIBLE_DEVICES")) why += std::string(" (CUDA_VISIBLE_DEVICES=") + v + ")";
        return why;
    } catch (const std::exception& e) {  // std::string's allocations only
        return std::string("CUDA runtime unavailable: ") + e.what();
    }
}

std::string cuda_device_name(int device) {
    const int n = cuda_device_count();
    if (device < 0 || device >= n)
        fail(ErrorKind::Device, "CUDA device " + std::to_string(device) + " does not exist (" + std::to_string(n) +
                                    " visible)");
    cudaDeviceProp prop{};
    VN_CUDA_CHECK(cudaGetDeviceProperties(&prop, device));
    return prop.name;
}

namespace cuda {
namespace {

// Runs `fn` with `device` current, restoring the previous device; for destructors (no throw).
template <typename F>
void on_device_noexcept(int device, F&& fn) noexcept {
    int previous = 0;
    const bool have_previous = cudaGetDevice(&previous) == cudaSuccess;
    (void)cudaSetDevice(device);
    fn();
    if (have_previous) (void)cudaSetDevice(previous);
}

struct DeviceContext {
    int id = 0;
    std::string name;
    std::unique_ptr<DeviceTables> tables;
    std::vector<std::unique_ptr<Lane>> lanes;

    DeviceContext() = default;
    DeviceContext(DeviceContext&&) = default;
    DeviceContext& operator=(DeviceContext&&) = default;
    ~DeviceContext() {
        lanes.clear();  // each lane releases on its own device
        if (tables) on_device_noexcept(id, [&] { tables.reset(); });
    }
};

// The smallest staging buffer and per-tile batch a backend gets, whatever its options say.
constexpr std::size_t kMinBufferBytes = std::size_t{1} << 20;
// Fixed-model batches are at least this big (or the staging buffer), so that small calls are
// not cut into tiny launches.
constexpr std::size_t kMinTransformBatchBytes = std::size_t{4} << 20;

// A piece of work of the fixed-model transform: rows [y0, y1) of one tile.
struct Piece {
    std::size_t tile;
    int y0, y1;
    std::size_t device_offset;
};

void copy_through(RgbView src, RgbSpan dst) {
    const std::size_t bytes = static_cast<std::size_t>(src.width) * 3u;
    for (int y = 0; y < src.height; ++y) std::copy(src.row(y), src.row(y) + bytes, dst.row(y));
}

class CudaBackend final : public Backend {
public:
    explicit CudaBackend(const CudaBackendOptions& options)
        : options_(options), pool_(pool_thread_count(options.host_threads)) {
        const int visible = cuda_device_count();
        if (visible == 0) fail(ErrorKind::Device, "no usable CUDA device: " + cuda_unavailable_reason());
        std::vector<int> ids = options.devices;
        if (ids.empty())
            for (int d = 0; d < visible; ++d) ids.push_back(d);
        std::set<int> seen;
        for (int id : ids) {
            if (id < 0 || id >= visible)
                fail(ErrorKind::Device, "CUDA device " + std::to_string(id) + " does not exist (" +
                                            std::to_string(visible) + " visible)");
            if (!seen.insert(id).second) fail(ErrorKind::Device, "CUDA device " + std::to_string(id) + " listed twice");
        }
        options_.lanes_per_device = std::max(1, options_.lanes_per_device);
        options_.max_tiles_per_batch = std::max(1, options_.max_tiles_per_batch);
        options_.staging_bytes = std::max(options_.staging_bytes, kMinBufferBytes);
        options_.batch_bytes = std::max(options_.batch_bytes, kMinBufferBytes);
        for (int id : ids) {
            DeviceGuard guard(id);
            DeviceContext ctx;
            ctx.id = id;
            cudaDeviceProp prop{};
            VN_CUDA_CHECK(cudaGetDeviceProperties(&prop, id));
            ctx.name = prop.name;
            std::string why;
            if (!kernels_runnable(why))
                fail(ErrorKind::Device, "CUDA device " + std::to_string(id) + " (" + ctx.name + ", compute capability " +
                                            std::to_string(prop.major) + "." + std::to_string(prop.minor) +
                                            ") cannot run this build's kernels (" + why +
                                            "); rebuild with CMAKE_CUDA_ARCHITECTURES including " +
                                            std::to_string(prop.major * 10 + prop.minor));
            ctx.tables = std::make_unique<DeviceTables>();
            for (int l = 0; l < options_.lanes_per_device; ++l)
                ctx.lanes.push_back(std::make_unique<Lane>(id, options_.staging_bytes));
            devices_.push_back(std::move(ctx));
        }
        // Lanes in the order work is handed out: the first lane of every device, then the second...
        for (int l = 0; l < options_.lanes_per_device; ++l)
            for (DeviceContext& d : devices_) lane_order_.push_back({&d, d.lanes[static_cast<std::size_t>(l)].get()});
    }

    std::string name() const override {
        std::string ids, names;
        for (const DeviceContext& d : devices_) {
            ids += (ids.empty() ? "" : ",") + std::to_string(d.id);
            if (names.find(d.name) == std::string::npos) names += (names.empty() ? "" : ", ") + d.name;
        }
        return "cuda:" + ids + " (" + names + ")";
    }

    BackendProperties properties() const override {
        BackendProperties p;
        p.kind = BackendKind::Cuda;
        p.prefers_color_table = false;
        p.host_buffers_pinned = true;
        return p;
    }

    // Page-locked for every device (portable), so any lane copies it by DMA.
    HostBuffer host_buffer(std::size_t bytes) override {
        DeviceGuard guard(devices_.front().id);
        void* p = nullptr;
        VN_CUDA_CHECK(cudaHostAlloc(&p, bytes ? bytes : 1, cudaHostAllocPortable));
        return HostBuffer(static_cast<std::uint8_t*>(p), bytes, [](void* q) noexcept { (void)cudaFreeHost(q); });
    }

    StainModel estimate(const std::vector<RgbView>& images, const EstimateParams& params) override {
        std::lock_guard<std::mutex> lock(call_mutex_);
        DeviceContext& dev = devices_.front();
        Lane& lane = *dev.lanes.front();
        DeviceGuard guard(dev.id);
        std::vector<BatchImage> batch;
        for (const RgbView& v : images) batch.push_back(BatchImage{v, 0, 0});
        const std::size_t bytes = layout_images(batch);
        std::uint8_t* pixels = lane.pixels_in(bytes);
        upload_images(lane, batch, pixels);
        const std::vector<PixelChunk> chunks = make_chunks(batch);
        const PixelChunk* d_chunks = lane.upload(Slot::Chunks, chunks);
        std::vector<SegmentEstimate> est = estimate_segments(lane, dev.tables->view(), batch, chunks, d_chunks, pixels,
                                                             1, params, &pool_, options_.shared_memory_histograms);
        if (!est[0].ok) fail(ErrorKind::Data, est[0].reason);
        return est[0].model;
    }

    void transform(const TransformPlan& plan, const std::vector<TileJob>& tiles) override {
        std::lock_guard<std::mutex> lock(call_mutex_);
        std::size_t total = 0;
        for (const TileJob& job : tiles) {
            check_tile_job(job);
            total += 3 * job.src.pixel_count();
        }
        if (total == 0) return;
        // Batches of whole rows, at most one staging buffer each, and enough of them to keep
        // every lane busy.
        const std::size_t lanes = lane_order_.size();
        const std::size_t floor_bytes = std::min(kMinTransformBatchBytes, options_.staging_bytes);
        const std::size_t target = std::clamp<std::size_t>(total / (2 * lanes) + 1, floor_bytes, options_.staging_bytes);
        std::vector<std::vector<Piece>> batches(1);
        std::size_t batch_bytes = 0;
        for (std::size_t t = 0; t < tiles.size(); ++t) {
            const RgbView& src = tiles[t].src;
            if (src.pixel_count() == 0) continue;
            const std::size_t row = 3 * static_cast<std::size_t>(src.width);
            for (int y = 0; y < src.height;) {
                if (batch_bytes + row > target && batch_bytes > 0) {
                    batches.emplace_back();
                    batch_bytes = 0;
                }
                const std::size_t fit = std::max<std::size_t>(1, (target - std::min(target, batch_bytes)) / row);
                const int y1 = static_cast<int>(std::min<std::size_t>(static_cast<std::size_t>(src.height),
                                                                      static_cast<std::size_t>(y) + fit));
                batches.back().push_back(Piece{t, y, y1, batch_bytes});
                batch_bytes += static_cast<std::size_t>(y1 - y) * row;
                y = y1;
            }
        }
        run_batches(batches.size(), [&](DeviceContext& dev, Lane& lane, std::size_t b) {
            const std::vector<Piece>& pieces = batches[b];
            std::vector<HostRowsIn> in;
            std::vector<HostRowsOut> out;
            std::size_t bytes = 0;
            for (const Piece& p : pieces) {
                const TileJob& job = tiles[p.tile];
                const std::size_t row = 3 * static_cast<std::size_t>(job.src.width);
                in.push_back(HostRowsIn{job.src.row(p.y0), job.src.stride, row, p.y1 - p.y0, p.device_offset});
                out.push_back(HostRowsOut{job.dst.row(p.y0), job.dst.stride, row, p.y1 - p.y0, p.device_offset});
                bytes = p.device_offset + static_cast<std::size_t>(p.y1 - p.y0) * row;
            }
            std::uint8_t* d_in = lane.pixels_in(bytes);
            std::uint8_t* d_out = lane.pixels_out(bytes);
            lane.upload_rows(in, d_in);
            launch_transform(dev.tables->view(), plan, d_in, d_out, bytes / 3, lane.stream());
            lane.download_rows(out, d_out);
        });
    }

    std::vector<TileOutcome> normalize_tiles(const StainModel& target, const EstimateParams& params,
                                             const std::vector<TileJob>& tiles) override {
        std::lock_guard<std::mutex> lock(call_mutex_);
        std::vector<TileOutcome> outcomes(tiles.size());
        for (const TileJob& job : tiles) check_tile_job(job);
        if (tiles.empty()) return outcomes;
        // Batches of whole tiles: at most max_tiles_per_batch and batch_bytes (a bigger tile gets
        // a batch of its own), balanced, and at least one per lane. Not bounded by the staging
        // buffer: pinned tiles do not use it, pageable ones pass it in pieces (Lane::upload_rows).
        std::size_t total_bytes = 0;
        for (const TileJob& job : tiles) total_bytes += 3 * job.src.pixel_count() + 16;
        const std::size_t max_tiles = static_cast<std::size_t>(options_.max_tiles_per_batch);
        const std::size_t max_bytes = options_.batch_bytes;
        const std::size_t count = std::max({(tiles.size() + max_tiles - 1) / max_tiles,
                                            (total_bytes + max_bytes - 1) / max_bytes,
                                            std::min(tiles.size(), lane_order_.size())});
        const std::size_t per_batch = (tiles.size() + count - 1) / count;
        std::vector<std::pair<std::size_t, std::size_t>> batches;  // [first, last)
        std::size_t first = 0, bytes = 0;
        for (std::size_t t = 0; t < tiles.size(); ++t) {
            const std::size_t b = 3 * tiles[t].src.pixel_count() + 16;
            if (t > first && (t - first >= per_batch || bytes + b > max_bytes)) {
                batches.push_back({first, t});
                first = t;
                bytes = 0;
            }
            bytes += b;
        }
        batches.push_back({first, tiles.size()});

        run_batches(batches.size(), [&](DeviceContext& dev, Lane& lane, std::size_t bi) {
            const auto [t0, t1] = batches[bi];
            std::vector<BatchImage> images;
            for (std::size_t t = t0; t < t1; ++t)
                images.push_back(BatchImage{tiles[t].src, 0, static_cast<std::uint32_t>(t - t0)});
            const std::size_t total = layout_images(images);
            std::uint8_t* d_in = lane.pixels_in(total);
            std::uint8_t* d_out = lane.pixels_out(total);
            upload_images(lane, images, d_in);
            const std::vector<PixelChunk> chunks = make_chunks(images);
            const PixelChunk* d_chunks = lane.upload(Slot::Chunks, chunks);
            const std::vector<SegmentEstimate> est =
                estimate_segments(lane, dev.tables->view(), images, chunks, d_chunks, d_in, images.size(), params,
                                  &pool_, options_.shared_memory_histograms);
            std::vector<TilePlan> plans(images.size());
            for (std::size_t i = 0; i < images.size(); ++i) {
                TileOutcome& o = outcomes[t0 + i];
                if (est[i].ok) {
                    const TransformPlan p = make_plan(est[i].model, target);
                    plans[i] = TilePlan{p.solver, p.render, 0};
                    o.normalized = true;
                    o.source = est[i].model;
                    const std::size_t n = images[i].src.pixel_count();
                    o.tissue_fraction =
                        n ? static_cast<double>(est[i].model.tissue_pixels) / static_cast<double>(n) : 0.0;
                } else {
                    plans[i] = TilePlan{px::Solver<float>{}, px::Render{}, 1};
                    o.normalized = false;
                    o.reason = est[i].reason;
                }
            }
            const TilePlan* d_plans = lane.upload(Slot::Plans, plans);
            launch_transform_chunks(dev.tables->view(), d_plans, d_chunks, chunks.size(), d_in, d_out, lane.stream());
            std::vector<HostRowsOut> out;
            for (std::size_t i = 0; i < images.size(); ++i) {
                const TileJob& job = tiles[t0 + i];
                if (job.src.pixel_count() == 0) continue;
                out.push_back(HostRowsOut{job.dst.data, job.dst.stride, 3 * static_cast<std::size_t>(job.dst.width),
                                          job.dst.height, images[i].device_offset});
            }
            lane.download_rows(out, d_out);
        });
        return outcomes;
    }

private:
    // Runs fn(device, lane, b) for every batch b on the ordered stream engine (core/stream.hpp):
    // one worker per lane pulls batches; the first exception stops the others and is rethrown.
    template <typename F>
    void run_batches(std::size_t count, const F& fn) {
        if (count == 0) return;
        if (std::min(count, lane_order_.size()) == 1) {
            DeviceGuard guard(lane_order_[0].device->id);
            for (std::size_t b = 0; b < count; ++b) fn(*lane_order_[0].device, *lane_order_[0].lane, b);
            return;
        }
        StreamLimits limits;
        limits.workers = static_cast<int>(lane_order_.size());
        limits.what = "CUDA batches";
        run_ordered<bool>(
            count, limits, [](std::uint64_t) { return std::size_t{0}; },
            [&](std::uint64_t b, int worker) {
                const LaneRef& ref = lane_order_[static_cast<std::size_t>(worker)];
                VN_CUDA_CHECK(cudaSetDevice(ref.device->id));
                fn(*ref.device, *ref.lane, static_cast<std::size_t>(b));
                return true;
            },
            [](std::uint64_t, bool&&) {});
    }

    struct LaneRef {
        DeviceContext* device;
        Lane* lane;
    };

    CudaBackendOptions options_;
    ThreadPool pool_;
    std::vector<DeviceContext> devices_;
    std::vector<LaneRef> lane_order_;
    std::mutex call_mutex_;
};

}  // namespace
}  // namespace cuda

std::unique_ptr<Backend> make_cuda_backend(const CudaBackendOptions& options) {
    return std::make_unique<cuda::CudaBackend>(options);
}

std::unique_ptr<Backend> make_cuda_backend(const std::vector<int>& devices, int host_threads) {
    CudaBackendOptions options;
    options.devices = devices;
    options.host_threads = host_threads;
    return make_cuda_backend(options);
}

}  // namespace vn
