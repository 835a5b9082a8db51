#include "io/region_mask.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <limits>
#include <set>
#include <sstream>

#include <nlohmann/json.hpp>

#include "core/error.hpp"
#include "core/tables.hpp"
#include "io/image_io.hpp"
#include "io/sha256.hpp"

namespace vn {
namespace {

using json = nlohmann::json;

constexpr int kMaxRasterSide = 4096;
// A raster mask at some pyramid scale may differ from the image's shape by the rounding of a
// level's size: up to 2 pixels or 1% of its width.
constexpr double kShapeSlackPixels = 2.0, kShapeSlackFraction = 0.01;
constexpr std::uint8_t kInsideThreshold = 128;  // a raster pixel is inside when any channel reaches this

struct Point {
    double x, y;
};
using Ring = std::vector<Point>;
using Polygon = std::vector<Ring>;  // outer ring, then holes

std::string read_text(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) fail(ErrorKind::Input, path + ": cannot open mask file");
    std::ostringstream ss;
    ss << in.rdbuf();
    if (in.bad()) fail(ErrorKind::Input, path + ": cannot read mask file");
    return ss.str();
}

bool looks_like_json(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) fail(ErrorKind::Input, path + ": cannot open mask file");
    char c = 0;
    while (in.get(c))
        if (!std::isspace(static_cast<unsigned char>(c))) return c == '{' || c == '[';
    return false;
}

Ring parse_ring(const json& j, const std::string& where) {
    if (!j.is_array()) fail(ErrorKind::Data, where + ": a ring must be an array of [x, y] positions");
    Ring r;
    for (const json& p : j) {
        if (!p.is_array() || p.size() < 2 || !p[0].is_number() || !p[1].is_number())
            fail(ErrorKind::Data, where + ": a position must be [x, y] numbers");
        const double x = p[0].get<double>(), y = p[1].get<double>();
        if (!std::isfinite(x) || !std::isfinite(y)) fail(ErrorKind::Data, where + ": a coordinate is not finite");
        r.push_back(Point{x, y});
    }
    if (r.size() < 3) fail(ErrorKind::Data, where + ": a ring needs at least 3 positions");
    return r;
}

Polygon parse_polygon(const json& j, const std::string& where) {
    if (!j.is_array() || j.empty()) fail(ErrorKind::Data, where + ": Polygon coordinates must be an array of rings");
    Polygon p;
    for (const json& ring : j) p.push_back(parse_ring(ring, where));
    return p;
}

// Polygons of one geometry; other geometry types (points, lines) are counted and skipped.
void collect_geometry(const json& g, const std::string& where, std::vector<Polygon>& out, int& skipped) {
    if (!g.is_object() || !g.contains("type") || !g["type"].is_string())
        fail(ErrorKind::Data, where + ": geometry without a \"type\"");
    const std::string type = g["type"].get<std::string>();
    if (type == "GeometryCollection") {
        if (!g.contains("geometries") || !g["geometries"].is_array())
            fail(ErrorKind::Data, where + ": GeometryCollection without \"geometries\"");
        for (const json& sub : g["geometries"]) collect_geometry(sub, where, out, skipped);
        return;
    }
    if (type != "Polygon" && type != "MultiPolygon") {
        ++skipped;
        return;
    }
    if (!g.contains("coordinates")) fail(ErrorKind::Data, where + ": " + type + " without \"coordinates\"");
    const json& c = g["coordinates"];
    if (type == "Polygon") {
        out.push_back(parse_polygon(c, where));
    } else {
        if (!c.is_array()) fail(ErrorKind::Data, where + ": MultiPolygon coordinates must be an array of polygons");
        for (const json& poly : c) out.push_back(parse_polygon(poly, where));
    }
}

std::string class_of(const json& feature) {
    if (!feature.contains("properties") || !feature["properties"].is_object()) return "";
    const json& p = feature["properties"];
    if (p.contains("classification") && p["classification"].is_object() && p["classification"].contains("name") &&
        p["classification"]["name"].is_string())
        return p["classification"]["name"].get<std::string>();
    return "";
}

