// vahanorm apply INPUT... [--target target.json] -o OUT
#include <limits.h>
#include <sys/stat.h>

#include <chrono>
#include <cstdlib>
#include <map>
#include <set>

#include <spdlog/spdlog.h>

#include "app/apply_plan.hpp"
#include "app/commands.hpp"
#include "app/exit_codes.hpp"
#include "app/progress.hpp"
#include "app/report.hpp"
#include "app/sources.hpp"
#include "core/error.hpp"
#include "core/estimate.hpp"
#include "core/thread_pool.hpp"
#include "core/transform.hpp"
#include "io/atomic_file.hpp"
#include "io/model_file.hpp"

namespace vn::app {
namespace {

using Clock = std::chrono::steady_clock;

double ms_since(Clock::time_point t0) { return std::chrono::duration<double, std::milli>(Clock::now() - t0).count(); }

// One tile image of a batch as it moves through decode, normalize, encode.
struct TileWork {
    const InputPlan* plan = nullptr;
    std::unique_ptr<OutputLock> lock;  // held from before the decode to after the write
    RgbImage in, out;
    double ppm_x = 0, ppm_y = 0;  // the input's resolution, kept on the output
    bool failed = false;
    bool skipped = false;
    nlohmann::json record;
};

void mark_failed(TileWork& w, const Error& e) {
    w.failed = true;
    w.record["status"] = "failed";
    w.record["message"] = e.what();
    w.record["exit_code"] = exit_code_for(e.kind());
    spdlog::error("{}", e.what());
}

// A pooled source model over all tile inputs: each contributes a seeded sample of its
// tissue pixels (up to kPooledPixels in all), and the model is estimated from the pool.
StainModel pooled_source(const std::vector<InputPlan>& plans, Backend& backend, const GlobalOptions& g) {
    constexpr std::size_t kPooledPixels = 2000000;
    const EstimateParams params = estimate_params(g);
    const std::size_t quota = std::max<std::size_t>(1000, kPooledPixels / std::max<std::size_t>(1, plans.size()));
    std::vector<std::uint8_t> pool;
    std::uint64_t k = 0, artefacts = 0;
    for (const InputPlan& p : plans) {
        check_stop();
        const RgbImage img = load_image(p.input, g);
        const TissuePixels t = gather_tissue({img.view()}, nullptr, params.exclude_artefacts);
        artefacts += t.artefact_pixels;
        for (std::uint64_t r : sample_ranks(t.count(), quota, params.seed + k++))
            pool.insert(pool.end(), t.rgb.begin() + static_cast<long>(3 * r), t.rgb.begin() + static_cast<long>(3 * r + 3));
    }
    const RgbView view{pool.data(), static_cast<int>(pool.size() / 3), pool.empty() ? 0 : 1, pool.size()};
    StainModel m = backend.estimate({view}, params);
    m.source_path = "pooled over " + std::to_string(plans.size()) + " inputs";
    m.artefact_pixels = artefacts;
    spdlog::info("pooled source model: stain angle {:.1f} deg, max [{:.4f} {:.4f}] from {} tissue pixels, {} ink or "
                 "artefact pixels left out",
                 stain_angle_deg(m), m.max_conc[0], m.max_conc[1], m.tissue_pixels, m.artefact_pixels);
    return m;
}

}  // namespace

void add_apply(CLI::App& app, ApplyOptions& o) {
    app.add_option("inputs", o.inputs, "Images (PNG, JPEG, TIFF) and/or whole slides (any OpenSlide format)")->required();
    app.add_option("-o,--output", o.output,
                   "Output file (one input), or directory (several inputs, or a path ending in '/'; created)")
        ->required();
    app.add_option("--target", o.target,
                   "Target model from 'vahanorm fit' (default: $VAHANORM_TARGET, else ./target.json, else the "
                   "built-in reference)");
    auto* src = app.add_option("--source-model", o.source_model, "Use this saved source model instead of estimating");
    app.add_flag("--pooled", o.pooled, "Estimate one source model over all tile inputs (default: one per tile)")
        ->excludes(src);
    app.add_flag("--skip-existing", o.skip_existing, "Skip inputs whose output exists and is complete");
    app.add_option("--quality", o.quality, "JPEG quality")->check(CLI::Range(1, 100))->capture_default_str();
    app.add_option("--out-format", o.out_format, "Tile output format in directory mode: png, jpg or tif (default: as input)")
        ->check(CLI::IsMember({"png", "jpg", "jpeg", "tif", "tiff"}));
    app.add_option("--format", o.slide_format,
                   "Slide output layout: svs, tiff (page pyramid) or ome (OME-TIFF) (default: ome for -o NAME.ome.tif, "
                   "else svs)")
        ->check(CLI::IsMember({"svs", "tiff", "ome"}));
    app.add_option("--tile-size", o.tile_size, "Slide output tile size (multiple of 16, at most 1024: memory stays bounded)")
        ->check(CLI::Range(16, 1024))
        ->capture_default_str();
    app.add_option("--compression", o.compression, "Slide output compression")
        ->check(CLI::IsMember({"jpeg", "deflate", "zstd", "lzw", "none"}))
        ->capture_default_str();
    app.add_flag("--bigtiff", o.bigtiff, "Always write BigTIFF (automatic when the output could pass 4 GiB)");
    app.add_flag("--keep-associated", o.keep_associated,
                 "Keep label and macro images of slides (dropped by default: they can identify patients)");
    app.add_flag("--continue-on-failed-estimate", o.continue_on_failed_estimate,
                 "Slides: copy a slide whose stains cannot be estimated unchanged instead of failing");
    app.add_option("--qc", o.qc_dir, "Slides: write QC images (before/after thumbnails, tissue mask, stain swatches) here");
    app.add_flag("--no-normalize", o.no_normalize,
                 "Slides: decode and re-encode into the same pyramid without estimating or normalising "
                 "(the codec floor, for benchmarks)");
    app.footer(
        "Examples:\n"
        "  vahanorm apply slide.svs -o out.tif\n"
        "  vahanorm apply tiles/*.png --target target.json -o outdir/");
}

int run_apply(const GlobalOptions& g, const ApplyOptions& o) {
    if (o.tile_size % 16 != 0) fail(ErrorKind::Usage, "--tile-size must be a multiple of 16");
    if (is_stdout_path(o.output))
        fail(ErrorKind::Usage, "-o " + o.output + ": images and slides are not written to standard output; give a file or a directory");
    const TargetChoice target = resolve_target(o.target);
    spdlog::info("target: {}", target.description);
    std::vector<InputPlan> plans = plan_outputs(o);

    auto backend = make_backend(g);
    Report report("apply", backend->name());
    report.set("target", {{"path", target.path}, {"chosen_by", target.chosen_by}, {"model", model_json(target.model)}});

    std::optional<StainModel> fixed_source;
    if (!o.source_model.empty()) {
        fixed_source = load_model(o.source_model);
        spdlog::info("source model: {}", o.source_model);
    }

    int first_failure = kExitOk;
    std::size_t failures = 0, done = 0, skipped = 0;
    std::set<std::string> recorded;  // inputs with a record in the report
    std::string in_progress;  // the slide being written
    auto finish_record = [&](nlohmann::json rec) {
        if (rec.value("status", "") == "failed") {
            ++failures;
            if (first_failure == kExitOk) first_failure = rec.value("exit_code", int{kExitInternal});
        }
        skipped += rec.value("status", "") == "skipped";
        ++done;
        recorded.insert(rec.value("input", ""));
        report.add(std::move(rec));
    };

    try {
        std::vector<InputPlan> todo;
        for (InputPlan& p : plans) {
            if (p.error.empty()) {
                try {
                    resolve_output(p.output);  // before any work: never replace a device, FIFO or directory
                } catch (const Error& e) {
                    p.error = e.what();
                    p.error_code = exit_code_for(e.kind());
                }
            }
            if (!p.error.empty()) {
                spdlog::error("{}", p.error);
                finish_record({{"input", p.input}, {"output", p.output}, {"status", "failed"}, {"message", p.error},
                               {"exit_code", p.error_code}});
                continue;
            }
            todo.push_back(p);
        }

        std::vector<InputPlan> tiles, slides;
        for (const InputPlan& p : todo) (p.is_slide ? slides : tiles).push_back(p);
        if (o.no_normalize && !tiles.empty()) fail(ErrorKind::Usage, "--no-normalize applies to whole slides only");
        for (const InputPlan& p : slides)
            if (o.keep_associated && slide_layout(o, p.output) == "tiff")
                fail(ErrorKind::Usage, "--keep-associated: the tiff layout (a page pyramid) has no place for label and "
                                       "macro images; use --format svs or ome");

        if (!g.mask.empty() && (fixed_source || !tiles.empty() || slides.size() != 1))
            fail(ErrorKind::Usage, "--mask restricts the source estimate of one slide: for tiles, run `vahanorm estimate "
                                   "--mask` and pass the model with --source-model");
        if (!g.mask_class.empty() && g.mask.empty()) fail(ErrorKind::Usage, "--mask-class needs --mask");
        if (o.pooled && !tiles.empty()) fixed_source = pooled_source(tiles, *backend, g);

        // Tiles, in batches: decode in parallel, normalize the batch, encode in parallel.
        if (!tiles.empty()) {
            const int threads = default_thread_count(g.threads);
            ThreadPool io_pool(threads);
            const std::size_t batch = static_cast<std::size_t>(std::max(4, 2 * threads));
            const EstimateParams params = estimate_params(g);
            std::optional<TransformPlan> plan;
            if (fixed_source) plan = make_plan(*fixed_source, target.model);
            WriteOptions wo;
            wo.jpeg_quality = o.quality;
            Progress progress("apply", tiles.size(), "images");
            for (std::size_t b0 = 0; b0 < tiles.size(); b0 += batch) {
                check_stop();
                const std::size_t n = std::min(batch, tiles.size() - b0);
                std::vector<TileWork> work(n);
                io_pool.parallel_for(n, [&](std::size_t i) {
                    TileWork& w = work[i];
                    w.plan = &tiles[b0 + i];
                    w.record = {{"input", w.plan->input}, {"output", w.plan->output}};
                    const auto t0 = Clock::now();
                    try {
                        // Lock first, then decide: a complete output is skipped, anything else redone.
                        w.lock = std::make_unique<OutputLock>(w.plan->output);
                        if (o.skip_existing && output_is_complete(*w.plan, g)) {
                            w.skipped = true;
                            w.record["status"] = "skipped";
                            spdlog::info("{}: skipped, {} exists and is complete", w.plan->input, w.plan->output);
                            return;
                        }
                        ImageInfo info;
                        w.in = load_image(w.plan->input, g, &info);
                        w.out = RgbImage(w.in.width, w.in.height);
                        w.ppm_x = info.pixels_per_metre_x;
                        w.ppm_y = info.pixels_per_metre_y;
                        w.record["size"] = {w.in.width, w.in.height};
                        if (!info.conversion.empty()) w.record["conversion"] = info.conversion;
                    } catch (const Error& e) {
                        mark_failed(w, e);
                    }
                    w.record["timings_ms"]["decode"] = ms_since(t0);
                });
                std::vector<TileJob> jobs;
                std::vector<std::size_t> index;
                for (std::size_t i = 0; i < n; ++i)
                    if (!work[i].failed && !work[i].skipped) {
                        jobs.push_back(TileJob{work[i].in.view(), work[i].out.span()});
                        index.push_back(i);
                    }
                const auto t_norm = Clock::now();
                if (plan) {
                    backend->transform(*plan, jobs);
                } else {
                    const std::vector<TileOutcome> outcomes = backend->normalize_tiles(target.model, params, jobs);
                    for (std::size_t j = 0; j < outcomes.size(); ++j) {
                        TileWork& w = work[index[j]];
                        const TileOutcome& oc = outcomes[j];
                        if (oc.normalized) {
                            std::vector<std::string> warnings;
                            w.record["source_model"] = model_json(oc.source);
                            w.record["qc"] = qc_flags(oc.source, target.model, oc.tissue_fraction, &warnings);
                            for (const auto& msg : warnings) spdlog::warn("{}: {}", w.plan->input, msg);
                            if (!warnings.empty()) w.record["warnings"] = warnings;
                        } else {
                            w.record["status"] = "passed-through";
                            w.record["message"] = oc.reason;
                            spdlog::warn("{}: passed through unchanged: {}", w.plan->input, oc.reason);
                        }
                    }
                }
                const double norm_ms = ms_since(t_norm);
                io_pool.parallel_for(n, [&](std::size_t i) {
                    TileWork& w = work[i];
                    if (w.failed || w.skipped) return;
                    w.record["timings_ms"]["normalize"] = norm_ms / static_cast<double>(jobs.size());
                    const auto t0 = Clock::now();
                    try {
                        WriteOptions wi = wo;
                        wi.pixels_per_metre_x = w.ppm_x;
                        wi.pixels_per_metre_y = w.ppm_y;
                        write_image(w.plan->output, w.out.view(), wi);
                        if (!w.record.contains("status")) w.record["status"] = "ok";
                        spdlog::debug("{} -> {}", w.plan->input, w.plan->output);
                    } catch (const Error& e) {
                        mark_failed(w, e);
                    }
                    w.record["timings_ms"]["encode"] = ms_since(t0);
                });
                for (TileWork& w : work) {
                    if (fixed_source && !w.failed && !w.skipped) {
                        std::vector<std::string> warnings;
                        w.record["qc"] = qc_flags(*fixed_source, target.model, -1, &warnings);
                    }
                    finish_record(std::move(w.record));
                }
                progress.update(b0 + n);
            }
            progress.finish();
        }

        for (const InputPlan& p : slides) {
            check_stop();
            in_progress = p.input;
            finish_record(apply_slide(p, o, g, *backend, target.model, fixed_source));
            in_progress.clear();
        }
    } catch (const Error& e) {
        if (e.kind() == ErrorKind::Interrupted) {
            spdlog::error("{}", e.what());
            // Every input without a result is "interrupted" in the report: the one being written
            // (its temporary file removed) and those not started; a rerun finishes them.
            for (const InputPlan& p : plans) {
                if (recorded.count(p.input)) continue;
                const bool current = in_progress == p.input;
                report.add({{"input", p.input},
                            {"output", p.output},
                            {"status", "interrupted"},
                            {"message", current ? "stopped by a signal while being written; nothing was left"
                                                : "not started: the run was stopped by a signal"},
                            {"exit_code", int{kExitInterrupted}}});
                recorded.insert(p.input);
            }
            report.write(g.report, kExitInterrupted);
            return kExitInterrupted;
        }
        throw;
    }

    int code = kExitOk;
    if (failures > 0) code = failures == done ? first_failure : kExitPartial;
    if (failures > 0 && done > 1)
        spdlog::error("{} of {} inputs failed (see the messages above{})", failures, done,
                      g.report.empty() ? "" : " and " + g.report);
    else if (failures == 0 && skipped == 0)
        spdlog::info("done: {} input{} normalized", done, done == 1 ? "" : "s");
    else if (failures == 0)
        spdlog::info("done: {} input{} normalized, {} skipped (complete output{} exist{})", done - skipped,
                     done - skipped == 1 ? "" : "s", skipped, skipped == 1 ? "" : "s", skipped == 1 ? "s" : "");
    report.write(g.report, code);
    return code;
}

}  // namespace vn::app
