// Regions of interest (io/region_mask.hpp): QuPath GeoJSON exports, raster masks at a pyramid
// scale, and every way a mask can be wrong (a clear Error, never a whole-image estimate).
#include <catch2/catch.hpp>

#include <fstream>
#include <string>

#include "core/backend.hpp"
#include "core/error.hpp"
#include "core/synthetic.hpp"
#include "core/tables.hpp"
#include "io/image_io.hpp"
#include "io/region_mask.hpp"
#include "io/sha256.hpp"
#include "io/slide_pipeline.hpp"
#include "tests/support/test_support.hpp"

using namespace vn;

namespace {

void write_text(const std::string& path, const std::string& text) {
    std::ofstream(path, std::ios::binary) << text;
}

// The shape QuPath (0.4, 0.5) writes with "Export objects as GeoJSON" (FeatureCollection,
// annotation properties, classification name and colour, an id per feature).
const char* kQuPathExport = R"({
  "type": "FeatureCollection",
  "features": [
    {
      "type": "Feature",
      "id": "6f1c1a3e-7c0b-4f47-9a52-1c2d3e4f5a6b",
      "geometry": {
        "type": "Polygon",
        "coordinates": [
          [[20, 10], [120, 10], [120, 90], [20, 90], [20, 10]],
          [[50, 30], [90, 30], [90, 70], [50, 70], [50, 30]]
        ]
      },
      "properties": {
        "objectType": "annotation",
        "classification": {"name": "Tumor", "color": [200, 0, 0]},
        "isLocked": false
      }
    },
    {
      "type": "Feature",
      "id": "0a9b8c7d-6e5f-4a3b-2c1d-0e9f8a7b6c5d",
      "geometry": {
        "type": "MultiPolygon",
        "coordinates": [
          [[[140, 10], [180, 10], [180, 30], [140, 30], [140, 10]]],
          [[[140, 60], [180, 60], [180, 90], [140, 90], [140, 60]]]
        ]
      },
      "properties": {
        "objectType": "annotation",
        "classification": {"name": "Stroma", "color": [150, 200, 150]}
      }
    },
    {
      "type": "Feature",
      "id": "11111111-2222-3333-4444-555555555555",
      "geometry": {"type": "LineString", "coordinates": [[0, 0], [10, 10]]},
      "properties": {"objectType": "annotation"}
    }
  ]
})";

std::uint64_t count_inside(const RegionMask& m, std::int64_t w, std::int64_t h) {
    std::uint64_t n = 0;
    for (std::int64_t y = 0; y < h; ++y)
        for (std::int64_t x = 0; x < w; ++x) n += m.contains(x, y);
    return n;
}

template <typename F>
std::string error_of(F&& f, ErrorKind* kind = nullptr) {
    try {
        f();
    } catch (const Error& e) {
        if (kind) *kind = e.kind();
        return e.what();
    }
    return "";
}

}  // namespace

TEST_CASE("a QuPath GeoJSON export: polygons with holes, multipolygons, classes", "[mask]") {
    test::TempDir dir;
    const std::string path = dir.file("annotations.geojson");
    write_text(path, kQuPathExport);
    const RegionMask all = load_region_mask(path, 200, 100);
    // Tumor: 100 x 80 minus the 40 x 40 hole; Stroma: 40 x 20 + 40 x 30; the line is skipped.
    CHECK(count_inside(all, 200, 100) == 100 * 80 - 40 * 40 + 40 * 20 + 40 * 30);
    CHECK(all.contains(25, 15));
    CHECK_FALSE(all.contains(60, 50));  // in the hole
    CHECK(all.contains(150, 70));       // second part of the multipolygon
    CHECK_FALSE(all.contains(150, 45));
    CHECK(all.sha256 == sha256_file(path));

    const RegionMask tumour = load_region_mask(path, 200, 100, "Tumor");
    CHECK(count_inside(tumour, 200, 100) == 100 * 80 - 40 * 40);
    CHECK_FALSE(tumour.contains(150, 70));
    const RegionMask stroma = load_region_mask(path, 200, 100, "Stroma");
    CHECK(count_inside(stroma, 200, 100) == 40 * 20 + 40 * 30);

    ErrorKind kind{};
    const std::string why = error_of([&] { load_region_mask(path, 200, 100, "Necrosis"); }, &kind);
    CHECK(kind == ErrorKind::Data);
    CHECK(why.find("Necrosis") != std::string::npos);
    CHECK(why.find("Stroma") != std::string::npos);  // names the classes there are
}

