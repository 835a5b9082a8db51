#include "io/slide_pipeline.hpp"

#include <openslide/openslide.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <tiffio.h>

#include <time.h>

#include <algorithm>
#include <chrono>
#include <climits>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <utility>

#include "core/error.hpp"
#include "core/estimate.hpp"
#include "core/pixel_math.hpp"
#include "core/host_buffer_pool.hpp"
#include "core/splitmix64.hpp"
#include "core/stream.hpp"
#include "core/tables.hpp"
#include "core/thread_pool.hpp"
#include "io/atomic_file.hpp"
#include "io/image_io.hpp"
#include "io/libtiff.hpp"
#include "io/input_plan.hpp"
#include "io/paths.hpp"
#include "io/pyramid.hpp"
#include "io/pyramid_writer.hpp"
#include "io/qc_images.hpp"
#include "io/region_mask.hpp"
#include "io/sha256.hpp"
#include "io/slide_reader.hpp"
#include "io/slide_tiff_reader.hpp"
#include "io/threads.hpp"

namespace vn {
namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

// CPU time of the calling thread: stage times stay meaningful when threads outnumber cores.
double thread_cpu_seconds() {
    timespec ts{};
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return static_cast<double>(ts.tv_sec) + 1e-9 * static_cast<double>(ts.tv_nsec);
}

void log_line(const SlideCallbacks& cb, const std::string& msg) {
    if (cb.log) cb.log(msg);
}

bool stopped(const std::atomic<bool>* stop) { return stop && stop->load(std::memory_order_relaxed); }

std::string fmt(double v, int decimals) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.*f", decimals, v);
    return buf;
}

// L* < 25 (Y below ((25 + 16) / 116)^3), in the fixed point of the luma tables.
constexpr std::uint32_t kDarkThreshold = static_cast<std::uint32_t>(0.044158 * px::kLumaScale);

// Tissue on the overview: the brightfield test of docs/method.md §1 (L* < 80). Pixels darker
// than L* 25 are counted apart too: most of a fluorescence or dark-field scan is that dark, while
// in H&E only nuclei, folds and ink are.
struct OverviewMask {
    int width = 0, height = 0;
    std::vector<std::uint8_t> tissue;  // 1 = tissue
    double tissue_fraction = 0, dark_fraction = 0;
};

OverviewMask tissue_mask(const RgbImage& img) {
    const Tables& t = tables();
    OverviewMask m;
    m.width = img.width;
    m.height = img.height;
    m.tissue.assign(img.pixel_count(), 0);
    std::uint64_t tissue = 0, dark = 0;
    const std::uint8_t* p = img.pixels.data();
    for (std::size_t i = 0; i < img.pixel_count(); ++i, p += 3) {
        const std::uint32_t y = t.luma[p[0]] + t.luma[256u + p[1]] + t.luma[512u + p[2]];
        if (y < kDarkThreshold) ++dark;
        if (px::is_tissue(t.luma, p[0], p[1], p[2])) {
            m.tissue[i] = 1;
            ++tissue;
        }
    }
    const double n = std::max<double>(1.0, static_cast<double>(img.pixel_count()));
    m.tissue_fraction = static_cast<double>(tissue) / n;
    m.dark_fraction = static_cast<double>(dark) / n;
    return m;
}

// ---- what the output carries over --------------------------------------------------------------

// The model as it goes into the output's provenance: stain vectors and maxima, 6 digits.
std::string model_brief(const StainModel& m) {
    char buf[256];
    std::snprintf(buf, sizeof buf, "{\"stain_matrix\":[[%.6g,%.6g,%.6g],[%.6g,%.6g,%.6g]],\"max_concentrations\":[%.6g,%.6g]}",
                  m.stain[0][0], m.stain[0][1], m.stain[0][2], m.stain[1][0], m.stain[1][1], m.stain[1][2], m.max_conc[0],
                  m.max_conc[1]);
    return buf;
}

// A short JSON object (no '|', which ends an Aperio key=value pair): normalized, by which
// version, from which source model to which target.
std::string provenance_json(const StainModel& source, const StainModel& target) {
    return std::string("{\"normalized\":true,\"software\":\"vahanorm\",\"version\":\"") + VAHANORM_VERSION +
           "\",\"method\":\"vahadane\",\"source\":" + model_brief(source) + ",\"target\":" + model_brief(target) + "}";
}

// What an earlier vahanorm run left in the slide ("vahanorm X.Y.Z"), or "": svs in
// aperio.vahanorm, tiff and ome in the ImageDescription (raw, or XML-escaped in OME-XML).
std::string earlier_provenance(const SlideReader& slide) {
    std::string text = slide.property("aperio.vahanorm");
    if (text.empty()) text = slide.property("tiff.ImageDescription");
    for (const char* q : {"\"", "&quot;"}) {
        const std::string qs = q;
        const std::string marker = "{" + qs + "normalized" + qs + ":true," + qs + "software" + qs + ":" + qs + "vahanorm" + qs;
        const auto at = text.find(marker);
        if (at == std::string::npos) continue;
        const std::string key = qs + "version" + qs + ":" + qs;
        const auto v = text.find(key, at);
        if (v == std::string::npos) return "vahanorm";
        const auto e = text.find(qs, v + key.size());
        return "vahanorm " + text.substr(v + key.size(), e == std::string::npos ? 0 : e - v - key.size());
    }
    return std::string();
}

// The ICC profile of the slide's first TIFF directory (level 0), when the slide is a TIFF.
std::vector<std::uint8_t> read_icc_profile(const std::string& path) {
    TiffHandle h(path, "rm");
    if (!h.valid()) return {};
    std::uint32_t n = 0;
    void* data = nullptr;
    if (TIFFGetField(h.get(), TIFFTAG_ICCPROFILE, &n, &data) != 1 || !data || n == 0) return {};
    const auto* p = static_cast<const std::uint8_t*>(data);
    return std::vector<std::uint8_t>(p, p + n);
}

// ---- the color table -----------------------------------------------------------------------------

