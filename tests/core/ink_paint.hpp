// Pen strokes painted onto an image for the ink tests: thick random-walk strokes that cover a given
// share of the image's tissue pixels. A stroke pixel either takes the ink's own colour at a given
// optical density (`opaque`: ink on top of the tissue, as marker ink dries) or adds that density
// to the pixel's own (`translucent`: the tissue shows through). Only tissue pixels are painted, so
// the tissue set and the estimate's sample positions stay those of the clean image.
// check_painted_ink: what such strokes do to the estimate, with and without the filter.
#pragma once

#include <catch2/catch.hpp>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include "core/backend.hpp"
#include "core/image.hpp"
#include "core/model.hpp"
#include "core/pixel_math.hpp"
#include "core/tables.hpp"

namespace vn::test {

struct Ink {
    const char* name;
    std::array<int, 3> rgb;  // a dense stroke of it on glass
};

// Green, blue and black marker ink as they look on glass (OD directions from these colours).
inline const Ink kInks[3] = {{"green", {{30, 120, 80}}}, {"blue", {{25, 45, 150}}}, {"black", {{35, 35, 40}}}};

inline std::array<double, 3> ink_direction(const Ink& ink) {
    const Tables& t = tables();
    std::array<double, 3> d{t.od[ink.rgb[0]], t.od[ink.rgb[1]], t.od[ink.rgb[2]]};
    const double n = std::sqrt(d[0] * d[0] + d[1] * d[1] + d[2] * d[2]);
    for (double& v : d) v /= n;
    return d;
}

// Returns the painted image; *painted (optional) receives the number of pixels painted.
inline RgbImage paint_ink(const RgbImage& src, const Ink& ink, double density, bool translucent, double cover,
                          std::uint64_t seed, std::size_t* painted = nullptr) {
    const Tables& t = tables();
    const std::array<double, 3> k = ink_direction(ink);
    RgbImage img = src;
    std::mt19937_64 rng(seed);
    std::uniform_real_distribution<double> u(0.0, 1.0);
    std::size_t tissue = 0;
    for (std::size_t i = 0; i < src.pixel_count(); ++i)
        tissue += px::is_tissue(t.luma, src.pixels[3 * i], src.pixels[3 * i + 1], src.pixels[3 * i + 2]);
    const auto goal = static_cast<std::size_t>(cover * static_cast<double>(tissue));
    std::vector<std::uint8_t> done(src.pixel_count(), 0);
    std::size_t n = 0;
    const int w = img.width, h = img.height;
    const int radius = std::max(3, static_cast<int>(0.02 * std::min(w, h)));
    for (int stroke = 0; n < goal && stroke < 10000; ++stroke) {
        double x = u(rng) * w, y = u(rng) * h, angle = u(rng) * 6.283185307179586;
        for (int step = 0; step < 2 * std::max(w, h) && n < goal; ++step) {
            angle += (u(rng) - 0.5) * 0.2;
            x += std::cos(angle);
            y += std::sin(angle);
            for (int dy = -radius; dy <= radius; ++dy)
                for (int dx = -radius; dx <= radius; ++dx) {
                    const int xx = static_cast<int>(x) + dx, yy = static_cast<int>(y) + dy;
                    if (dx * dx + dy * dy > radius * radius || xx < 0 || yy < 0 || xx >= w || yy >= h) continue;
                    const std::size_t i = static_cast<std::size_t>(yy) * static_cast<std::size_t>(w) + static_cast<std::size_t>(xx);
                    const std::uint8_t* s = &src.pixels[3 * i];
                    if (done[i] || !px::is_tissue(t.luma, s[0], s[1], s[2]) || n >= goal) continue;
                    done[i] = 1;
                    ++n;
                    for (int c = 0; c < 3; ++c) {
                        const double od = (translucent ? t.od[s[c]] : 0.0) + density * k[static_cast<std::size_t>(c)];
                        img.pixels[3 * i + static_cast<std::size_t>(c)] =
                            static_cast<std::uint8_t>(std::clamp(std::lround(255.0 * std::exp(-od)), 0L, 255L));
                    }
                }
        }
    }
    if (painted) *painted = n;
    return img;
}

// The larger of the angles between the two models' hematoxylin and eosin vectors, in degrees.
inline double worst_angle(const StainModel& a, const StainModel& b) {
    return std::max(angle_between_deg(a.stain[0], b.stain[0]), angle_between_deg(a.stain[1], b.stain[1]));
}

// The estimate of one image with (exclude) or without the ink and artefact filter.
inline StainModel estimate_with(Backend& be, const RgbImage& img, bool exclude) {
    EstimateParams p;
    p.exclude_artefacts = exclude;
    return be.estimate({img.view()}, p);
}

// Each ink, opaque and translucent, painted on 5, 10 and 20% of `clean`'s tissue: the ink moves
// the unfiltered estimate; opaque ink is left out whole and the model stays within 1 degree of
// the clean image's. The figures are printed, each line starting with `label`.
inline void check_painted_ink(Backend& be, const RgbImage& clean, const std::string& label) {
    const StainModel ref = estimate_with(be, clean, true);
    for (bool translucent : {false, true})
        for (const Ink& ink : kInks)
            for (double cover : {0.05, 0.10, 0.20}) {
                std::size_t painted = 0;
                const RgbImage img = paint_ink(clean, ink, translucent ? 0.8 : 1.5, translucent, cover, 7, &painted);
                const StainModel off = estimate_with(be, img, false), on = estimate_with(be, img, true);
                const double a_off = worst_angle(off, ref), a_on = worst_angle(on, ref);
                std::printf("%s, %-11s %-5s ink on %2.0f%% of tissue: without filter %6.2f deg, with %6.2f deg "
                            "(%llu of %zu painted pixels left out)\n",
                            label.c_str(), translucent ? "translucent" : "opaque", ink.name, 100 * cover, a_off, a_on,
                            static_cast<unsigned long long>(on.artefact_pixels), painted);
                INFO(label << " " << ink.name << " " << cover << (translucent ? " translucent" : " opaque"));
                CHECK(a_off > 0.5);  // the ink does move the unfiltered estimate
                if (!translucent) {
                    CHECK(on.artefact_pixels >= painted * 99 / 100);
                    CHECK(a_on < 1.0);
                }
            }
}

}  // namespace vn::test
