// The C interface of the CUDA backend module (libvahanorm-cuda.so). The vahanorm executable
// does not link CUDA: it loads this module with dlopen only when a GPU is asked for, so that a
// CPU run never pays for loading cuSOLVER and cuBLAS (about 100 ms and 250 MB of mappings).
#pragma once

#include <cstddef>

namespace vn {
class Backend;
}

extern "C" {

// Bumped whenever anything below, or the Backend interface, changes.
#define VAHANORM_CUDA_PLUGIN_ABI 1

typedef int (*vahanorm_cuda_abi_fn)();
// Usable devices (0 when none); `why` gets the reason when 0.
typedef int (*vahanorm_cuda_device_count_fn)(char* why, std::size_t why_size);
// A new backend on `count` devices, or null with the reason in `why` and the ErrorKind (as an
// int) in `kind`.
typedef vn::Backend* (*vahanorm_cuda_make_backend_fn)(const int* devices, int count, int host_threads, char* why,
                                                      std::size_t why_size, int* kind);

int vahanorm_cuda_abi();
int vahanorm_cuda_device_count(char* why, std::size_t why_size);
vn::Backend* vahanorm_cuda_make_backend(const int* devices, int count, int host_threads, char* why,
                                        std::size_t why_size, int* kind);
}