// The fixed-model transform is a function of the RGB triple alone, so on a CPU it is cheaper to
// push all 2^24 colours through backend.transform once (16.8 Mpx, the backend's own arithmetic,
// hence bit-identical results) and look every pixel up than to transform hundreds of megapixels.
// The table's 48 MB, in 2 MiB pages where the kernel allows (transparent huge pages on
// madvise): one lookup a pixel at random over 48 MB otherwise misses the TLB most of the time.
class ColorTable {
public:
    ColorTable() = default;
    explicit ColorTable(std::size_t n) : n_(n) {
        constexpr std::size_t kHuge = std::size_t{2} << 20;
        void* p = nullptr;
        if (::posix_memalign(&p, kHuge, (n + kHuge - 1) / kHuge * kHuge) != 0) throw std::bad_alloc();
        ::madvise(p, (n + kHuge - 1) / kHuge * kHuge, MADV_HUGEPAGE);  // advice only: may fail
        p_ = static_cast<std::uint8_t*>(p);
    }
    ~ColorTable() { std::free(p_); }
    ColorTable(ColorTable&& o) noexcept : p_(std::exchange(o.p_, nullptr)), n_(std::exchange(o.n_, 0)) {}
    ColorTable& operator=(ColorTable&& o) noexcept {
        if (this != &o) {
            std::free(p_);
            p_ = std::exchange(o.p_, nullptr);
            n_ = std::exchange(o.n_, 0);
        }
        return *this;
    }
    ColorTable(const ColorTable&) = delete;
    ColorTable& operator=(const ColorTable&) = delete;
    std::uint8_t* data() const { return p_; }

private:
    std::uint8_t* p_ = nullptr;
    std::size_t n_ = 0;
};

// The table is in Morton (Z) order: the bits of r, g and b interleaved, so that colours close in
// RGB sit close in memory. The pixels of a tile mostly differ by a few levels from their
// neighbours; in r<<16|g<<8|b order such neighbours are 768 bytes (g) or 196 KB (r) apart and
// almost every lookup missed the cache, in Z order they share cache lines and pages.
struct MortonTables {
    std::uint32_t spread[256];  // bit i of v -> bit 3i
    std::uint16_t gather[4096];  // 12 interleaved bits -> r4 << 8 | g4 << 4 | b4
    MortonTables() {
        for (std::uint32_t v = 0; v < 256; ++v) {
            std::uint32_t m = 0;
            for (int i = 0; i < 8; ++i) m |= ((v >> i) & 1u) << (3 * i);
            spread[v] = m;
        }
        for (std::uint32_t x = 0; x < 4096; ++x) {
            std::uint32_t r = 0, g = 0, b = 0;
            for (int i = 0; i < 4; ++i) {
                b |= ((x >> (3 * i)) & 1u) << i;
                g |= ((x >> (3 * i + 1)) & 1u) << i;
                r |= ((x >> (3 * i + 2)) & 1u) << i;
            }
            gather[x] = static_cast<std::uint16_t>(r << 8 | g << 4 | b);
        }
    }
};

const MortonTables& morton() {
    static const MortonTables t;
    return t;
}

inline std::size_t morton_index(const std::uint32_t* spread, std::uint8_t r, std::uint8_t g, std::uint8_t b) {
    return (static_cast<std::size_t>(spread[r]) << 2) | (static_cast<std::size_t>(spread[g]) << 1) | spread[b];
}

ColorTable build_color_lut(Backend& backend, const TransformPlan& plan) {
    ColorTable lut(std::size_t{3} << 24);
    const MortonTables& m = morton();
    constexpr int kTiles = 16;  // per backend call: 16 tiles of 256 x 256 colours
    std::vector<std::uint8_t> in(static_cast<std::size_t>(kTiles) * 65536u * 3u);
    for (std::uint32_t t0 = 0; t0 < 256; t0 += kTiles) {
        std::vector<TileJob> jobs;
        for (std::uint32_t tt = 0; tt < kTiles; ++tt) {
            const std::uint32_t first = (t0 + tt) << 16;  // Morton index of the tile's first colour
            std::uint8_t* p = in.data() + static_cast<std::size_t>(tt) * 65536u * 3u;
            for (std::uint32_t k = 0; k < 65536u; ++k, p += 3) {
                const std::uint32_t idx = first | k;
                const std::uint32_t lo = m.gather[idx & 0xfffu], hi = m.gather[idx >> 12];
                p[0] = static_cast<std::uint8_t>((hi >> 8) << 4 | (lo >> 8));
                p[1] = static_cast<std::uint8_t>(((hi >> 4) & 15u) << 4 | ((lo >> 4) & 15u));
                p[2] = static_cast<std::uint8_t>((hi & 15u) << 4 | (lo & 15u));
            }
            jobs.push_back(TileJob{RgbView{in.data() + static_cast<std::size_t>(tt) * 65536u * 3u, 256, 256, 768},
                                   RgbSpan{lut.data() + static_cast<std::size_t>(first) * 3u, 256, 256, 768}});
        }
        backend.transform(plan, jobs);
    }
    return lut;
}

void apply_color_lut(const std::uint8_t* lut, std::uint8_t* px, std::size_t n) {
    const std::uint32_t* spread = morton().spread;
    for (std::size_t i = 0; i < n; ++i, px += 3) {
        const std::uint8_t* e = lut + morton_index(spread, px[0], px[1], px[2]) * 3u;
        px[0] = e[0];
        px[1] = e[1];
        px[2] = e[2];
    }
}

// ---- streaming level 0 --------------------------------------------------------------------------

// Level-0 tiles a stream item holds (consecutive, row-major), and the bytes the in-flight
// items may hold in all: a large tile size shrinks the batch rather than multiplying memory.
constexpr std::size_t kInFlightBytes = std::size_t{32} << 20;
// The tissue share is measured on every kTissueSampleStep-th pixel of every kTissueSampleStep-th row.
constexpr int kTissueSampleStep = 8;
// The color table pays for itself from this many level-0 pixels on (its build pushes 2^24
// colors through the backend).
constexpr double kColorTableMinPixels = 4.0 * 16777216.0;
// Pixels of the overview read for the QC images.
constexpr std::uint64_t kQcOverviewPixels = 4000000;

