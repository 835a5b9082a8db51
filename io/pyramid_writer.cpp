#include "io/pyramid_writer.hpp"

#include <sys/stat.h>

#include <time.h>

#include <algorithm>
#include <cmath>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <exception>
#include <map>
#include <mutex>
#include <thread>

#include "core/error.hpp"
#include "core/thread_pool.hpp"
#include "io/atomic_file.hpp"
#include "io/pyramid.hpp"
#include "io/threads.hpp"

namespace vn {
namespace {

// CPU time of the calling thread: stage times stay meaningful when threads outnumber cores.
double thread_cpu_seconds() {
    timespec ts{};
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return static_cast<double>(ts.tv_sec) + 1e-9 * static_cast<double>(ts.tv_nsec);
}

// A unit of encoder work: a level-0 work tile (kWork: ts x ts pixels as pushed; encoded unless
// level 0 is cut from a strip), or a tile of the TIFF grid of some level cut from a strip.
struct Job {
    int level = 0;  // kWork, or the TIFF level of a cut tile
    std::uint32_t index = 0;
    int width = 0, height = 0;
    int tile_w = 0, tile_h = 0;  // grid cell the tile is padded to
    bool encode = true;
    std::vector<std::uint8_t> pixels;
    std::vector<std::uint8_t> encoded;
};

constexpr int kWork = -1;
// Level-0 tiles between push() and the writer when the options leave it open: at least
// kMinInFlight, kInFlightPerThread per encoder thread.
constexpr int kMinInFlight = 32;
constexpr int kInFlightPerThread = 4;

}  // namespace

struct PyramidWriter::Impl {
    PyramidWriterOptions opt;
    std::vector<LevelSize> levels;
    std::vector<TileGrid> grids;
    int ts = 256;
    std::int64_t ntx = 0, nty = 0;  // work tiles (ts x ts) of level 0
    std::uint64_t total_work = 0;
    // Level 0 goes straight from work tiles to TIFF tiles when its grid is the work grid;
    // otherwise (a level 0 narrower or shorter than a tile) work tiles are gathered in a strip
    // and cut like a reduced level.
    bool level0_direct = true;
    RgbImage strip0;
    int strip0_rows = 0;

    AtomicOutput out;
    std::unique_ptr<TiffPyramidFile> file;
    std::unique_ptr<PyramidBuilder> builder;

    // Shared state, guarded by mu.
    std::mutex mu;
    std::condition_variable cv_jobs, cv_done, cv_space;
    std::deque<Job> cut_jobs, work_jobs;  // cut tiles first: they free strip copies
    std::map<std::uint32_t, Job> ready_work;
    std::vector<std::map<std::uint32_t, Job>> ready;
    std::vector<std::vector<std::uint8_t>> free_buffers;
    std::uint64_t pushed = 0, in_flight = 0;
    bool stopping = false;
    std::exception_ptr error;
    double encode_seconds = 0;

    // Writer-thread state.
    std::uint32_t next_work = 0;
    std::vector<std::uint32_t> next;  // next TIFF tile to write, per level
    int capture_level = 0;
    RgbImage capture;
    RgbImage thumb;
    double write_seconds = 0;
    std::uint64_t tiles_written = 0;
    bool writer_done = false;

    std::vector<std::thread> encoders;
    std::thread writer;
    bool finished = false;

