// GPU benchmark: prints a markdown table.
//   (a) per-tile estimation + transform of 512x512 synthetic H&E tiles (or those of --raw), in
//       calls of N tiles: tiles per second, GPU from pinned to pinned and from pageable to
//       pageable host memory, and the CPU backend;
//   (b) fixed-model transform of a device-resident buffer: bytes moved per second (3 read +
//       3 written per pixel) as a fraction of a device-to-device cudaMemcpy measured in the
//       same run;
//   (c) host -> device -> host pipelined transform with pinned (direct DMA) and pageable
//       (staged) host buffers, against the CPU backend on the same machine.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <sstream>
#include <string>
#include <vector>

#include "core/backend.hpp"
#include "core/error.hpp"
#include "core/model.hpp"
#include "core/synthetic.hpp"
#include "core/transform.hpp"
#include "cuda/cuda_backend.hpp"
#include "tests/cuda/device_ops.hpp"
#include "cuda/device_tables.cuh"
#include "cuda/raii.cuh"
#include "cuda/transform.cuh"

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

struct Options {
    int tiles = 256;           // (a) tiles per call
    int tile_size = 512;
    int calls = 3;             // (a) timed calls
    int cpu_tiles = 32;        // (a) tiles for the CPU comparison
    std::size_t big_mib = 1024;   // (b) device-resident pixels
    std::size_t pipe_mib = 1024;  // (c) host pixels
    int cpu_threads = 0;
    std::string raw;     // (a) tiles from this file (vahanorm-synth-tiles --raw), else synthetic
    std::string target;  // (a) target model (JSON), else the built-in reference
};

struct Row {
    std::string bench, value, unit, notes;
};

std::string fmt(double v, int digits = 1) {
    char b[64];
    std::snprintf(b, sizeof b, "%.*f", digits, v);
    return b;
}

// Fills `img` by repeating a synthetic H&E tile (rendering every pixel would take longer than the benchmark).
void fill_with_tissue(std::uint8_t* dst, std::size_t bytes, const vn::RgbImage& pattern) {
    const std::size_t n = pattern.pixels.size();
    for (std::size_t off = 0; off < bytes; off += n) std::memcpy(dst + off, pattern.pixels.data(), std::min(n, bytes - off));
}

vn::RgbImage synthetic_tile(int size, std::uint64_t seed, bool lab_b) {
    vn::SyntheticSpec spec;
    spec.width = spec.height = size;
    spec.seed = seed;
    spec.stains = lab_b ? vn::synthetic_stains_lab_b() : vn::synthetic_stains_lab_a();
    return vn::render_synthetic(spec);
}

// A model file (the benchmark reads files itself: core has no file I/O, and io/ is not linked).
vn::StainModel read_model_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) vn::fail(vn::ErrorKind::Input, path + ": cannot open model file");
    std::ostringstream text;
    text << in.rdbuf();
    return vn::model_from_json(text.str(), path);
}

std::vector<vn::RgbImage> read_raw_tiles(const std::string& path, int size) {
    std::FILE* f = std::fopen(path.c_str(), "rb");
    if (!f) vn::fail(vn::ErrorKind::Input, "cannot open " + path);
    std::vector<vn::RgbImage> tiles;
    for (;;) {
        vn::RgbImage t(size, size);
        if (std::fread(t.pixels.data(), 1, t.pixels.size(), f) != t.pixels.size()) break;
        tiles.push_back(std::move(t));
    }
    std::fclose(f);
    if (tiles.empty()) vn::fail(vn::ErrorKind::Input, path + ": no whole " + std::to_string(size) + "^2 tile");
    return tiles;
}

