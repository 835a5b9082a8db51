// vahanorm-slide-bench: drives the slide pipeline without the CLI, for benchmarks, the memory
// test and debugging. Prints one JSON object (timings, Mpx/s per stage, peak RSS) on stdout.
//
//   vahanorm-slide-bench normalize IN OUT [--target MODEL.json] [--source MODEL.json]
//        (a model "builtin" is the built-in reference; the default target, and source without
//        --source: the slide's own estimate)
//        [--threads N] [--quality Q] [--compression jpeg|deflate|zstd|lzw|none]
//        [--format svs|tiff|ome] [--tile N] [--batch N] [--no-direct] [--no-transform]
//        [--qc DIR] [--bigtiff] [--keep-associated] [--444] [--lut | --no-lut]
//   vahanorm-slide-bench estimate IN OUT.json [--threads N]
#include <sys/resource.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "core/backend.hpp"
#include "core/error.hpp"
#include "core/model.hpp"
#include "io/slide_pipeline.hpp"

namespace {

[[noreturn]] void usage(const std::string& msg) {
    std::fprintf(stderr,
                 "vahanorm-slide-bench: %s\n"
                 "usage: vahanorm-slide-bench normalize IN OUT [--target M.json] [--source M.json] [--threads N]\n"
                 "         [--quality Q] [--compression C] [--format F] [--tile N] [--batch N] [--no-direct]\n"
                 "         [--no-transform] [--qc DIR] [--bigtiff] [--keep-associated] [--444] [--lut|--no-lut]\n"
                 "       vahanorm-slide-bench estimate IN OUT.json [--threads N]\n",
                 msg.c_str());
    std::exit(64);
}

double peak_rss_kib() {
    rusage ru{};
    getrusage(RUSAGE_SELF, &ru);
    return static_cast<double>(ru.ru_maxrss);
}

double since(std::chrono::steady_clock::time_point t0) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace

int main(int argc, char** argv) {
    if (argc < 4) usage("missing arguments");
    const std::string cmd = argv[1], in = argv[2], out = argv[3];
    std::string target_path, source_path;
    int threads = 0;
    vn::SlideOptions opt;
    for (int i = 4; i < argc; ++i) {
        const std::string k = argv[i];
        auto value = [&]() -> std::string {
            if (i + 1 >= argc) usage("missing value for " + k);
            return argv[++i];
        };
        if (k == "--target") target_path = value();
        else if (k == "--source") source_path = value();
        else if (k == "--threads") threads = std::atoi(value().c_str());
        else if (k == "--quality") opt.quality = std::atoi(value().c_str());
        else if (k == "--compression") opt.compression = vn::parse_compression(value());
        else if (k == "--format") opt.format = vn::parse_slide_format(value());
        else if (k == "--tile") opt.tile_size = std::atoi(value().c_str());
        else if (k == "--batch") opt.batch_tiles = std::atoi(value().c_str());
        else if (k == "--no-direct") opt.direct_tiff = false;
        else if (k == "--no-transform") opt.transform = false;
        else if (k == "--lut") opt.colour_lut = vn::ColourLut::Always;
        else if (k == "--no-lut") opt.colour_lut = vn::ColourLut::Never;
        else if (k == "--qc") opt.qc_dir = value();
        else if (k == "--bigtiff") opt.bigtiff = vn::BigTiffMode::Always;
        else if (k == "--keep-associated") opt.keep_associated = true;
        else if (k == "--444") opt.chroma_subsampling = false;
        else usage("unknown option " + k);
    }
    opt.threads = threads;
    opt.callbacks.log = [](const std::string& s) { std::fprintf(stderr, "%s\n", s.c_str()); };
    try {
        auto backend = vn::make_cpu_backend(threads);
        vn::SlideEstimateOptions eo;
        eo.threads = threads;
        eo.hash_source = false;
        eo.callbacks.log = opt.callbacks.log;
        const auto t0 = std::chrono::steady_clock::now();
        if (cmd == "estimate") {
            const vn::StainModel m = vn::estimate_slide(in, *backend, vn::EstimateParams{}, eo);
            vn::save_model(m, out);
            std::printf("{\"estimate_seconds\": %.3f, \"peak_rss_mib\": %.1f}\n", since(t0), peak_rss_kib() / 1024.0);
            return 0;
        }
        if (cmd != "normalize") usage("unknown command " + cmd);
        auto model = [](const std::string& p) { return p == "builtin" ? vn::builtin_reference() : vn::load_model(p); };
        const vn::StainModel target = target_path.empty() ? vn::builtin_reference() : model(target_path);
        vn::StainModel source = target;
        double estimate_s = 0;
        if (!source_path.empty()) {
            source = model(source_path);
        } else if (opt.transform) {
            source = vn::estimate_slide(in, *backend, vn::EstimateParams{}, eo);
            estimate_s = since(t0);
        }
        const vn::SlideResult r = vn::normalize_slide(in, out, source, target, *backend, opt);
        std::printf(
            "{\"input\": \"%s\", \"output\": \"%s\", \"width\": %lld, \"height\": %lld, \"levels\": %zu,\n"
            " \"reader\": \"%s\", \"threads\": %d, \"bigtiff\": %s, \"colour_lut\": %s, \"output_bytes\": %llu,\n"
            " \"estimate_seconds\": %.3f, \"wall_seconds\": %.3f, \"total_seconds\": %.3f, \"mpx_per_second\": %.1f,\n"
            " \"stage_seconds\": {\"read\": %.3f, \"normalize\": %.3f, \"encode\": %.3f, \"write\": %.3f},\n"
            " \"stage_mpx_per_second\": {\"read\": %.1f, \"normalize\": %.1f, \"encode\": %.1f, \"write\": %.1f},\n"
            " \"tissue_fraction\": %.3f, \"peak_rss_mib\": %.1f}\n",
            r.input.c_str(), r.output.c_str(), static_cast<long long>(r.width), static_cast<long long>(r.height),
            r.levels.size(), r.reader.c_str(), vn::default_thread_count(threads), r.bigtiff ? "true" : "false",
            r.colour_lut ? "true" : "false",
            static_cast<unsigned long long>(r.output_bytes), estimate_s, r.wall_seconds, since(t0), r.mpx_per_second,
            r.seconds.read, r.seconds.normalize, r.seconds.encode, r.seconds.write, r.mpx_per_stage_second.read,
            r.mpx_per_stage_second.normalize, r.mpx_per_stage_second.encode, r.mpx_per_stage_second.write,
            r.tissue_fraction, peak_rss_kib() / 1024.0);
        return 0;
    } catch (const vn::Error& e) {
        std::fprintf(stderr, "vahanorm-slide-bench: %s\n", e.what());
        return 1;
    }
}
