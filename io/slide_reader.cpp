#include "io/slide_reader.hpp"

#include <openslide/openslide.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "core/error.hpp"
#include "io/slide_tiff_reader.hpp"

namespace vn {
namespace {

double parse_positive(const char* s) {
    if (!s || !*s) return 0.0;
    char* end = nullptr;
    const double v = std::strtod(s, &end);
    if (end == s || !std::isfinite(v) || v <= 0) return 0.0;
    return v;
}

bool parse_hex_color(const char* s, std::array<std::uint8_t, 3>* out) {
    if (!s || std::strlen(s) != 6) return false;
    char* end = nullptr;
    const unsigned long v = std::strtoul(s, &end, 16);
    if (end != s + 6) return false;
    (*out)[0] = static_cast<std::uint8_t>((v >> 16) & 0xff);
    (*out)[1] = static_cast<std::uint8_t>((v >> 8) & 0xff);
    (*out)[2] = static_cast<std::uint8_t>(v & 0xff);
    return true;
}

class OpenSlideSource final : public RegionSource {
public:
    explicit OpenSlideSource(const SlideReader& s) : slide_(s) {}
    std::string name() const override { return "openslide"; }
    void read(std::int64_t x, std::int64_t y, RgbSpan dst) override { slide_.read_region(0, x, y, dst); }

private:
    const SlideReader& slide_;
};

}  // namespace

std::string openslide_version() {
    const char* v = openslide_get_version();
    return v ? std::string(v) : std::string("(unknown version)");
}

void composite_argb(const std::uint32_t* argb, std::size_t argb_stride_px, const std::array<std::uint8_t, 3>& bg,
                    RgbSpan dst) {
    // out = c + (255 - a) * bg / 255 for premultiplied c: exact compositing, rounded.
    std::uint8_t table[3][256];
    for (int c = 0; c < 3; ++c)
        for (int t = 0; t < 256; ++t) table[c][t] = static_cast<std::uint8_t>((t * bg[c] + 127) / 255);
    for (int y = 0; y < dst.height; ++y) {
        const std::uint32_t* in = argb + static_cast<std::size_t>(y) * argb_stride_px;
        std::uint8_t* out = dst.row(y);
        for (int x = 0; x < dst.width; ++x) {
            const std::uint32_t p = in[x];
            const unsigned a = p >> 24;
            unsigned r = (p >> 16) & 0xffu, g = (p >> 8) & 0xffu, b = p & 0xffu;
            if (a != 255u) {
                const unsigned t = 255u - a;
                r = std::min(255u, r + table[0][t]);
                g = std::min(255u, g + table[1][t]);
                b = std::min(255u, b + table[2][t]);
            }
            out[3 * x] = static_cast<std::uint8_t>(r);
            out[3 * x + 1] = static_cast<std::uint8_t>(g);
            out[3 * x + 2] = static_cast<std::uint8_t>(b);
        }
    }
}

SlideReader::SlideReader(const std::string& path) : path_(path) {
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0)
        fail(ErrorKind::Input, path + ": cannot open slide (" + std::strerror(errno) + ")");
    if (!S_ISREG(st.st_mode)) fail(ErrorKind::Input, path + ": not a regular file");
    const char* vendor = openslide_detect_vendor(path.c_str());
    osr_ = openslide_open(path.c_str());
    if (!osr_) fail(ErrorKind::Input, path + ": not a slide OpenSlide can read");
    if (const char* err = openslide_get_error(osr_)) {
        const std::string msg = err;
        openslide_close(osr_);
        osr_ = nullptr;
        fail(ErrorKind::Input, path + ": unreadable slide (OpenSlide: " + msg + ")");
    }
    vendor_ = vendor ? vendor : property("openslide.vendor");
    const int n = openslide_get_level_count(osr_);
    if (n < 1) {
        openslide_close(osr_);
        osr_ = nullptr;
        fail(ErrorKind::Input, path + ": slide has no levels");
    }
    for (int i = 0; i < n; ++i) {
        SlideLevel l;
        openslide_get_level_dimensions(osr_, i, &l.width, &l.height);
        l.downsample = openslide_get_level_downsample(osr_, i);
        levels_.push_back(l);
    }
    if (levels_[0].width <= 0 || levels_[0].height <= 0) {
        openslide_close(osr_);
        osr_ = nullptr;
        fail(ErrorKind::Input, path + ": slide has an empty level 0");
    }
    read_pixel_size();
    objective_power_ = parse_positive(openslide_get_property_value(osr_, "openslide.objective-power"));
    parse_hex_color(openslide_get_property_value(osr_, "openslide.background-color"), &background_);
    tile_w_ = static_cast<int>(parse_positive(openslide_get_property_value(osr_, "openslide.level[0].tile-width")));
    tile_h_ = static_cast<int>(parse_positive(openslide_get_property_value(osr_, "openslide.level[0].tile-height")));
}

