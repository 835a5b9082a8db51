// One whole slide through `apply`: its own model (or a given one), then the streaming pipeline.
#include <spdlog/spdlog.h>

#include <chrono>

#include "app/apply_plan.hpp"
#include "app/progress.hpp"
#include "core/atomic_file.hpp"
#include "core/error.hpp"
#include "core/sha256.hpp"
#include "io/slide_pipeline.hpp"

namespace vn::app {
namespace {

constexpr double kPixelsPerMegapixel = 1e6;

// The pipeline's messages name the slide themselves.
SlideCallbacks log_callbacks() {
    SlideCallbacks cb;
    cb.log = [](const std::string& msg) { spdlog::info("{}", msg); };
    return cb;
}

}  // namespace

InputResult apply_slide(const InputPlan& p, const ApplyOptions& o, const GlobalOptions& g, Backend& backend,
                        const StainModel& target, const std::optional<StainModel>& fixed_source) {
    InputResult res;
    res.input = p.input;
    res.output = p.output;
    res.is_slide = true;
    try {
        // Lock first, then decide: a complete output is skipped, anything else redone.
        const OutputLock lock(p.output);
        if (o.skip_existing && output_is_complete(p, g.max_pixels)) {
            spdlog::info("{}: skipped, {} exists and is complete", p.input, p.output);
            res.status = InputStatus::Skipped;
            return res;
        }
        SlideOptions so;
        so.format = parse_slide_format(slide_layout(o, p.output));
        so.compression = parse_compression(o.compression);
        so.tile_size = o.tile_size;
        so.quality = o.quality;
        so.bigtiff = o.bigtiff ? BigTiffMode::Always : BigTiffMode::Auto;
        so.keep_associated = o.keep_associated;
        so.threads = g.threads;
        so.stop = &stop_flag();
        if (!o.qc_dir.empty()) {
            make_directories(o.qc_dir);
            so.qc_dir = o.qc_dir;
        }

        StainModel source = target;
        std::optional<double> tissue_fraction;
        // The slide's own model records the file's SHA-256: hashed on its own thread while the
        // slide is estimated and streamed, and read when the output is written.
        std::unique_ptr<BackgroundSha256> hash;
        if (o.no_normalize) {
            so.transform = false;
            spdlog::info("{}: --no-normalize: re-encoding without a stain model", p.input);
        } else if (fixed_source) {
            source = *fixed_source;
        } else {
            hash = std::make_unique<BackgroundSha256>(p.input);
            SlideEstimateOptions eo;
            eo.hash_source = false;
            eo.threads = g.threads;
            eo.stop = &stop_flag();
            eo.callbacks = log_callbacks();
            eo.mask_path = g.mask;
            eo.mask_class = g.mask_class;
            SlideEstimateInfo info;
            const auto t0 = std::chrono::steady_clock::now();
            try {
                source = estimate_slide(p.input, backend, estimate_params(g), eo, &info);
                res.estimate_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
                tissue_fraction = info.tissue_fraction;
                so.qc_regions = info.regions;
                spdlog::info("{}: slide model from {} regions: stain angle {:.1f} deg, max [{:.4f} {:.4f}]", p.input,
                             info.regions.size(), stain_angle_deg(source), source.max_conc[0], source.max_conc[1]);
            } catch (const Error& e) {
                if (e.kind() != ErrorKind::Data || !o.continue_on_failed_estimate) throw;
                so.transform = false;
                res.warnings = {std::string("no stain estimate, copied unchanged: ") + e.what()};
                spdlog::warn("{}: no stain estimate, copying it unchanged (--continue-on-failed-estimate): {}", p.input,
                             e.what());
            }
        }
        if (so.transform) {
            res.source_model = source;
            res.qc = qc_flags(source, target, tissue_fraction);
            res.warnings = scale_ratio_warnings(*res.qc);
            for (const auto& w : res.warnings) spdlog::warn("{}: {}", p.input, w);
        }

        std::unique_ptr<Progress> live;
        so.callbacks = log_callbacks();
        so.callbacks.progress = [&](const SlideProgress& sp) {
            if (!live) live = std::make_unique<Progress>(p.input, sp.tiles_total, "tiles",
                                                         static_cast<double>(so.tile_size) * so.tile_size / kPixelsPerMegapixel);
            live->update(sp.tiles_done);
        };
        SlideResult r = normalize_slide(p.input, p.output, source, target, backend, so);
        if (live) live->finish();
        if (hash && so.transform) res.source_sha256 = hash->get();
        for (const auto& w : r.warnings) spdlog::warn("{}: {}", p.input, w);
        if (res.qc && !res.qc->tissue_fraction) res.qc->tissue_fraction = r.tissue_fraction;
        res.status = InputStatus::Ok;
        res.slide = std::move(r);
        // The pipeline's own "IN -> OUT" line has said how it went.
    } catch (const Error& e) {
        if (e.kind() == ErrorKind::Interrupted) throw;
        spdlog::error("{}", e.what());
        res.status = InputStatus::Failed;
        res.error = e.kind();
        res.message = e.what();
    }
    return res;
}

}  // namespace vn::app
