// vahanorm._core: the compiled core and io of vahanorm for Python (nanobind). The package's
// Python modules (python/vahanorm/) only shape arguments and results; every pixel and every
// model goes through the same C++ as the vahanorm command line.
//
// Models cross this boundary as the JSON text of the model file (core/model.hpp), so a model
// made here, by the CLI or by hand is validated by one function with one set of messages.
// The GIL is released while the core runs. No thread is started at import: a Normalizer makes
// its backend (and so its thread pool) on first use, and makes a new one in a forked child.
#include <limits.h>
#include <stdlib.h>
#include <unistd.h>

#include <cstdint>
#include <cstring>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <nanobind/nanobind.h>
#include <nanobind/ndarray.h>
#include <nanobind/stl/optional.h>
#include <nanobind/stl/pair.h>
#include <nanobind/stl/string.h>
#include <nanobind/stl/vector.h>
#include <nlohmann/json.hpp>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include "app/apply_plan.hpp"
#include "app/commands.hpp"
#include "app/context.hpp"
#include "app/cuda_plugin.hpp"
#include "app/report.hpp"
#include "core/backend.hpp"
#include "core/error.hpp"
#include "core/estimate.hpp"
#include "core/model.hpp"
#include "core/transform.hpp"
#include "io/atomic_file.hpp"
#include "io/image_io.hpp"
#include "io/libtiff.hpp"
#include "io/model_file.hpp"
#include "io/paths.hpp"
#include "io/input_plan.hpp"
#include "io/sha256.hpp"
#include "io/slide_pipeline.hpp"
#include "io/source_estimate.hpp"
#include "io/tiff_writer.hpp"
#include "io/threads.hpp"
#include "io/tile_batch.hpp"

namespace nb = nanobind;
using json = nlohmann::json;

namespace vn::py {
namespace {

// ---- errors ------------------------------------------------------------------------------------

// The Python exception class for each ErrorKind, in its order (vahanorm/_errors.py registers them).
constexpr int kErrorKinds = static_cast<int>(ErrorKind::Resource) + 1;
PyObject* g_error_classes[kErrorKinds] = {};

void translate_error(const std::exception_ptr& p, void*) {
    try {
        std::rethrow_exception(p);
    } catch (const Error& e) {
        const int k = static_cast<int>(e.kind());
        PyObject* cls = k >= 0 && k < kErrorKinds && g_error_classes[k] ? g_error_classes[k] : PyExc_RuntimeError;
        PyErr_SetString(cls, e.what());
    }
}

// ---- pixels ------------------------------------------------------------------------------------

using AnyArray = nb::ndarray<nb::ro, nb::device::cpu>;

std::string dtype_name(nb::dlpack::dtype d) {
    const char* kind = "?";
    switch (static_cast<nb::dlpack::dtype_code>(d.code)) {
        case nb::dlpack::dtype_code::Int: kind = "int"; break;
        case nb::dlpack::dtype_code::UInt: kind = "uint"; break;
        case nb::dlpack::dtype_code::Float: kind = "float"; break;
        case nb::dlpack::dtype_code::Bool: return "bool";
        case nb::dlpack::dtype_code::Complex: kind = "complex"; break;
        default: break;
    }
    return kind + std::to_string(d.bits);
}

std::string shape_text(const AnyArray& a) {
    std::string s = "(";
    for (std::size_t i = 0; i < a.ndim(); ++i) s += (i ? ", " : "") + std::to_string(a.shape(i));
    return s + (a.ndim() == 1 ? ",)" : ")");
}

// One image of an array: byte strides may be anything numpy allows (negative, zero, > the row).
struct Layout {
    const std::uint8_t* data = nullptr;
    int height = 0, width = 0, channels = 3;
    std::int64_t sy = 0, sx = 0, sc = 0;

