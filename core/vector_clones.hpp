// Function multiversioning for the hot loops that the compiler vectorises (the C-step of SNMF,
// the start's angle histogram): on x86-64 with GCC or Clang such a function is compiled twice,
// for AVX2 and for the baseline, and the loader picks the clone the CPU runs. Both clones
// perform the same IEEE operations in the same order: no contraction into fused multiply-adds
// (-ffp-contract=off; the AVX2 clone does not enable FMA either), no reassociation, the same
// conversions and selects. Wider vectors change how many lanes run at once, never a result, so
// every clone gives the same bits (the tests hold the loops to the scalar functions of
// core/pixel_math.hpp and core/snmf_math.hpp). Defining VAHANORM_NO_CLONES builds the baseline
// alone, e.g. to check it on a machine that would pick the AVX2 clone.
#pragma once

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__)) && !defined(__CUDACC__) && \
    !defined(VAHANORM_NO_CLONES)
#define VN_VECTOR_CLONES __attribute__((target_clones("avx2", "default")))
#else
#define VN_VECTOR_CLONES
#endif

// Loops written with intrinsics come as two versions of one function instead, marked
// VN_VERSION_AVX2 and VN_VERSION_DEFAULT (defined only where VN_HAVE_VERSIONS is 1); the loader
// picks one in the same way. The AVX2 version must give the bits of the default one (its tests
// hold it to the portable code).
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__)) && !defined(__CUDACC__) && \
    !defined(VAHANORM_NO_CLONES)
#define VN_HAVE_VERSIONS 1
#define VN_VERSION_AVX2 __attribute__((target("avx2")))
#define VN_VERSION_DEFAULT __attribute__((target("default")))
#else
#define VN_HAVE_VERSIONS 0
#endif
