// vahanorm apply INPUT... [--target target.json] -o OUT: the options (cmd_apply_run.cpp runs them).
#include "app/commands.hpp"

namespace vn::app {

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
    app.add_option("--quality", o.quality, "JPEG quality")->check(CLI::Range(1, kMaxJpegQuality))->capture_default_str();
    app.add_option("--out-format", o.out_format, "Tile output format in directory mode: png, jpg or tif (default: as input)")
        ->check(CLI::IsMember({"png", "jpg", "jpeg", "tif", "tiff"}));
    app.add_option("--format", o.slide_format,
                   "Slide output layout: svs, tiff (page pyramid) or ome (OME-TIFF) (default: ome for -o NAME.ome.tif, "
                   "else svs)")
        ->check(CLI::IsMember({"svs", "tiff", "ome"}));
    app.add_option("--tile-size", o.tile_size, "Slide output tile size (multiple of 16, at most 1024: memory stays bounded)")
        ->check(CLI::Range(kTileSizeMultiple, kMaxTileSize))
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

}  // namespace vn::app