    // Rows of packed RGB pixels: usable in place, no copy.
    bool packed_rgb() const {
        return channels == 3 && sc == 1 && sx == 3 && sy >= 3 * static_cast<std::int64_t>(width);
    }
};

// Checks an (H, W, 3|4) image or an (N, H, W, 3|4) batch; `what` names it in messages.
void check_pixels(const AnyArray& a, std::size_t ndim, const char* what) {
    const char* expected = ndim == 3 ? "(H, W, 3) or (H, W, 4)" : "(N, H, W, 3) or (N, H, W, 4)";
    if (a.dtype() != nb::dtype<std::uint8_t>() || a.ndim() != ndim || (a.shape(ndim - 1) != 3 && a.shape(ndim - 1) != 4))
        fail(ErrorKind::Usage, std::string(what) + ": expected uint8 pixels of shape " + expected + ", got " +
                                   dtype_name(a.dtype()) + " " + shape_text(a));
    for (std::size_t i = 0; i + 1 < ndim; ++i) {
        if (a.shape(i) == 0) fail(ErrorKind::Usage, std::string(what) + ": empty array " + shape_text(a));
        if (a.shape(i) > static_cast<std::size_t>(INT_MAX))
            fail(ErrorKind::Usage, std::string(what) + ": too large " + shape_text(a));
    }
}

Layout layout_of(const AnyArray& a, std::size_t index) {
    const std::size_t off = a.ndim() == 4 ? 1 : 0;
    Layout l;
    l.data = static_cast<const std::uint8_t*>(a.data()) + (off ? static_cast<std::int64_t>(index) * a.stride(0) : 0);
    l.height = static_cast<int>(a.shape(off));
    l.width = static_cast<int>(a.shape(off + 1));
    l.channels = static_cast<int>(a.shape(off + 2));
    l.sy = a.stride(off);
    l.sx = a.stride(off + 1);
    l.sc = a.stride(off + 2);
    return l;
}

// Colour c with alpha a over white, rounded: the same arithmetic as the tile readers'
// RGBA compositing (io/image_io.cpp, over_white8), so an RGBA array gives what its PNG gives.
inline std::uint8_t over_white8(std::uint32_t c, std::uint32_t a) {
    return static_cast<std::uint8_t>((c * a + 255u * (255u - a) + 127u) / 255u);
}

// The image as packed RGB rows: in place when it already is, else copied (and composited).
struct Pixels {
    RgbView view;
    std::vector<std::uint8_t> copy;
};

Pixels to_rgb(const Layout& l) {
    Pixels p;
    if (l.packed_rgb()) {
        p.view = RgbView{l.data, l.width, l.height, static_cast<std::size_t>(l.sy)};
        return p;
    }
    p.copy.resize(static_cast<std::size_t>(l.width) * static_cast<std::size_t>(l.height) * 3u);
    std::uint8_t* d = p.copy.data();
    for (int y = 0; y < l.height; ++y) {
        const std::uint8_t* row = l.data + y * l.sy;
        for (int x = 0; x < l.width; ++x, d += 3) {
            const std::uint8_t* s = row + x * l.sx;
            if (l.channels == 4) {
                const std::uint32_t a = s[3 * l.sc];
                for (int c = 0; c < 3; ++c) d[c] = over_white8(s[c * l.sc], a);
            } else {
                for (int c = 0; c < 3; ++c) d[c] = s[c * l.sc];
            }
        }
    }
    p.view = RgbView{p.copy.data(), l.width, l.height, static_cast<std::size_t>(l.width) * 3u};
    return p;
}

using OutArray = nb::ndarray<nb::numpy, std::uint8_t>;

// A new C-contiguous uint8 array of `shape` that owns `buf` (created with new[]).
OutArray owning_array(std::unique_ptr<std::uint8_t[]> buf, const std::vector<std::size_t>& shape) {
    std::uint8_t* data = buf.release();
    nb::capsule owner(data, [](void* q) noexcept { delete[] static_cast<std::uint8_t*>(q); });
    return OutArray(data, shape.size(), shape.data(), owner);
}

// ---- backends ----------------------------------------------------------------------------------

// Slide output tiles from Python: a multiple of app::kTileSizeMultiple up to this.
constexpr int kMaxSlideTileSize = 4096;

// `threads` of the API, resolved once per call or Normalizer: None (0) is $SLURM_CPUS_PER_TASK,
// else the usable CPUs (io/threads.hpp).
int python_thread_count(int threads) { return resolve_thread_count(threads, {}, "threads=N"); }

// The CLI's device policy and CUDA module loader (app/cuda_plugin.hpp: the module's ABI and
// struct layouts checked, its exceptions turned into vn::Error with their kinds).
std::unique_ptr<Backend> make_backend(const std::string& device, int threads) {
    return app::make_device_backend(device, threads, "device");
}

// ---- parameters --------------------------------------------------------------------------------

// Estimation parameters under the model file's names (core/model.cpp, to_json). Unknown
// names and values out of range are usage errors; the Python side passes only known names.
EstimateParams params_from_json(const std::string& text) {
    EstimateParams p;
    if (text.empty()) return p;
    const json j = json::parse(text);
    auto num = [&](const char* key, double lo, double hi) -> std::optional<double> {
        if (!j.contains(key)) return std::nullopt;
        const json& v = j.at(key);
        if (!v.is_number()) fail(ErrorKind::Usage, std::string(key) + ": expected a number");
        const double x = v.get<double>();
        if (!(x >= lo && x <= hi))
            fail(ErrorKind::Usage, std::string(key) + ": " + v.dump() + " is outside [" + json(lo).dump() + ", " +
                                       json(hi).dump() + "]");
        return x;
    };
    if (auto v = num("seed", 0, 1.8446744073709552e19)) p.seed = j.at("seed").get<std::uint64_t>();
    if (auto v = num("sample_size", app::kMinSampleSize, app::kMaxSampleSize)) p.sample_size = static_cast<std::size_t>(*v);
    if (auto v = num("lambda", 0, 10)) p.lambda = *v;
    if (auto v = num("lambda_concentration", 0, 10)) p.lambda_conc = *v;
    if (auto v = num("percentile", 0, 100)) p.percentile = *v;
    if (auto v = num("min_tissue_pixels", 1, 1e12)) p.min_tissue_pixels = static_cast<std::size_t>(*v);
    if (auto v = num("min_tissue_fraction", 0, 1)) p.min_tissue_fraction = *v;
    if (auto v = num("min_stain_angle_deg", 0, 90)) p.min_stain_angle_deg = *v;
    if (auto v = num("max_iterations", 1, 100000)) p.max_iterations = static_cast<int>(*v);
    if (auto v = num("tolerance", 0, 1)) p.tolerance = *v;
    return p;
}

// ---- models ------------------------------------------------------------------------------------

// A model from its numbers and provenance, read by the model file's own reader (core/model.cpp,
// model_from_json: its checks and messages); the estimation parameters by params_from_json.
std::string model_from_parts(const std::vector<std::vector<double>>& stain, const std::vector<double>& max_conc,
                             const std::string& params, const std::string& source) {
    // A non-finite number has no JSON spelling (it would read back as null): the model's checks
    // see the numbers as given first.
    if (stain.size() == 2 && stain[0].size() == 3 && stain[1].size() == 3 && max_conc.size() == 2) {
        StainModel given;
        for (std::size_t k = 0; k < 2; ++k) {
            for (std::size_t c = 0; c < 3; ++c) given.stain[k][c] = stain[k][c];
            given.max_conc[k] = max_conc[k];
        }
        validate(given, "model");
    }
    json doc = {{"format", "vahanorm-model"}, {"version", 1}, {"stain_matrix", stain}, {"max_concentrations", max_conc}};
    if (!source.empty()) doc["source"] = json::parse(source);
    StainModel m = model_from_json(doc.dump(), "model");
    m.params = params_from_json(params);
    validate(m, "model");
    return to_json(m);
}

// One source of an estimate: a file (image or slide) or an array.
struct Source {
    std::string path;
    std::optional<Layout> array;
};

std::vector<Source> sources_from(const nb::list& items) {
    std::vector<Source> out;
    for (nb::handle h : items) {
        Source s;
        if (nb::isinstance<nb::str>(h)) {
            s.path = nb::cast<std::string>(h);
        } else {
            AnyArray a;
            if (!nb::try_cast(h, a))
                fail(ErrorKind::Usage, "expected an image array or a path, got " +
                                           nb::cast<std::string>(nb::str(nb::handle(h.type()).attr("__name__"))));
            check_pixels(a, 3, "image");
            s.array = layout_of(a, 0);
        }
        out.push_back(std::move(s));
    }
    if (out.empty()) fail(ErrorKind::Usage, "no images to estimate from");
    return out;
}

// Files alone go through the CLI's estimate_from_sources (io/source_estimate.cpp: one slide
// alone gets the slide estimate; otherwise images are decoded whole, slides sampled, all
// pooled; the provenance of each file). With arrays among them, the same pooling in the order
// given, an array in place. `fit`: the model is a target (the CLI's `fit` wording and
// provenance), else a source model (`estimate`).
std::string estimate_sources(const std::vector<Source>& sources, const std::string& params_json,
                             const std::string& device, int threads, bool fit) {
    const EstimateParams params = params_from_json(params_json);
    threads = python_thread_count(threads);
    std::unique_ptr<Backend> backend = make_backend(device, threads);
    std::vector<std::string> paths;
    for (const Source& s : sources)
        if (!s.array) paths.push_back(s.path);
    StainModel m;
    try {
        if (paths.size() == sources.size()) {
            SourceOptions so;
            so.threads = threads;
            m = estimate_from_sources(paths, *backend, params, so);
        } else {
            SlideEstimateOptions eo;
            eo.threads = threads;
            // Every source's pixels, in the order given: an array in place, an image decoded, a
            // slide's sampled regions (several each).
            std::vector<std::vector<RgbImage>> decoded(sources.size());
            std::vector<Pixels> arrays(sources.size());
            std::vector<RgbView> views;
            for (std::size_t i = 0; i < sources.size(); ++i) {
                const Source& s = sources[i];
                if (s.array) {
                    arrays[i] = to_rgb(*s.array);
                    views.push_back(arrays[i].view);
                    continue;
                }
                if (is_slide(s.path))
                    decoded[i] = sample_slide(s.path, params.seed, eo);
                else
                    decoded[i].push_back(read_image(s.path));
                for (const RgbImage& img : decoded[i]) views.push_back(img.view());
            }
            try {
                m = backend->estimate(views, params);
            } catch (const Error& e) {
                if (e.kind() != ErrorKind::Data) throw;
                fail(ErrorKind::Data, (sources.size() == 1 ? std::string("image") : std::to_string(sources.size()) + " images") +
                                          ": " + e.what());
            }
            std::string names, sums;
            for (const Source& s : sources) {
                names += (names.empty() ? "" : ",") + (s.array ? std::string("<array>") : s.path);
                if (!s.array) sums += (sums.empty() ? "" : ",") + sha256_file(s.path);
            }
            m.source_path = names;
            m.source_sha256 = sums;
        }
    } catch (const Error& e) {
        if (fit && e.kind() == ErrorKind::Data)
            fail(ErrorKind::Data, std::string(e.what()) + " (cannot fit a target on this reference)");
        throw;
    }
    return to_json(m);
}

// ---- the normalizer ----------------------------------------------------------------------------

class Normalizer {
public:
    Normalizer(const std::string& target, const std::optional<std::string>& source, const std::string& device, int threads,
               const std::string& params)
        : target_(model_from_json(target, "target")),
          device_(device),
          threads_(python_thread_count(threads)),
          params_(params_from_json(params)) {
        (void)app::parse_device(device, "device");
        if (source) {
            source_ = model_from_json(*source, "source");
            plan_ = make_plan(*source_, target_);
        }
        // A GPU is asked for: say now whether there is one (the CPU's threads start on first use).
        if (device != "cpu") state()->backend = make_backend(device_, threads_);
    }