std::vector<Polygon> parse_geojson(const std::string& path, const std::string& mask_class) {
    const json j = json::parse(read_text(path), nullptr, /*allow_exceptions=*/false);
    if (j.is_discarded()) fail(ErrorKind::Data, path + ": not a valid JSON document (expected a GeoJSON mask)");
    // QuPath writes a FeatureCollection; older versions an array of Features; a single Feature
    // or a bare geometry is accepted too.
    std::vector<const json*> features;
    std::vector<Polygon> polygons;
    int skipped = 0;
    if (j.is_array()) {
        for (const json& f : j) features.push_back(&f);
    } else if (j.is_object() && j.value("type", "") == "FeatureCollection") {
        if (!j.contains("features") || !j["features"].is_array())
            fail(ErrorKind::Data, path + ": FeatureCollection without a \"features\" array");
        for (const json& f : j["features"]) features.push_back(&f);
    } else if (j.is_object() && j.value("type", "") == "Feature") {
        features.push_back(&j);
    } else if (j.is_object() && j.contains("type")) {
        if (!mask_class.empty()) fail(ErrorKind::Data, path + ": a bare geometry has no class to match --mask-class");
        collect_geometry(j, path, polygons, skipped);
    } else {
        fail(ErrorKind::Data, path + ": not GeoJSON (no FeatureCollection, Feature or geometry)");
    }
    std::set<std::string> classes;
    for (std::size_t i = 0; i < features.size(); ++i) {
        const json& f = *features[i];
        const std::string where = path + ": feature " + std::to_string(i + 1);
        if (!f.is_object() || f.value("type", "") != "Feature") fail(ErrorKind::Data, where + ": not a GeoJSON Feature");
        const std::string cls = class_of(f);
        classes.insert(cls.empty() ? "(unclassified)" : cls);
        if (!mask_class.empty() && cls != mask_class) continue;
        if (!f.contains("geometry") || f["geometry"].is_null()) continue;
        collect_geometry(f["geometry"], where, polygons, skipped);
    }
    if (polygons.empty()) {
        std::string found;
        for (const std::string& c : classes) found += (found.empty() ? "" : ", ") + c;
        fail(ErrorKind::Data, path + ": empty mask: no Polygon or MultiPolygon annotation" +
                                  (mask_class.empty() ? std::string() : " of class \"" + mask_class + "\"") +
                                  (found.empty() ? std::string() : " (classes in the file: " + found + ")"));
    }
    return polygons;
}

// Fills (OR) the raster pixels whose centres lie inside the polygon (even-odd over its rings, so
// holes are holes). The raster pixel (i, j) has its centre at ((i + 0.5) s_x, (j + 0.5) s_y).
void fill_polygon(const Polygon& poly, RegionMask& m) {
    double y_min = std::numeric_limits<double>::infinity(), y_max = -y_min;
    for (const Ring& r : poly)
        for (const Point& p : r) {
            y_min = std::min(y_min, p.y);
            y_max = std::max(y_max, p.y);
        }
    const int j0 = std::max(0, static_cast<int>(std::floor(y_min / m.scale_y - 0.5)));
    const int j1 = std::min(m.height - 1, static_cast<int>(std::ceil(y_max / m.scale_y - 0.5)));
    std::vector<double> xs;
    for (int j = j0; j <= j1; ++j) {
        const double y = (j + 0.5) * m.scale_y;
        xs.clear();
        for (const Ring& r : poly)
            for (std::size_t k = 0; k < r.size(); ++k) {
                const Point& a = r[k];
                const Point& b = r[(k + 1) % r.size()];
                if ((a.y <= y) != (b.y <= y)) xs.push_back(a.x + (y - a.y) * (b.x - a.x) / (b.y - a.y));
            }
        std::sort(xs.begin(), xs.end());
        for (std::size_t k = 0; k + 1 < xs.size(); k += 2) {
            // Centres (i + 0.5) s_x in [xs[k], xs[k+1]).
            const double a = xs[k] / m.scale_x - 0.5, b = xs[k + 1] / m.scale_x - 0.5;
            const int i0 = std::max(0, static_cast<int>(std::ceil(a)));
            const int i1 = std::min(m.width, static_cast<int>(std::ceil(b)));
            for (int i = i0; i < i1; ++i)
                m.inside[static_cast<std::size_t>(j) * static_cast<std::size_t>(m.width) + static_cast<std::size_t>(i)] = 1;
        }
    }
}

