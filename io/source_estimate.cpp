#include "io/source_estimate.hpp"

#include <algorithm>
#include <cstdio>

#include "core/error.hpp"
#include "core/estimate.hpp"
#include "io/region_mask.hpp"
#include "io/sha256.hpp"
#include "io/slide_pipeline.hpp"

namespace vn {
namespace {

void log_line(const SourceOptions& o, const std::string& msg) {
    if (o.log) o.log(msg);
}

// One image, estimated only inside options.mask_path: pixels outside become glass, and the
// minimum tissue share is taken of the mask's area rather than the image's.
StainModel estimate_masked_image(const std::string& path, Backend& backend, EstimateParams params,
                                 const SourceOptions& o) {
    RgbImage img = load_image(path, o);
    const RegionMask roi = load_region_mask(o.mask_path, img.width, img.height, o.mask_class);
    const std::uint64_t masked = apply_region_mask(roi, 0, 0, img.span());
    char coverage[32];
    std::snprintf(coverage, sizeof coverage, "%.1f%%", 100 * roi.coverage());
    log_line(o, path + ": mask " + o.mask_path + " covers " + coverage + " of the image; " + std::to_string(masked) +
                    " tissue pixels outside it");
    params.min_tissue_fraction *= roi.coverage();
    StainModel m;
    try {
        m = backend.estimate({img.view()}, params);
    } catch (const Error& e) {
        if (e.kind() != ErrorKind::Data) throw;
        fail(ErrorKind::Data, path + ": inside the mask " + o.mask_path + ": " + e.what());
    }
    m.params.min_tissue_fraction = params.min_tissue_fraction / std::max(roi.coverage(), 1e-12);
    m.mask_path = o.mask_path;
    m.mask_class = o.mask_class;
    m.mask_sha256 = roi.sha256;
    m.masked_pixels = masked;
    return m;
}

}  // namespace

RgbImage load_image(const std::string& path, const SourceOptions& options, ImageInfo* info) {
    ImageInfo local;
    ImageInfo* i = info ? info : &local;
    ReadOptions ro;
    ro.max_pixels = options.max_pixels;
    RgbImage img = read_image(path, i, ro);
    if (!i->conversion.empty()) log_line(options, path + ": " + i->conversion);
    return img;
}

namespace {

StainModel estimate_pixels(const std::vector<std::string>& paths, Backend& backend, const EstimateParams& params,
                           const SourceOptions& options) {
    SlideEstimateOptions eo;
    eo.threads = options.threads;
    eo.stop = options.stop;
    eo.callbacks.log = options.log;
    if (!options.mask_path.empty()) {
        if (paths.size() != 1) fail(ErrorKind::Usage, "a mask restricts the estimate of one image or slide");
        eo.mask_path = options.mask_path;
        eo.mask_class = options.mask_class;
        if (!is_slide(paths[0])) return estimate_masked_image(paths[0], backend, params, options);
    }
    if (paths.size() == 1 && is_slide(paths[0])) return estimate_slide(paths[0], backend, params, eo);
    std::vector<RgbImage> images;
    images.reserve(paths.size());
    for (const std::string& p : paths) {
        if (is_slide(p)) {  // several inputs: a slide contributes its sampled tissue regions
            for (RgbImage& region : sample_slide(p, params.seed, eo)) images.push_back(std::move(region));
        } else {
            images.push_back(load_image(p, options));
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

}  // namespace

StainModel estimate_from_sources(const std::vector<std::string>& paths, Backend& backend, const EstimateParams& params,
                                 const SourceOptions& options) {
    StainModel m = estimate_pixels(paths, backend, params, options);
    // One slide alone was hashed by its estimate, overlapping it.
    const bool hashed = !m.source_sha256.empty();
    std::string joined, sums;
    for (const std::string& p : paths) {
        joined += (joined.empty() ? "" : ",") + p;
        if (!hashed) sums += (sums.empty() ? "" : ",") + sha256_file(p);
    }
    m.source_path = joined;
    if (!hashed) m.source_sha256 = sums;
    return m;
}

StainModel pooled_source_model(const std::vector<std::string>& paths, Backend& backend, const EstimateParams& params,
                               const SourceOptions& options) {
    const std::size_t quota = std::max(kMinPooledPerImage, kPooledPixels / std::max<std::size_t>(1, paths.size()));
    std::vector<std::uint8_t> pool;
    std::uint64_t k = 0, artefacts = 0;
    for (const std::string& path : paths) {
        if (options.stop && options.stop->load()) fail(ErrorKind::Interrupted, path + ": interrupted");
        const RgbImage img = load_image(path, options);
        const TissuePixels t = gather_tissue({img.view()}, nullptr, params.exclude_artefacts);
        artefacts += t.artefact_pixels;
        for (std::uint64_t r : sample_kept_ranks(t, quota, params.seed + k++))
            pool.insert(pool.end(), t.rgb.begin() + static_cast<long>(3 * r), t.rgb.begin() + static_cast<long>(3 * r + 3));
    }
    const RgbView view{pool.data(), static_cast<int>(pool.size() / 3), pool.empty() ? 0 : 1, pool.size()};
    StainModel m = backend.estimate({view}, params);
    m.source_path = "pooled over " + std::to_string(paths.size()) + " inputs";
    m.artefact_pixels = artefacts;
    return m;
}

}  // namespace vn