    Normalizer(const Normalizer&) = delete;
    Normalizer& operator=(const Normalizer&) = delete;

    // In a forked child the parent's backend is left alone (its pool's threads are not here
    // to be joined).
    ~Normalizer() {
        if (state_ && state_->pid != ::getpid()) (void)state_.release();
    }

    std::string name() {
        State* st = state();
        nb::gil_scoped_release release;
        std::lock_guard<std::mutex> lock(st->mutex);
        return backend(*st).name();
    }

    std::pair<OutArray, std::string> transform(const AnyArray& a) {
        check_pixels(a, 3, "image");
        const Layout l = layout_of(a, 0);
        const std::size_t h = static_cast<std::size_t>(l.height), w = static_cast<std::size_t>(l.width);
        std::unique_ptr<std::uint8_t[]> out(new std::uint8_t[h * w * 3]);
        std::vector<std::string> reasons(1);
        run({l}, out.get(), &reasons);
        return {owning_array(std::move(out), {h, w, 3}), reasons[0]};
    }

    std::pair<OutArray, std::vector<std::string>> transform_batch(const AnyArray& a) {
        check_pixels(a, 4, "batch");
        std::vector<Layout> tiles;
        for (std::size_t i = 0; i < a.shape(0); ++i) tiles.push_back(layout_of(a, i));
        const std::size_t n = a.shape(0), h = a.shape(1), w = a.shape(2);
        std::unique_ptr<std::uint8_t[]> out(new std::uint8_t[n * h * w * 3]);
        std::vector<std::string> reasons(n);
        run(tiles, out.get(), &reasons);
        return {owning_array(std::move(out), {n, h, w, 3}), reasons};
    }

private:
    struct State {
        pid_t pid = ::getpid();
        std::mutex mutex;  // one call at a time per Normalizer (its backend and thread pool)
        std::unique_ptr<Backend> backend;
    };