// How level 0 flows: one ordered stream (core/stream.hpp). Every item is a run of consecutive
// tiles; a worker reads and decodes them (into backend host memory when the backend transforms
// them, so that a GPU reads them by DMA), normalizes them (one lookup a pixel through the color
// table, or one backend.transform for the run), samples their tissue share and encodes them;
// the calling thread hands them, in order, to the pyramid writer, which writes level 0 and
// builds the reduced levels.
struct StreamPlan {
    std::uint64_t tiles = 0;
    int batch = 1;                     // tiles per item
    std::size_t item_bytes = 0;        // pixel bytes an item holds while in flight
    std::size_t window_bytes = 0;
    int workers = 1;
    bool transform = false;            // backend.transform on every item
    const std::uint8_t* lut = nullptr; // the color table, when it normalizes instead
    bool encode = false;               // the workers encode (the writer takes encoded level-0 tiles)
};

// One stream item: the tiles' pixels (the writer's buffers) and, when the workers encode,
// their encoded bytes.
struct TileRun {
    std::vector<std::vector<std::uint8_t>> pixels;
    std::vector<std::vector<std::uint8_t>> encoded;
};

// Per-worker times and counts, summed when the stream is done.
struct WorkerStats {
    double read = 0, normalize = 0, encode = 0;
    std::uint64_t sampled = 0, tissue = 0;
};

void sample_tissue(RgbView v, WorkerStats& st) {
    const Tables& t = tables();
    for (int y = 0; y < v.height; y += kTissueSampleStep) {
        const std::uint8_t* r = v.row(y);
        for (int x = 0; x < v.width; x += kTissueSampleStep, ++st.sampled)
            st.tissue += px::is_tissue(t.luma, r[3 * x], r[3 * x + 1], r[3 * x + 2]);
    }
}

struct StreamResult {
    WorkerStats totals;
};

// Streams level 0 from `source` through the backend into `writer`.
StreamResult stream_level0(RegionSource& source, PyramidWriter& writer, Backend& backend, const TransformPlan& plan,
                           const StreamPlan& sp, const TiffWriterOptions& tiff, const SlideOptions& opt,
                           const std::string& in) {
    const std::size_t tile_bytes = static_cast<std::size_t>(writer.tile_size()) * static_cast<std::size_t>(writer.tile_size()) * 3u;
    HostBufferPool host(backend);
    const std::size_t item_buffer_bytes = static_cast<std::size_t>(sp.batch) * tile_bytes;
    std::vector<WorkerStats> stats(static_cast<std::size_t>(sp.workers));
    std::vector<std::unique_ptr<TileEncoder>> encoders(static_cast<std::size_t>(sp.workers));
    const std::uint64_t items = (sp.tiles + static_cast<std::uint64_t>(sp.batch) - 1) / static_cast<std::uint64_t>(sp.batch);
    const auto first_tile = [&](std::uint64_t item) { return item * static_cast<std::uint64_t>(sp.batch); };
    const auto run_length = [&](std::uint64_t item) {
        return static_cast<std::size_t>(std::min<std::uint64_t>(static_cast<std::uint64_t>(sp.batch), sp.tiles - first_tile(item)));
    };
    const auto tile_view = [&](std::uint8_t* base, std::uint64_t index) {
        const int tw = writer.tile_width(index), th = writer.tile_height(index);
        return RgbSpan{base, tw, th, static_cast<std::size_t>(tw) * 3u};
    };
    const auto read_tile = [&](std::uint64_t index, RgbSpan dst) {
        const std::uint64_t tx = index % static_cast<std::uint64_t>(writer.tiles_x());
        const std::uint64_t ty = index / static_cast<std::uint64_t>(writer.tiles_x());
        source.read(static_cast<std::int64_t>(tx) * writer.tile_size(), static_cast<std::int64_t>(ty) * writer.tile_size(), dst);
    };

    const auto produce = [&](std::uint64_t item, int worker) {
        WorkerStats& st = stats[static_cast<std::size_t>(worker)];
        const std::uint64_t t0 = first_tile(item);
        const std::size_t n = run_length(item);
        TileRun run;
        run.pixels.resize(n);
        for (std::size_t k = 0; k < n; ++k) {
            run.pixels[k] = writer.take_buffer();
            run.pixels[k].resize(static_cast<std::size_t>(writer.tile_width(t0 + k)) *
                                 static_cast<std::size_t>(writer.tile_height(t0 + k)) * 3u);
        }
        if (sp.transform) {
            // Decoded into the backend's host memory, normalized from there into the writer's.
            HostBuffer src = host.take(item_buffer_bytes);
            std::vector<TileJob> jobs;
            std::size_t offset = 0;
            double c0 = thread_cpu_seconds();
            for (std::size_t k = 0; k < n; ++k) {
                const RgbSpan s = tile_view(src.data() + offset, t0 + k);
                read_tile(t0 + k, s);
                sample_tissue(RgbView(s), st);
                jobs.push_back(TileJob{RgbView(s), tile_view(run.pixels[k].data(), t0 + k)});
                offset += run.pixels[k].size();
            }
            st.read += thread_cpu_seconds() - c0;
            const auto w0 = Clock::now();
            backend.transform(plan, jobs);
            st.normalize += seconds_since(w0);
            host.give_back(std::move(src));
        } else {
            for (std::size_t k = 0; k < n; ++k) {
                const double c0 = thread_cpu_seconds();
                const RgbSpan s = tile_view(run.pixels[k].data(), t0 + k);
                read_tile(t0 + k, s);
                sample_tissue(RgbView(s), st);
                const double c1 = thread_cpu_seconds();
                if (sp.lut) apply_color_lut(sp.lut, s.data, run.pixels[k].size() / 3);
                st.read += c1 - c0;
                st.normalize += thread_cpu_seconds() - c1;
            }
        }
        if (sp.encode) {
            const double c0 = thread_cpu_seconds();
            auto& encoder = encoders[static_cast<std::size_t>(worker)];
            if (!encoder) encoder = std::make_unique<TileEncoder>(tiff);
            run.encoded.resize(n);
            for (std::size_t k = 0; k < n; ++k)
                encoder->encode(RgbView(tile_view(run.pixels[k].data(), t0 + k)), writer.tile_size(), writer.tile_size(),
                                &run.encoded[k]);
            st.encode += thread_cpu_seconds() - c0;
        }
        return run;
    };

    std::uint64_t done = 0;
    const auto t_start = Clock::now();
    const auto consume = [&](std::uint64_t, TileRun&& run) {
        for (std::size_t k = 0; k < run.pixels.size(); ++k)
            writer.push(std::move(run.pixels[k]), sp.encode ? std::move(run.encoded[k]) : std::vector<std::uint8_t>());
        const std::uint64_t before = done;
        done += run.pixels.size();
        // Progress about every batch_tiles tiles, whatever the item size.
        const std::uint64_t every = static_cast<std::uint64_t>(std::max(1, opt.batch_tiles));
        if (opt.callbacks.progress && (done / every != before / every || done == sp.tiles))
            opt.callbacks.progress(SlideProgress{done, sp.tiles, seconds_since(t_start)});
    };

    StreamLimits limits;
    limits.workers = sp.workers;
    limits.window_bytes = sp.window_bytes;
    limits.stop = opt.stop;
    limits.what = in;
    run_ordered<TileRun>(items, limits, [&](std::uint64_t item) { return run_length(item) * sp.item_bytes / static_cast<std::size_t>(sp.batch); },
                         produce, consume);
    StreamResult r;
    for (const WorkerStats& st : stats) {
        r.totals.read += st.read;
        r.totals.normalize += st.normalize;
        r.totals.encode += st.encode;
        r.totals.sampled += st.sampled;
        r.totals.tissue += st.tissue;
    }
    return r;
}

}  // namespace