    Impl(const std::string& path, std::int64_t w, std::int64_t h, const PyramidWriterOptions& o)
        : opt(o), out(path) {
        ts = opt.tiff.tile_size;
        if (ts <= 0 || ts % 16 != 0) fail(ErrorKind::Usage, "tile size must be a positive multiple of 16");
        if (w <= 0 || h <= 0) fail(ErrorKind::Internal, "empty image");
        levels = pyramid_levels(w, h, ts);
        for (const LevelSize& l : levels) {
            grids.push_back(tile_grid(l, ts));
            if (grids.back().count() > 0xffffffffu) fail(ErrorKind::Output, path + ": too many tiles for TIFF");
        }
        ntx = (w + ts - 1) / ts;
        nty = (h + ts - 1) / ts;
        total_work = static_cast<std::uint64_t>(ntx * nty);
        level0_direct = grids[0].tile_w == ts && grids[0].tile_h == ts;
        if (!level0_direct) strip0 = RgbImage(static_cast<int>(w), static_cast<int>(std::min<std::int64_t>(ts, h)));
        opt.threads = resolve_thread_count(opt.threads);
        if (opt.max_in_flight <= 0) opt.max_in_flight = std::max(kMinInFlight, kInFlightPerThread * opt.threads);
        if (opt.thumbnail_size <= 0) opt.thumbnail_size = 1024;
        ready.resize(levels.size());
        next.assign(levels.size(), 0);
        // The level the thumbnail is made from: the smallest one still at least thumbnail_size
        // on its long side (or level 0 when that is smaller).
        const std::int64_t target = std::min<std::int64_t>(opt.thumbnail_size, std::max(w, h));
        for (std::size_t k = 0; k < levels.size(); ++k)
            if (std::max(levels[k].width, levels[k].height) >= target) capture_level = static_cast<int>(k);
        const LevelSize& cl = levels[static_cast<std::size_t>(capture_level)];
        capture = RgbImage(static_cast<int>(cl.width), static_cast<int>(cl.height));

        file = std::make_unique<TiffPyramidFile>(out.temp_path(), opt.tiff, levels);
        builder = std::make_unique<PyramidBuilder>(levels, ts, [this](int level, std::int64_t srow, RgbView strip) {
            on_strip(level, srow, strip);
        });
        try {
            writer = std::thread([this] { writer_main(); });
            for (int i = 0; i < opt.threads; ++i) encoders.emplace_back([this] { encoder_main(); });
        } catch (...) {
            stop_threads();
            rethrow_thread_start_error();
        }
    }

    ~Impl() { stop_threads(); }

    void stop_threads() noexcept {
        {
            std::lock_guard<std::mutex> lock(mu);
            stopping = true;
        }
        cv_jobs.notify_all();
        cv_done.notify_all();
        cv_space.notify_all();
        for (std::thread& t : encoders)
            if (t.joinable()) t.join();
        if (writer.joinable()) writer.join();
        encoders.clear();
    }

    void set_error(std::exception_ptr e) {
        {
            std::lock_guard<std::mutex> lock(mu);
            if (!error) error = e;
            stopping = true;
        }
        cv_jobs.notify_all();
        cv_done.notify_all();
        cv_space.notify_all();
    }

    void rethrow_locked() {
        if (error) std::rethrow_exception(error);
    }

    bool stop_requested() const { return opt.stop && opt.stop->load(std::memory_order_relaxed); }

    void encoder_main() {
        try {
            TileEncoder encoder(opt.tiff);
            for (;;) {
                Job job;
                {
                    std::unique_lock<std::mutex> lock(mu);
                    cv_jobs.wait(lock, [&] { return stopping || !cut_jobs.empty() || !work_jobs.empty(); });
                    if (stopping) return;
                    std::deque<Job>& q = !cut_jobs.empty() ? cut_jobs : work_jobs;
                    job = std::move(q.front());
                    q.pop_front();
                }
                const double t0 = thread_cpu_seconds();
                if (job.encode && job.encoded.empty())
                    encoder.encode(RgbView{job.pixels.data(), job.width, job.height, static_cast<std::size_t>(job.width) * 3u},
                                   job.tile_w, job.tile_h, &job.encoded);
                const double dt = thread_cpu_seconds() - t0;
                {
                    std::lock_guard<std::mutex> lock(mu);
                    encode_seconds += dt;
                    const std::uint32_t index = job.index;
                    if (job.level == kWork) {
                        ready_work.emplace(index, std::move(job));
                    } else {
                        job.pixels = std::vector<std::uint8_t>();
                        const auto level = static_cast<std::size_t>(job.level);
                        ready[level].emplace(index, std::move(job));
                    }
                }
                cv_done.notify_all();
            }
        } catch (...) {
            set_error(std::current_exception());
        }
    }