TEST_CASE("a large slide's GeoJSON is rasterised at a bounded scale", "[mask]") {
    test::TempDir dir;
    const std::string path = dir.file("big.geojson");
    write_text(path, R"({"type":"Feature","geometry":{"type":"Polygon","coordinates":[[[10000,5000],[30000,5000],[30000,15000],[10000,15000]]]},"properties":{}})");
    const RegionMask m = load_region_mask(path, 40000, 20000);
    CHECK(m.width == 4096);
    CHECK(m.coverage() == Approx(0.25).epsilon(0.01));
    CHECK(m.contains(20000, 10000));
    CHECK_FALSE(m.contains(5000, 10000));
}

TEST_CASE("a binary raster mask at a pyramid level is scaled to the image", "[mask]") {
    test::TempDir dir;
    // A level with downsample 4 of a 2000 x 1001 image: 500 x 251 (sizes round up).
    RgbImage mask(500, 251);
    for (int y = 0; y < mask.height; ++y)
        for (int x = 0; x < mask.width; ++x)
            if (x >= 250) std::fill_n(mask.pixels.begin() + 3 * (static_cast<std::ptrdiff_t>(y) * 500 + x), 3, std::uint8_t{255});
    write_image(dir.file("mask.png"), mask.view());
    const RegionMask m = load_region_mask(dir.file("mask.png"), 2000, 1001);
    CHECK(m.contains(1500, 500));
    CHECK_FALSE(m.contains(500, 500));
    CHECK(m.coverage() == Approx(0.5));
    // The wrong shape at every scale.
    write_image(dir.file("square.png"), RgbImage(300, 300).view());
    ErrorKind kind{};
    const std::string why = error_of([&] { load_region_mask(dir.file("square.png"), 2000, 1001); }, &kind);
    CHECK(kind == ErrorKind::Data);
    CHECK(why.find("not the shape") != std::string::npos);
}

TEST_CASE("empty masks, masks outside the image and malformed files are clear errors", "[mask]") {
    test::TempDir dir;
    ErrorKind kind{};
    auto check_data = [&](const std::string& name, const std::string& text, const std::string& words) {
        write_text(dir.file(name), text);
        kind = ErrorKind::Internal;
        const std::string why = error_of([&] { load_region_mask(dir.file(name), 200, 100); }, &kind);
        INFO(name << ": " << why);
        CHECK(kind == ErrorKind::Data);
        CHECK(why.find(words) != std::string::npos);
        CHECK(why.find(dir.file(name)) != std::string::npos);  // names the file
    };
    check_data("empty.geojson", R"({"type":"FeatureCollection","features":[]})", "empty mask");
    check_data("outside.geojson",
               R"({"type":"FeatureCollection","features":[{"type":"Feature","geometry":{"type":"Polygon","coordinates":[[[1000,1000],[1100,1000],[1100,1100],[1000,1100]]]},"properties":{}}]})",
               "outside the image");
    check_data("sliver.geojson",  // inside the bounds but covering no pixel centre
               R"({"type":"Feature","geometry":{"type":"Polygon","coordinates":[[[10.1,10.1],[10.2,10.1],[10.2,10.2]]]},"properties":{}})",
               "empty mask");
    check_data("notjson.geojson", "{\"type\": \"FeatureCollection\", \"features\": [", "not a valid JSON");
    check_data("nocoords.geojson", R"({"type":"Feature","geometry":{"type":"Polygon"},"properties":{}})",
               "without \"coordinates\"");
    check_data("badpos.geojson", R"({"type":"Feature","geometry":{"type":"Polygon","coordinates":[[[1,"a"],[2,2],[3,1]]]}})",
               "[x, y] numbers");
    check_data("tworing.geojson", R"({"type":"Feature","geometry":{"type":"Polygon","coordinates":[[[1,1],[2,2]]]}})",
               "at least 3 positions");
    check_data("other.json", R"({"hello": "world"})", "not GeoJSON");

    write_image(dir.file("black.png"), RgbImage(200, 100).view());
    kind = ErrorKind::Internal;
    CHECK(error_of([&] { load_region_mask(dir.file("black.png"), 200, 100); }, &kind).find("empty mask") !=
          std::string::npos);
    CHECK(kind == ErrorKind::Data);

    kind = ErrorKind::Internal;
    error_of([&] { load_region_mask(dir.file("missing.geojson"), 200, 100); }, &kind);
    CHECK(kind == ErrorKind::Input);
    write_text(dir.file("garbage.png"), "not an image at all");
    kind = ErrorKind::Internal;
    error_of([&] { load_region_mask(dir.file("garbage.png"), 200, 100); }, &kind);
    CHECK(kind == ErrorKind::Input);
}