// ---- detection --------------------------------------------------------------------------------

bool is_slide(const std::string& path) {
    // Only a regular file can be a slide. OpenSlide opens whatever it is given, and opening a
    // FIFO blocks until a writer comes: `vahanorm apply fifo.png` hung forever. The tile reader
    // refuses anything else with a clear message ("not a regular file", "is a directory").
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) return false;
    const char* vendor = openslide_detect_vendor(path.c_str());
    if (!vendor) return false;
    if (std::strcmp(vendor, "generic-tiff") != 0) return true;
    // A plain TIFF (one stripped page) is an image for the tile reader.
    TiffHandle h(path, "rm");
    if (!h.valid()) return true;  // let OpenSlide report what is wrong
    if (TIFFIsTiled(h.get())) return true;
    return TIFFNumberOfDirectories(h.get()) > 1;
}

bool slide_output_is_complete(const std::string& path) {
    try {
        SlideReader s(path);
        RgbImage px1(1, 1);
        s.read_region(0, s.width() - 1, s.height() - 1, px1.span());
        const int last = s.level_count() - 1;
        const SlideLevel& l = s.level(last);
        s.read_region(last, static_cast<std::int64_t>(static_cast<double>(l.width - 1) * l.downsample),
                      static_cast<std::int64_t>(static_cast<double>(l.height - 1) * l.downsample), px1.span());
        return true;
    } catch (const Error&) {
        return false;
    }
}

// ---- estimation -------------------------------------------------------------------------------

