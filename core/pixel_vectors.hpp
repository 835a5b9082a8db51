// Table lookups of eight packed RGB pixels at a time, for the AVX2 versions of the CPU loops
// (core/vector_clones.hpp): the optical densities of eight pixels, and eight pixels' rendered
// bytes written back packed. Gathers read exactly the table entries the scalar loops read, so
// the results are the same bits.
#pragma once

#include <cstdint>

#include "core/vector_clones.hpp"

#if VN_HAVE_VERSIONS
#include <immintrin.h>

namespace vn::avx2 {

// Eight packed pixels (24 bytes from p; nothing past them is read): bytes 0-15 in the low
// lane, bytes 8-23 in the high one, so that pixels 0-3 start at byte 0 of the low lane and
// pixels 4-7 at byte 4 of the high one.
VN_VERSION_AVX2 inline __m256i load_rgb8(const std::uint8_t* p) {
    const __m128i lo = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
    const __m128i hi = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + 8));
    return _mm256_inserti128_si256(_mm256_castsi128_si256(lo), hi, 1);
}

// Channel c (0, 1, 2) of each pixel of load_rgb8, one per 32-bit lane.
VN_VERSION_AVX2 inline __m256i channel(__m256i v, int c) {
    const char z = -128;  // clears the byte
    const char l = static_cast<char>(c), h = static_cast<char>(4 + c);
    const __m256i pick = _mm256_setr_epi8(l, z, z, z, static_cast<char>(l + 3), z, z, z, static_cast<char>(l + 6), z, z, z,
                                          static_cast<char>(l + 9), z, z, z, h, z, z, z, static_cast<char>(h + 3), z, z, z,
                                          static_cast<char>(h + 6), z, z, z, static_cast<char>(h + 9), z, z, z);
    return _mm256_shuffle_epi8(v, pick);
}

// o0[i], o1[i], o2[i] = od[channel value] of the eight pixels from p.
VN_VERSION_AVX2 inline void od8(const float* od, const std::uint8_t* p, float* o0, float* o1, float* o2) {
    const __m256i v = load_rgb8(p);
    _mm256_storeu_ps(o0, _mm256_i32gather_ps(od, channel(v, 0), 4));
    _mm256_storeu_ps(o1, _mm256_i32gather_ps(od, channel(v, 1), 4));
    _mm256_storeu_ps(o2, _mm256_i32gather_ps(od, channel(v, 2), 4));
}

// table[k[i]] for eight indices, one per 32-bit lane (see lookup8).
VN_VERSION_AVX2 inline __m256i gather_bytes(const std::uint8_t* table, const int* k) {
    const __m256i idx = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(k));
    return _mm256_srli_epi32(_mm256_i32gather_epi32(reinterpret_cast<const int*>(table - 3), idx, 1), 24);
}

// q[3i + c] = table[kc[i]] for eight pixels (24 bytes written, nothing else). `table` must have
// three readable bytes before it: a gather reads the 32-bit word that ends at the entry.
VN_VERSION_AVX2 inline void lookup8(const std::uint8_t* table, const int* k0, const int* k1, const int* k2,
                                    std::uint8_t* q) {
    const __m256i rgb = _mm256_or_si256(_mm256_or_si256(gather_bytes(table, k0), _mm256_slli_epi32(gather_bytes(table, k1), 8)),
                                        _mm256_slli_epi32(gather_bytes(table, k2), 16));
    // Per lane: the three low bytes of each 32-bit lane, packed into 12 bytes.
    const __m256i pack = _mm256_setr_epi8(0, 1, 2, 4, 5, 6, 8, 9, 10, 12, 13, 14, -128, -128, -128, -128, 0, 1, 2, 4, 5,
                                          6, 8, 9, 10, 12, 13, 14, -128, -128, -128, -128);
    const __m256i packed = _mm256_shuffle_epi8(rgb, pack);
    const __m128i lo = _mm256_castsi256_si128(packed), hi = _mm256_extracti128_si256(packed, 1);
    _mm_storel_epi64(reinterpret_cast<__m128i*>(q), lo);
    const int lo_tail = _mm_extract_epi32(lo, 2);
    __builtin_memcpy(q + 8, &lo_tail, 4);
    _mm_storel_epi64(reinterpret_cast<__m128i*>(q + 12), hi);
    const int hi_tail = _mm_extract_epi32(hi, 2);
    __builtin_memcpy(q + 20, &hi_tail, 4);
}

}  // namespace vn::avx2
#endif
