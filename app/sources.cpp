#include "app/sources.hpp"

#include <spdlog/spdlog.h>

#include "core/error.hpp"
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

StainModel estimate_from_sources(const std::vector<std::string>& paths, Backend& backend, const EstimateParams& params,
                                 const GlobalOptions& g) {
    SlideEstimateOptions eo;
    eo.threads = g.threads;
    eo.stop = &stop_flag();
    eo.callbacks.log = [](const std::string& msg) { spdlog::info("{}", msg); };
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