std::vector<RgbImage> sample_slide(const std::string& path, std::uint64_t seed, const SlideEstimateOptions& options,
                                   SlideEstimateInfo* info) {
    SlideReader slide(path);
    const SlideOverview ov = read_overview(slide, options.overview_pixels, options.stop);
    OverviewMask mask = tissue_mask(ov.image);
    RegionMask roi;
    if (!options.mask_path.empty()) {
        // A region of interest: overview pixels outside it are no tissue for the estimate.
        roi = load_region_mask(options.mask_path, slide.width(), slide.height(), options.mask_class);
        std::uint64_t left = 0;
        for (int y = 0; y < mask.height; ++y)
            for (int x = 0; x < mask.width; ++x) {
                std::uint8_t& t = mask.tissue[static_cast<std::size_t>(y) * static_cast<std::size_t>(mask.width) + static_cast<std::size_t>(x)];
                if (t && !roi.contains(static_cast<std::int64_t>((x + 0.5) * ov.scale), static_cast<std::int64_t>((y + 0.5) * ov.scale)))
                    t = 0;
                left += t;
            }
        log_line(options.callbacks, path + ": mask " + options.mask_path +
                                        (options.mask_class.empty() ? "" : " (class " + options.mask_class + ")") + " covers " +
                                        fmt(100 * roi.coverage(), 1) + "% of the slide");
        if (left == 0)
            fail(ErrorKind::Data, path + ": no tissue inside the mask " + options.mask_path +
                                      " (it covers " + fmt(100 * roi.coverage(), 1) + "% of the slide, all of it glass)");
    }
    SlideEstimateInfo local;
    SlideEstimateInfo& inf = info ? *info : local;
    inf = SlideEstimateInfo{};
    inf.width = slide.width();
    inf.height = slide.height();
    inf.overview_width = ov.image.width;
    inf.overview_height = ov.image.height;
    inf.overview_scale = ov.scale;
    inf.tissue_fraction = mask.tissue_fraction;
    inf.dark_fraction = mask.dark_fraction;
    log_line(options.callbacks, path + ": " + std::to_string(slide.width()) + "x" + std::to_string(slide.height()) + " " +
                                    slide.vendor() + ", overview " + std::to_string(ov.image.width) + "x" +
                                    std::to_string(ov.image.height) + " (level " + std::to_string(ov.level) +
                                    "), tissue " + fmt(100 * mask.tissue_fraction, 1) + "%, dark " +
                                    fmt(100 * mask.dark_fraction, 1) + "%");
    if (mask.dark_fraction > 0.5)
        fail(ErrorKind::Data, path + ": not a brightfield H&E slide: " + fmt(100 * mask.dark_fraction, 0) +
                                  "% of it is dark background (a fluorescence or dark-field scan?), no tissue to estimate stains from");

    // Cells of region_size at level 0; each cell's tissue share measured on the overview.
    const int R = std::max(16, options.region_size);
    const std::int64_t cx_n = (slide.width() + R - 1) / R, cy_n = (slide.height() + R - 1) / R;
    struct Cell {
        std::int64_t cx, cy;
        double tissue;
    };
    std::vector<Cell> cells;
    for (std::int64_t cy = 0; cy < cy_n; ++cy) {
        const int oy0 = static_cast<int>(std::floor(static_cast<double>(cy * R) / ov.scale));
        const int oy1 = std::min(mask.height, std::max(oy0 + 1, static_cast<int>(std::ceil(static_cast<double>((cy + 1) * R) / ov.scale))));
        for (std::int64_t cx = 0; cx < cx_n; ++cx) {
            const int ox0 = static_cast<int>(std::floor(static_cast<double>(cx * R) / ov.scale));
            const int ox1 = std::min(mask.width, std::max(ox0 + 1, static_cast<int>(std::ceil(static_cast<double>((cx + 1) * R) / ov.scale))));
            std::uint64_t n = 0, t = 0;
            for (int y = std::min(oy0, mask.height - 1); y < oy1; ++y)
                for (int x = std::min(ox0, mask.width - 1); x < ox1; ++x) {
                    ++n;
                    t += mask.tissue[static_cast<std::size_t>(y) * static_cast<std::size_t>(mask.width) + static_cast<std::size_t>(x)];
                }
            if (t > 0) cells.push_back(Cell{cx, cy, static_cast<double>(t) / static_cast<double>(std::max<std::uint64_t>(1, n))});
        }
    }
    const auto want = static_cast<std::size_t>(std::max(1, options.regions));
    std::vector<Cell> eligible;
    for (double threshold : {options.min_region_tissue, 0.1, 1e-9}) {
        eligible.clear();
        for (const Cell& c : cells)
            if (c.tissue >= threshold) eligible.push_back(c);
        if (eligible.size() >= want) break;
    }
    if (eligible.empty())
        fail(ErrorKind::Data, path + ": no tissue found (nothing darker than the glass on the overview)");
    // Stratified, seeded choice: the eligible cells in row-major order are cut into `want`
    // consecutive groups and one cell is drawn from each, so the regions cover the whole slide.
    const std::size_t n = std::min(want, eligible.size());
    std::vector<SlideRegion> regions;
    for (std::size_t i = 0; i < n; ++i) {
        const std::size_t a = i * eligible.size() / n, b = (i + 1) * eligible.size() / n;
        const std::size_t pick = a + static_cast<std::size_t>(splitmix64(seed ^ (0x51d3ull + i)) % (b - a));
        const Cell& c = eligible[pick];
        SlideRegion r;
        r.x = c.cx * R;
        r.y = c.cy * R;
        r.width = static_cast<int>(std::min<std::int64_t>(R, slide.width() - r.x));
        r.height = static_cast<int>(std::min<std::int64_t>(R, slide.height() - r.y));
        r.tissue = c.tissue;
        regions.push_back(r);
    }
    std::vector<RgbImage> pixels(regions.size());
    {
        // The libtiff path where it applies: the same pixels as OpenSlide (tested), without
        // OpenSlide's ARGB compositing.
        const std::unique_ptr<RegionSource> direct = make_tiff_source(slide);
        ThreadPool pool(resolve_thread_count(options.threads));
        pool.parallel_for(regions.size(), [&](std::size_t i) {
            if (stopped(options.stop)) fail(ErrorKind::Interrupted, path + ": interrupted");
            pixels[i] = RgbImage(regions[i].width, regions[i].height);
            if (direct)
                direct->read(regions[i].x, regions[i].y, pixels[i].span());
            else
                slide.read_region(0, regions[i].x, regions[i].y, pixels[i].span());
        });
    }
    if (!roi.inside.empty()) {
        for (std::size_t i = 0; i < regions.size(); ++i)
            inf.masked_pixels += apply_region_mask(roi, regions[i].x, regions[i].y, pixels[i].span());
        inf.mask_sha256 = roi.sha256;
    }
    inf.regions = regions;
    return pixels;
}

StainModel estimate_slide(const std::string& path, Backend& backend, const EstimateParams& params,
                          const SlideEstimateOptions& options, SlideEstimateInfo* info) {
    const auto t0 = Clock::now();
    // The provenance hash reads the whole file: on its own thread, overlapping the estimate.
    std::unique_ptr<BackgroundSha256> hash;
    if (options.hash_source) hash = std::make_unique<BackgroundSha256>(path);
    SlideEstimateInfo local;
    SlideEstimateInfo& inf = info ? *info : local;
    const std::vector<RgbImage> pixels = sample_slide(path, params.seed, options, &inf);
    std::vector<RgbView> views;
    for (const RgbImage& im : pixels) views.push_back(im.view());
    StainModel m;
    try {
        m = backend.estimate(views, params);
    } catch (const Error& e) {
        if (e.kind() != ErrorKind::Data) throw;
        fail(ErrorKind::Data, path + ": " + e.what() + " (from " + std::to_string(pixels.size()) + " regions of " +
                                  std::to_string(std::max(16, options.region_size)) + " px)");
    }
    m.source_path = path;
    if (hash) m.source_sha256 = hash->get();
    if (!options.mask_path.empty()) {
        m.mask_path = options.mask_path;
        m.mask_class = options.mask_class;
        m.mask_sha256 = inf.mask_sha256;
        m.masked_pixels = inf.masked_pixels;
    }
    log_line(options.callbacks, path + ": model from " + std::to_string(pixels.size()) + " regions, " +
                                    std::to_string(m.tissue_pixels) + " tissue pixels, " +
                                    std::to_string(m.artefact_pixels) + " ink or artefact pixels left out, " +
                                    (options.mask_path.empty() ? std::string()
                                                               : std::to_string(m.masked_pixels) + " outside the mask, ") +
                                    "stain angle " +
                                    fmt(stain_angle_deg(m), 1) + " deg, " + fmt(seconds_since(t0), 2) + " s");
    return m;
}

