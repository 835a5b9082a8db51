#include "app/sources.hpp"

#include <spdlog/spdlog.h>

#include "core/error.hpp"
#include "io/region_mask.hpp"
#include "io/slide_pipeline.hpp"

namespace vn::app {

RgbImage load_image(const std::string& path, const GlobalOptions& g, ImageInfo* info) {
    ImageInfo local;
    ImageInfo* i = info ? info : &local;
    ReadOptions ro;
    ro.max_pixels = g.max_pixels;
    RgbImage img = read_image(path, i, ro);
    if (!i->conversion.empty()) spdlog::info("{}: {}", path, i->conversion);
    return img;
}

// One image, estimated only inside g.mask: pixels outside become glass, and the minimum tissue
// share is taken of the mask's area rather than the image's.
StainModel estimate_masked_image(const std::string& path, Backend& backend, EstimateParams params,
                                 const GlobalOptions& g) {
    RgbImage img = load_image(path, g);
    const RegionMask roi = load_region_mask(g.mask, img.width, img.height, g.mask_class);
    const std::uint64_t masked = apply_region_mask(roi, 0, 0, img.span());
    spdlog::info("{}: mask {} covers {:.1f}% of the image; {} tissue pixels outside it", path, g.mask,
                 100 * roi.coverage(), masked);
    params.min_tissue_fraction *= roi.coverage();
    StainModel m;
    try {
        m = backend.estimate({img.view()}, params);
    } catch (const Error& e) {
        if (e.kind() != ErrorKind::Data) throw;
        fail(ErrorKind::Data, path + ": inside the mask " + g.mask + ": " + e.what());
    }
    m.params.min_tissue_fraction = params.min_tissue_fraction / std::max(roi.coverage(), 1e-12);
    m.mask_path = g.mask;
    m.mask_class = g.mask_class;
    m.mask_sha256 = roi.sha256;
    m.masked_pixels = masked;
    return m;
}

StainModel estimate_from_sources(const std::vector<std::string>& paths, Backend& backend, const EstimateParams& params,
                                 const GlobalOptions& g) {
    SlideEstimateOptions eo;
    eo.threads = g.threads;
    eo.stop = &stop_flag();
    eo.callbacks.log = [](const std::string& msg) { spdlog::info("{}", msg); };
    if (!g.mask.empty()) {
        if (paths.size() != 1)
            fail(ErrorKind::Usage, "--mask restricts the estimate of one image or slide, not of " +
                                       std::to_string(paths.size()) + " inputs");
        eo.mask_path = g.mask;
        eo.mask_class = g.mask_class;
        if (!is_slide(paths[0])) return estimate_masked_image(paths[0], backend, params, g);
    } else if (!g.mask_class.empty()) {
        fail(ErrorKind::Usage, "--mask-class needs --mask");
    }
    if (paths.size() == 1 && is_slide(paths[0])) return estimate_slide(paths[0], backend, params, eo);
    std::vector<RgbImage> images;
    images.reserve(paths.size());
    for (const std::string& p : paths) {
        if (is_slide(p)) {  // several inputs: a slide contributes its sampled tissue regions
            for (RgbImage& region : sample_slide(p, params.seed, eo)) images.push_back(std::move(region));
        } else {
            images.push_back(load_image(p, g));
        }
    }
    std::vector<RgbView> views;
    for (const RgbImage& img : images) views.push_back(img.view());
    try {
        return backend.estimate(views, params);
    } catch (const Error& e) {
        if (e.kind() != ErrorKind::Data) throw;
        const std::string who = paths.size() == 1 ? paths[0] : std::to_string(paths.size()) + " references";
        fail(ErrorKind::Data, who + ": " + e.what());
    }
}

}  // namespace vn::app
