// The fixed-model transform against the double-precision reference of docs/method.md §1.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdlib>
#include <random>

#include "core/backend.hpp"
#include "core/synthetic.hpp"
#include "core/tables.hpp"
#include "core/transform.hpp"
#include "tests/core/reference.hpp"
#include "tests/support/test_support.hpp"

using namespace vn;

namespace {

StainModel model_of(const StainMatrix& w, double mh, double me) {
    StainModel m;
    m.stain = w;
    m.max_conc = {mh, me};
    return m;
}

struct Diff {
    std::size_t over1 = 0, over2 = 0, total = 0;
};

Diff compare(const RgbImage& a, const RgbImage& b) {
    Diff d;
    for (std::size_t i = 0; i < a.pixel_count(); ++i) {
        int m = 0;
        for (int c = 0; c < 3; ++c) m = std::max(m, std::abs(int{a.pixels[3 * i + c]} - int{b.pixels[3 * i + c]}));
        d.over1 += m > 1;
        d.over2 += m > 2;
        ++d.total;
    }
    return d;
}

RgbImage with_extremes(RgbImage img) {
    // White, black, saturated primaries and secondaries in the first pixels.
    const std::uint8_t extremes[][3] = {{255, 255, 255}, {0, 0, 0},     {255, 0, 0},   {0, 255, 0},
                                        {0, 0, 255},     {255, 255, 0}, {0, 255, 255}, {255, 0, 255}};
    for (std::size_t i = 0; i < 8 && i < img.pixel_count(); ++i)
        for (int c = 0; c < 3; ++c) img.pixels[3 * i + c] = extremes[i][c];
    return img;
}

}  // namespace

TEST_CASE("transform is within 1 LSB of the double-precision reference", "[transform]") {
    const StainModel target = builtin_reference();
    std::vector<std::pair<RgbImage, StainModel>> cases;
    SyntheticSpec spec;
    spec.width = spec.height = 256;
    spec.stains = synthetic_stains_lab_b();
    cases.push_back({render_synthetic(spec), model_of(synthetic_stains_lab_b(), 1.4, 0.8)});
    cases.push_back({with_extremes(test::random_image(300, 200, 77)), model_of(synthetic_stains_lab_a(), 2.0, 1.2)});
    cases.push_back({with_extremes(test::random_image(128, 128, 78)), model_of(synthetic_stains_lab_b(), 0.3, 3.0)});
    auto be = make_cpu_backend(2);
    for (const auto& [img, source] : cases) {
        RgbImage out(img.width, img.height);
        be->transform(make_plan(source, target), {TileJob{img.view(), out.span()}});
        const RgbImage ref = test::reference_transform(img.view(), source, target);
        const Diff d = compare(out, ref);
        INFO("pixels off by more than 1: " << d.over1 << " of " << d.total);
        CHECK(static_cast<double>(d.over1) <= 0.001 * static_cast<double>(d.total));
        CHECK(d.over2 == 0);
    }
}

TEST_CASE("the blocked CPU loop equals px::transform_pixel exactly, at awkward widths", "[transform]") {
    const Tables& t = tables();
    const TransformPlan plan = make_plan(model_of(synthetic_stains_lab_b(), 1.3, 0.9), builtin_reference());
    for (int w : {0, 1, 2, 63, 64, 65, 127, 129, 257}) {
        const RgbImage img = with_extremes(test::random_image(w, 3, static_cast<std::uint64_t>(w)));
        RgbImage out(w, 3);
        transform_rows(plan, img.view(), out.span(), 0, img.height);
        for (std::size_t i = 0; i < img.pixel_count(); ++i) {
            std::uint8_t expect[3];
            px::transform_pixel(plan.solver, plan.render, t.od, t.exp_out, &img.pixels[3 * i], expect);
            INFO("width " << w << " pixel " << i);
            REQUIRE(out.pixels[3 * i] == expect[0]);
            REQUIRE(out.pixels[3 * i + 1] == expect[1]);
            REQUIRE(out.pixels[3 * i + 2] == expect[2]);
        }
    }
}

TEST_CASE("transform maps white to white and never touches its input", "[transform]") {
    RgbImage img = test::random_image(64, 64, 5);
    std::fill(img.pixels.begin(), img.pixels.begin() + 3 * 64, std::uint8_t{255});  // first row white
    const RgbImage copy = img;
    RgbImage out(64, 64);
    auto be = make_cpu_backend(2);
    be->transform(make_plan(model_of(synthetic_stains_lab_a(), 1.0, 1.0), builtin_reference()),
                  {TileJob{img.view(), out.span()}});
    CHECK(img.pixels == copy.pixels);
    for (int i = 0; i < 3 * 64; ++i) CHECK(out.pixels[static_cast<std::size_t>(i)] == 255);
}

TEST_CASE("transform honours strides and refuses aliasing", "[transform]") {
    // A 10x4 window inside a 16x6 image.
    const RgbImage big = test::random_image(16, 6, 3);
    RgbView src{big.pixels.data() + big.stride() + 3 * 2, 10, 4, big.stride()};
    std::vector<std::uint8_t> dst_buf(20 * 4 * 3, 7);
    RgbSpan dst{dst_buf.data(), 10, 4, 20 * 3};
    auto be = make_cpu_backend(1);
    const TransformPlan plan = make_plan(model_of(synthetic_stains_lab_a(), 1.0, 1.0), builtin_reference());
    be->transform(plan, {TileJob{src, dst}});
    RgbImage packed(10, 4), expect(10, 4);
    for (int y = 0; y < 4; ++y) std::copy(src.row(y), src.row(y) + 30, packed.pixels.begin() + y * 30);
    be->transform(plan, {TileJob{packed.view(), expect.span()}});
    for (int y = 0; y < 4; ++y) {
        CHECK(std::equal(dst.row(y), dst.row(y) + 30, expect.pixels.begin() + y * 30));
        CHECK(dst.row(y)[30] == 7);  // padding untouched
    }
    RgbImage same = packed;
    CHECK_THROWS(be->transform(plan, {TileJob{same.view(), same.span()}}));
}
