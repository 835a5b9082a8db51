// One whole slide through `apply` (io/slide_apply.hpp), with the command's options, its log and
// a progress line.
#include <spdlog/spdlog.h>

#include <memory>

#include "app/apply_plan.hpp"
#include "app/progress.hpp"
#include "core/error.hpp"
#include "io/atomic_file.hpp"
#include "io/slide_apply.hpp"

namespace vn::app {
namespace {

constexpr double kPixelsPerMegapixel = 1e6;

SlideApplyOptions slide_apply_options(const InputPlan& p, const ApplyOptions& o, const GlobalOptions& g) {
    SlideApplyOptions so;
    so.slide.format = parse_slide_format(slide_layout(o, p.output));
    so.slide.compression = parse_compression(o.compression);
    so.slide.tile_size = o.tile_size;
    so.slide.quality = o.quality;
    so.slide.bigtiff = o.bigtiff ? BigTiffMode::Always : BigTiffMode::Auto;
    so.slide.keep_associated = o.keep_associated;
    so.slide.threads = g.threads;
    so.slide.stop = &stop_flag();
    so.slide.qc_dir = o.qc_dir;
    // The pipeline's messages name the slide themselves.
    so.slide.callbacks.log = [](const std::string& msg) { spdlog::info("{}", msg); };
    so.warn = [](const std::string& msg) { spdlog::warn("{}", msg); };
    so.params = estimate_params(g);
    so.mask_path = g.mask;
    so.mask_class = g.mask_class;
    so.skip_existing = o.skip_existing;
    so.no_normalize = o.no_normalize;
    so.continue_on_failed_estimate = o.continue_on_failed_estimate;
    return so;
}

}  // namespace

InputResult apply_slide(const InputPlan& p, const ApplyOptions& o, const GlobalOptions& g, Backend& backend,
                        const StainModel& target, const std::optional<StainModel>& fixed_source) {
    InputResult res;
    try {
        if (!o.qc_dir.empty()) make_directories(o.qc_dir);
        SlideApplyOptions so = slide_apply_options(p, o, g);
        std::unique_ptr<Progress> live;
        so.slide.callbacks.progress = [&](const SlideProgress& sp) {
            if (!live) live = std::make_unique<Progress>(p.input, sp.tiles_total, "tiles",
                                                         static_cast<double>(o.tile_size) * o.tile_size / kPixelsPerMegapixel);
            live->update(sp.tiles_done);
        };
        res = apply_slide_file(p, backend, target, fixed_source, so);
        if (live) live->finish();
    } catch (const Error& e) {
        if (e.kind() == ErrorKind::Interrupted) throw;
        res = failed_result(p.input, p.output, e);
        res.is_slide = true;
    }
    // The pipeline's own "IN -> OUT" line has said how it went.
    if (res.failed()) spdlog::error("{}", res.message);
    return res;
}

}  // namespace vn::app
