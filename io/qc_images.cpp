#include "io/qc_images.hpp"

#include <cairo.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <memory>

#include "core/error.hpp"

namespace vn {
namespace {

struct SurfaceDeleter {
    void operator()(cairo_surface_t* s) const { cairo_surface_destroy(s); }
};
struct ContextDeleter {
    void operator()(cairo_t* c) const { cairo_destroy(c); }
};

// A white RGB24 canvas.
class Canvas {
public:
    Canvas(int width, int height)
        : surface_(cairo_image_surface_create(CAIRO_FORMAT_RGB24, width, height)), width_(width), height_(height) {
        if (cairo_surface_status(surface_.get()) != CAIRO_STATUS_SUCCESS)
            fail(ErrorKind::Output, "QC image: cannot create a drawing surface");
        cr_.reset(cairo_create(surface_.get()));
        cairo_set_source_rgb(cr_.get(), 1, 1, 1);
        cairo_paint(cr_.get());
        cairo_select_font_face(cr_.get(), "sans-serif", CAIRO_FONT_SLANT_NORMAL, CAIRO_FONT_WEIGHT_NORMAL);
    }
    cairo_t* cr() const { return cr_.get(); }

    // Copies an RGB image onto the canvas at (x0, y0).
    void put(const RgbImage& img, int x0, int y0) {
        cairo_surface_flush(surface_.get());
        unsigned char* data = cairo_image_surface_get_data(surface_.get());
        const int stride = cairo_image_surface_get_stride(surface_.get());
        for (int y = 0; y < img.height && y0 + y < height_; ++y) {
            auto* row = reinterpret_cast<std::uint32_t*>(data + static_cast<std::size_t>(y0 + y) * static_cast<std::size_t>(stride));
            const std::uint8_t* p = img.pixels.data() + static_cast<std::size_t>(y) * img.stride();
            for (int x = 0; x < img.width && x0 + x < width_; ++x, p += 3)
                row[x0 + x] = 0xff000000u | static_cast<std::uint32_t>(p[0]) << 16 | static_cast<std::uint32_t>(p[1]) << 8 | p[2];
        }
        cairo_surface_mark_dirty(surface_.get());
    }

    void text(double x, double y, double size, const std::string& s, double r = 0, double g = 0, double b = 0,
              bool bold = false) {
        cairo_select_font_face(cr(), "sans-serif", CAIRO_FONT_SLANT_NORMAL,
                               bold ? CAIRO_FONT_WEIGHT_BOLD : CAIRO_FONT_WEIGHT_NORMAL);
        cairo_set_font_size(cr(), size);
        cairo_set_source_rgb(cr(), r, g, b);
        cairo_move_to(cr(), x, y);
        cairo_show_text(cr(), s.c_str());
    }

    void box(double x, double y, double w, double h, double r, double g, double b, double a, bool fill, double line = 2) {
        cairo_set_source_rgba(cr(), r, g, b, a);
        cairo_rectangle(cr(), x, y, w, h);
        if (fill) {
            cairo_fill(cr());
        } else {
            cairo_set_line_width(cr(), line);
            cairo_stroke(cr());
        }
    }

    RgbImage image() {
        cairo_surface_flush(surface_.get());
        const unsigned char* data = cairo_image_surface_get_data(surface_.get());
        const int stride = cairo_image_surface_get_stride(surface_.get());
        RgbImage out(width_, height_);
        for (int y = 0; y < height_; ++y) {
            const auto* row = reinterpret_cast<const std::uint32_t*>(data + static_cast<std::size_t>(y) * static_cast<std::size_t>(stride));
            std::uint8_t* p = out.pixels.data() + static_cast<std::size_t>(y) * out.stride();
            for (int x = 0; x < width_; ++x, p += 3) {
                p[0] = static_cast<std::uint8_t>(row[x] >> 16);
                p[1] = static_cast<std::uint8_t>(row[x] >> 8);
                p[2] = static_cast<std::uint8_t>(row[x]);
            }
        }
        return out;
    }

private:
    std::unique_ptr<cairo_surface_t, SurfaceDeleter> surface_;
    std::unique_ptr<cairo_t, ContextDeleter> cr_;
    int width_, height_;
};

// The overview: tissue tinted teal (3 parts in 10), artefacts painted magenta; wide enough for
// the legend; a title band, text sizes and legend swatches in pixels.
constexpr std::uint8_t kTissueTint[3] = {0, 170, 170};
constexpr int kTintParts = 3, kTintWhole = 10;
constexpr std::uint8_t kArtefactColor[3] = {255, 0, 255};
constexpr int kOverviewMinWidth = 560;
constexpr double kTitleBand = 22, kTitleSize = 13, kLegendTextSize = 13, kCountsTextSize = 12;
constexpr double kSwatch = 16;

std::string vec3(const std::array<double, 3>& v) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "[%.3f %.3f %.3f]", v[0], v[1], v[2]);
    return buf;
}

}  // namespace

