// The tile batch pipeline (io/tile_batch.hpp): results in input order, failures recorded and
// the rest written, outputs the same bytes as one backend call per image for any thread count,
// tiles decoded into the backend's host buffers (read_image_into), a stop or a failed batch
// ending the run after whole batches.
#include <catch2/catch.hpp>

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <fstream>
#include <iterator>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "core/backend.hpp"
#include "core/synthetic.hpp"
#include "io/image_io.hpp"
#include "io/tile_batch.hpp"
#include "tests/support/errors.hpp"
#include "tests/support/recording_backend.hpp"
#include "tests/support/test_support.hpp"

using vn::InputPlan;
using vn::InputResult;
using vn::InputStatus;
using vn::test::RecordingBackend;
using vn::test::TempDir;

namespace {

std::string file_bytes(const std::string& path) {
    std::ifstream f(path, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
}

// `n` synthetic H&E tiles written as PNG into `dir`, planned to `dir`/out-<i>.png.
std::vector<InputPlan> synthetic_tiles(const TempDir& dir, int n) {
    std::vector<InputPlan> plans;
    for (int i = 0; i < n; ++i) {
        vn::SyntheticSpec spec;
        spec.width = 96 + 16 * i;
        spec.height = 80;
        spec.stains = i % 2 ? vn::synthetic_stains_lab_a() : vn::synthetic_stains_lab_b();
        spec.seed = static_cast<std::uint64_t>(i + 1);
        InputPlan p;
        p.input = dir.file("in-" + std::to_string(i) + ".png");
        p.output = dir.file("out-" + std::to_string(i) + ".png");
        vn::write_image(p.input, vn::render_synthetic(spec).view());
        plans.push_back(p);
    }
    return plans;
}

// The results of `plans` through `backend`, in the order they were reported.
std::vector<InputResult> run(const std::vector<InputPlan>& plans, vn::Backend& backend, const vn::TileBatchOptions& o,
                             const std::optional<vn::StainModel>& fixed = std::nullopt) {
    std::vector<InputResult> results;
    vn::normalize_tile_files(plans, backend, vn::builtin_reference(), fixed, vn::EstimateParams{}, o,
                             [&](InputResult&& r) { results.push_back(std::move(r)); });
    return results;
}

// The same through the CPU backend, `threads` of them.
std::vector<InputResult> run(const std::vector<InputPlan>& plans, int threads, const vn::TileBatchOptions& base = {},
                             const std::optional<vn::StainModel>& fixed = std::nullopt) {
    auto backend = vn::make_cpu_backend(threads);
    vn::TileBatchOptions o = base;
    o.threads = threads;
    return run(plans, *backend, o, fixed);
}

}  // namespace

TEST_CASE("tile batches write what one backend call per image gives, for any thread count", "[tile_batch]") {
    TempDir dir;
    const std::vector<InputPlan> plans = synthetic_tiles(dir, 11);  // batches of 4 and of 6 leave a remainder
    const std::vector<InputResult> one = run(plans, 1);
    REQUIRE(one.size() == plans.size());
    std::vector<std::string> bytes;
    for (std::size_t i = 0; i < plans.size(); ++i) {
        CHECK(one[i].input == plans[i].input);
        CHECK(one[i].status == InputStatus::Ok);
        REQUIRE(one[i].source_model);
        REQUIRE(one[i].qc);
        CHECK(one[i].qc->tissue_fraction);
        CHECK(one[i].timings_ms.encode);
        bytes.push_back(file_bytes(plans[i].output));

        // The same image alone through the backend.
        const vn::RgbImage in = vn::read_image(plans[i].input);
        vn::RgbImage out(in.width, in.height);
        auto backend = vn::make_cpu_backend(1);
        const auto outcomes =
            backend->normalize_tiles(vn::builtin_reference(), vn::EstimateParams{}, {vn::TileJob{in.view(), out.span()}});
        REQUIRE(outcomes[0].normalized);
        CHECK(vn::read_image(plans[i].output).pixels == out.pixels);
    }
    const std::vector<InputResult> three = run(plans, 3);
    for (std::size_t i = 0; i < plans.size(); ++i) {
        CHECK(three[i].input == plans[i].input);
        CHECK(file_bytes(plans[i].output) == bytes[i]);
    }
}

TEST_CASE("a failed tile is a result and the others are written", "[tile_batch]") {
    TempDir dir;
    std::vector<InputPlan> plans = synthetic_tiles(dir, 3);
    std::ofstream(plans[1].input, std::ios::binary) << "\x89PNG\r\n\x1a\nnot really";
    const std::vector<InputResult> r = run(plans, 2);
    REQUIRE(r.size() == 3);
    CHECK(r[0].status == InputStatus::Ok);
    CHECK(r[1].status == InputStatus::Failed);
    CHECK(r[1].error == vn::ErrorKind::Input);
    CHECK(r[1].message.find(plans[1].input) != std::string::npos);
    CHECK_FALSE(r[1].size);
    CHECK(r[2].status == InputStatus::Ok);
    CHECK(file_bytes(plans[1].output).empty());
    CHECK_FALSE(file_bytes(plans[2].output).empty());
}

TEST_CASE("complete outputs are skipped, a fixed source gets QC flags, a stop ends the run", "[tile_batch]") {
    TempDir dir;
    const std::vector<InputPlan> plans = synthetic_tiles(dir, 2);
    run({plans[0]}, 1);
    vn::TileBatchOptions skip;
    skip.skip_existing = true;
    const std::vector<InputResult> r = run(plans, 1, skip, vn::builtin_reference());
    REQUIRE(r.size() == 2);
    CHECK(r[0].status == InputStatus::Skipped);
    CHECK_FALSE(r[0].qc);
    CHECK(r[1].status == InputStatus::Ok);
    REQUIRE(r[1].qc);
    CHECK_FALSE(r[1].qc->tissue_fraction);
    CHECK(r[1].qc->scale_ratio[0] == 1.0);
    CHECK_FALSE(r[1].source_model);

    std::atomic<bool> stop{true};
    vn::TileBatchOptions stopped;
    stopped.stop = &stop;
    CHECK(run(plans, 1, stopped).empty());
}

TEST_CASE("tiles are decoded into the backend's host buffers, a batch of them a worker", "[tile_batch]") {
    TempDir dir;
    const std::vector<InputPlan> plans = synthetic_tiles(dir, 11);
    std::vector<std::string> expected;
    for (const InputResult& r : run(plans, 1)) expected.push_back(file_bytes(r.output));
    for (const vn::BackendKind kind : {vn::BackendKind::Cpu, vn::BackendKind::Cuda}) {
        const int workers = kind == vn::BackendKind::Cpu ? 1 : 2;
        for (const bool fixed : {false, true}) {
            RecordingBackend backend(kind);
            vn::TileBatchOptions o;
            o.threads = 1;  // batches of kMinTileBatch
            const std::optional<vn::StainModel> source =
                fixed ? std::optional<vn::StainModel>(vn::builtin_reference()) : std::nullopt;
            const std::vector<InputResult> results = run(plans, backend, o, source);
            REQUIRE(results.size() == plans.size());
            for (std::size_t i = 0; i < plans.size(); ++i) {
                CHECK(results[i].input == plans[i].input);
                CHECK(results[i].status == InputStatus::Ok);
                if (!fixed) CHECK(file_bytes(plans[i].output) == expected[i]);
            }
            CHECK(backend.calls == 3);
            CHECK(backend.src_outside == 0);
            CHECK(backend.dst_outside == 0);
            CHECK(backend.max_live >= 1);
            CHECK(backend.max_live <= workers * static_cast<int>(vn::kMinTileBatch));
            CHECK(RecordingBackend::live == 0);
        }
    }
}

TEST_CASE("a stop during the run reports whole batches and starts no more", "[tile_batch]") {
    TempDir dir;
    const std::vector<InputPlan> plans = synthetic_tiles(dir, 17);
    for (const vn::BackendKind kind : {vn::BackendKind::Cpu, vn::BackendKind::Cuda}) {
        for (const InputPlan& p : plans) ::unlink(p.output.c_str());
        RecordingBackend backend(kind);
        std::atomic<bool> stop{false};
        vn::TileBatchOptions o;
        o.threads = 1;
        o.stop = &stop;
        std::vector<InputResult> results;
        vn::normalize_tile_files(plans, backend, vn::builtin_reference(), std::nullopt, vn::EstimateParams{}, o,
                                 [&](InputResult&& r) {
                                     stop = true;
                                     results.push_back(std::move(r));
                                 });
        // The first batch, and those that had started before the stop.
        REQUIRE(results.size() % vn::kMinTileBatch == 0);
        REQUIRE(results.size() >= vn::kMinTileBatch);
        REQUIRE(results.size() < plans.size());
        for (std::size_t i = 0; i < plans.size(); ++i) {
            if (i < results.size()) {
                CHECK(results[i].input == plans[i].input);
                CHECK(results[i].status == InputStatus::Ok);
            }
            CHECK(file_bytes(plans[i].output).empty() == (i >= results.size()));
        }
        CHECK(RecordingBackend::live == 0);
    }
}

TEST_CASE("a failed backend call ends the run after the results of the batches before it", "[tile_batch]") {
    TempDir dir;
    const std::vector<InputPlan> plans = synthetic_tiles(dir, 11);
    RecordingBackend backend(vn::BackendKind::Cpu, /*fail_call=*/2);  // one worker: no batch starts after it
    vn::TileBatchOptions o;
    o.threads = 1;
    std::vector<InputResult> results;
    const vn::Error e = vn::test::error_of([&] {
        vn::normalize_tile_files(plans, backend, vn::builtin_reference(), std::nullopt, vn::EstimateParams{}, o,
                                 [&](InputResult&& r) { results.push_back(std::move(r)); });
    });
    CHECK(e.kind() == vn::ErrorKind::Device);
    REQUIRE(results.size() == vn::kMinTileBatch);
    for (std::size_t i = 0; i < results.size(); ++i) CHECK(results[i].status == InputStatus::Ok);
    CHECK(backend.calls == 2);
    for (std::size_t i = 2 * vn::kMinTileBatch; i < plans.size(); ++i) CHECK(file_bytes(plans[i].output).empty());
    CHECK(RecordingBackend::live == 0);
}

TEST_CASE("read_image_into decodes into the span it is given, as read_image", "[tile_batch][io]") {
    TempDir dir;
    vn::SyntheticSpec spec;
    spec.width = 70;
    spec.height = 45;
    const vn::RgbImage image = vn::render_synthetic(spec);
    for (const char* name : {"a.png", "a.jpg", "a.tif"}) {
        const std::string path = dir.file(name);
        vn::WriteOptions wo;
        wo.pixels_per_metre_x = wo.pixels_per_metre_y = 4000;
        vn::write_image(path, image.view(), wo);
        vn::ImageInfo want, got;
        const vn::RgbImage plain = vn::read_image(path, &want);
        // Rows padded by 5 bytes, marked: the padding stays as it was.
        const std::size_t stride = static_cast<std::size_t>(spec.width) * 3u + 5u;
        std::vector<std::uint8_t> memory(stride * static_cast<std::size_t>(spec.height), 0xA5);
        const vn::RgbSpan span = vn::read_image_into(
            path,
            [&](int w, int h) {
                CHECK(w == spec.width);
                CHECK(h == spec.height);
                return vn::RgbSpan{memory.data(), w, h, stride};
            },
            &got);
        CHECK(span.data == memory.data());
        CHECK(got.width == want.width);
        CHECK(got.format == want.format);
        CHECK(got.pixels_per_metre_x == want.pixels_per_metre_x);
        for (int y = 0; y < spec.height; ++y) {
            const std::uint8_t* row = memory.data() + stride * static_cast<std::size_t>(y);
            CHECK(std::equal(row, row + 3 * spec.width, plain.view().row(y)));
            CHECK(std::all_of(row + 3 * spec.width, row + stride, [](std::uint8_t b) { return b == 0xA5; }));
        }
        // A span of another size is the program's error, not the file's.
        const vn::Error e = vn::test::error_of([&] {
            vn::read_image_into(path, [&](int w, int h) { return vn::RgbSpan{memory.data(), w - 1, h, stride}; });
        });
        CHECK(e.kind() == vn::ErrorKind::Internal);
    }
}