void per_tile(const Options& o, vn::Backend& gpu, vn::Backend& cpu, std::vector<Row>& rows) {
    // The tiles of --raw (the Python tools' tiles), else 16 distinct synthetic tiles, repeated:
    // estimation does not care that tiles repeat.
    std::vector<vn::RgbImage> distinct;
    if (!o.raw.empty()) {
        distinct = read_raw_tiles(o.raw, o.tile_size);
    } else {
        for (int i = 0; i < 16; ++i)
            distinct.push_back(synthetic_tile(o.tile_size, static_cast<std::uint64_t>(i + 1), i % 2 == 1));
    }
    const std::size_t n = static_cast<std::size_t>(o.tiles);
    const std::size_t tile_bytes = distinct[0].pixels.size();
    std::vector<vn::RgbImage> out(n, vn::RgbImage(o.tile_size, o.tile_size));
    std::vector<vn::TileJob> jobs;
    for (std::size_t i = 0; i < n; ++i) jobs.push_back(vn::TileJob{distinct[i % distinct.size()].view(), out[i].span()});
    const vn::StainModel target = o.target.empty() ? vn::builtin_reference() : read_model_file(o.target);
    const vn::EstimateParams params;
    const std::string what = std::to_string(o.tiles) + " tiles of " + std::to_string(o.tile_size) + "^2 per call (" +
                             std::to_string(distinct.size()) + (o.raw.empty() ? " synthetic" : " from --raw") +
                             "), target " + (o.target.empty() ? "built-in" : o.target);
    auto run = [&](const std::vector<vn::TileJob>& js, const char* name) {
        (void)gpu.normalize_tiles(target, params, js);  // warm-up: allocations, pinned staging
        const auto t0 = Clock::now();
        int normalized = 0;
        for (int c = 0; c < o.calls; ++c)
            for (const vn::TileOutcome& r : gpu.normalize_tiles(target, params, js)) normalized += r.normalized;
        const double rate = static_cast<double>(n) * o.calls / seconds_since(t0);
        rows.push_back({std::string("(a) per-tile estimate + transform, GPU, ") + name, fmt(rate), "tiles/s",
                        what + "; " + std::to_string(normalized) + "/" + std::to_string(n * static_cast<std::size_t>(o.calls)) +
                            " normalized"});
        return rate;
    };
    // Pinned host memory in and out (the goal's figure: direct 2D DMA both ways, no staging copy).
    vn::PinnedBytes pin_in = vn::cuda_alloc_pinned(n * tile_bytes), pin_out = vn::cuda_alloc_pinned(n * tile_bytes);
    std::vector<vn::TileJob> pinned_jobs;
    for (std::size_t i = 0; i < n; ++i) {
        std::memcpy(pin_in.get() + i * tile_bytes, distinct[i % distinct.size()].pixels.data(), tile_bytes);
        const std::size_t stride = 3u * static_cast<std::size_t>(o.tile_size);
        pinned_jobs.push_back(vn::TileJob{vn::RgbView{pin_in.get() + i * tile_bytes, o.tile_size, o.tile_size, stride},
                                          vn::RgbSpan{pin_out.get() + i * tile_bytes, o.tile_size, o.tile_size, stride}});
    }
    const double gpu_rate = run(pinned_jobs, "pinned to pinned");
    (void)run(jobs, "pageable to pageable");

    std::vector<vn::TileJob> cpu_jobs(jobs.begin(), jobs.begin() + std::min<std::ptrdiff_t>(o.cpu_tiles, o.tiles));
    const auto t1 = Clock::now();
    (void)cpu.normalize_tiles(target, params, cpu_jobs);
    const double cpu_rate = static_cast<double>(cpu_jobs.size()) / seconds_since(t1);
    rows.push_back({"(a) per-tile estimate + transform, CPU", fmt(cpu_rate), "tiles/s",
                    cpu.name() + ", " + std::to_string(cpu_jobs.size()) + " tiles; GPU pinned/CPU = " +
                        fmt(gpu_rate / cpu_rate) + "x"});
}