    // Cuts the TIFF tiles of rows [row0, row0 + strip.height) of `level` out of a strip and
    // queues them for encoding (writer thread).
    void cut_strip(int level, std::int64_t row0, RgbView strip) {
        const LevelSize& l = levels[static_cast<std::size_t>(level)];
        const TileGrid& g = grids[static_cast<std::size_t>(level)];
        std::vector<Job> jobs;
        for (std::int64_t tr = (row0 + g.tile_h - 1) / g.tile_h; tr * g.tile_h < row0 + strip.height; ++tr) {
            const std::int64_t y0 = tr * g.tile_h;
            const int h = static_cast<int>(std::min<std::int64_t>(g.tile_h, l.height - y0));
            if (y0 + h > row0 + strip.height) fail(ErrorKind::Internal, "pyramid writer: strip does not hold whole tiles");
            for (std::int64_t tc = 0; tc < g.cols; ++tc) {
                Job j;
                j.level = level;
                j.index = static_cast<std::uint32_t>(tr * g.cols + tc);
                j.width = static_cast<int>(std::min<std::int64_t>(g.tile_w, l.width - tc * g.tile_w));
                j.height = h;
                j.tile_w = g.tile_w;
                j.tile_h = g.tile_h;
                const std::size_t row_bytes = static_cast<std::size_t>(j.width) * 3u;
                j.pixels.resize(row_bytes * static_cast<std::size_t>(h));
                for (int y = 0; y < h; ++y)
                    std::memcpy(j.pixels.data() + static_cast<std::size_t>(y) * row_bytes,
                                strip.row(static_cast<int>(y0 - row0) + y) + static_cast<std::size_t>(tc * g.tile_w) * 3u,
                                row_bytes);
                jobs.push_back(std::move(j));
            }
        }
        {
            std::lock_guard<std::mutex> lock(mu);
            for (Job& j : jobs) cut_jobs.push_back(std::move(j));
        }
        cv_jobs.notify_all();
    }

    // Called by the builder in the writer thread for every complete strip of a reduced level.
    void on_strip(int level, std::int64_t srow, RgbView strip) {
        if (level == capture_level)
            for (int y = 0; y < strip.height; ++y)
                std::memcpy(capture.span().row(static_cast<int>(srow * ts) + y), strip.row(y),
                            static_cast<std::size_t>(strip.width) * 3u);
        cut_strip(level, srow * ts, strip);
    }

    bool all_written() const {
        if (next_work < total_work) return false;
        for (std::size_t k = 0; k < levels.size(); ++k)
            if (next[k] < grids[k].count()) return false;
        return true;
    }

    // A level-0 work tile, in order (writer thread).
    void take_work(Job& job) {
        const std::int64_t tx = job.index % ntx, ty = job.index / ntx;
        const RgbView v{job.pixels.data(), job.width, job.height, static_cast<std::size_t>(job.width) * 3u};
        if (level0_direct) {
            file->write_tile(0, job.index, job.encoded.data(), job.encoded.size());
            ++tiles_written;
            ++next[0];
        } else {
            for (int y = 0; y < v.height; ++y)
                std::memcpy(strip0.span().row(y) + static_cast<std::size_t>(tx * ts) * 3u, v.row(y),
                            static_cast<std::size_t>(v.width) * 3u);
            strip0_rows = v.height;
            if (tx == ntx - 1) cut_strip(0, ty * ts, RgbView{strip0.pixels.data(), strip0.width, strip0_rows, strip0.stride()});
        }
        if (capture_level == 0)
            for (int y = 0; y < v.height; ++y)
                std::memcpy(capture.span().row(static_cast<int>(ty * ts) + y) + static_cast<std::size_t>(tx * ts) * 3u,
                            v.row(y), static_cast<std::size_t>(v.width) * 3u);
        builder->add_tile(tx, ty, v);
        ++next_work;
    }

