// The tile batch pipeline (io/tile_batch.hpp): results in input order, failures recorded and
// the rest written, outputs the same bytes as one backend call per image for any thread count.
#include <catch2/catch.hpp>

#include <atomic>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "core/backend.hpp"
#include "core/synthetic.hpp"
#include "io/image_io.hpp"
#include "io/tile_batch.hpp"
#include "tests/support/test_support.hpp"

using vn::InputPlan;
using vn::InputResult;
using vn::InputStatus;
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

std::vector<InputResult> run(const std::vector<InputPlan>& plans, int threads, const vn::TileBatchOptions& base = {},
                             const std::optional<vn::StainModel>& fixed = std::nullopt) {
    auto backend = vn::make_cpu_backend(threads);
    vn::TileBatchOptions o = base;
    o.threads = threads;
    std::vector<InputResult> results;
    vn::normalize_tile_files(plans, *backend, vn::builtin_reference(), fixed, vn::EstimateParams{}, o,
                             [&](InputResult&& r) { results.push_back(std::move(r)); });
    return results;
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
