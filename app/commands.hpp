// The subcommands: each registers its options on a CLI11 subcommand and runs from them.
#pragma once

#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "app/context.hpp"

namespace vn::app {

struct FitOptions {
    std::vector<std::string> refs;
    std::string output = "target.json";
};
void add_fit(CLI::App& app, FitOptions& o);
int run_fit(const GlobalOptions& g, const FitOptions& o);

struct EstimateOptions {
    std::string input;
    std::string output;
};
void add_estimate(CLI::App& app, EstimateOptions& o);
int run_estimate(const GlobalOptions& g, const EstimateOptions& o);

// Slide output tiles: a multiple of kTileSizeMultiple pixels, at most kMaxTileSize (memory stays bounded).
constexpr int kTileSizeMultiple = 16;
constexpr int kMaxTileSize = 1024;
constexpr int kDefaultJpegQuality = 90;
constexpr int kMaxJpegQuality = 100;

struct ApplyOptions {
    std::vector<std::string> inputs;
    std::string output;
    std::string target;
    std::string source_model;
    bool pooled = false;
    bool skip_existing = false;
    int quality = kDefaultJpegQuality;
    std::string out_format;  // tiles in directory mode: png|jpg|tif (default: as the input)
    // Whole slides
    std::string slide_format;  // svs|tiff|ome; empty: ome for an output named *.ome.tif(f), else svs
    int tile_size = 256;
    std::string compression = "jpeg";
    bool bigtiff = false;
    bool keep_associated = false;
    bool continue_on_failed_estimate = false;
    std::string qc_dir;
    bool no_normalize = false;  // slides: decode and re-encode only (the codec floor, for benchmarks)
};
void add_apply(CLI::App& app, ApplyOptions& o);
int run_apply(const GlobalOptions& g, const ApplyOptions& o);

struct DemoOptions {
    std::string output = "vahanorm-demo";
    int size = 768;
};
void add_demo(CLI::App& app, DemoOptions& o);
int run_demo(const GlobalOptions& g, const DemoOptions& o);

// Shared helpers of the subcommands (names of files: io/paths.hpp; directories:
// io/atomic_file.hpp).
bool file_exists(const std::string& path);
// "-" and the names of standard output (/dev/stdout, /dev/fd/1, /proc/self/fd/1): `fit` and
// `estimate` write the model there; `apply` refuses them (images do not go to a stream).
bool is_stdout_path(const std::string& path);
// Writes and flushes; throws Error(Output) when standard output is closed or full.
void write_stdout(const std::string& text);

}  // namespace vn::app