void rasterise(const std::vector<Polygon>& polygons, RegionMask& m) {
    double x0 = std::numeric_limits<double>::infinity(), y0 = x0, x1 = -x0, y1 = -x0;
    for (const Polygon& poly : polygons)
        for (const Point& p : poly.front()) {
            x0 = std::min(x0, p.x);
            y0 = std::min(y0, p.y);
            x1 = std::max(x1, p.x);
            y1 = std::max(y1, p.y);
        }
    const double w = static_cast<double>(m.image_width), h = static_cast<double>(m.image_height);
    if (x1 <= 0 || y1 <= 0 || x0 >= w || y0 >= h) {
        char buf[256];
        std::snprintf(buf, sizeof buf, ": the mask lies outside the image (annotations span x %.0f..%.0f, y %.0f..%.0f; "
                                       "the image is %lld x %lld level-0 pixels)",
                      x0, x1, y0, y1, static_cast<long long>(m.image_width), static_cast<long long>(m.image_height));
        fail(ErrorKind::Data, m.path + buf);
    }
    const double s = std::max(1.0, std::max(w, h) / kMaxRasterSide);
    m.width = std::max(1, static_cast<int>(std::ceil(w / s)));
    m.height = std::max(1, static_cast<int>(std::ceil(h / s)));
    m.scale_x = w / m.width;
    m.scale_y = h / m.height;
    m.inside.assign(static_cast<std::size_t>(m.width) * static_cast<std::size_t>(m.height), 0);
    for (const Polygon& poly : polygons) fill_polygon(poly, m);
}

void from_raster(const std::string& path, RegionMask& m) {
    const RgbImage img = read_image(path);
    const double w = static_cast<double>(m.image_width), h = static_cast<double>(m.image_height);
    const double s = h / img.height;
    const double expected_width = w / s;
    if (std::fabs(img.width - expected_width) > std::max(kShapeSlackPixels, kShapeSlackFraction * img.width))
        fail(ErrorKind::Data, path + ": the mask is " + std::to_string(img.width) + " x " + std::to_string(img.height) +
                                  ", not the shape of the image (" + std::to_string(m.image_width) + " x " +
                                  std::to_string(m.image_height) + ") at any scale");
    m.width = img.width;
    m.height = img.height;
    m.scale_x = w / img.width;
    m.scale_y = h / img.height;
    m.inside.assign(img.pixel_count(), 0);
    const std::uint8_t* p = img.pixels.data();
    for (std::size_t i = 0; i < img.pixel_count(); ++i, p += 3)
        m.inside[i] = (p[0] | p[1] | p[2]) >= kInsideThreshold ? 1 : 0;
}

}  // namespace

bool RegionMask::contains(std::int64_t x, std::int64_t y) const {
    const auto i = static_cast<std::int64_t>((static_cast<double>(x) + 0.5) / scale_x);
    const auto j = static_cast<std::int64_t>((static_cast<double>(y) + 0.5) / scale_y);
    if (i < 0 || j < 0 || i >= width || j >= height) return false;
    return inside[static_cast<std::size_t>(j) * static_cast<std::size_t>(width) + static_cast<std::size_t>(i)] != 0;
}

double RegionMask::coverage() const {
    return inside.empty() ? 0.0 : static_cast<double>(inside_count) / static_cast<double>(inside.size());
}

RegionMask load_region_mask(const std::string& path, std::int64_t width, std::int64_t height,
                            const std::string& mask_class) {
    if (width <= 0 || height <= 0) fail(ErrorKind::Data, path + ": a mask for an empty image");
    RegionMask m;
    m.path = path;
    m.mask_class = mask_class;
    m.image_width = width;
    m.image_height = height;
    if (looks_like_json(path)) {
        rasterise(parse_geojson(path, mask_class), m);
    } else {
        if (!mask_class.empty()) fail(ErrorKind::Usage, "--mask-class applies to GeoJSON masks, not to " + path);
        from_raster(path, m);
    }
    for (std::uint8_t v : m.inside) m.inside_count += v;
    if (m.inside_count == 0)
        fail(ErrorKind::Data, path + ": empty mask: it covers no pixel of the image" +
                                  std::string(looks_like_json(path) ? "" : " (white = inside)"));
    m.sha256 = sha256_file(path);
    return m;
}

std::uint64_t apply_region_mask(const RegionMask& mask, std::int64_t x0, std::int64_t y0, RgbSpan img) {
    const Tables& t = tables();
    std::uint64_t masked = 0;
    for (int y = 0; y < img.height; ++y) {
        std::uint8_t* p = img.row(y);
        for (int x = 0; x < img.width; ++x, p += 3) {
            if (mask.contains(x0 + x, y0 + y)) continue;
            masked += px::is_tissue(t.luma, p[0], p[1], p[2]) ? 1u : 0u;
            p[0] = p[1] = p[2] = 255;
        }
    }
    return masked;
}

}  // namespace vn