TEST_CASE("apply_region_mask turns the outside into glass and counts the tissue there", "[mask]") {
    test::TempDir dir;
    write_text(dir.file("left.geojson"),
               R"({"type":"Feature","geometry":{"type":"Polygon","coordinates":[[[0,0],[100,0],[100,512],[0,512]]]},"properties":{}})");
    SyntheticSpec spec;
    spec.stains = synthetic_stains_lab_a();
    RgbImage img = render_synthetic(spec);
    const RgbImage before = img;
    const RegionMask m = load_region_mask(dir.file("left.geojson"), img.width, img.height);
    const std::uint64_t masked = apply_region_mask(m, 0, 0, img.span());
    const Tables& t = tables();
    std::uint64_t expected = 0;
    for (int y = 0; y < img.height; ++y)
        for (int x = 100; x < img.width; ++x) {
            const std::uint8_t* p = &before.pixels[3 * (static_cast<std::size_t>(y) * 512 + static_cast<std::size_t>(x))];
            expected += px::is_tissue(t.luma, p[0], p[1], p[2]);
        }
    CHECK(masked == expected);
    CHECK(masked > 50000);
    for (int y = 0; y < img.height; y += 7)
        for (int x = 0; x < img.width; x += 7) {
            const std::size_t i = 3 * (static_cast<std::size_t>(y) * 512 + static_cast<std::size_t>(x));
            if (x < 100)
                CHECK(img.pixels[i] == before.pixels[i]);
            else
                CHECK(img.pixels[i] == 255);
        }
}

TEST_CASE("a slide estimated inside a GeoJSON mask: regions only there, provenance recorded", "[mask][real]") {
    REQUIRE(test::shared_data_available());
    const std::string slide = test::shared_data("slides/CMU-1-Small-Region.svs");
    test::TempDir dir;
    // The lower half of the slide (2220 x 2967), as QuPath would export it.
    const std::string mask = dir.file("lower.geojson");
    write_text(mask, R"({"type":"FeatureCollection","features":[{"type":"Feature","geometry":{"type":"Polygon","coordinates":[[[0,1600],[2220,1600],[2220,2967],[0,2967],[0,1600]]]},"properties":{"objectType":"annotation","classification":{"name":"Region*","color":[0,0,180]}}}]})");
    auto be = make_cpu_backend(2);
    SlideEstimateOptions eo;
    eo.hash_source = false;
    eo.mask_path = mask;
    SlideEstimateInfo info;
    const StainModel m = estimate_slide(slide, *be, EstimateParams{}, eo, &info);
    REQUIRE_FALSE(info.regions.empty());
    for (const SlideRegion& r : info.regions) CHECK(r.y + r.height > 1600);
    CHECK(m.mask_path == mask);
    CHECK(m.mask_sha256 == sha256_file(mask));
    CHECK(m.masked_pixels > 0);  // regions straddling the edge lose their upper part
    const StainModel back = model_from_json(to_json(m), "round trip");
    CHECK(back.mask_sha256 == m.mask_sha256);
    CHECK(back.masked_pixels == m.masked_pixels);

    // No tissue inside: a clear error, not a whole-slide estimate.
    write_text(dir.file("glass.geojson"),
               R"({"type":"Feature","geometry":{"type":"Polygon","coordinates":[[[1800,0],[2220,0],[2220,400],[1800,400]]]},"properties":{}})");
    eo.mask_path = dir.file("glass.geojson");
    ErrorKind kind{};
    const std::string why = error_of([&] { estimate_slide(slide, *be, EstimateParams{}, eo); }, &kind);
    CHECK(kind == ErrorKind::Data);
    INFO(why);
    CHECK(why.find("no tissue inside the mask") != std::string::npos);
}