    // Called with the GIL held, which orders it against other Python threads. In a forked
    // child the parent's backend is unusable (its pool's threads did not come along, its
    // mutexes may be held): it is left alone, never destroyed, and a new one is made.
    State* state() {
        if (!state_ || state_->pid != ::getpid()) {
            if (state_) (void)state_.release();
            state_ = std::make_unique<State>();
        }
        return state_.get();
    }

    Backend& backend(State& st) {
        if (!st.backend) st.backend = make_backend(device_, threads_);
        return *st.backend;
    }

    void run(const std::vector<Layout>& tiles, std::uint8_t* out, std::vector<std::string>* reasons) {
        State* st = state();
        nb::gil_scoped_release release;
        std::lock_guard<std::mutex> lock(st->mutex);
        Backend& b = backend(*st);
        std::vector<Pixels> pixels;
        pixels.reserve(tiles.size());
        std::vector<TileJob> jobs;
        std::uint8_t* dst = out;
        for (const Layout& l : tiles) {
            pixels.push_back(to_rgb(l));
            const RgbSpan span{dst, l.width, l.height, static_cast<std::size_t>(l.width) * 3u};
            jobs.push_back(TileJob{pixels.back().view, span});
            dst += static_cast<std::size_t>(l.width) * static_cast<std::size_t>(l.height) * 3u;
        }
        if (plan_) {
            b.transform(*plan_, jobs);
            return;
        }
        const std::vector<TileOutcome> outcomes = b.normalize_tiles(target_, params_, jobs);
        for (std::size_t i = 0; i < outcomes.size(); ++i)
            if (!outcomes[i].normalized) (*reasons)[i] = outcomes[i].reason;
    }