void SlideReader::read_pixel_size() {
    // 1. What OpenSlide derived from the vendor's metadata (Aperio MPP, Hamamatsu, ..., and in
    //    OpenSlide 4 the TIFF resolution tags of generic TIFFs).
    mpp_x_ = parse_positive(openslide_get_property_value(osr_, "openslide.mpp-x"));
    mpp_y_ = parse_positive(openslide_get_property_value(osr_, "openslide.mpp-y"));
    if (mpp_x_ > 0 && mpp_y_ <= 0) mpp_y_ = mpp_x_;
    if (mpp_y_ > 0 && mpp_x_ <= 0) mpp_x_ = mpp_y_;
    if (mpp_x_ > 0) {
        mpp_source_ = "openslide.mpp";
        return;
    }
    // 2. The TIFF resolution tags of level 0 (OpenSlide 3.4 exposes them as tiff.* properties but
    //    does not turn them into openslide.mpp-*). Unit none (1) or absent: no physical size.
    const std::string unit = property("tiff.ResolutionUnit");
    double um_per_unit = 0;
    if (unit == "centimeter") um_per_unit = 1e4;
    else if (unit == "inch") um_per_unit = 25.4e3;
    const double xres = parse_positive(openslide_get_property_value(osr_, "tiff.XResolution"));
    double yres = parse_positive(openslide_get_property_value(osr_, "tiff.YResolution"));
    if (yres <= 0) yres = xres;
    if (um_per_unit <= 0 || xres <= 0) {
        mpp_note_ = unit.empty() || unit == "none" ? "no openslide.mpp and no TIFF resolution with a unit"
                                                   : "no openslide.mpp, TIFF resolution unit '" + unit + "'";
        return;
    }
    const double mx = um_per_unit / xres, my = um_per_unit / yres;
    // Writers that know nothing of microscopes leave defaults such as 72 dpi (353 um/px) or
    // libvips' 10 px/cm (1000 um/px); no slide scanner has pixels anywhere near that large.
    if (!(mx >= kMinPlausibleMpp && mx <= kMaxPlausibleMpp && my >= kMinPlausibleMpp && my <= kMaxPlausibleMpp)) {
        char buf[160];
        std::snprintf(buf, sizeof buf, "TIFF resolution %g x %g px/%s (%g um/px) ignored as no microscope's", xres,
                      yres, unit == "inch" ? "inch" : "cm", mx);
        mpp_note_ = buf;
        return;
    }
    mpp_x_ = mx;
    mpp_y_ = my;
    mpp_source_ = "tiff." + unit;
}

SlideReader::~SlideReader() {
    if (osr_) openslide_close(osr_);
}

std::string SlideReader::property(const std::string& name) const {
    const char* v = openslide_get_property_value(osr_, name.c_str());
    return v ? std::string(v) : std::string();
}

void SlideReader::check_error(const char* what) const {
    if (const char* err = openslide_get_error(osr_))
        fail(ErrorKind::Input, path_ + ": " + what + " failed (OpenSlide: " + err + ")");
}

void SlideReader::read_region(int level, std::int64_t x, std::int64_t y, RgbSpan dst) const {
    if (dst.width <= 0 || dst.height <= 0) return;
    thread_local std::vector<std::uint32_t> argb;
    argb.resize(static_cast<std::size_t>(dst.width) * static_cast<std::size_t>(dst.height));
    openslide_read_region(osr_, argb.data(), x, y, level, dst.width, dst.height);
    check_error("reading a region");
    composite_argb(argb.data(), static_cast<std::size_t>(dst.width), background_, dst);
}

std::vector<std::string> SlideReader::associated_names() const {
    std::vector<std::string> names;
    if (const char* const* p = openslide_get_associated_image_names(osr_))
        for (; *p; ++p) names.emplace_back(*p);
    return names;
}