void device_resident(const Options& o, std::vector<Row>& rows) {
    using namespace vn::cuda;
    DeviceGuard guard(0);
    const std::size_t pixels = (o.big_mib << 20) / 3;
    const std::size_t bytes = 3 * pixels;
    DeviceBuffer<std::uint8_t> in(bytes), out(bytes);
    {
        const vn::RgbImage tile = synthetic_tile(512, 99, false);
        std::vector<std::uint8_t> host(std::min<std::size_t>(bytes, 48u << 20));
        fill_with_tissue(host.data(), host.size(), tile);
        for (std::size_t off = 0; off < bytes; off += host.size())
            VN_CUDA_CHECK(cudaMemcpy(in.get() + off, host.data(), std::min(host.size(), bytes - off), cudaMemcpyHostToDevice));
    }
    const DeviceTables tables;
    Stream stream;
    Event start(true), stop(true);
    const vn::TransformPlan plan =
        vn::make_plan(vn::builtin_reference(), [] {
            vn::StainModel m;
            m.stain = vn::synthetic_stains_lab_b();
            m.max_conc = {1.2, 0.8};
            return m;
        }());
    const int reps = 10;
    launch_transform(tables.view(), plan, in.get(), out.get(), pixels, stream.get());  // warm-up
    start.record(stream.get());
    for (int r = 0; r < reps; ++r) launch_transform(tables.view(), plan, in.get(), out.get(), pixels, stream.get());
    stop.record(stream.get());
    stop.synchronize();
    const double kernel_s = stop.since(start) / 1e3 / reps;
    VN_CUDA_CHECK(cudaMemcpyAsync(out.get(), in.get(), bytes, cudaMemcpyDeviceToDevice, stream.get()));  // warm-up
    start.record(stream.get());
    for (int r = 0; r < reps; ++r)
        VN_CUDA_CHECK(cudaMemcpyAsync(out.get(), in.get(), bytes, cudaMemcpyDeviceToDevice, stream.get()));
    stop.record(stream.get());
    stop.synchronize();
    const double copy_s = stop.since(start) / 1e3 / reps;
    const double kernel_bw = 2.0 * static_cast<double>(bytes) / kernel_s;  // 3 bytes read + 3 written per pixel
    const double copy_bw = 2.0 * static_cast<double>(bytes) / copy_s;     // read + write
    rows.push_back({"(b) device-resident transform", fmt(kernel_bw / 1e9), "GB/s",
                    fmt(static_cast<double>(pixels) / kernel_s / 1e9, 2) + " Gpx/s over " + std::to_string(o.big_mib) +
                        " MiB"});
    rows.push_back({"(b) cudaMemcpy device-to-device", fmt(copy_bw / 1e9), "GB/s", "read + write, same buffers"});
    rows.push_back({"(b) transform / memcpy bandwidth", fmt(100.0 * kernel_bw / copy_bw), "%", "of the copy's bandwidth"});
}

void pipelined(const Options& o, vn::Backend& gpu, vn::Backend& cpu, std::vector<Row>& rows) {
    const int side = 1024;  // tiles of 1024 x 1024 (3 MiB)
    const std::size_t tile_bytes = 3u * side * side;
    const std::size_t count = std::max<std::size_t>(1, (o.pipe_mib << 20) / tile_bytes);
    const std::size_t bytes = count * tile_bytes;
    const vn::RgbImage pattern = synthetic_tile(512, 7, true);
    const vn::TransformPlan plan = vn::make_plan(vn::builtin_reference(), vn::builtin_reference());

    auto jobs_for = [&](std::uint8_t* src, std::uint8_t* dst) {
        std::vector<vn::TileJob> jobs;
        for (std::size_t i = 0; i < count; ++i)
            jobs.push_back(vn::TileJob{vn::RgbView{src + i * tile_bytes, side, side, 3u * side},
                                       vn::RgbSpan{dst + i * tile_bytes, side, side, 3u * side}});
        return jobs;
    };
    auto time_it = [&](vn::Backend& b, const std::vector<vn::TileJob>& jobs, int reps) {
        b.transform(plan, jobs);  // warm-up
        const auto t0 = Clock::now();
        for (int r = 0; r < reps; ++r) b.transform(plan, jobs);
        return seconds_since(t0) / reps;
    };
    const double mpx = static_cast<double>(bytes / 3) / 1e6;

    vn::PinnedBytes pin_in = vn::cuda_alloc_pinned(bytes), pin_out = vn::cuda_alloc_pinned(bytes);
    fill_with_tissue(pin_in.get(), bytes, pattern);
    const double pinned_s = time_it(gpu, jobs_for(pin_in.get(), pin_out.get()), 3);
    rows.push_back({"(c) host->device->host, pinned buffers", fmt(static_cast<double>(bytes) / pinned_s / 1e9, 2),
                    "GB/s in", fmt(mpx / pinned_s, 0) + " Mpx/s, " + std::to_string(count) + " tiles of 1024^2"});

    std::vector<std::uint8_t> page_in(bytes), page_out(bytes);
    std::memcpy(page_in.data(), pin_in.get(), bytes);
    const double pageable_s = time_it(gpu, jobs_for(page_in.data(), page_out.data()), 3);
    rows.push_back({"(c) host->device->host, pageable buffers", fmt(static_cast<double>(bytes) / pageable_s / 1e9, 2),
                    "GB/s in", fmt(mpx / pageable_s, 0) + " Mpx/s (staged through pinned buffers)"});

    const double cpu_s = time_it(cpu, jobs_for(page_in.data(), page_out.data()), 1);
    rows.push_back({"(c) CPU backend, same tiles", fmt(static_cast<double>(bytes) / cpu_s / 1e9, 2), "GB/s in",
                    fmt(mpx / cpu_s, 0) + " Mpx/s, " + cpu.name() + "; GPU pinned/CPU = " + fmt(cpu_s / pinned_s) + "x"});
}

}  // namespace

