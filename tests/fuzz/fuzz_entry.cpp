#include "tests/fuzz/fuzz_entry.hpp"

#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <new>
#include <vector>

#include <zlib.h>

#include "core/error.hpp"
#include "core/model.hpp"
#include "core/transform.hpp"
#include "io/image_io.hpp"

namespace vn::fuzz {
namespace {

[[noreturn]] void bug(const char* what, const std::string& detail) {
    std::fprintf(stderr, "vahanorm fuzz: BUG: %s: %s\n", what, detail.c_str());
    std::fflush(stderr);
    std::abort();
}

// The readers only take paths. One in-memory file (memfd) per process, rewritten for every
// input and opened by the reader through /proc/self/fd/N: no disk I/O, nothing left behind.
// Without memfd or /proc, a file in $TMPDIR (or /tmp), unlinked at exit.
class ScratchFile {
public:
    ScratchFile() {
        fd_ = ::memfd_create("vahanorm-fuzz", MFD_CLOEXEC);
        if (fd_ >= 0) {
            path_ = "/proc/self/fd/" + std::to_string(fd_);
            struct stat st {};
            if (::stat(path_.c_str(), &st) == 0) return;
            ::close(fd_);
        }
        const char* tmp = std::getenv("TMPDIR");
        std::string tmpl = std::string(tmp && *tmp ? tmp : "/tmp") + "/vahanorm-fuzz-XXXXXX";
        fd_ = ::mkstemp(tmpl.data());
        if (fd_ < 0) bug("cannot create a scratch file", std::strerror(errno));
        path_ = tmpl;
        unlink_ = true;
    }
    ~ScratchFile() {
        if (unlink_) ::unlink(path_.c_str());
        ::close(fd_);
    }
    ScratchFile(const ScratchFile&) = delete;
    ScratchFile& operator=(const ScratchFile&) = delete;

