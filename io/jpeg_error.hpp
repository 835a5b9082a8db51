// libjpeg errors for every JPEG reader and writer in io/: an error, or a warning that means
// corrupt data, longjmps back to the caller's setjmp with the message. No C++ object with a
// destructor may be alive between that setjmp and the libjpeg calls it guards.
#pragma once

#include <csetjmp>
#include <cstdio>

#include <jpeglib.h>

namespace vn {

constexpr int kJpegMessageMax = JMSG_LENGTH_MAX + 64;

struct JpegError {
    jpeg_error_mgr pub;  // first: libjpeg hands out a jpeg_error_mgr*
    std::jmp_buf jmp;
    char message[kJpegMessageMax];
    int saved_errno;
};

// Installs the handlers into `err` and returns &err->pub for cinfo.err.
jpeg_error_mgr* jpeg_init_error(JpegError* err);

// Ends the guarded call with `msg` (longjmp).
[[noreturn]] void jpeg_fail_with(j_common_ptr cinfo, const char* msg);

}  // namespace vn