// ---- normalisation ----------------------------------------------------------------------------

namespace {

// Step 1: what is refused before the slide is opened.
void check_request(const std::string& in, const std::string& out, const SlideOptions& opt) {
    if (opt.tile_size < 16 || opt.tile_size % 16 != 0) fail(ErrorKind::Usage, "tile size must be a multiple of 16");
    check_output_is_not_input(in, out);
    if (!compression_available(opt.compression))
        fail(ErrorKind::Usage, std::string("compression ") + compression_name(opt.compression) +
                                   " is not supported by this libtiff");
}

// Step 2: the result's description of the input, and the pixel size in the log.
SlideResult describe_input(const SlideReader& slide, const std::string& in, const std::string& out, const SlideOptions& opt) {
    SlideResult res;
    res.input = in;
    res.output = out;
    res.vendor = slide.vendor();
    res.width = slide.width();
    res.height = slide.height();
    res.mpp_x = slide.mpp_x();
    res.mpp_y = slide.mpp_y();
    res.objective_power = slide.objective_power();
    res.tile_size = opt.tile_size;
    if (slide.mpp_x() > 0)
        log_line(opt.callbacks, in + ": pixel size " + fmt(slide.mpp_x(), 4) + " x " + fmt(slide.mpp_y(), 4) + " um (" +
                                    slide.mpp_source() + ")" +
                                    (slide.objective_power() > 0 ? ", objective " + fmt(slide.objective_power(), 0) + "x" : ""));
    else
        log_line(opt.callbacks, in + ": pixel size unknown (" + slide.mpp_note() + "); the output will not give one");
    return res;
}

// Step 3: where level 0's pixels come from (libtiff directly where it can, else OpenSlide).
std::unique_ptr<RegionSource> open_level0(const SlideReader& slide, const std::string& in, const SlideOptions& opt) {
    std::unique_ptr<RegionSource> src;
    if (opt.direct_tiff) {
        std::string why;
        src = make_tiff_source(slide, &why);
        if (!src) log_line(opt.callbacks, in + ": reading through OpenSlide (" + why + ")");
    }
    if (!src) src = make_openslide_source(slide);
    return src;
}

// Step 4: the fixed-model plan, and the warnings about the models and the slide.
TransformPlan plan_transform(const SlideReader& slide, const std::string& in, const StainModel& source,
                             const StainModel& target, const SlideOptions& opt, SlideResult& res) {
    TransformPlan plan{};
    if (opt.transform) {
        validate(source, in + ": source model");
        validate(target, "target model");
        plan = make_plan(source, target);
        const std::string earlier = earlier_provenance(slide);
        if (!earlier.empty())
            res.warnings.push_back("this slide was normalized by " + earlier +
                                   " already; normalizing it again changes its colours a second time");
    }
    for (const std::string& w : res.warnings) log_line(opt.callbacks, in + ": warning: " + w);
    return plan;
}

// Level-0 tiles in flight: a tile's bytes, the tiles kInFlightBytes holds (at least 4), and
// the tiles of one backend.transform call (a quarter of those, at most opt.batch_tiles).
struct TileBudget {
    std::size_t tile_bytes = 0, tiles = 0, batch = 0;
};

TileBudget tile_budget(const SlideOptions& opt) {
    TileBudget b;
    b.tile_bytes = static_cast<std::size_t>(opt.tile_size) * static_cast<std::size_t>(opt.tile_size) * 3u;
    b.tiles = std::max<std::size_t>(4, kInFlightBytes / b.tile_bytes);
    b.batch = std::clamp<std::size_t>(b.tiles / 4, 1, static_cast<std::size_t>(std::max(1, opt.batch_tiles)));
    return b;
}

// Step 5: the stream's shape: tiles per item, workers, the window; the color table's choice.
StreamPlan plan_stream(std::uint64_t tiles, double level0_pixels, const Backend& backend, const SlideOptions& opt,
                       int threads) {
    StreamPlan sp;
    sp.tiles = tiles;
    sp.workers = threads;
    const bool table = opt.transform &&
                       (opt.color_lut == ColorLut::Always ||
                        (opt.color_lut == ColorLut::Auto && backend.properties().prefers_color_table &&
                         level0_pixels >= kColorTableMinPixels));
    sp.transform = opt.transform && !table;
    const TileBudget b = tile_budget(opt);
    const std::size_t tile_bytes = b.tile_bytes;
    // backend.transform works on runs of tiles; a table lookup or a re-encode on single tiles.
    sp.batch = sp.transform ? static_cast<int>(b.batch) : 1;
    // A small slide still gives every worker an item; many workers get smaller items, so that
    // an item for each of them and one more stay within kInFlightBytes.
    const std::size_t bytes_per_tile = tile_bytes * (sp.transform ? 2u : 1u);
    const std::uint64_t per_worker = (tiles + static_cast<std::uint64_t>(threads) - 1) / static_cast<std::uint64_t>(std::max(1, threads));
    const std::uint64_t fits = kInFlightBytes / (bytes_per_tile * static_cast<std::size_t>(threads + 1));
    sp.batch = static_cast<int>(std::max<std::uint64_t>(1, std::min({static_cast<std::uint64_t>(sp.batch), per_worker, fits})));
    sp.item_bytes = static_cast<std::size_t>(sp.batch) * tile_bytes * (sp.transform ? 2u : 1u);
    // Two batches and a tile per worker ahead of the writer, within half of kInFlightBytes;
    // but always an item for every worker and one more.
    const std::size_t ahead =
        std::min(2 * b.batch + static_cast<std::size_t>(threads), std::max<std::size_t>(2, b.tiles / 2));
    sp.window_bytes = std::max(ahead * tile_bytes, sp.item_bytes * static_cast<std::size_t>(threads + 1));
    return sp;
}

// Step 6: the writer's options from the slide's options and the input.
PyramidWriterOptions writer_options(const SlideReader& slide, const std::string& in, const StainModel& source,
                                    const StainModel& target, const SlideOptions& opt, int threads) {
    PyramidWriterOptions wo;
    wo.tiff.format = opt.format;
    wo.tiff.compression = opt.compression;
    wo.tiff.tile_size = opt.tile_size;
    wo.tiff.quality = opt.quality;
    wo.tiff.chroma_subsampling = opt.chroma_subsampling;
    wo.tiff.effort = opt.effort;
    wo.tiff.mpp_x = slide.mpp_x();
    wo.tiff.mpp_y = slide.mpp_y();
    wo.tiff.objective_power = slide.objective_power();
    if (opt.transform) wo.tiff.provenance = provenance_json(source, target);
    wo.tiff.icc_profile = read_icc_profile(in);
    if (!wo.tiff.icc_profile.empty())
        log_line(opt.callbacks, in + ": ICC profile of " + std::to_string(wo.tiff.icc_profile.size()) + " bytes kept on the output");
    const std::vector<LevelSize> levels = pyramid_levels(slide.width(), slide.height(), opt.tile_size);
    wo.tiff.bigtiff = opt.bigtiff == BigTiffMode::Always ||
                      (opt.bigtiff == BigTiffMode::Auto && needs_bigtiff(levels, opt.compression));
    wo.threads = threads;
    const TileBudget b = tile_budget(opt);
    wo.max_in_flight =
        static_cast<int>(std::min(2 * b.batch + 2 * static_cast<std::size_t>(threads), std::max<std::size_t>(2, b.tiles / 2)));
    wo.thumbnail_size = opt.thumbnail_size;
    wo.stop = opt.stop;
    return wo;
}

// Step 7: label and macro, when they are kept.
std::vector<AssociatedImage> associated_images(const SlideReader& slide, const std::string& in, const SlideOptions& opt,
                                               PyramidWriterOptions& wo) {
    std::vector<AssociatedImage> associated;
    if (!opt.keep_associated) return associated;
    if (opt.format == SlideFormat::Tiff)
        fail(ErrorKind::Usage, "--keep-associated: the tiff layout (a page pyramid) has no place for label and macro "
                               "images; use --format svs or ome");
    for (const std::string& name : slide.associated_names())
        if (name == "label" || name == "macro") {
            associated.push_back(AssociatedImage{name, slide.read_associated(name)});
            if (associated.back().image.width <= 0) associated.pop_back();
        }
    if (opt.format == SlideFormat::Ome)
        for (const AssociatedImage& a : associated)
            wo.tiff.ome_associated.emplace_back(a.name, LevelSize{a.image.width, a.image.height});
    log_line(opt.callbacks, in + ": keeping " + std::to_string(associated.size()) + " associated image(s)" +
                                (associated.empty() ? " (the slide has no label or macro)" : ""));
    return associated;
}

// Step 9: the QC images: overview with tissue, ink and regions; before/after; stains; mask.
void write_qc_images(const std::string& in, const SlideOverview& ov, const OverviewMask& mask, const RgbImage& after,
                     const StainModel& source, const StainModel& target, const SlideOptions& opt, SlideResult& res) {
    make_directories(opt.qc_dir);
    std::string dir = opt.qc_dir;
    while (dir.size() > 1 && dir.back() == '/') dir.pop_back();  // "qc/" -> "qc/name", not "qc//name"
    const std::string base = dir + "/" + file_stem(in);
    const RgbImage before = resize_area(ov.image.view(), after.width, after.height);
    RgbImage m(mask.width, mask.height);
    for (std::size_t i = 0; i < mask.tissue.size(); ++i)
        std::fill_n(m.pixels.begin() + static_cast<std::ptrdiff_t>(3 * i), 3, mask.tissue[i] ? std::uint8_t{255} : std::uint8_t{0});
    // The overview: tissue and ink/artefact pixels of the overview, at the thumbnail's scale.
    const Tables& tb = tables();
    const bool ink = !opt.transform || source.params.exclude_artefacts;
    std::vector<std::uint8_t> tissue_at(before.pixel_count(), 0), artefact_at(before.pixel_count(), 0);
    std::uint64_t n_tissue = 0, n_artefact = 0;
    for (int y = 0; y < before.height; ++y)
        for (int x = 0; x < before.width; ++x) {
            const int ox = std::min(mask.width - 1, static_cast<int>((x + 0.5) * mask.width / before.width));
            const int oy = std::min(mask.height - 1, static_cast<int>((y + 0.5) * mask.height / before.height));
            const std::size_t o = static_cast<std::size_t>(oy) * static_cast<std::size_t>(mask.width) + static_cast<std::size_t>(ox);
            const std::size_t i = static_cast<std::size_t>(y) * static_cast<std::size_t>(before.width) + static_cast<std::size_t>(x);
            if (!mask.tissue[o]) continue;
            const std::uint8_t* p = ov.image.pixels.data() + 3 * o;
            tissue_at[i] = 1;
            artefact_at[i] = ink && px::is_artefact(tb.od, p[0], p[1], p[2]) ? 1 : 0;
            ++n_tissue;
            n_artefact += artefact_at[i];
        }
    // Magenta only where the estimate left pixels out: a few failing pixels (under the bar of
    // leave_out_artefacts) are the tissue's own extremes and were kept.
    const bool left_out = opt.transform ? source.artefact_pixels > 0 : leave_out_artefacts(n_artefact, n_tissue);
    if (!left_out) {
        std::fill(artefact_at.begin(), artefact_at.end(), std::uint8_t{0});
        n_artefact = 0;
    }
    std::vector<QcBox> boxes;
    const double sx = static_cast<double>(before.width) / static_cast<double>(res.width);
    const double sy = static_cast<double>(before.height) / static_cast<double>(res.height);
    for (const SlideRegion& r : opt.qc_regions)
        boxes.push_back(QcBox{static_cast<double>(r.x) * sx, static_cast<double>(r.y) * sy,
                              std::max(3.0, r.width * sx), std::max(3.0, r.height * sy)});
    const double share = 100.0 * static_cast<double>(n_artefact) / std::max<double>(1.0, static_cast<double>(n_tissue));
    const std::string counts =
        "tissue " + fmt(100.0 * static_cast<double>(n_tissue) / std::max<double>(1.0, static_cast<double>(before.pixel_count())), 1) +
        "% of the picture, ink/artefacts " + fmt(share, 1) + "% of it" +
        (opt.transform ? "; estimate: " + std::to_string(source.tissue_pixels) + " tissue px, " +
                             std::to_string(source.artefact_pixels) + " ink/artefact px left out" +
                             (source.mask_path.empty() ? std::string()
                                                       : ", " + std::to_string(source.masked_pixels) + " outside the mask")
                       : std::string("; not normalised"));
    const std::string title = file_name(in) + " (" + std::to_string(res.width) + " x " + std::to_string(res.height) +
                              "): what the stain estimate used";
    const RgbImage overview = qc_overview(before, tissue_at, artefact_at, boxes, title, counts);
    const RgbImage pair = qc_before_after(before, after, file_name(in) + ": before and after, same scale");
    const RgbImage sw = qc_stain_swatches(source, target);
    const std::vector<std::pair<std::string, const RgbImage*>> files = {
        {base + ".overview.png", &overview}, {base + ".before-after.png", &pair},
        {base + ".stains.png", &sw},         {base + ".before.png", &before},
        {base + ".after.png", &after},       {base + ".mask.png", &m}};
    for (const auto& f : files) {
        write_image(f.first, f.second->view());
        res.qc_files.push_back(f.first);
    }
}

}  // namespace

