#include "tests/cuda/parity_checks.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>
#include <functional>
#include <limits>
#include <memory>
#include <random>
#include <sstream>

#include "core/backend.hpp"
#include "core/error.hpp"
#include "core/estimate.hpp"
#include "core/model.hpp"
#include "core/snmf.hpp"
#include "core/synthetic.hpp"
#include "core/transform.hpp"
#include "cuda/cuda_backend.hpp"
#include "cuda/principal_axes.hpp"
#include "tests/cuda/device_ops.hpp"
#include "core/estimate.hpp"
#include "core/snmf_math.hpp"

namespace vn::cudatest {
namespace {

constexpr double kPi = 3.14159265358979323846;

// Counts comparisons; a failed one is logged with its reason.
class Tally {
public:
    explicit Tally(std::ostream& log) : log_(log) {}
    bool expect(bool ok, const std::string& what) {
        if (ok) {
            ++r_.passed;
        } else {
            ++r_.failed;
            log_ << "  FAIL: " << what << "\n";
        }
        return ok;
    }
    std::ostream& log() { return log_; }
    CheckResult result() const { return r_; }

private:
    std::ostream& log_;
    CheckResult r_;
};

// ---- inputs -------------------------------------------------------------------------------

// Seeded random pixels with white, black, saturated and near-extreme pixels mixed in.
RgbImage test_pixels(int width, int height, std::uint64_t seed) {
    RgbImage img(width, height);
    std::mt19937_64 rng(seed);
    for (auto& v : img.pixels) v = static_cast<std::uint8_t>(rng() >> 56);
    static const std::uint8_t specials[][3] = {{255, 255, 255}, {0, 0, 0},       {255, 0, 0},   {0, 255, 0},
                                               {0, 0, 255},     {255, 255, 0},   {0, 255, 255}, {255, 0, 255},
                                               {1, 1, 1},       {254, 254, 254}, {128, 128, 128}};
    constexpr std::size_t kSpecials = sizeof specials / sizeof specials[0];
    for (std::size_t i = 0; i < img.pixel_count(); ++i) {
        const bool first = i < kSpecials;
        if (first || rng() % 7 == 0) {
            const std::size_t k = first ? i : static_cast<std::size_t>(rng() % kSpecials);
            std::memcpy(img.pixels.data() + 3 * i, specials[k], 3);
        }
    }
    return img;
}

RgbImage synthetic(const StainMatrix& stains, int width, int height, std::uint64_t seed, double glass = 0.2) {
    SyntheticSpec spec;
    spec.width = width;
    spec.height = height;
    spec.stains = stains;
    spec.seed = seed;
    spec.glass_fraction = glass;
    return render_synthetic(spec);
}

RgbImage uniform(int width, int height, std::uint8_t r, std::uint8_t g, std::uint8_t b) {
    RgbImage img(width, height);
    for (std::size_t i = 0; i < img.pixel_count(); ++i) {
        img.pixels[3 * i] = r;
        img.pixels[3 * i + 1] = g;
        img.pixels[3 * i + 2] = b;
    }
    return img;
}

// An image copied into rows `stride` bytes apart, the padding filled with a sentinel byte.
struct Strided {
    std::vector<std::uint8_t> bytes;
    int width = 0, height = 0;
    std::size_t stride = 0;
    RgbView view() const { return RgbView{bytes.data(), width, height, stride}; }
    RgbSpan span() { return RgbSpan{bytes.data(), width, height, stride}; }
};
constexpr std::uint8_t kSentinel = 0xA5;

Strided strided_copy(RgbView src, std::size_t pad) {
    Strided s;
    s.width = src.width;
    s.height = src.height;
    s.stride = 3 * static_cast<std::size_t>(src.width) + pad;
    s.bytes.assign(s.stride * static_cast<std::size_t>(std::max(1, src.height)), kSentinel);
    for (int y = 0; y < src.height; ++y)
        std::memcpy(s.bytes.data() + static_cast<std::size_t>(y) * s.stride, src.row(y),
                    3 * static_cast<std::size_t>(src.width));
    return s;
}

bool padding_intact(const std::uint8_t* base, int width, int height, std::size_t stride) {
    const std::size_t row = 3 * static_cast<std::size_t>(width);
    for (int y = 0; y < height; ++y)
        for (std::size_t i = row; i < stride; ++i)
            if (base[static_cast<std::size_t>(y) * stride + i] != kSentinel) return false;
    return true;
}

bool same_pixels(RgbView a, RgbView b) {
    if (a.width != b.width || a.height != b.height) return false;
    for (int y = 0; y < a.height; ++y)
        if (std::memcmp(a.row(y), b.row(y), 3 * static_cast<std::size_t>(a.width)) != 0) return false;
    return true;
}

// ---- comparisons --------------------------------------------------------------------------

struct Diff {
    std::size_t pixels = 0, differing = 0, over_one = 0;
    int max_abs = 0;
    void add(const Diff& o) {
        pixels += o.pixels;
        differing += o.differing;
        over_one += o.over_one;
        max_abs = std::max(max_abs, o.max_abs);
    }
    // docs/method.md §1: |difference| <= 1 on >= 99.9% of pixels, never > 2.
    bool within_contract() const { return max_abs <= 2 && over_one * 1000 <= pixels; }
    // The fixed-model transform: the same px::transform_pixel with the same tables, no fused
    // multiply-adds on either side (docs/cuda.md, "Exactness and parity"): identical bytes.
    bool identical() const { return differing == 0; }
    std::string text() const {
        std::ostringstream s;
        s << differing << " of " << pixels << " pixels differ (" << over_one << " by more than 1, max " << max_abs
          << ")";
        return s.str();
    }
};

Diff compare(RgbView a, RgbView b) {
    Diff d;
    for (int y = 0; y < a.height; ++y) {
        const std::uint8_t* p = a.row(y);
        const std::uint8_t* q = b.row(y);
        for (int x = 0; x < a.width; ++x) {
            int m = 0;
            for (int c = 0; c < 3; ++c) m = std::max(m, std::abs(int{p[3 * x + c]} - int{q[3 * x + c]}));
            ++d.pixels;
            d.differing += m > 0;
            d.over_one += m > 1;
            d.max_abs = std::max(d.max_abs, m);
        }
    }
    return d;
}

double angle_deg(const std::array<double, 3>& a, const std::array<double, 3>& b) {
    const double dot = a[0] * b[0] + a[1] * b[1] + a[2] * b[2];
    const double n = std::sqrt((a[0] * a[0] + a[1] * a[1] + a[2] * a[2]) * (b[0] * b[0] + b[1] * b[1] + b[2] * b[2]));
    return std::acos(std::clamp(dot / n, -1.0, 1.0)) * 180.0 / kPi;
}

double rel_diff(double a, double b) { return std::fabs(a - b) / std::max(std::fabs(a), 1e-12); }

bool finite_model(const StainModel& m) {
    for (const auto& row : m.stain)
        for (double v : row)
            if (!std::isfinite(v)) return false;
    return std::isfinite(m.max_conc[0]) && std::isfinite(m.max_conc[1]) && std::isfinite(m.objective);
}

struct ModelDiff {
    double angle = 0, max_rel = 0;
    bool identical = false;
};

ModelDiff compare_models(const StainModel& a, const StainModel& b) {
    ModelDiff d;
    d.angle = std::max(angle_deg(a.stain[0], b.stain[0]), angle_deg(a.stain[1], b.stain[1]));
    d.max_rel = std::max(rel_diff(a.max_conc[0], b.max_conc[0]), rel_diff(a.max_conc[1], b.max_conc[1]));
    d.identical = a.stain == b.stain && a.max_conc == b.max_conc;
    return d;
}

void expect_models_agree(Tally& t, const std::string& what, const StainModel& cpu, const StainModel& gpu) {
    const ModelDiff d = compare_models(cpu, gpu);
    t.log() << "  " << what << ": stain angle diff " << d.angle << " deg, max_conc rel diff " << d.max_rel
            << ", iterations cpu " << cpu.iterations << " gpu " << gpu.iterations
            << (d.identical ? " (bit-identical)" : "") << "\n";
    t.expect(finite_model(gpu), what + ": NaN or Inf in the GPU model");
    t.expect(d.angle <= 0.5, what + ": stain vectors differ by more than 0.5 degrees");
    t.expect(d.max_rel <= 1e-3, what + ": max concentrations differ by more than 1e-3 relative");
    t.expect(cpu.tissue_pixels == gpu.tissue_pixels, what + ": tissue pixel counts differ");
    t.expect(cpu.sampled_pixels == gpu.sampled_pixels, what + ": sample sizes differ");
}

StainModel model(const StainMatrix& stains, double max_h, double max_e) {
    StainModel m;
    m.stain = stains;
    m.max_conc = {max_h, max_e};
    return m;
}

std::unique_ptr<Backend> gpu_backend(std::size_t staging_bytes = 64u << 20, int max_tiles = 256) {
    CudaBackendOptions o;
    o.devices = {0};
    o.host_threads = 2;
    o.staging_bytes = staging_bytes;
    o.max_tiles_per_batch = max_tiles;
    return make_cuda_backend(o);
}

// ---- device checks ------------------------------------------------------------------------

// The backend's own host buffers (page-locked: copied by DMA, no staging) give the CPU's pixels,
// whether the source, the destination or both live in them, over batches spread on all lanes.
CheckResult host_buffer_parity(std::ostream& log) {
    Tally t(log);
    const auto cpu = make_cpu_backend(2);
    const auto gpu = gpu_backend(1u << 20);  // small staging: many batches over the lanes
    const BackendProperties p = gpu->properties();
    t.expect(p.kind == BackendKind::Cuda, "properties: kind is not Cuda");
    t.expect(p.host_buffers_pinned, "properties: host buffers are not pinned");
    t.expect(!p.prefers_color_table, "properties: a GPU prefers batches to the color table");
    t.expect(cpu->properties().prefers_color_table && !cpu->properties().host_buffers_pinned,
             "properties: the CPU backend's");
    const TransformPlan plan =
        make_plan(model(synthetic_stains_lab_a(), 1.6, 1.0), model(synthetic_stains_lab_b(), 1.2, 0.8));
    constexpr int kTiles = 24, kSide = 256;
    const std::size_t tile_bytes = static_cast<std::size_t>(kSide) * kSide * 3u;
    HostBuffer src = gpu->host_buffer(kTiles * tile_bytes), dst = gpu->host_buffer(kTiles * tile_bytes);
    t.expect(src.data() != nullptr && src.size() == kTiles * tile_bytes, "host_buffer: wrong size");
    std::vector<RgbImage> want;
    std::vector<TileJob> cpu_jobs, gpu_jobs, mixed_jobs;
    std::vector<RgbImage> pageable_out(kTiles, RgbImage(kSide, kSide));
    for (int i = 0; i < kTiles; ++i) {
        const RgbImage img = test_pixels(kSide, kSide, 500 + static_cast<std::size_t>(i));
        std::uint8_t* s = src.data() + static_cast<std::size_t>(i) * tile_bytes;
        std::copy(img.pixels.begin(), img.pixels.end(), s);
        want.emplace_back(kSide, kSide);
        const RgbView sv{s, kSide, kSide, static_cast<std::size_t>(kSide) * 3u};
        cpu_jobs.push_back(TileJob{sv, want.back().span()});
        gpu_jobs.push_back(TileJob{sv, RgbSpan{dst.data() + static_cast<std::size_t>(i) * tile_bytes, kSide, kSide,
                                               static_cast<std::size_t>(kSide) * 3u}});
        mixed_jobs.push_back(TileJob{sv, pageable_out[static_cast<std::size_t>(i)].span()});
    }
    cpu->transform(plan, cpu_jobs);
    gpu->transform(plan, gpu_jobs);
    gpu->transform(plan, mixed_jobs);
    for (int i = 0; i < kTiles; ++i) {
        const RgbView got{dst.data() + static_cast<std::size_t>(i) * tile_bytes, kSide, kSide, static_cast<std::size_t>(kSide) * 3u};
        const Diff d = compare(want[static_cast<std::size_t>(i)].view(), got);
        const Diff dm = compare(want[static_cast<std::size_t>(i)].view(), pageable_out[static_cast<std::size_t>(i)].view());
        t.expect(d.identical(), "pinned in, pinned out, tile " + std::to_string(i) + ": " + d.text());
        t.expect(dm.identical(), "pinned in, pageable out, tile " + std::to_string(i) + ": " + dm.text());
    }
    return t.result();
}

CheckResult transform_parity(std::ostream& log) {
    Tally t(log);
    const auto cpu = make_cpu_backend(2);
    const auto gpu = gpu_backend();
    const auto gpu_small = gpu_backend(1u << 20);  // 1 MiB staging: many batches, staging reuse
    log << "  backend: " << gpu->name() << "\n";
    const std::vector<std::pair<int, int>> sizes = {{0, 0},    {0, 5},    {5, 0},   {1, 1},   {255, 1}, {1, 255},
                                                    {15, 16},  {16, 16},  {17, 17}, {256, 256}, {257, 3}, {3, 257},
                                                    {4097, 5}, {1000, 700}};
    const TransformPlan plans[2] = {
        make_plan(model(synthetic_stains_lab_a(), 1.6, 1.0), model(synthetic_stains_lab_b(), 1.2, 0.8)),
        make_plan(builtin_reference(), model(synthetic_stains_lab_a(), 2.0, 0.5))};
    Diff total;
    for (int pi = 0; pi < 2; ++pi) {
        const TransformPlan& plan = plans[pi];
        std::vector<RgbImage> inputs, want, got, got_small;
        std::vector<TileJob> cpu_jobs, gpu_jobs, small_jobs;
        for (std::size_t i = 0; i < sizes.size(); ++i) {
            inputs.push_back(test_pixels(sizes[i].first, sizes[i].second, 100 + i + 1000 * static_cast<std::size_t>(pi)));
            want.emplace_back(sizes[i].first, sizes[i].second);
            got.emplace_back(sizes[i].first, sizes[i].second);
            got_small.emplace_back(sizes[i].first, sizes[i].second);
        }
        const std::vector<RgbImage> originals = inputs;
        for (std::size_t i = 0; i < sizes.size(); ++i) {
            cpu_jobs.push_back(TileJob{inputs[i].view(), want[i].span()});
            gpu_jobs.push_back(TileJob{inputs[i].view(), got[i].span()});
            small_jobs.push_back(TileJob{inputs[i].view(), got_small[i].span()});
        }
        cpu->transform(plan, cpu_jobs);
        // One tile per call, then all tiles in one call (batched over lanes).
        for (std::size_t i = 0; i < sizes.size(); ++i) {
            RgbImage single(sizes[i].first, sizes[i].second);
            gpu->transform(plan, {TileJob{inputs[i].view(), single.span()}});
            const Diff d = compare(want[i].view(), single.view());
            total.add(d);
            t.expect(d.identical(), "plan " + std::to_string(pi) + " " + std::to_string(sizes[i].first) + "x" +
                                              std::to_string(sizes[i].second) + ": " + d.text());
        }
        gpu->transform(plan, gpu_jobs);
        gpu_small->transform(plan, small_jobs);
        for (std::size_t i = 0; i < sizes.size(); ++i) {
            const Diff d = compare(want[i].view(), got[i].view());
            const Diff ds = compare(want[i].view(), got_small[i].view());
            total.add(d);
            total.add(ds);
            t.expect(d.identical(), "batched call, tile " + std::to_string(i) + ": " + d.text());
            t.expect(ds.identical(), "1 MiB staging, tile " + std::to_string(i) + ": " + ds.text());
            t.expect(same_pixels(inputs[i].view(), originals[i].view()), "input tile " + std::to_string(i) + " was modified");
        }
        // The flat-buffer kernel at misalignments that take each path: 16-byte vectors (0),
        // 32-bit words (4, 8, 12), bytes (1, 2, 3).
        for (std::size_t mis : {0u, 1u, 2u, 3u, 4u, 8u, 12u})
            for (std::size_t i : {std::size_t{3}, std::size_t{6}, std::size_t{10}}) {
                const RgbImage out = cuda_transform_image(plan, inputs[i].view(), 0, mis);
                const Diff d = compare(want[i].view(), out.view());
                total.add(d);
                t.expect(d.identical(), "flat kernel, misalignment " + std::to_string(mis) + ": " + d.text());
            }
    }
    // Strided pageable and strided pinned tiles: only the pixels are written, never the padding.
    {
        const TransformPlan& plan = plans[0];
        const RgbImage img = test_pixels(333, 77, 7);
        RgbImage want(333, 77);
        cpu->transform(plan, {TileJob{img.view(), want.span()}});
        Strided src = strided_copy(img.view(), 5);
        Strided dst = strided_copy(RgbImage(333, 77).view(), 7);
        gpu_small->transform(plan, {TileJob{src.view(), dst.span()}});
        Diff d = compare(want.view(), dst.view());
        total.add(d);
        t.expect(d.identical(), "strided pageable tile: " + d.text());
        t.expect(padding_intact(dst.bytes.data(), 333, 77, dst.stride), "strided pageable tile: padding overwritten");
        t.expect(same_pixels(src.view(), img.view()), "strided pageable tile: input modified");

        const std::size_t in_stride = 3 * 333 + 9, out_stride = 3 * 333 + 13;
        PinnedBytes pin_in = cuda_alloc_pinned(in_stride * 77), pin_out = cuda_alloc_pinned(out_stride * 77);
        std::memset(pin_in.get(), kSentinel, in_stride * 77);
        std::memset(pin_out.get(), kSentinel, out_stride * 77);
        for (int y = 0; y < 77; ++y)
            std::memcpy(pin_in.get() + static_cast<std::size_t>(y) * in_stride, img.view().row(y), 3 * 333);
        const RgbView pv{pin_in.get(), 333, 77, in_stride};
        const RgbSpan ps{pin_out.get(), 333, 77, out_stride};
        gpu->transform(plan, {TileJob{pv, ps}});
        d = compare(want.view(), RgbView(ps));
        total.add(d);
        t.expect(d.identical(), "strided pinned tile (direct 2D DMA): " + d.text());
        t.expect(padding_intact(pin_out.get(), 333, 77, out_stride), "strided pinned tile: padding overwritten");
        t.expect(same_pixels(pv, img.view()), "strided pinned tile: input modified");
    }
    // Aliasing is refused, as on the CPU.
    {
        RgbImage img = test_pixels(8, 8, 9);
        bool refused = false;
        try {
            gpu->transform(plans[0], {TileJob{img.view(), img.span()}});
        } catch (const Error& e) {
            refused = e.kind() == ErrorKind::Internal;
        }
        t.expect(refused, "an output aliasing its input was not refused");
    }
    log << "  transform total: " << total.text() << "\n";
    t.expect(total.identical(), "overall: " + total.text());
    return t.result();
}

struct Outcome {
    bool ok = false;
    StainModel model;
    ErrorKind kind = ErrorKind::Internal;
    std::string message;
};

Outcome try_estimate(Backend& b, const std::vector<RgbView>& images, const EstimateParams& p) {
    Outcome o;
    try {
        o.model = b.estimate(images, p);
        o.ok = true;
    } catch (const Error& e) {
        o.kind = e.kind();
        o.message = e.what();
    }
    return o;
}

CheckResult estimate_parity(std::ostream& log) {
    Tally t(log);
    const auto cpu = make_cpu_backend(2);
    const auto gpu = gpu_backend();
    struct Case {
        std::string name;
        std::vector<RgbImage> images;
        EstimateParams params;
    };
    std::vector<Case> cases;
    EstimateParams def;
    cases.push_back({"lab A 512x512", {synthetic(synthetic_stains_lab_a(), 512, 512, 1)}, def});
    cases.push_back({"lab B 320x320", {synthetic(synthetic_stains_lab_b(), 320, 320, 2)}, def});
    cases.push_back({"lab B 640x480, half glass", {synthetic(synthetic_stains_lab_b(), 640, 480, 3, 0.5)}, def});
    cases.push_back({"pooled 3 images",
                     {synthetic(synthetic_stains_lab_a(), 256, 256, 4), synthetic(synthetic_stains_lab_a(), 300, 200, 5),
                      synthetic(synthetic_stains_lab_a(), 129, 131, 6)},
                     def});
    EstimateParams small = def;
    small.sample_size = 5000;
    small.seed = 7;
    cases.push_back({"lab B, sample 5000", {synthetic(synthetic_stains_lab_b(), 400, 300, 8)}, small});
    EstimateParams all = def;
    all.sample_size = 1u << 30;
    cases.push_back({"lab A, every tissue pixel", {synthetic(synthetic_stains_lab_a(), 300, 300, 9)}, all});
    EstimateParams zero = def;
    zero.max_iterations = 0;
    cases.push_back({"lab A, 0 iterations (the start)", {synthetic(synthetic_stains_lab_a(), 256, 256, 10)}, zero});
    EstimateParams one = def;
    one.max_iterations = 1;
    cases.push_back({"lab B, 1 iteration", {synthetic(synthetic_stains_lab_b(), 256, 256, 11)}, one});
    EstimateParams exact = def;
    exact.tolerance = 0;
    cases.push_back({"lab B, tolerance 0", {synthetic(synthetic_stains_lab_b(), 256, 256, 12)}, exact});
    cases.push_back({"random pixels 300x300", {test_pixels(300, 300, 13)}, def});
    // Ink-like colours left out across images of one segment, and too few of them to leave out.
    cases.push_back({"pooled, random colours in 2 of 3 images",
                     {test_pixels(200, 150, 14), synthetic(synthetic_stains_lab_a(), 256, 256, 15), test_pixels(120, 90, 16)},
                     def});
    cases.push_back({"pooled, a few random colours (under 1 in 1,000 left out)",
                     {synthetic(synthetic_stains_lab_b(), 512, 512, 17), test_pixels(8, 8, 18)},
                     def});
    cases.push_back({"white 64x64", {uniform(64, 64, 255, 255, 255)}, def});
    cases.push_back({"black 64x64", {uniform(64, 64, 0, 0, 0)}, def});
    cases.push_back({"uniform pink 100x100", {uniform(100, 100, 200, 120, 170)}, def});
    cases.push_back({"no images", {}, def});
    EstimateParams none = def;  // SNMF of an empty sample: the reference start, then no stain
    none.min_tissue_pixels = 0;
    none.min_tissue_fraction = 0;
    cases.push_back({"white, min tissue 0", {uniform(40, 40, 255, 255, 255)}, none});
    for (const Case& c : cases) {
        std::vector<RgbView> views;
        for (const RgbImage& im : c.images) views.push_back(im.view());
        const Outcome a = try_estimate(*cpu, views, c.params);
        const Outcome b = try_estimate(*gpu, views, c.params);
        if (!t.expect(a.ok == b.ok, c.name + ": cpu " + (a.ok ? "succeeded" : "failed (" + a.message + ")") +
                                        ", gpu " + (b.ok ? "succeeded" : "failed (" + b.message + ")")))
            continue;
        if (a.ok) {
            expect_models_agree(t, c.name, a.model, b.model);
        } else {
            log << "  " << c.name << ": both fail: " << b.message << "\n";
            t.expect(a.kind == b.kind && a.message == b.message,
                     c.name + ": failure differs: cpu \"" + a.message + "\", gpu \"" + b.message + "\"");
        }
    }
    // Repeatable: the same call twice gives the same bits.
    const RgbImage img = synthetic(synthetic_stains_lab_b(), 300, 300, 21);
    const StainModel m1 = gpu->estimate({img.view()}, def), m2 = gpu->estimate({img.view()}, def);
    t.expect(m1.stain == m2.stain && m1.max_conc == m2.max_conc, "GPU estimate is not bit-for-bit repeatable");
    return t.result();
}

CheckResult histogram_parity(std::ostream& log) {
    Tally t(log);
    const RgbImage a = synthetic(synthetic_stains_lab_b(), 512, 512, 31), b = test_pixels(300, 200, 32);
    const RgbImage white = uniform(50, 50, 255, 255, 255);
    float w[2][3];
    const StainMatrix s = synthetic_stains_lab_b();
    for (int k = 0; k < 2; ++k)
        for (int c = 0; c < 3; ++c) w[k][c] = static_cast<float>(s[static_cast<std::size_t>(k)][static_cast<std::size_t>(c)]);
    const px::Solver<float> solver = px::make_solver<float>(w, 0.01f);
    const std::vector<std::vector<RgbView>> inputs = {{a.view()}, {a.view(), b.view()}, {white.view()}, {}};
    for (std::size_t i = 0; i < inputs.size(); ++i) {
        const TissuePixels tissue = gather_tissue(inputs[i], nullptr);
        const std::vector<std::uint32_t> want = concentration_histograms(tissue, solver, nullptr);
        for (double q : {99.0, 50.0, 1.0}) {
            const double p_h = percentile_from_histogram(want.data(), px::kHistBins, q);
            const double p_e = percentile_from_histogram(want.data() + px::kHistBins, px::kHistBins, q);
            for (bool shared : {true, false}) {
                const CudaConcentrationStats got = cuda_concentration_stats(inputs[i], solver, q, 0, shared);
                const std::string what = "input " + std::to_string(i) + " q " + std::to_string(q) +
                                         (shared ? " (shared-memory histograms)" : " (global atomics)");
                std::size_t bins_differ = 0;
                for (std::size_t k = 0; k < want.size() && k < got.histograms.size(); ++k)
                    bins_differ += want[k] != got.histograms[k];
                t.expect(got.histograms.size() == want.size() && bins_differ == 0,
                         what + ": " + std::to_string(bins_differ) + " histogram bins differ");
                t.expect(got.tissue_pixels == tissue.count(), what + ": tissue counts differ");
                t.expect(rel_diff(p_h, got.percentile[0]) <= 1e-3 && rel_diff(p_e, got.percentile[1]) <= 1e-3,
                         what + ": percentiles differ: cpu " + std::to_string(p_h) + "/" + std::to_string(p_e) +
                             ", gpu " + std::to_string(got.percentile[0]) + "/" + std::to_string(got.percentile[1]));
                t.expect(std::isfinite(got.percentile[0]) && std::isfinite(got.percentile[1]), what + ": NaN percentile");
                if (q == 99.0 && shared)
                    log << "  input " << i << ": " << tissue.count() << " tissue pixels, p99 cpu " << p_h << "/" << p_e
                        << " gpu " << got.percentile[0] << "/" << got.percentile[1] << "\n";
            }
        }
    }
    return t.result();
}

CheckResult tiles_parity(std::ostream& log) {
    Tally t(log);
    const auto cpu = make_cpu_backend(2);
    std::vector<RgbImage> tiles;
    for (int i = 0; i < 8; ++i)
        tiles.push_back(synthetic(i % 2 ? synthetic_stains_lab_b() : synthetic_stains_lab_a(), 256, 256,
                                  static_cast<std::uint64_t>(40 + i)));
    tiles.push_back(uniform(128, 128, 255, 255, 255));  // glass: too little tissue
    tiles.push_back(test_pixels(100, 100, 50));         // noise
    tiles.push_back(test_pixels(1, 1, 51));
    tiles.push_back(RgbImage(0, 0));
    tiles.push_back(uniform(64, 64, 200, 120, 170));    // one colour: parallel or absent stain
    tiles.push_back(synthetic(synthetic_stains_lab_b(), 512, 384, 52, 0.5));
    tiles.push_back(synthetic(synthetic_stains_lab_a(), 33, 1000, 53));
    const std::vector<RgbImage> originals = tiles;
    Strided strided = strided_copy(tiles[1].view(), 11);
    const StainModel target = builtin_reference();
    EstimateParams params;

    std::vector<RgbImage> want;
    std::vector<TileJob> cpu_jobs;
    for (const RgbImage& im : tiles) want.emplace_back(im.width, im.height);
    for (std::size_t i = 0; i < tiles.size(); ++i) cpu_jobs.push_back(TileJob{tiles[i].view(), want[i].span()});
    const std::vector<TileOutcome> cpu_out = cpu->normalize_tiles(target, params, cpu_jobs);

    struct Variant {
        std::string name;
        std::size_t staging;
        int max_tiles;
    };
    for (const Variant& v : {Variant{"default batches", 64u << 20, 256}, Variant{"3 tiles, 1 MiB staging", 1u << 20, 3}}) {
        const auto gpu = gpu_backend(v.staging, v.max_tiles);
        std::vector<RgbImage> got;
        std::vector<TileJob> jobs;
        for (const RgbImage& im : tiles) got.emplace_back(im.width, im.height);
        for (std::size_t i = 0; i < tiles.size(); ++i) jobs.push_back(TileJob{tiles[i].view(), got[i].span()});
        Strided out_strided = strided_copy(RgbImage(tiles[1].width, tiles[1].height).view(), 3);
        jobs.push_back(TileJob{strided.view(), out_strided.span()});
        const std::vector<TileOutcome> gpu_out = gpu->normalize_tiles(target, params, jobs);
        t.expect(gpu_out.size() == jobs.size(), v.name + ": outcome count");
        Diff total;
        int normalized = 0;
        for (std::size_t i = 0; i < tiles.size() && i < gpu_out.size(); ++i) {
            const std::string what = v.name + ", tile " + std::to_string(i) + " (" + std::to_string(tiles[i].width) +
                                     "x" + std::to_string(tiles[i].height) + ")";
            const TileOutcome& a = cpu_out[i];
            const TileOutcome& b = gpu_out[i];
            if (!t.expect(a.normalized == b.normalized, what + ": cpu " + (a.normalized ? "normalized" : a.reason) +
                                                             ", gpu " + (b.normalized ? "normalized" : b.reason)))
                continue;
            const Diff d = compare(want[i].view(), got[i].view());
            total.add(d);
            t.expect(d.within_contract(), what + ": " + d.text());
            if (a.normalized) {
                ++normalized;
                expect_models_agree(t, what, a.source, b.source);
                t.expect(std::fabs(a.tissue_fraction - b.tissue_fraction) < 1e-12, what + ": tissue fractions differ");
            } else {
                t.expect(a.reason == b.reason, what + ": reasons differ: \"" + a.reason + "\" vs \"" + b.reason + "\"");
                t.expect(same_pixels(got[i].view(), tiles[i].view()), what + ": pass-through tile is not a copy");
                if (v.max_tiles == 256) log << "  tile " << i << " passed through: " << b.reason << "\n";
            }
            t.expect(same_pixels(tiles[i].view(), originals[i].view()), what + ": input modified");
        }
        if (gpu_out.size() == jobs.size()) {
            const Diff d = compare(got[1].view(), out_strided.view());
            t.expect(d.differing == 0 && gpu_out.back().normalized == gpu_out[1].normalized,
                     v.name + ": strided copy of tile 1 differs from tile 1: " + d.text());
            t.expect(padding_intact(out_strided.bytes.data(), out_strided.width, out_strided.height, out_strided.stride),
                     v.name + ": padding of a strided output overwritten");
        }
        log << "  " << v.name << ": " << normalized << " of " << tiles.size() << " tiles normalized; " << total.text()
            << "\n";
        t.expect(total.within_contract(), v.name + " overall: " + total.text());
    }
    return t.result();
}

CheckResult downsample_device(std::ostream& log) {
    Tally t(log);
    const std::vector<std::pair<int, int>> sizes = {{0, 0}, {1, 1}, {2, 2}, {3, 3},     {5, 1},   {1, 5},
                                                    {2, 7}, {7, 2}, {257, 3}, {256, 256}, {4097, 5}, {1001, 999}};
    std::size_t pixels = 0;
    for (std::size_t i = 0; i < sizes.size(); ++i) {
        const RgbImage img = test_pixels(sizes[i].first, sizes[i].second, 60 + i);
        const RgbImage want = downsample_2x2_reference(img.view());
        const RgbImage got = cuda_downsample_2x2(img.view(), 0);
        const RgbImage got_strided = cuda_downsample_2x2(strided_copy(img.view(), 5).view(), 0);
        const std::string what = std::to_string(sizes[i].first) + "x" + std::to_string(sizes[i].second);
        t.expect(got.width == want.width && got.height == want.height, what + ": output size");
        t.expect(got.pixels == want.pixels, what + ": pixels differ from the host reference");
        t.expect(got_strided.pixels == want.pixels, what + " (strided input): pixels differ");
        pixels += want.pixel_count();
    }
    log << "  " << pixels << " output pixels compared\n";
    return t.result();
}

// ---- host-only checks ---------------------------------------------------------------------

CheckResult downsample_reference_known(std::ostream& log) {
    Tally t(log);
    auto img_from = [](int w, int h, std::vector<std::uint8_t> px) {
        RgbImage im(w, h);
        im.pixels = std::move(px);
        return im;
    };
    // 2x2 -> 1x1: (0 + 1 + 2 + 3 + 2) / 4 = 2 (rounds 1.5 up), (10+20+30+40+2)/4 = 25,
    // (255 * 4 + 2) / 4 = 255 (no overflow).
    const RgbImage a = img_from(2, 2, {0, 10, 255, 1, 20, 255, 2, 30, 255, 3, 40, 255});
    const RgbImage ra = downsample_2x2_reference(a.view());
    t.expect(ra.width == 1 && ra.height == 1, "2x2 -> 1x1 size");
    t.expect(ra.pixels == std::vector<std::uint8_t>({2, 25, 255}), "2x2 block average with rounding");
    // 3x1 -> 2x1: the odd last column stands for itself (replicated), the odd row too.
    const RgbImage b = img_from(3, 1, {10, 0, 0, 13, 0, 0, 200, 100, 1});
    const RgbImage rb = downsample_2x2_reference(b.view());
    t.expect(rb.width == 2 && rb.height == 1, "3x1 -> 2x1 size");
    // (10 + 13 + 10 + 13 + 2) / 4 = 12; the last: (4 * 200 + 2) / 4 = 200, (4 + 2) / 4 = 1.
    t.expect(rb.pixels == std::vector<std::uint8_t>({12, 0, 0, 200, 100, 1}), "odd column replicated");
    // 1x3 -> 1x2.
    const RgbImage c = img_from(1, 3, {0, 0, 0, 3, 3, 3, 9, 9, 9});
    const RgbImage rc = downsample_2x2_reference(c.view());
    t.expect(rc.width == 1 && rc.height == 2, "1x3 -> 1x2 size");
    // (0 + 0 + 3 + 3 + 2) / 4 = 2; (9 * 4 + 2) / 4 = 9.
    t.expect(rc.pixels == std::vector<std::uint8_t>({2, 2, 2, 9, 9, 9}), "odd row replicated");
    // 1x1 is itself; 0x0 is empty; a strided view reads only its pixels.
    const RgbImage d = img_from(1, 1, {7, 8, 9});
    t.expect(downsample_2x2_reference(d.view()).pixels == d.pixels, "1x1 is unchanged");
    t.expect(downsample_2x2_reference(RgbImage(0, 0).view()).pixels.empty(), "0x0 is empty");
    const Strided s = strided_copy(a.view(), 4);
    t.expect(downsample_2x2_reference(s.view()).pixels == ra.pixels, "strided input");
    // A constant image stays constant at every size.
    for (int w = 1; w <= 9; ++w)
        for (int h = 1; h <= 9; ++h) {
            const RgbImage u = uniform(w, h, 17, 128, 254);
            const RgbImage r = downsample_2x2_reference(u.view());
            t.expect(r.width == (w + 1) / 2 && r.height == (h + 1) / 2 &&
                         r.pixels == uniform((w + 1) / 2, (h + 1) / 2, 17, 128, 254).pixels,
                     "constant " + std::to_string(w) + "x" + std::to_string(h));
        }
    log << "  known inputs checked\n";
    return t.result();
}

// The device's way of driving SNMF (one C-step per launch, at most sm::max_c_steps launches,
// block sums added in sample order), run on the host, against vn::snmf.
CheckResult snmf_mirror_host(std::ostream& log) {
    Tally t(log);
    // The SNMF state machine, stepped on the host exactly as the device steps it, against
    // vn::snmf from the same start: the same W, objective and iteration count, bit for bit.
    struct Case {
        StainMatrix stains;
        std::uint64_t seed;
        int max_iterations;
        double tolerance;
        std::size_t sample;
    };
    for (const Case& c : {Case{synthetic_stains_lab_a(), 1, 200, 1e-7, 20000}, Case{synthetic_stains_lab_b(), 2, 200, 1e-7, 20000},
                          Case{synthetic_stains_lab_b(), 3, 200, 0.0, 3000}, Case{synthetic_stains_lab_a(), 4, 1, 1e-7, 20000},
                          Case{synthetic_stains_lab_a(), 5, 0, 1e-7, 20000}, Case{synthetic_stains_lab_b(), 6, 200, 1e-7, 300}}) {
        const RgbImage img = synthetic(c.stains, 256, 256, c.seed);
        const TissuePixels tissue = gather_tissue({img.view()}, nullptr);
        const OdSample s = sample_od(tissue, c.sample, c.seed);
        const OdSamples x{s.r.data(), s.g.data(), s.b.data(), s.r.size()};
        const SnmfResult want = snmf(x, 0.1, c.max_iterations, c.tolerance);
        const StainMatrix start = snmf_start(x);
        double w0[2][3];
        for (int k = 0; k < 2; ++k)
            for (int ch = 0; ch < 3; ++ch) w0[k][ch] = start[static_cast<std::size_t>(k)][static_cast<std::size_t>(ch)];
        sm::State st{};
        sm::snmf_begin(st, w0, x.n);
        for (int step = 0; step < sm::max_c_steps(c.max_iterations) && st.active; ++step) {
            const px::Solver<float> solver = sm::c_step_solver(st.eval, 0.1);
            sm::Stats stats;
            sm::clear(stats);
            for (std::size_t i0 = 0; i0 < x.n; i0 += sm::kBlock) {
                double p[sm::kPartials];
                const int count = static_cast<int>(std::min<std::size_t>(sm::kBlock, x.n - i0));
                sm::block_partials(solver, x.r + i0, x.g + i0, x.b + i0, 1, count, p);
                sm::add_partials(stats, p);
            }
            sm::snmf_advance(st, stats, 0.1, c.max_iterations, c.tolerance);
        }
        t.expect(!st.active, "SNMF mirror still active after max_c_steps");
        bool same_w = true;
        for (int k = 0; k < 2; ++k)
            for (int ch = 0; ch < 3; ++ch)
                same_w = same_w && st.w[k][ch] == want.w[static_cast<std::size_t>(k)][static_cast<std::size_t>(ch)];
        const std::string what = "SNMF mirror, seed " + std::to_string(c.seed);
        t.expect(same_w, what + ": W differs from vn::snmf");
        t.expect(st.f == want.objective, what + ": objective differs");
        t.expect(st.iterations == want.iterations, what + ": iterations " + std::to_string(st.iterations) + " vs " +
                                                       std::to_string(want.iterations));
        t.expect((st.converged != 0) == want.converged, what + ": convergence flag differs");
    }
    log << "  the device stepping of SNMF reproduces vn::snmf\n";
    return t.result();
}

// Without a device, make_cuda_backend must throw Error(Device) with a one-line reason; with
// one, so must a device id that does not exist. Either way cuda_device_count() never throws.
CheckResult backend_errors(std::ostream& log) {
    Tally t(log);
    int count = -1;
    try {
        count = cuda_device_count();
    } catch (...) {
        count = -2;
    }
    t.expect(count >= 0, "cuda_device_count() threw");
    const std::vector<int> ids = count > 0 ? std::vector<int>{count + 7} : std::vector<int>{};
    bool device_error = false;
    std::string message;
    try {
        (void)make_cuda_backend(ids, 1);
    } catch (const Error& e) {
        device_error = e.kind() == ErrorKind::Device;
        message = e.what();
    }
    log << "  " << (count > 0 ? "bad device id" : "no device") << ": \"" << message << "\"\n";
    t.expect(device_error, "make_cuda_backend did not throw Error(Device)");
    t.expect(!message.empty() && message.find('\n') == std::string::npos, "the error is not one non-empty line");
    if (count == 0) t.expect(!cuda_unavailable_reason().empty(), "no reason given for the missing device");
    return t.result();
}

// The device's C-step splits sm::block_partials over 8 threads, one per float lane
// (sm::lane_partials), and adds the lanes in order (sm::sum_lanes): the same bits as
// block_partials, for full and partial blocks, in the device's interleaved sample layout.
CheckResult c_step_lane_split(std::ostream& log) {
    Tally t(log);
    std::mt19937_64 rng(42);
    std::uniform_real_distribution<float> od(0.0f, 2.5f);
    const StainMatrix stains[2] = {synthetic_stains_lab_a(), synthetic_stains_lab_b()};
    int blocks = 0;
    for (const StainMatrix& m : stains) {
        double w[2][3];
        for (int k = 0; k < 2; ++k)
            for (int c = 0; c < 3; ++c) w[k][c] = m[static_cast<std::size_t>(k)][static_cast<std::size_t>(c)];
        const px::Solver<float> solver = sm::c_step_solver(w, 0.1);
        const std::size_t stride = 7;  // items interleaved as on the device: sample j of item i at j * items + i
        for (int count : {sm::kBlock, 255, 200, 9, 1, 0}) {
            std::vector<float> r(sm::kBlock * stride), g(r.size()), b(r.size());
            for (std::size_t i = 0; i < r.size(); ++i) {
                r[i] = od(rng);
                g[i] = od(rng);
                b[i] = od(rng);
            }
            for (std::size_t item = 0; item < stride; ++item) {
                double want[sm::kPartials];
                sm::block_partials(solver, r.data() + item, g.data() + item, b.data() + item, stride, count, want);
                float lanes[sm::kLanes][sm::kPartials];
                for (int l = 0; l < sm::kLanes; ++l)
                    sm::lane_partials(solver, r.data() + item, g.data() + item, b.data() + item, stride, count, l, lanes[l]);
                bool same = true;
                for (int k = 0; k < sm::kPartials; ++k) {
                    const double got = sm::sum_lanes([&](int l) { return lanes[l][k]; });
                    same = same && std::memcmp(&got, &want[k], sizeof got) == 0;
                }
                t.expect(same, "count " + std::to_string(count) + ", item " + std::to_string(item) +
                                   ": lane sums differ from block_partials");
                ++blocks;
            }
        }
    }
    log << "  " << blocks << " blocks compared bit for bit\n";
    return t.result();
}

// The verdict on cuSOLVER's batched eigensolver results (cuda/estimator.cpp): a segment that
// did not converge, whose input was refused or whose eigenvalues are not finite is an error
// naming it; segments not being estimated are not looked at.
CheckResult eigensolver_verdict(std::ostream& log) {
    Tally t(log);
    const double nan = std::nan("");
    auto verdict = [](const std::vector<int>& info, const std::vector<double>& ev, const std::vector<std::size_t>& segs) {
        try {
            check_principal_axes(info, ev, segs);
            return std::string("ok");
        } catch (const Error& e) {
            return std::string(e.kind() == ErrorKind::Device ? "Device: " : "other: ") + e.what();
        }
    };
    const std::vector<double> good = {0.1, 0.2, 0.3, 0.1, 0.2, 0.3, 0.1, 0.2, 0.3};
    std::string v = verdict({0, 0, 0}, good, {0, 1, 2});
    t.expect(v == "ok", "converged, finite: " + v);
    v = verdict({0, 7, 0}, good, {0, 1, 2});
    log << "  no convergence: " << v << "\n";
    t.expect(v.rfind("Device: ", 0) == 0 && v.find("segment 1") != std::string::npos &&
                 v.find("no convergence") != std::string::npos,
             "info > 0 is not a Device error naming segment 1: " + v);
    v = verdict({0, 0, -3}, good, {0, 1, 2});
    t.expect(v.rfind("Device: ", 0) == 0 && v.find("segment 2") != std::string::npos, "info < 0: " + v);
    std::vector<double> with_nan = good;
    with_nan[4] = nan;
    v = verdict({0, 0, 0}, with_nan, {0, 1, 2});
    log << "  NaN eigenvalue: " << v << "\n";
    t.expect(v.rfind("Device: ", 0) == 0 && v.find("not finite") != std::string::npos, "NaN eigenvalue: " + v);
    with_nan[4] = std::numeric_limits<double>::infinity();
    t.expect(verdict({0, 0, 0}, with_nan, {0, 1, 2}) != "ok", "an infinite eigenvalue passed");
    // Segment 1 is not estimated (too little tissue): its result does not matter.
    v = verdict({0, 5, 0}, with_nan, {0, 2});
    t.expect(v == "ok", "a segment that is not estimated was checked: " + v);
    return t.result();
}

}  // namespace

RgbImage downsample_2x2_reference(RgbView src) {
    const int ow = (src.width + 1) / 2, oh = (src.height + 1) / 2;
    RgbImage out(ow, oh);
    if (src.width <= 0 || src.height <= 0) return out;
    for (int oy = 0; oy < oh; ++oy) {
        const std::uint8_t* r0 = src.row(2 * oy);
        const std::uint8_t* r1 = src.row(std::min(2 * oy + 1, src.height - 1));
        for (int ox = 0; ox < ow; ++ox) {
            const int x0 = 2 * ox, x1 = std::min(2 * ox + 1, src.width - 1);
            for (int c = 0; c < 3; ++c) {
                const int sum = r0[3 * x0 + c] + r0[3 * x1 + c] + r1[3 * x0 + c] + r1[3 * x1 + c];
                out.pixels[(static_cast<std::size_t>(oy) * static_cast<std::size_t>(ow) + static_cast<std::size_t>(ox)) * 3 +
                           static_cast<std::size_t>(c)] = static_cast<std::uint8_t>((sum + 2) / 4);
            }
        }
    }
    return out;
}

bool device_available(std::string& reason) {
    if (cuda_device_count() > 0) return true;
    reason = cuda_unavailable_reason();
    return false;
}

const std::vector<Check>& all_checks() {
    static const std::vector<Check> checks = {
        {"downsample reference (host, known inputs)", false, downsample_reference_known},
        {"device stepping of SNMF vs core (host)", false, snmf_mirror_host},
        {"backend creation errors are one-line Device errors", false, backend_errors},
        {"eigensolver results checked: no convergence or NaN is an error (host)", false, eigensolver_verdict},
        {"C-step split into float lanes equals block_partials (host)", false, c_step_lane_split},
        {"transform parity over awkward sizes", true, transform_parity},
        {"backend host buffers and properties", true, host_buffer_parity},
        {"concentration histograms and percentiles", true, histogram_parity},
        {"estimate parity (synthetic, random, blank)", true, estimate_parity},
        {"per-tile normalize_tiles parity", true, tiles_parity},
        {"2x2 downsampling vs host reference", true, downsample_device},
    };
    return checks;
}

}  // namespace vn::cudatest