    void writer_main() {
        try {
            for (;;) {
                Job job;
                bool work = false;
                {
                    std::unique_lock<std::mutex> lock(mu);
                    auto pick = [&] {
                        // Reduced levels first: nobody waits for them, and they free memory.
                        for (std::size_t k = levels.size(); k-- > 0;) {
                            auto it = ready[k].find(next[k]);
                            if (it != ready[k].end()) {
                                job = std::move(it->second);
                                ready[k].erase(it);
                                return true;
                            }
                        }
                        auto it = ready_work.find(next_work);
                        if (it != ready_work.end()) {
                            job = std::move(it->second);
                            ready_work.erase(it);
                            work = true;
                            return true;
                        }
                        return false;
                    };
                    bool have = false;
                    cv_done.wait(lock, [&] { return stopping || (have = pick()); });
                    if (!have) return;
                }
                if (stop_requested()) fail(ErrorKind::Interrupted, out.final_path() + ": interrupted");
                const double t0 = thread_cpu_seconds();
                if (work) {
                    take_work(job);
                } else {
                    file->write_tile(job.level, job.index, job.encoded.data(), job.encoded.size());
                    ++tiles_written;
                    ++next[static_cast<std::size_t>(job.level)];
                }
                write_seconds += thread_cpu_seconds() - t0;
                bool done = false;
                {
                    std::lock_guard<std::mutex> lock(mu);
                    if (work) {
                        --in_flight;
                        // Recycled at full size: resizing a cleared vector would zero it again.
                        if (free_buffers.size() < static_cast<std::size_t>(opt.max_in_flight) + 8)
                            free_buffers.push_back(std::move(job.pixels));
                    }
                    done = all_written();
                    if (done) writer_done = true;
                }
                cv_space.notify_all();
                if (done) return;
            }
        } catch (...) {
            set_error(std::current_exception());
        }
    }

