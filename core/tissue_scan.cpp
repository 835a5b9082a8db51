#include "core/tissue_scan.hpp"

#include "core/pixel_math.hpp"
#include "core/tables.hpp"
#include "core/vector_clones.hpp"

#if VN_HAVE_VERSIONS
#include <immintrin.h>
#endif

namespace vn {
namespace {

// One pixel, the portable way: it is written at dst + n and kept by advancing n; a tissue pixel
// left out is recorded with its rank among the band's tissue pixels.
inline void scan_pixel(const Tables& t, const std::uint8_t* p, bool exclude_artefacts, std::uint8_t* dst,
                       std::size_t& n, LeftOut& left_out) {
    dst[n] = p[0];
    dst[n + 1] = p[1];
    dst[n + 2] = p[2];
    const bool tissue = px::is_tissue(t.luma, p[0], p[1], p[2]);
    const bool artefact = tissue & exclude_artefacts & px::is_artefact(t.od, p[0], p[1], p[2]);
    if (artefact) {
        left_out.ranks.push_back(n / 3 + left_out.ranks.size());
        left_out.rgb.insert(left_out.rgb.end(), p, p + 3);
    }
    n += (tissue & !artefact) ? 3u : 0u;
}

// Built in place (256 KiB: not on a stack).
struct Thresholds {
    std::uint32_t entry[256 * 256];
    Thresholds() {
        const Tables& t = tables();
        for (unsigned g = 0; g < 256; ++g) {
            // Both tests hold for r below a threshold, which cannot grow with b (luma grows with
            // b; the artefact test's grey and black parts need a high b OD): walk each one down.
            unsigned tissue = 256, artefact = 256;
            for (unsigned b = 0; b < 256; ++b) {
                while (tissue > 0 && !px::is_tissue(t.luma, tissue - 1, g, b)) --tissue;
                while (artefact > 0 && !px::is_artefact(t.od, artefact - 1, g, b)) --artefact;
                entry[g * 256 + b] = tissue | artefact << 16;
            }
        }
    }
};

}  // namespace

// The versions have external linkage: Clang takes an internal one for an unused function.
namespace versions {

#if VN_HAVE_VERSIONS

// Shuffles that left-pack the kept pixels of four (3 bytes each; 0x80 clears a byte), by the
// 4-bit mask of kept pixels; `first` is the byte where the four start in the 16-byte register.
struct PackTable {
    alignas(16) std::uint8_t shuffle[16][16];
    std::uint8_t bytes[16];  // 3 * kept pixels
};

PackTable make_pack_table(int first) {
    PackTable pt{};
    for (int m = 0; m < 16; ++m) {
        int k = 0;
        for (int j = 0; j < 4; ++j)
            if (m >> j & 1)
                for (int c = 0; c < 3; ++c) pt.shuffle[m][k++] = static_cast<std::uint8_t>(first + 3 * j + c);
        pt.bytes[m] = static_cast<std::uint8_t>(k);
        while (k < 16) pt.shuffle[m][k++] = 0x80;
    }
    return pt;
}

VN_VERSION_AVX2
std::size_t scan_band(const RgbView& img, int y0, int y1, bool exclude_artefacts, std::uint8_t* dst,
                      LeftOut& left_out) {
    const Tables& t = tables();
    const int* thresholds = reinterpret_cast<const int*>(tissue_thresholds());
    static const PackTable pack_lo = make_pack_table(0);  // pixels 0-3: bytes 0-11 of the first load
    static const PackTable pack_hi = make_pack_table(4);  // pixels 4-7: bytes 4-15 of the second
    // Eight pixels: bytes 0-15 in the low lane, 8-23 in the high one. Per 32-bit lane, the
    // table index g * 256 + b and the red value.
    const __m256i to_index = _mm256_setr_epi8(2, 1, -128, -128, 5, 4, -128, -128, 8, 7, -128, -128, 11, 10, -128, -128,
                                              6, 5, -128, -128, 9, 8, -128, -128, 12, 11, -128, -128, 15, 14, -128, -128);
    const __m256i to_red = _mm256_setr_epi8(0, -128, -128, -128, 3, -128, -128, -128, 6, -128, -128, -128, 9, -128, -128,
                                            -128, 4, -128, -128, -128, 7, -128, -128, -128, 10, -128, -128, -128, 13, -128,
                                            -128, -128);
    const __m256i low16 = _mm256_set1_epi32(0xffff);
    const std::size_t pixels = static_cast<std::size_t>(y1 - y0) * static_cast<std::size_t>(img.width);
    std::size_t n = 0, i = 0;  // bytes packed, pixels looked at
    for (int y = y0; y < y1; ++y) {
        const std::uint8_t* p = img.row(y);
        int x = 0;
        // The stores write 16 bytes from where the kept pixels end: up to 28 bytes past 3 * i,
        // so the vectors stop 10 pixels before the band's end (another thread packs the next band).
        for (; x + 8 <= img.width && i + 10 <= pixels; x += 8, i += 8, p += 24) {
            const __m128i lo = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
            const __m128i hi = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + 8));
            const __m256i v = _mm256_inserti128_si256(_mm256_castsi128_si256(lo), hi, 1);
            const __m256i e = _mm256_i32gather_epi32(thresholds, _mm256_shuffle_epi8(v, to_index), 4);
            const __m256i r = _mm256_shuffle_epi8(v, to_red);
            const __m256i tissue = _mm256_cmpgt_epi32(_mm256_and_si256(e, low16), r);
            const __m256i artefact = _mm256_and_si256(_mm256_cmpgt_epi32(_mm256_srli_epi32(e, 16), r), tissue);
            const int keep = _mm256_movemask_ps(_mm256_castsi256_ps(tissue));
            if (exclude_artefacts && _mm256_movemask_ps(_mm256_castsi256_ps(artefact)) != 0) {
                for (int j = 0; j < 8; ++j) scan_pixel(t, p + 3 * j, true, dst, n, left_out);
                continue;
            }
            const int m0 = keep & 15, m1 = keep >> 4;
            _mm_storeu_si128(reinterpret_cast<__m128i*>(dst + n),
                             _mm_shuffle_epi8(lo, _mm_load_si128(reinterpret_cast<const __m128i*>(pack_lo.shuffle[m0]))));
            n += pack_lo.bytes[m0];
            _mm_storeu_si128(reinterpret_cast<__m128i*>(dst + n),
                             _mm_shuffle_epi8(hi, _mm_load_si128(reinterpret_cast<const __m128i*>(pack_hi.shuffle[m1]))));
            n += pack_hi.bytes[m1];
        }
        for (; x < img.width; ++x, ++i, p += 3) scan_pixel(t, p, exclude_artefacts, dst, n, left_out);
    }
    return n;
}

VN_VERSION_DEFAULT
#endif
std::size_t scan_band(const RgbView& img, int y0, int y1, bool exclude_artefacts, std::uint8_t* dst,
                      LeftOut& left_out) {
    return scan_tissue_band_portable(img, y0, y1, exclude_artefacts, dst, left_out);
}

}  // namespace versions

const std::uint32_t* tissue_thresholds() {
    static const Thresholds t;
    return t.entry;
}

std::size_t scan_tissue_band_portable(const RgbView& img, int y0, int y1, bool exclude_artefacts, std::uint8_t* dst,
                                      LeftOut& left_out) {
    const Tables& t = tables();
    std::size_t n = 0;
    for (int y = y0; y < y1; ++y) {
        const std::uint8_t* p = img.row(y);
        for (int x = 0; x < img.width; ++x, p += 3) scan_pixel(t, p, exclude_artefacts, dst, n, left_out);
    }
    return n;
}

std::size_t scan_tissue_band(const RgbView& img, int y0, int y1, bool exclude_artefacts, std::uint8_t* dst,
                             LeftOut& left_out) {
    return versions::scan_band(img, y0, y1, exclude_artefacts, dst, left_out);
}

}  // namespace vn