SlideResult normalize_slide(const std::string& in, const std::string& out, const StainModel& source,
                            const StainModel& target, Backend& backend, const SlideOptions& opt) {
    const SlideCallbacks& cb = opt.callbacks;
    check_request(in, out, opt);
    SlideReader slide(in);
    SlideResult res = describe_input(slide, in, out, opt);

    // QC needs an overview (the "before" picture and the mask). Without QC none is read: a
    // slide without a pyramid would have to be decoded whole for it; the tissue share then comes
    // from a sample of the streamed pixels.
    SlideOverview ov;
    OverviewMask mask;
    if (!opt.qc_dir.empty()) {
        ov = read_overview(slide, kQcOverviewPixels, opt.stop);
        mask = tissue_mask(ov.image);
    }

    const std::unique_ptr<RegionSource> source_pixels = open_level0(slide, in, opt);
    res.reader = source_pixels->name();
    const TransformPlan plan = plan_transform(slide, in, source, target, opt, res);

    const int threads = resolve_thread_count(opt.threads);
    PyramidWriterOptions wo = writer_options(slide, in, source, target, opt, threads);
    res.bigtiff = wo.tiff.bigtiff;
    res.levels = pyramid_levels(slide.width(), slide.height(), opt.tile_size);
    const std::vector<AssociatedImage> associated = associated_images(slide, in, opt, wo);

    log_line(cb, in + ": " + std::to_string(res.width) + "x" + std::to_string(res.height) + ", " +
                     std::to_string(res.levels.size()) + " levels, reader " + res.reader + ", " + backend.name() + ", " +
                     slide_format_name(opt.format) + "/" + compression_name(opt.compression) +
                     (res.bigtiff ? ", BigTIFF" : "") + ", " + std::to_string(threads) + " threads");

    // Step 8: level 0 through the stream into the writer.
    const auto t_start = Clock::now();
    PyramidWriter writer(out, slide.width(), slide.height(), wo);
    res.tiles = writer.tile_count();
    const double level0_pixels = static_cast<double>(res.width) * static_cast<double>(res.height);
    StreamPlan sp = plan_stream(res.tiles, level0_pixels, backend, opt, threads);
    sp.encode = writer.takes_encoded_tiles();
    res.color_lut = opt.transform && !sp.transform;
    double normalize_seconds = 0;
    StreamResult streamed;
    {
        ColorTable lut;
        if (res.color_lut) {
            const auto t0 = Clock::now();
            lut = build_color_lut(backend, plan);
            normalize_seconds += seconds_since(t0);
            log_line(cb, in + ": colour table of 2^24 colours in " + fmt(seconds_since(t0), 2) + " s");
            sp.lut = lut.data();
        }
        streamed = stream_level0(*source_pixels, writer, backend, plan, sp, wo.tiff, opt, in);
    }
    writer.finish(associated);
    res.wall_seconds = seconds_since(t_start);
    const PyramidWriterStats ws = writer.stats();
    res.tissue_fraction = streamed.totals.sampled ? static_cast<double>(streamed.totals.tissue) /
                                                        static_cast<double>(streamed.totals.sampled)
                                                  : 0.0;
    res.seconds.read = streamed.totals.read;
    res.seconds.normalize = normalize_seconds + streamed.totals.normalize;
    res.seconds.encode = streamed.totals.encode + ws.encode_seconds;
    res.seconds.write = ws.write_seconds;
    res.output_bytes = ws.file_bytes;
    const double mpx = level0_pixels / 1e6;
    res.mpx_per_second = res.wall_seconds > 0 ? mpx / res.wall_seconds : 0;
    auto rate = [&](double s) { return s > 0 ? mpx / s : 0.0; };
    res.mpx_per_stage_second = SlideStageTimes{rate(res.seconds.read), rate(res.seconds.normalize),
                                               rate(res.seconds.encode), rate(res.seconds.write)};

    if (!opt.qc_dir.empty()) write_qc_images(in, ov, mask, writer.thumbnail(), source, target, opt, res);
    log_line(cb, in + " -> " + out + ": " + std::to_string(res.width) + "x" + std::to_string(res.height) + " px, " +
                     std::to_string(res.levels.size()) + " levels, " + fmt(res.wall_seconds, 2) + " s, " +
                     fmt(res.mpx_per_second, 1) + " Mpx/s, " + std::to_string(res.output_bytes) + " bytes");
    return res;
}

}  // namespace vn