RgbImage qc_overview(const RgbImage& image, const std::vector<std::uint8_t>& tissue,
                     const std::vector<std::uint8_t>& artefact, const std::vector<QcBox>& regions,
                     const std::string& title, const std::string& counts) {
    // Overlays blended into the pixels: tissue 30% teal, artefacts opaque magenta.
    RgbImage shown = image;
    for (std::size_t i = 0; i < shown.pixel_count(); ++i) {
        std::uint8_t* p = shown.pixels.data() + 3 * i;
        if (i < artefact.size() && artefact[i]) {
            std::copy(kArtefactColor, kArtefactColor + 3, p);
        } else if (i < tissue.size() && tissue[i]) {
            for (int c = 0; c < 3; ++c)
                p[c] = static_cast<std::uint8_t>(((kTintWhole - kTintParts) * p[c] + kTintParts * kTissueTint[c]) /
                                                 kTintWhole);
        }
    }
    const int width = std::max(image.width, kOverviewMinWidth);
    Canvas cv(width, image.height + kQcLegendHeight);
    cv.put(shown, 0, 0);
    for (const QcBox& b : regions) {
        cv.box(b.x, b.y, b.width, b.height, 1, 1, 1, 1, false, 3);
        cv.box(b.x, b.y, b.width, b.height, 0, 0, 0.6, 1, false, 1.5);
    }
    // Title on a white band over the top of the picture.
    cv.box(0, 0, width, kTitleBand, 1, 1, 1, 0.85, true);
    cv.text(6, 16, kTitleSize, title, 0, 0, 0, true);
    // Legend.
    const double y = image.height + 8;
    cv.box(8, y, kSwatch, kSwatch, kTissueTint[0] / 255.0, kTissueTint[1] / 255.0, kTissueTint[2] / 255.0, 0.5,
           true);
    cv.text(30, y + 13, kLegendTextSize, "tissue");
    cv.box(96, y, kSwatch, kSwatch, kArtefactColor[0] / 255.0, kArtefactColor[1] / 255.0, kArtefactColor[2] / 255.0,
           1, true);
    cv.text(118, y + 13, kLegendTextSize, "ink / artefact (left out)");
    cv.box(290, y, kSwatch, kSwatch, 0, 0, 0.6, 1, false, 2);
    cv.text(312, y + 13, kLegendTextSize, "region sampled for the estimate");
    cv.text(8, y + 38, kCountsTextSize, counts, 0.2, 0.2, 0.2);
    return cv.image();
}

RgbImage qc_before_after(const RgbImage& before, const RgbImage& after, const std::string& title) {
    if (before.width != after.width || before.height != after.height)
        fail(ErrorKind::Internal, "qc_before_after: the two pictures differ in size");
    constexpr int kGap = 12, kHead = 44;
    Canvas cv(2 * before.width + kGap, before.height + kHead);
    cv.text(6, 18, 14, title, 0, 0, 0, true);
    cv.text(6, 38, 14, "before (original)");
    cv.text(before.width + kGap + 6, 38, 14, "after (normalised)");
    cv.put(before, 0, kHead);
    cv.put(after, before.width + kGap, kHead);
    return cv.image();
}

RgbImage qc_stain_swatches(const StainModel& source, const StainModel& target) {
    constexpr int kW = 150, kH = 170, kGap = 14, kTop = 26, kBottom = 62;
    const int width = 4 * kW + 5 * kGap;
    Canvas cv(width, kTop + kH + kBottom);
    cv.text(kGap, 18, 14, "stains: no stain (top) to the 99th-percentile concentration (bottom)", 0, 0, 0, true);
    const StainModel* models[4] = {&source, &source, &target, &target};
    const char* names[4] = {"source H", "source E", "target H", "target E"};
    for (int s = 0; s < 4; ++s) {
        const StainModel& m = *models[s];
        const auto k = static_cast<std::size_t>(s % 2);
        const int x0 = kGap + s * (kW + kGap);
        RgbImage col(kW, kH);
        for (int y = 0; y < kH; ++y) {
            const double c = m.max_conc[k] * y / (kH - 1);
            for (int ch = 0; ch < 3; ++ch) {
                const auto v = static_cast<std::uint8_t>(
                    std::clamp(std::lround(255.0 * std::exp(-m.stain[k][static_cast<std::size_t>(ch)] * c)), 0L, 255L));
                for (int x = 0; x < kW; ++x) col.pixels[3 * (static_cast<std::size_t>(y) * kW + static_cast<std::size_t>(x)) + static_cast<std::size_t>(ch)] = v;
            }
        }
        cv.put(col, x0, kTop);
        cv.box(x0, kTop, kW, kH, 0.5, 0.5, 0.5, 1, false, 1);
        cv.text(x0, kTop + kH + 18, 14, names[s], 0, 0, 0, true);
        cv.text(x0, kTop + kH + 36, 12, "OD " + vec3(m.stain[k]), 0.15, 0.15, 0.15);
        char mx[48];
        std::snprintf(mx, sizeof mx, "max %.3f", m.max_conc[k]);
        cv.text(x0, kTop + kH + 53, 12, mx, 0.15, 0.15, 0.15);
    }
    return cv.image();
}

}  // namespace vn