    const std::string& write(const std::uint8_t* data, std::size_t size) {
        if (::ftruncate(fd_, 0) != 0) bug("ftruncate", std::strerror(errno));
        std::size_t done = 0;
        while (done < size) {
            const ssize_t n = ::pwrite(fd_, data + done, size - done, static_cast<off_t>(done));
            if (n < 0 && errno == EINTR) continue;
            if (n <= 0) bug("pwrite", std::strerror(errno));
            done += static_cast<std::size_t>(n);
        }
        return path_;
    }

private:
    int fd_ = -1;
    std::string path_;
    bool unlink_ = false;
};

ScratchFile& scratch() {
    static ScratchFile f;
    return f;
}

bool starts_with(const std::uint8_t* data, std::size_t size, const char* magic, std::size_t n) {
    return size >= n && std::memcmp(data, magic, n) == 0;
}

bool has_signature(Target t, const std::uint8_t* data, std::size_t size) {
    switch (t) {
        case Target::Png: return starts_with(data, size, "\x89PNG\r\n\x1a\n", 8);
        case Target::Jpeg: return starts_with(data, size, "\xff\xd8\xff", 3);
        case Target::Tiff:
            return starts_with(data, size, "II*\0", 4) || starts_with(data, size, "MM\0*", 4) ||
                   starts_with(data, size, "II+\0", 4) || starts_with(data, size, "MM\0+", 4);
        case Target::Model: return true;
    }
    return false;
}

ImageFormat format_of(Target t) {
    switch (t) {
        case Target::Jpeg: return ImageFormat::Jpeg;
        case Target::Tiff: return ImageFormat::Tiff;
        default: return ImageFormat::Png;
    }
}

bool same_model(const StainModel& a, const StainModel& b) {
    return a.stain == b.stain && a.max_conc == b.max_conc && a.params.lambda == b.params.lambda &&
           a.params.lambda_conc == b.params.lambda_conc && a.params.percentile == b.params.percentile &&
           a.params.min_stain_angle_deg == b.params.min_stain_angle_deg && a.source_path == b.source_path &&
           a.source_sha256 == b.source_sha256 && a.tissue_pixels == b.tissue_pixels;
}

int run_model(const std::uint8_t* data, std::size_t size, bool* accepted) {
    const std::string text(reinterpret_cast<const char*>(data), size);
    StainModel m;
    try {
        m = model_from_json(text, "fuzz.json");
    } catch (const Error& e) {
        if (e.kind() != ErrorKind::Data) bug("model_from_json threw a non-Data error", e.what());
        if (std::strncmp(e.what(), "fuzz.json: ", 11) != 0) bug("model error does not name the file", e.what());
        return 0;
    }
    *accepted = true;
    // Accepted: the invariants hold, and the model survives its own file format unchanged.
    for (const auto& row : m.stain)
        for (double v : row)
            if (!std::isfinite(v) || v < 0) bug("accepted model has a bad stain entry", std::to_string(v));
    for (double v : m.max_conc)
        if (!std::isfinite(v) || !(v > 0)) bug("accepted model has a bad max concentration", std::to_string(v));
    if (!(stain_angle_deg(m) >= EstimateParams{}.min_stain_angle_deg))
        bug("accepted model has nearly parallel stains", std::to_string(stain_angle_deg(m)) + " degrees");
    StainModel again;
    const std::string round = to_json(m);
    try {
        again = model_from_json(round, "round-trip");
    } catch (const Error& e) {
        bug("an accepted model does not read back from to_json", e.what() + std::string("\n") + round);
    }
    if (!same_model(m, again)) bug("model changed in a to_json round trip", round);
    // An accepted model is usable as a source and as a target: the transform's constants are
    // finite (make_plan works in float, where an out-of-range double becomes inf).
    const StainModel ref = builtin_reference();
    for (const TransformPlan& plan : {make_plan(m, ref), make_plan(ref, m)}) {
        const px::Solver<float>& sv = plan.solver;
        const float values[] = {sv.g00, sv.g01, sv.g11, sv.i00, sv.i01, sv.i11, sv.r00, sv.r11, sv.lambda,
                                plan.render.a[0], plan.render.a[1], plan.render.a[2],
                                plan.render.b[0], plan.render.b[1], plan.render.b[2]};
        for (float v : values)
            if (!std::isfinite(v)) bug("accepted model gives a non-finite transform constant", round);
    }
    return 0;
}

// libpng refuses a critical chunk whose CRC is wrong, and a mutation breaks nearly every CRC:
// recompute them, so that the decoder sees the mutated content.
void fix_png_crcs(std::vector<std::uint8_t>& b) {
    auto be32 = [&](std::size_t at) {
        return static_cast<std::uint32_t>(b[at]) << 24 | static_cast<std::uint32_t>(b[at + 1]) << 16 |
               static_cast<std::uint32_t>(b[at + 2]) << 8 | b[at + 3];
    };
    std::size_t at = 8;
    while (at + 12 <= b.size()) {
        const std::uint32_t len = be32(at);
        if (len > b.size() - at - 12) break;
        const auto crc = static_cast<std::uint32_t>(::crc32(0, b.data() + at + 4, static_cast<uInt>(len) + 4u));
        for (int i = 0; i < 4; ++i) b[at + 8 + len + i] = static_cast<std::uint8_t>(crc >> (24 - 8 * i));
        at += 12 + static_cast<std::size_t>(len);
    }
}

int run_image(Target t, const std::uint8_t* data, std::size_t size, bool* accepted) {
    if (!has_signature(t, data, size)) return -1;
    std::vector<std::uint8_t> fixed;
    if (t == Target::Png) {
        fixed.assign(data, data + size);
        fix_png_crcs(fixed);
        data = fixed.data();
    }
    const std::string& path = scratch().write(data, size);
    ReadOptions options;
    options.max_pixels = kMaxPixels;
    ImageInfo info;
    RgbImage image;
    try {
        image = read_image(path, &info, options);
    } catch (const Error& e) {
        if (e.kind() != ErrorKind::Input) bug("read_image threw a non-Input error", e.what());
        if (std::strncmp(e.what(), path.c_str(), path.size()) != 0) bug("read error does not name the file", e.what());
        if (std::strchr(e.what(), '\n')) bug("read error is not one line", e.what());
        return 0;
    }
    *accepted = true;
    const std::string dims = std::to_string(image.width) + "x" + std::to_string(image.height);
    if (info.format != format_of(t)) bug("wrong format detected", format_name(info.format));
    if (image.width <= 0 || image.height <= 0) bug("empty image accepted", dims);
    if (image.pixel_count() > kMaxPixels) bug("image over the pixel limit accepted", dims);
    if (image.pixels.size() != image.pixel_count() * 3u) bug("pixel buffer size mismatch", dims);
    if (info.width != image.width || info.height != image.height) bug("ImageInfo disagrees with the image", dims);
    // Read every byte: a buffer shorter than it claims shows under ASan.
    unsigned sum = 0;
    for (std::uint8_t v : image.pixels) sum += v;
    volatile unsigned sink = sum;
    (void)sink;
    return 0;
}

}  // namespace

bool target_from_name(const std::string& name, Target* target) {
    if (name == "model") *target = Target::Model;
    else if (name == "png") *target = Target::Png;
    else if (name == "jpeg") *target = Target::Jpeg;
    else if (name == "tiff") *target = Target::Tiff;
    else return false;
    return true;
}

const char* target_name(Target target) {
    switch (target) {
        case Target::Model: return "model";
        case Target::Png: return "png";
        case Target::Jpeg: return "jpeg";
        case Target::Tiff: return "tiff";
    }
    return "?";
}

int run_one(Target target, const std::uint8_t* data, std::size_t size, bool* accepted) {
    bool ignored = false;
    if (!accepted) accepted = &ignored;
    *accepted = false;
    try {
        if (target == Target::Model) return run_model(data, size, accepted);
        return run_image(target, data, size, accepted);
    } catch (const std::bad_alloc&) {
        bug("std::bad_alloc escaped (an allocation limit is missing)", target_name(target));
    } catch (const std::exception& e) {
        bug("unexpected exception", e.what());
    }
}

}  // namespace vn::fuzz