    StainModel target_;
    std::optional<StainModel> source_;
    std::optional<TransformPlan> plan_;
    std::string device_;
    int threads_;
    EstimateParams params_;
    std::unique_ptr<State> state_;
};

// ---- files through the CLI's io ----------------------------------------------------------------

std::pair<OutArray, std::string> read_image_py(const std::string& path) {
    ImageInfo info;
    RgbImage img;
    {
        nb::gil_scoped_release release;
        img = read_image(path, &info);
    }
    const std::size_t h = static_cast<std::size_t>(img.height), w = static_cast<std::size_t>(img.width);
    std::unique_ptr<std::uint8_t[]> buf(new std::uint8_t[h * w * 3]);
    std::memcpy(buf.get(), img.pixels.data(), h * w * 3);
    return {owning_array(std::move(buf), {h, w, 3}), info.conversion};
}

void write_image_py(const std::string& path, const AnyArray& a, int quality) {
    check_pixels(a, 3, "image");
    const Layout l = layout_of(a, 0);
    if (quality < 1 || quality > app::kMaxJpegQuality)
        fail(ErrorKind::Usage, "quality: expected 1..100, got " + std::to_string(quality));
    nb::gil_scoped_release release;
    const Pixels p = to_rgb(l);
    WriteOptions wo;
    wo.jpeg_quality = quality;
    write_image(path, p.view, wo);
}

std::string get_string(const json& o, const char* key, const std::string& fallback) {
    return o.contains(key) && o[key].is_string() ? o[key].get<std::string>() : fallback;
}

// The CLI's messages go nowhere here: what they say is in the report record (its status,
// message and warnings), which the Python side turns into exceptions and warnings.
void quiet_cli_logging() {
    static std::once_flag once;
    std::call_once(once, [] {
        auto logger = spdlog::stderr_color_mt("vahanorm.python");
        logger->set_level(spdlog::level::off);
        spdlog::set_default_logger(logger);
    });
}

// What apply_slide and apply_tiles take alike: the resolved thread count, the options object,
// the target and the fixed source model (when given).
struct ApplyArgs {
    int threads = 0;
    json options;
    StainModel target;
    std::optional<StainModel> fixed_source;
};

ApplyArgs apply_args(const std::string& target_json, const std::optional<std::string>& source_json,
                     const std::string& options_json, int threads) {
    ApplyArgs a;
    a.threads = python_thread_count(threads);
    a.options = json::parse(options_json);
    a.target = model_from_json(target_json, "target");
    if (source_json) a.fixed_source = model_from_json(*source_json, "source");
    return a;
}

// The options' "params" (estimation parameters by their model-file names).
EstimateParams apply_params(const json& o) { return params_from_json(o.contains("params") ? o["params"].dump() : ""); }

// The options' "quality" of JPEG outputs, 1..100.
int apply_quality(const json& o) {
    const int quality = o.value("quality", app::kDefaultJpegQuality);
    if (quality < 1 || quality > app::kMaxJpegQuality) fail(ErrorKind::Usage, "quality: expected 1..100");
    return quality;
}

// One whole slide through the CLI's own code for it (app/apply_slide.cpp, as `vahanorm apply
// SLIDE -o OUT`); returns its report record (JSON text).
std::string apply_slide_py(const std::string& input, const std::string& output, const std::string& target_json,
                           const std::optional<std::string>& source_json, const std::string& options_json,
                           const std::string& device, int threads) {
    const ApplyArgs a = apply_args(target_json, source_json, options_json, threads);
    const json& o = a.options;
    app::ApplyOptions ao;
    ao.inputs = {input};
    ao.output = output;
    ao.slide_format = get_string(o, "format", "");
    if (!ao.slide_format.empty() && ao.slide_format != "svs" && ao.slide_format != "tiff" && ao.slide_format != "ome")
        fail(ErrorKind::Usage, "format: expected svs, tiff or ome, got '" + ao.slide_format + "'");
    ao.compression = get_string(o, "compression", ao.compression);
    (void)parse_compression(ao.compression);  // Error(Usage) for unknown ones
    ao.tile_size = o.value("tile_size", ao.tile_size);
    if (ao.tile_size < app::kTileSizeMultiple || ao.tile_size > kMaxSlideTileSize || ao.tile_size % app::kTileSizeMultiple != 0)
        fail(ErrorKind::Usage, "tile_size must be a multiple of 16 between 16 and 4096");
    ao.quality = apply_quality(o);
    ao.bigtiff = o.value("bigtiff", false);
    ao.keep_associated = o.value("keep_associated", false);
    ao.continue_on_failed_estimate = o.value("continue_on_failed_estimate", false);
    ao.skip_existing = o.value("skip_existing", false);
    ao.qc_dir = get_string(o, "qc_dir", "");
    if (ao.keep_associated && app::slide_layout(ao, output) == "tiff")
        fail(ErrorKind::Usage, "keep_associated: the tiff layout (a page pyramid) has no place for label and macro "
                               "images; use format='svs' or 'ome'");
    app::GlobalOptions g;
    g.threads = a.threads;
    const EstimateParams params = apply_params(o);
    g.seed = params.seed;
    g.sample_size = params.sample_size;

    nb::gil_scoped_release release;
    quiet_cli_logging();
    InputPlan plan;
    plan.input = input;
    plan.output = output;
    plan.is_slide = is_slide(input);
    if (!plan.is_slide) {
        if (::access(input.c_str(), F_OK) != 0) read_image(input);  // the readers' wording for a missing file
        fail(ErrorKind::Input, input + ": not a whole slide (use apply_tiles or Normalizer for images)");
    }
    check_output_is_not_input(input, output);
    std::unique_ptr<Backend> backend = make_backend(device, a.threads);
    return app::record_json(app::apply_slide(plan, ao, g, *backend, a.target, a.fixed_source)).dump();
}

// Tile files into a directory, as `vahanorm apply TILES... -o DIR/`: the CLI's planning
// (app/apply_plan.cpp: names, collisions, an output that is its input) and its tile batches
// (io/tile_batch.hpp); a failed input is recorded and the rest go on. Returns the report
// records (a JSON array).
std::string apply_tiles_py(const std::vector<std::string>& inputs, const std::string& outdir, const std::string& target_json,
                           const std::optional<std::string>& source_json, const std::string& options_json,
                           const std::string& device, int threads) {
    const ApplyArgs a = apply_args(target_json, source_json, options_json, threads);
    const json& o = a.options;
    const EstimateParams params = apply_params(o);
    TileBatchOptions to;
    to.threads = a.threads;
    to.jpeg_quality = apply_quality(o);
    app::ApplyOptions ao;
    ao.inputs = inputs;
    ao.output = outdir + "/";  // directory mode, as -o DIR/
    ao.out_format = get_string(o, "out_format", "");
    if (!ao.out_format.empty()) format_from_extension("x." + ao.out_format);  // Error(Usage) for unknown formats

    nb::gil_scoped_release release;
    std::vector<InputPlan> plans = app::plan_outputs(ao);
    json records = json::array();
    std::vector<InputPlan> tiles;
    for (InputPlan& p : plans) {
        if (!p.error && p.is_slide) p.error = Error(ErrorKind::Input, p.input + ": a whole slide (use apply_slide for slides)");
        if (p.error)
            records.push_back(app::record_json(failed_result(p.input, p.output, *p.error)));
        else
            tiles.push_back(p);
    }
    std::unique_ptr<Backend> backend = make_backend(device, a.threads);
    normalize_tile_files(tiles, *backend, a.target, a.fixed_source, params, to,
                         [&](InputResult&& r) { records.push_back(app::record_json(r)); });
    return records.dump();
}

}  // namespace
}  // namespace vn::py

