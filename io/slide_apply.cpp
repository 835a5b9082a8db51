#include "io/slide_apply.hpp"

#include <chrono>
#include <cstdio>
#include <memory>

#include "io/atomic_file.hpp"
#include "core/error.hpp"
#include "io/sha256.hpp"

namespace vn {
namespace {

void say(const std::function<void(const std::string&)>& to, const std::string& msg) {
    if (to) to(msg);
}

std::string fixed(double v, int digits) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.*f", digits, v);
    return buf;
}

}  // namespace

InputResult apply_slide_file(const InputPlan& p, Backend& backend, const StainModel& target,
                             const std::optional<StainModel>& fixed_source, const SlideApplyOptions& options) {
    const auto& info_line = options.slide.callbacks.log;
    InputResult res;
    res.input = p.input;
    res.output = p.output;
    res.is_slide = true;
    try {
        // Lock first, then decide: a complete output is skipped, anything else redone.
        const OutputLock lock(p.output);
        if (options.skip_existing && output_is_complete(p)) {
            say(info_line, p.input + ": skipped, " + p.output + " exists and is complete");
            res.status = InputStatus::Skipped;
            return res;
        }
        SlideOptions so = options.slide;
        StainModel source = target;
        std::optional<double> tissue_fraction;
        // The slide's own model records the file's SHA-256: hashed on its own thread while the
        // slide is estimated and streamed, and read when the output is written.
        std::unique_ptr<BackgroundSha256> hash;
        if (options.no_normalize) {
            so.transform = false;
            say(info_line, p.input + ": --no-normalize: re-encoding without a stain model");
        } else if (fixed_source) {
            source = *fixed_source;
        } else {
            hash = std::make_unique<BackgroundSha256>(p.input);
            SlideEstimateOptions eo;
            eo.hash_source = false;
            eo.threads = so.threads;
            eo.stop = so.stop;
            eo.callbacks.log = info_line;
            eo.mask_path = options.mask_path;
            eo.mask_class = options.mask_class;
            SlideEstimateInfo info;
            const auto t0 = std::chrono::steady_clock::now();
            try {
                source = estimate_slide(p.input, backend, options.params, eo, &info);
                res.estimate_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
                tissue_fraction = info.tissue_fraction;
                so.qc_regions = info.regions;
                say(info_line, p.input + ": slide model from " + std::to_string(info.regions.size()) +
                                   " regions: stain angle " + fixed(stain_angle_deg(source), 1) + " deg, max [" +
                                   fixed(source.max_conc[0], 4) + " " + fixed(source.max_conc[1], 4) + "]");
            } catch (const Error& e) {
                if (e.kind() != ErrorKind::Data || !options.continue_on_failed_estimate) throw;
                so.transform = false;
                res.warnings = {std::string("no stain estimate, copied unchanged: ") + e.what()};
                say(options.warn, p.input + ": no stain estimate, copying it unchanged (--continue-on-failed-estimate): " +
                                      e.what());
            }
        }
        if (so.transform) {
            res.source_model = source;
            res.qc = qc_flags(source, target, tissue_fraction);
            res.warnings = scale_ratio_warnings(*res.qc);
            for (const auto& w : res.warnings) say(options.warn, p.input + ": " + w);
        }
        SlideResult r = normalize_slide(p.input, p.output, source, target, backend, so);
        if (hash && so.transform) res.source_sha256 = hash->get();
        for (const auto& w : r.warnings) say(options.warn, p.input + ": " + w);
        if (res.qc && !res.qc->tissue_fraction) res.qc->tissue_fraction = r.tissue_fraction;
        res.status = InputStatus::Ok;
        res.slide = std::move(r);
    } catch (const Error& e) {
        if (e.kind() == ErrorKind::Interrupted) throw;
        res.status = InputStatus::Failed;
        res.error = e.kind();
        res.message = e.what();
    }
    return res;
}

}  // namespace vn