int main(int argc, char** argv) {
    Options o;
    std::vector<std::string> only;
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        auto next = [&](const char* what) -> long {
            if (i + 1 >= argc) {
                std::fprintf(stderr, "%s needs a value\n", what);
                std::exit(64);
            }
            return std::strtol(argv[++i], nullptr, 10);
        };
        if (a == "--tiles") o.tiles = static_cast<int>(next("--tiles"));
        else if (a == "--tile-size") o.tile_size = static_cast<int>(next("--tile-size"));
        else if (a == "--calls") o.calls = static_cast<int>(next("--calls"));
        else if (a == "--cpu-tiles") o.cpu_tiles = static_cast<int>(next("--cpu-tiles"));
        else if (a == "--big-mib") o.big_mib = static_cast<std::size_t>(next("--big-mib"));
        else if (a == "--pipe-mib") o.pipe_mib = static_cast<std::size_t>(next("--pipe-mib"));
        else if (a == "--cpu-threads") o.cpu_threads = static_cast<int>(next("--cpu-threads"));
        else if ((a == "--raw" || a == "--target") && i + 1 < argc) (a == "--raw" ? o.raw : o.target) = argv[++i];
        else if (a == "--quick") {
            o.tiles = 64;
            o.calls = 1;
            o.cpu_tiles = 8;
            o.big_mib = 256;
            o.pipe_mib = 256;
        } else if (a == "--only") {
            if (i + 1 >= argc) return 64;
            only.push_back(argv[++i]);
        } else {
            std::fprintf(stderr,
                         "usage: %s [--quick] [--only a|b|c] [--tiles N] [--tile-size PX] [--calls N] [--cpu-tiles N]\n"
                         "          [--big-mib MIB] [--pipe-mib MIB] [--cpu-threads N] [--raw TILES.rgb] [--target MODEL]\n",
                         argv[0]);
            return 64;
        }
    }
    auto wanted = [&](const char* part) { return only.empty() || std::find(only.begin(), only.end(), part) != only.end(); };
    if (vn::cuda_device_count() == 0) {
        std::fprintf(stderr, "no CUDA device: %s\n", vn::cuda_unavailable_reason().c_str());
        return 2;
    }
    try {
        std::vector<Row> rows;
        const auto gpu = vn::make_cuda_backend({0}, o.cpu_threads);
        const auto cpu = vn::make_cpu_backend(o.cpu_threads);
        std::printf("GPU backend: %s; CPU backend: %s\n", gpu->name().c_str(), cpu->name().c_str());
        if (wanted("a")) per_tile(o, *gpu, *cpu, rows);
        if (wanted("b")) device_resident(o, rows);
        if (wanted("c")) pipelined(o, *gpu, *cpu, rows);
        std::printf("\n| benchmark | value | unit | notes |\n|---|---:|---|---|\n");
        for (const Row& r : rows)
            std::printf("| %s | %s | %s | %s |\n", r.bench.c_str(), r.value.c_str(), r.unit.c_str(), r.notes.c_str());
        return 0;
    } catch (const vn::Error& e) {
        std::fprintf(stderr, "error: %s\n", e.what());
        return 1;
    }
}