NB_MODULE(_core, m) {
    using namespace vn;
    using namespace vn::py;
    m.doc() = "The compiled core of vahanorm (internal: use the vahanorm package).";
    silence_libtiff_default_handlers();  // OpenSlide's libtiff calls print nothing to stderr
    nb::register_exception_translator(translate_error, nullptr);

    m.def("_set_error_classes", [](const std::vector<nb::object>& classes) {
        if (classes.size() != static_cast<std::size_t>(kErrorKinds))
            throw std::invalid_argument("expected one exception class per vn::ErrorKind");
        for (std::size_t i = 0; i < classes.size(); ++i) {
            Py_XDECREF(g_error_classes[i]);
            g_error_classes[i] = classes[i].inc_ref().ptr();
        }
    });
    m.def("version", [] { return std::string(VAHANORM_VERSION); });

    m.def("model_check", [](const std::string& text, const std::string& what) { (void)model_from_json(text, what); },
          nb::arg("text"), nb::arg("what"));
    m.def("model_load", [](const std::string& path) {
        std::string text = read_model_text(path);
        (void)model_from_json(text, path);  // the CLI's checks and messages (io/model_file.cpp, load_model)
        return text;
    });
    m.def("write_file", [](const std::string& path, const std::string& text) {
        write_file_atomic(path, text.data(), text.size());
    });
    m.def("model_from_parts", &model_from_parts);
    m.def("builtin_reference", [] { return to_json(builtin_reference()); });
    m.def("stain_angle_deg", [](const std::string& text) { return stain_angle_deg(model_from_json(text, "model")); });

    m.def("estimate", [](const nb::list& items, const std::string& params, const std::string& device, int threads, bool fit) {
        const std::vector<Source> sources = sources_from(items);
        nb::gil_scoped_release release;
        return estimate_sources(sources, params, device, threads, fit);
    }, nb::arg("sources"), nb::arg("params"), nb::arg("device"), nb::arg("threads"), nb::arg("fit"));

    nb::class_<Normalizer>(m, "Normalizer")
        .def(nb::init<const std::string&, const std::optional<std::string>&, const std::string&, int, const std::string&>(),
             nb::arg("target"), nb::arg("source").none(), nb::arg("device"), nb::arg("threads"), nb::arg("params"))
        .def_prop_ro("backend", &Normalizer::name)
        .def("transform", &Normalizer::transform, nb::arg("image"))
        .def("transform_batch", &Normalizer::transform_batch, nb::arg("batch"));

    m.def("read_image", &read_image_py, nb::arg("path"));
    m.def("write_image", &write_image_py, nb::arg("path"), nb::arg("image"), nb::arg("quality"));
    m.def("apply_slide", &apply_slide_py, nb::arg("input"), nb::arg("output"), nb::arg("target"),
          nb::arg("source").none(), nb::arg("options"), nb::arg("device"), nb::arg("threads"));
    m.def("apply_tiles", &apply_tiles_py, nb::arg("inputs"), nb::arg("output"), nb::arg("target"),
          nb::arg("source").none(), nb::arg("options"), nb::arg("device"), nb::arg("threads"));
}
