// The C interface of the CUDA backend module (libvahanorm-cuda.so). The vahanorm executable
// does not link CUDA: it loads this module with dlopen only when a GPU is asked for, so that a
// CPU run never pays for loading cuSOLVER and cuBLAS (about 100 ms and 250 MB of mappings).
//
// What crosses the boundary: the Backend object (its virtual calls take and return the structs
// of core/backend.hpp) and the exceptions its calls throw. So the loader checks, besides the ABI
// number, the layout of every such struct (vahanorm_cuda_layout: sizes and alignments, the
// compiler and the C++ library ABI), and every exception leaving the module is a vn::Error whose
// kind and message are also kept (vahanorm_cuda_last_error), so the CLI maps it to its exit code
// even when the two sides' type information for vn::Error differs.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "core/backend.hpp"
#include "core/error.hpp"

extern "C" {

// Bumped whenever anything below, or the Backend interface, changes.
#define VAHANORM_CUDA_PLUGIN_ABI 3

// The number of structs whose layout is compared.
#define VAHANORM_CUDA_LAYOUT_TYPES 14

// Sizes and alignments of what crosses the boundary, as each side was compiled.
struct vahanorm_cuda_layout {
    std::uint32_t self_size;  // sizeof(vahanorm_cuda_layout)
    std::uint32_t abi;        // VAHANORM_CUDA_PLUGIN_ABI
    std::uint32_t compiler;   // __GNUC__ * 100 + __GNUC_MINOR__ (0 for other compilers)
    std::uint32_t cxx11_abi;  // _GLIBCXX_USE_CXX11_ABI (std::string's layout)
    std::uint32_t size[VAHANORM_CUDA_LAYOUT_TYPES];  // see vahanorm_cuda_expected_layout()
    std::uint32_t align[VAHANORM_CUDA_LAYOUT_TYPES];
};

typedef int (*vahanorm_cuda_abi_fn)();
typedef void (*vahanorm_cuda_layout_fn)(vahanorm_cuda_layout* out);
// Usable devices (0 when none); `why` gets the reason when 0.
typedef int (*vahanorm_cuda_device_count_fn)(char* why, std::size_t why_size);
// A new backend on `count` devices, or null with the reason in `why` and the ErrorKind (as an
// int) in `kind`.
typedef vn::Backend* (*vahanorm_cuda_make_backend_fn)(const int* devices, int count, int host_threads, char* why,
                                                      std::size_t why_size, int* kind);
// The last exception a backend call of this thread let out of the module: its ErrorKind (as an
// int) and message; 0 when there was none.
typedef int (*vahanorm_cuda_last_error_fn)(char* why, std::size_t why_size, int* kind);

int vahanorm_cuda_abi();
void vahanorm_cuda_layout_of(vahanorm_cuda_layout* out);
int vahanorm_cuda_device_count(char* why, std::size_t why_size);
vn::Backend* vahanorm_cuda_make_backend(const int* devices, int count, int host_threads, char* why,
                                        std::size_t why_size, int* kind);
int vahanorm_cuda_last_error(char* why, std::size_t why_size, int* kind);
}

// The layout this translation unit sees (both sides call it; the loader compares the two).
inline vahanorm_cuda_layout vahanorm_cuda_expected_layout() {
    vahanorm_cuda_layout l{};
    l.self_size = sizeof(vahanorm_cuda_layout);
    l.abi = VAHANORM_CUDA_PLUGIN_ABI;
#if defined(__GNUC__) && !defined(__clang__)
    l.compiler = __GNUC__ * 100 + __GNUC_MINOR__;
#endif
#ifdef _GLIBCXX_USE_CXX11_ABI
    l.cxx11_abi = _GLIBCXX_USE_CXX11_ABI;
#endif
    int i = 0;
    auto add = [&](std::size_t size, std::size_t align) {
        l.size[i] = static_cast<std::uint32_t>(size);
        l.align[i] = static_cast<std::uint32_t>(align);
        ++i;
    };
    add(sizeof(vn::RgbView), alignof(vn::RgbView));
    add(sizeof(vn::RgbSpan), alignof(vn::RgbSpan));
    add(sizeof(vn::TileJob), alignof(vn::TileJob));
    add(sizeof(vn::TileOutcome), alignof(vn::TileOutcome));
    add(sizeof(vn::StainModel), alignof(vn::StainModel));
    add(sizeof(vn::EstimateParams), alignof(vn::EstimateParams));
    add(sizeof(vn::TransformPlan), alignof(vn::TransformPlan));
    add(sizeof(std::string), alignof(std::string));
    add(sizeof(std::vector<vn::TileJob>), alignof(std::vector<vn::TileJob>));
    add(sizeof(std::vector<vn::TileOutcome>), alignof(std::vector<vn::TileOutcome>));
    add(sizeof(std::vector<vn::RgbView>), alignof(std::vector<vn::RgbView>));
    add(sizeof(vn::Error), alignof(vn::Error));
    add(sizeof(vn::BackendProperties), alignof(vn::BackendProperties));
    add(sizeof(vn::HostBuffer), alignof(vn::HostBuffer));
    return l;
}

// Empty when the layouts agree, else what differs (one line).
inline std::string vahanorm_cuda_layout_mismatch(const vahanorm_cuda_layout& mine, const vahanorm_cuda_layout& theirs) {
    static const char* const names[VAHANORM_CUDA_LAYOUT_TYPES] = {
        "RgbView",         "RgbSpan",           "TileJob",         "TileOutcome",       "StainModel",
        "EstimateParams",  "TransformPlan",     "std::string",     "vector<TileJob>",   "vector<TileOutcome>",
        "vector<RgbView>", "vn::Error",         "BackendProperties", "HostBuffer"};
    if (theirs.self_size != mine.self_size || theirs.abi != mine.abi)
        return "plugin ABI " + std::to_string(theirs.abi) + ", expected " + std::to_string(mine.abi);
    if (theirs.compiler != mine.compiler || theirs.cxx11_abi != mine.cxx11_abi)
        return "built with compiler " + std::to_string(theirs.compiler) + " (C++11 ABI " +
               std::to_string(theirs.cxx11_abi) + "), the executable with " + std::to_string(mine.compiler) + " (" +
               std::to_string(mine.cxx11_abi) + ")";
    for (int i = 0; i < VAHANORM_CUDA_LAYOUT_TYPES; ++i)
        if (theirs.size[i] != mine.size[i] || theirs.align[i] != mine.align[i])
            return std::string(names[i]) + " is " + std::to_string(theirs.size[i]) + " bytes (alignment " +
                   std::to_string(theirs.align[i]) + ") in the module, " + std::to_string(mine.size[i]) + " (" +
                   std::to_string(mine.align[i]) + ") in the executable";
    return "";
}