    int tile_w(std::uint64_t index) const {
        const std::int64_t tx = static_cast<std::int64_t>(index) % ntx;
        return static_cast<int>(std::min<std::int64_t>(ts, levels[0].width - tx * ts));
    }
    int tile_h(std::uint64_t index) const {
        const std::int64_t ty = static_cast<std::int64_t>(index) / ntx;
        return static_cast<int>(std::min<std::int64_t>(ts, levels[0].height - ty * ts));
    }
};

PyramidWriter::PyramidWriter(const std::string& output_path, std::int64_t width, std::int64_t height,
                             const PyramidWriterOptions& options)
    : impl_(std::make_unique<Impl>(output_path, width, height, options)) {}

PyramidWriter::~PyramidWriter() { abandon(); }

void PyramidWriter::abandon() noexcept {
    if (impl_) impl_->stop_threads();
}

const std::vector<LevelSize>& PyramidWriter::levels() const { return impl_->levels; }
int PyramidWriter::tile_size() const { return impl_->ts; }
std::int64_t PyramidWriter::tiles_x() const { return impl_->ntx; }
std::int64_t PyramidWriter::tiles_y() const { return impl_->nty; }
std::uint64_t PyramidWriter::tile_count() const { return impl_->total_work; }
int PyramidWriter::tile_width(std::uint64_t index) const { return impl_->tile_w(index); }
int PyramidWriter::tile_height(std::uint64_t index) const { return impl_->tile_h(index); }
bool PyramidWriter::takes_encoded_tiles() const { return impl_->level0_direct; }

std::vector<std::uint8_t> PyramidWriter::take_buffer() {
    Impl& m = *impl_;
    {
        std::lock_guard<std::mutex> lock(m.mu);
        if (!m.free_buffers.empty()) {
            std::vector<std::uint8_t> b = std::move(m.free_buffers.back());
            m.free_buffers.pop_back();
            return b;
        }
    }
    std::vector<std::uint8_t> b;
    b.reserve(static_cast<std::size_t>(m.ts) * static_cast<std::size_t>(m.ts) * 3u);
    return b;
}

void PyramidWriter::push(std::vector<std::uint8_t> pixels, std::vector<std::uint8_t> encoded) {
    Impl& m = *impl_;
    if (m.stop_requested()) fail(ErrorKind::Interrupted, m.out.final_path() + ": interrupted");
    Job job;
    {
        std::unique_lock<std::mutex> lock(m.mu);
        m.rethrow_locked();
        if (m.pushed >= m.total_work) fail(ErrorKind::Internal, "pyramid writer: too many tiles pushed");
        job.level = kWork;
        job.index = static_cast<std::uint32_t>(m.pushed);
    }
    job.width = m.tile_w(job.index);
    job.height = m.tile_h(job.index);
    if (pixels.size() != static_cast<std::size_t>(job.width) * static_cast<std::size_t>(job.height) * 3u)
        fail(ErrorKind::Internal, "pyramid writer: tile buffer of the wrong size");
    job.pixels = std::move(pixels);
    job.encoded = std::move(encoded);
    job.tile_w = m.ts;
    job.tile_h = m.ts;
    job.encode = m.level0_direct;
    if (!job.encoded.empty() && !m.level0_direct)
        fail(ErrorKind::Internal, "pyramid writer: pre-encoded tiles need a level 0 of at least one tile");
    {
        std::unique_lock<std::mutex> lock(m.mu);
        // Woken by the writer after every tile; the writer notices a stop request between
        // tiles and ends with Error(Interrupted), which wakes this wait too.
        m.cv_space.wait(lock, [&] {
            return m.error || m.stopping || m.in_flight < static_cast<std::uint64_t>(m.opt.max_in_flight);
        });
        m.rethrow_locked();
        if (m.stopping) fail(ErrorKind::Internal, "pyramid writer: stopped");
        if (m.stop_requested()) fail(ErrorKind::Interrupted, m.out.final_path() + ": interrupted");
        ++m.pushed;
        ++m.in_flight;
        // A tile with nothing to encode goes straight to the writer.
        if (!job.encode || !job.encoded.empty()) {
            m.ready_work.emplace(job.index, std::move(job));
            lock.unlock();
            m.cv_done.notify_all();
            return;
        }
        m.work_jobs.push_back(std::move(job));
    }
    m.cv_jobs.notify_one();
}

void PyramidWriter::finish(const std::vector<AssociatedImage>& associated) {
    Impl& m = *impl_;
    if (m.finished) return;
    {
        std::unique_lock<std::mutex> lock(m.mu);
        if (m.pushed != m.total_work) fail(ErrorKind::Internal, "pyramid writer: finish before every tile was pushed");
        // The writer ends with every tile written, or with an error (a stop request between
        // tiles is one: Error(Interrupted)); either wakes this wait.
        m.cv_space.wait(lock, [&] { return m.writer_done || m.error; });
        m.rethrow_locked();
    }
    m.stop_threads();
    {
        std::lock_guard<std::mutex> lock(m.mu);
        m.rethrow_locked();
    }
    const double t0 = thread_cpu_seconds();
    const RgbImage& c = m.capture;
    const int longest = std::max(c.width, c.height);
    if (longest > m.opt.thumbnail_size) {
        const double s = static_cast<double>(m.opt.thumbnail_size) / longest;
        m.thumb = resize_area(c.view(), std::max(1, static_cast<int>(std::lround(c.width * s))),
                              std::max(1, static_cast<int>(std::lround(c.height * s))));
    } else {
        m.thumb = c;
    }
    m.capture = RgbImage();
    if (m.stop_requested()) fail(ErrorKind::Interrupted, m.out.final_path() + ": interrupted");
    m.file->finish(m.thumb, associated);
    m.out.commit();
    m.write_seconds += thread_cpu_seconds() - t0;
    m.finished = true;
}

const RgbImage& PyramidWriter::thumbnail() const { return impl_->thumb; }

PyramidWriterStats PyramidWriter::stats() const {
    const Impl& m = *impl_;
    PyramidWriterStats s;
    s.encode_seconds = m.encode_seconds;
    s.write_seconds = m.write_seconds;
    s.tiles = m.tiles_written;
    struct stat st {};
    if (m.finished && ::stat(m.out.final_path().c_str(), &st) == 0) s.file_bytes = static_cast<std::uint64_t>(st.st_size);
    return s;
}

}  // namespace vn
