// QC pictures (io/qc_images.hpp, `--qc DIR`): they exist, have the stated sizes, are not blank,
// and show what the estimate used (the ink of CMU-1-Small-Region in magenta, regions outlined).
#include <catch2/catch.hpp>

#include <set>
#include <string>

#include "core/backend.hpp"
#include "io/image_io.hpp"
#include "io/qc_images.hpp"
#include "io/slide_pipeline.hpp"
#include "tests/support/test_support.hpp"

using namespace vn;

namespace {

// Distinct colours and the share of pixels that are not near-white.
std::pair<std::size_t, double> variety(const RgbImage& img) {
    std::set<std::uint32_t> colours;
    std::size_t ink = 0;
    for (std::size_t i = 0; i < img.pixel_count(); ++i) {
        const std::uint8_t* p = img.pixels.data() + 3 * i;
        colours.insert(static_cast<std::uint32_t>(p[0]) << 16 | static_cast<std::uint32_t>(p[1]) << 8 | p[2]);
        ink += (p[0] < 230 || p[1] < 230 || p[2] < 230) ? 1u : 0u;
    }
    return {colours.size(), static_cast<double>(ink) / static_cast<double>(img.pixel_count())};
}

std::size_t count_rgb(const RgbImage& img, int r, int g, int b) {
    std::size_t n = 0;
    for (std::size_t i = 0; i < img.pixel_count(); ++i) {
        const std::uint8_t* p = img.pixels.data() + 3 * i;
        n += p[0] == r && p[1] == g && p[2] == b;
    }
    return n;
}

}  // namespace

TEST_CASE("QC pictures of a slide: sizes, content, labels drawn", "[qc][real]") {
    REQUIRE(test::shared_data_available());
    const std::string in = test::shared_data("slides/CMU-1-Small-Region.svs");
    test::TempDir dir;
    auto be = make_cpu_backend(2);
    SlideEstimateOptions eo;
    eo.hash_source = false;
    SlideEstimateInfo info;
    const StainModel source = estimate_slide(in, *be, EstimateParams{}, eo, &info);
    SlideOptions o;
    o.qc_dir = dir.file("qc");
    o.qc_regions = info.regions;
    const SlideResult r = normalize_slide(in, dir.file("o.svs"), source, builtin_reference(), *be, o);
    REQUIRE(r.qc_files.size() == 6);
    const std::string base = dir.file("qc") + "/CMU-1-Small-Region";
    const RgbImage after = read_image(base + ".after.png");
    const RgbImage before = read_image(base + ".before.png");
    const RgbImage overview = read_image(base + ".overview.png");
    const RgbImage pair = read_image(base + ".before-after.png");
    const RgbImage stains = read_image(base + ".stains.png");
    // The stated sizes (io/qc_images.hpp).
    CHECK(before.width == after.width);
    CHECK(before.height == after.height);
    CHECK(overview.width == std::max(after.width, 560));
    CHECK(overview.height == after.height + kQcLegendHeight);
    CHECK(pair.width == 2 * after.width + 12);
    CHECK(pair.height == after.height + 44);
    CHECK(stains.width == 4 * 150 + 5 * 14);
    CHECK(stains.height == 26 + 170 + 62);
    // Not blank: many colours, a real share of non-white pixels.
    for (const RgbImage* img : {&overview, &pair, &stains}) {
        const auto v = variety(*img);
        CHECK(v.first > 200);
        CHECK(v.second > 0.1);
    }
    // The slide's green marker ink shows as opaque magenta on the overview; the legend's swatch
    // is magenta too, so there is more of it than the legend alone.
    CHECK(count_rgb(overview, 255, 0, 255) > 16 * 16 + 500);
    // Text is drawn: the legend strip below the picture has dark (text) pixels.
    std::size_t dark = 0;
    for (int y = after.height; y < overview.height; ++y)
        for (int x = 0; x < overview.width; ++x) {
            const std::uint8_t* p = overview.pixels.data() + 3 * (static_cast<std::size_t>(y) * static_cast<std::size_t>(overview.width) + static_cast<std::size_t>(x));
            dark += p[0] < 80 && p[1] < 80 && p[2] < 80;
        }
    CHECK(dark > 300);
}

TEST_CASE("QC stain swatches run from white to each stain's darkest colour", "[qc]") {
    const StainModel m = builtin_reference();
    const RgbImage s = qc_stain_swatches(m, m);
    // Column centres at the top of each swatch are (nearly) white, at the bottom the stain.
    for (int k = 0; k < 4; ++k) {
        const int x = 14 + k * (150 + 14) + 75;
        const std::uint8_t* top = s.pixels.data() + 3 * (static_cast<std::size_t>(27) * static_cast<std::size_t>(s.width) + static_cast<std::size_t>(x));
        const std::uint8_t* bottom = s.pixels.data() + 3 * (static_cast<std::size_t>(26 + 168) * static_cast<std::size_t>(s.width) + static_cast<std::size_t>(x));
        CHECK(top[0] > 240);
        CHECK(top[1] > 240);
        CHECK(bottom[1] < 150);  // both stains absorb green most
    }
}