RgbImage SlideReader::read_associated(const std::string& name) const {
    std::int64_t w = 0, h = 0;
    openslide_get_associated_image_dimensions(osr_, name.c_str(), &w, &h);
    check_error("reading an associated image");
    if (w <= 0 || h <= 0 || w * h > (std::int64_t{1} << 28))
        fail(ErrorKind::Input, path_ + ": associated image '" + name + "' has an unusable size");
    std::vector<std::uint32_t> argb(static_cast<std::size_t>(w * h));
    openslide_read_associated_image(osr_, name.c_str(), argb.data());
    check_error("reading an associated image");
    RgbImage img(static_cast<int>(w), static_cast<int>(h));
    composite_argb(argb.data(), static_cast<std::size_t>(w), {{255, 255, 255}}, img.span());
    return img;
}

std::unique_ptr<RegionSource> make_openslide_source(const SlideReader& slide) {
    return std::make_unique<OpenSlideSource>(slide);
}

SlideOverview read_overview(const SlideReader& slide, std::uint64_t max_pixels, const std::atomic<bool>* stop) {
    if (max_pixels < 64) max_pixels = 64;
    const double w0 = static_cast<double>(slide.width()), h0 = static_cast<double>(slide.height());
    const double want = std::max(1.0, std::sqrt(w0 * h0 / static_cast<double>(max_pixels)));
    SlideOverview ov;
    ov.level = openslide_get_best_level_for_downsample(slide.handle(), want);
    if (ov.level < 0 || ov.level >= slide.level_count()) ov.level = 0;
    const SlideLevel& L = slide.level(ov.level);
    // Whole box factor that brings the level within max_pixels.
    int f = 1;
    while (static_cast<double>((L.width + f - 1) / f) * static_cast<double>((L.height + f - 1) / f) >
           static_cast<double>(max_pixels))
        ++f;
    ov.factor = f;
    ov.scale = L.downsample * f;
    const int ow = static_cast<int>((L.width + f - 1) / f), oh = static_cast<int>((L.height + f - 1) / f);
    ov.image = RgbImage(ow, oh);
    // Blocks of whole boxes, about 2048 level pixels a side (friendly to OpenSlide's tile cache).
    const int block = std::max(1, 2048 / f) * f;
    // A TIFF level at a whole downsample is read straight from the file (io/slide_tiff_reader):
    // the same pixels as OpenSlide's, without its ARGB compositing. At a fractional downsample
    // OpenSlide places the level by level-0 coordinates, so it stays the reader there.
    std::unique_ptr<RegionSource> direct;
    if (L.downsample == std::floor(L.downsample)) direct = make_tiff_source(slide, nullptr, ov.level);
    RgbImage buf;
    std::vector<std::uint32_t> sums;
    for (std::int64_t by = 0; by < L.height; by += block) {
        for (std::int64_t bx = 0; bx < L.width; bx += block) {
            if (stop && stop->load(std::memory_order_relaxed))
                fail(ErrorKind::Interrupted, slide.path() + ": interrupted");
            const int bw = static_cast<int>(std::min<std::int64_t>(block, L.width - bx));
            const int bh = static_cast<int>(std::min<std::int64_t>(block, L.height - by));
            if (buf.width != bw || buf.height != bh) buf = RgbImage(bw, bh);
            const auto x0 = static_cast<std::int64_t>(std::llround(static_cast<double>(bx) * L.downsample));
            const auto y0 = static_cast<std::int64_t>(std::llround(static_cast<double>(by) * L.downsample));
            if (direct)
                direct->read(bx, by, buf.span());
            else
                slide.read_region(ov.level, x0, y0, buf.span());
            const int ox0 = static_cast<int>(bx / f), oy0 = static_cast<int>(by / f);
            const int nw = (bw + f - 1) / f, nh = (bh + f - 1) / f;
            for (int oy = 0; oy < nh; ++oy) {
                sums.assign(static_cast<std::size_t>(nw) * 4u, 0u);
                for (int yy = oy * f; yy < std::min(bh, (oy + 1) * f); ++yy) {
                    const std::uint8_t* p = buf.view().row(yy);
                    for (int xx = 0; xx < bw; ++xx) {
                        std::uint32_t* s = &sums[static_cast<std::size_t>(xx / f) * 4u];
                        s[0] += p[3 * xx];
                        s[1] += p[3 * xx + 1];
                        s[2] += p[3 * xx + 2];
                        s[3] += 1;
                    }
                }
                std::uint8_t* out = ov.image.span().row(oy0 + oy);
                for (int ox = 0; ox < nw; ++ox) {
                    const std::uint32_t* s = &sums[static_cast<std::size_t>(ox) * 4u];
                    for (int c = 0; c < 3; ++c)
                        out[3 * (ox0 + ox) + c] = static_cast<std::uint8_t>((s[c] + s[3] / 2) / s[3]);
                }
            }
        }
    }
    return ov;
}

}  // namespace vn
