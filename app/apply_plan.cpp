#include "app/apply_plan.hpp"

#include <dirent.h>
#include <sys/stat.h>

#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <map>

#include <spdlog/spdlog.h>

#include "io/atomic_file.hpp"
#include "core/error.hpp"
#include "io/image_io.hpp"
#include "io/model_file.hpp"
#include "io/paths.hpp"
#include "io/slide_pipeline.hpp"
#include "io/slide_reader.hpp"

namespace vn::app {
namespace {

// Vendor slide formats (TIFF-based .tif/.tiff may be tiles or slides, so they are not listed).
bool is_slide_extension(const std::string& ext) {
    return ext == "svs" || ext == "ndpi" || ext == "vms" || ext == "vmu" || ext == "scn" || ext == "mrxs" ||
           ext == "bif" || ext == "svslide";
}

bool is_tile_extension(const std::string& ext) {
    return ext == "png" || ext == "jpg" || ext == "jpeg" || ext == "tif" || ext == "tiff";
}

bool ends_with_nocase(const std::string& s, const std::string& suffix) {
    if (s.size() < suffix.size()) return false;
    for (std::size_t i = 0; i < suffix.size(); ++i)
        if (std::tolower(static_cast<unsigned char>(s[s.size() - suffix.size() + i])) != suffix[i]) return false;
    return true;
}

// Whole-slide formats this build's OpenSlide does not read: named, with what it does read.
std::string unsupported_slide_format(const std::string& ext) {
    if (ext == "czi") return "Zeiss CZI";
    if (ext == "dcm" || ext == "dicom") return "DICOM";
    if (ext == "isyntax") return "Philips iSyntax";
    if (ext == "vsi") return "Olympus VSI";
    if (ext == "lif") return "Leica LIF";
    if (ext == "qptiff") return "Akoya QPTIFF";
    return std::string();
}

std::string openslide_formats() {
    return std::string("this build reads whole slides through OpenSlide ") + openslide_version() +
           ": Aperio (.svs, .tif), Hamamatsu (.ndpi, .vms, .vmu), Leica (.scn), MIRAX (.mrxs), Philips (.tiff), "
           "Sakura (.svslide), Trestle (.tif), Ventana (.bif, .tif) and generic tiled TIFF; convert others first, e.g. "
           "to OME-TIFF with bfconvert";
}

// A folder of DICOM files (a DICOM whole-slide image is one).
bool is_dicom_folder(const std::string& dir) {
    DIR* d = ::opendir(dir.c_str());
    if (!d) return false;
    bool found = false;
    while (dirent* e = ::readdir(d)) {
        const std::string n = e->d_name;
        if (ends_with_nocase(n, ".dcm")) {
            found = true;
            break;
        }
    }
    ::closedir(d);
    return found;
}

// Whether `in` is a slide (else a tile image); Error(Input) for an input that is neither.
bool check_input(const std::string& in) {
    struct stat st {};
    if (::stat(in.c_str(), &st) != 0) {
        // Worded like the image reader's messages: "no such file", "permission denied".
        std::string why = errno == ENOENT ? "no such file" : std::strerror(errno);
        if (!why.empty()) why[0] = static_cast<char>(std::tolower(static_cast<unsigned char>(why[0])));
        fail(ErrorKind::Input, in + ": " + why);
    }
    if (S_ISDIR(st.st_mode))
        fail(ErrorKind::Input, is_dicom_folder(in) ? in + ": a DICOM folder, which is not a slide format " + openslide_formats()
                                                   : in + ": is a directory (give the files, e.g. " + in + "/*.png)");
    const std::string ext = lower_extension(in);
    if (const std::string fmt = unsupported_slide_format(ext); !fmt.empty())
        fail(ErrorKind::Input, in + ": " + fmt + " is not a slide format " + openslide_formats());
    const bool slide = is_slide(in);
    if (!slide && is_slide_extension(ext))
        fail(ErrorKind::Input, in + ": not a slide that OpenSlide can read (unknown format, truncated or corrupt)");
    return slide;
}

}  // namespace

std::string slide_layout(const ApplyOptions& o, const std::string& output) {
    if (!o.slide_format.empty()) return o.slide_format;
    return ends_with_nocase(output, ".ome.tif") || ends_with_nocase(output, ".ome.tiff") ? "ome" : "svs";
}

TargetChoice resolve_target(const std::string& option) {
    TargetChoice t;
    if (!option.empty()) {
        t.path = option;
        t.chosen_by = "--target";
    } else if (const char* env = std::getenv("VAHANORM_TARGET"); env && *env) {
        t.path = env;
        t.chosen_by = "$VAHANORM_TARGET";
    } else if (file_exists("target.json")) {
        t.path = "target.json";
        t.chosen_by = "./target.json";
    }
    if (t.path.empty()) {
        t.model = builtin_reference();
        t.chosen_by = "built-in";
        t.description = "built-in H&E reference (no --target, no $VAHANORM_TARGET, no ./target.json)";
    } else {
        t.model = load_model(t.path);
        t.description = t.path + " (from " + t.chosen_by + ")";
    }
    return t;
}

std::vector<InputPlan> plan_outputs(const ApplyOptions& o) {
    const bool dir_mode = o.inputs.size() > 1 || (!o.output.empty() && o.output.back() == '/') || is_directory(o.output);
    std::string out_dir = o.output;
    while (out_dir.size() > 1 && out_dir.back() == '/') out_dir.pop_back();
    if (dir_mode) make_directories(out_dir);

    std::vector<InputPlan> plans;
    std::map<std::string, std::string> claimed;  // output -> input
    for (const std::string& in : o.inputs) {
        InputPlan p;
        p.input = in;
        try {
            p.is_slide = check_input(in);
        } catch (const Error& e) {
            p.error = e;
        }
        std::string ext = lower_extension(in);
        if (dir_mode) {
            if (p.is_slide)
                ext = slide_layout(o, "") == "ome" ? "ome.tif" : "tif";
            else if (!o.out_format.empty())
                ext = o.out_format;
            else if (!is_tile_extension(ext))
                ext = "png";
            if (ext == "jpeg") ext = "jpg";
            p.output = out_dir + "/" + file_stem(in) + "." + ext;
        } else {
            p.output = o.output;
            if (!p.is_slide && !p.error && !is_tile_extension(lower_extension(p.output)))
                fail(ErrorKind::Usage, p.output + ": unknown output format (use .png, .jpg or .tif)");
        }
        const auto [it, fresh] = claimed.emplace(p.output, in);
        if (!fresh) fail(ErrorKind::Usage, "inputs " + it->second + " and " + in + " would both write " + p.output);
        if (!p.error) {
            try {
                check_output_is_not_input(in, p.output);
                resolve_output(p.output);  // never replace a device, FIFO or directory
            } catch (const Error& e) {
                p.error = e;
            }
        }
        plans.push_back(std::move(p));
    }
    return plans;
}

void check_inputs(const ApplyOptions& o, const GlobalOptions& g, const ApplyInputs& in, bool fixed_source) {
    if (o.no_normalize && !in.tiles.empty()) fail(ErrorKind::Usage, "--no-normalize applies to whole slides only");
    for (const InputPlan& p : in.slides)
        if (o.keep_associated && slide_layout(o, p.output) == "tiff")
            fail(ErrorKind::Usage, "--keep-associated: the tiff layout (a page pyramid) has no place for label and "
                                   "macro images; use --format svs or ome");
    if (!g.mask.empty() && (fixed_source || !in.tiles.empty() || in.slides.size() != 1))
        fail(ErrorKind::Usage, "--mask restricts the source estimate of one slide: for tiles, run `vahanorm estimate "
                               "--mask` and pass the model with --source-model");
    if (!g.mask_class.empty() && g.mask.empty()) fail(ErrorKind::Usage, "--mask-class needs --mask");
}

}  // namespace vn::app
