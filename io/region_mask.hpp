// Regions of interest for stain estimation (`--mask FILE`): a binary raster mask (PNG or TIFF,
// white = inside) at any scale of the image or slide, or a GeoJSON FeatureCollection as QuPath
// exports annotations (Polygon and MultiPolygon geometries in level-0 pixel coordinates, holes
// honoured; properties.classification.name picks a class). Estimation then uses only the tissue
// inside the mask; the transform still covers everything.
//
// Errors: a missing or unreadable mask file is Error(Input); a malformed file, an empty mask, a
// raster whose shape is not the image's at some scale, or a mask outside the image is
// Error(Data). Never a silent whole-image estimate.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/image.hpp"

namespace vn {

struct RegionMask {
    std::string path;
    std::string sha256;        // of the mask file's bytes
    std::string mask_class;    // GeoJSON class chosen ("" = all annotations)
    std::int64_t image_width = 0, image_height = 0;  // level-0 size it was fitted to
    int width = 0, height = 0;                        // the raster
    double scale_x = 1, scale_y = 1;                  // level-0 pixels per raster pixel
    std::vector<std::uint8_t> inside;                 // 1 = inside, row-major
    std::uint64_t inside_count = 0;                   // raster pixels inside

    // Whether the level-0 pixel (x, y) (its centre) is inside.
    bool contains(std::int64_t x, std::int64_t y) const;
    // Share of the image's area inside the mask.
    double coverage() const;
};

// Loads `path` and fits it to an image of width x height level-0 pixels. GeoJSON is rasterised
// with a pixel's centre deciding, at full resolution up to 4096 pixels on the long side.
RegionMask load_region_mask(const std::string& path, std::int64_t width, std::int64_t height,
                            const std::string& mask_class = "");

// Sets the pixels of `img` (whose top-left pixel is level-0 (x0, y0)) outside the mask to white,
// so that they are no tissue. Returns how many of them were tissue (masked out).
std::uint64_t apply_region_mask(const RegionMask& mask, std::int64_t x0, std::int64_t y0, RgbSpan img);

}  // namespace vn
