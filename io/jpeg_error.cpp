#include "io/jpeg_error.hpp"

#include <cerrno>

#include <jerror.h>

namespace vn {
namespace {

[[noreturn]] void jpeg_on_error(j_common_ptr cinfo) {
    auto* err = reinterpret_cast<JpegError*>(cinfo->err);
    err->saved_errno = errno;
    char buffer[JMSG_LENGTH_MAX];
    (*cinfo->err->format_message)(cinfo, buffer);
    jpeg_fail_with(cinfo, buffer);
}

// Warnings (level -1) mean corrupt data (a truncated file, a bad Huffman code), after which
// libjpeg would go on with grey filler pixels: fatal. Two are harmless and let through: an
// unknown JFIF version, and extraneous bytes before a marker (no data is lost). Trace
// messages (level >= 0) are ignored.
void jpeg_on_message(j_common_ptr cinfo, int msg_level) {
    if (msg_level >= 0) return;
    const int code = cinfo->err->msg_code;
    if (code == JWRN_JFIF_MAJOR || code == JWRN_EXTRANEOUS_DATA) return;
    jpeg_on_error(cinfo);
}

void jpeg_quiet_output(j_common_ptr) {}

}  // namespace

jpeg_error_mgr* jpeg_init_error(JpegError* err) {
    jpeg_std_error(&err->pub);
    err->pub.error_exit = jpeg_on_error;
    err->pub.emit_message = jpeg_on_message;
    err->pub.output_message = jpeg_quiet_output;
    err->saved_errno = 0;
    err->message[0] = '\0';
    return &err->pub;
}

void jpeg_fail_with(j_common_ptr cinfo, const char* msg) {
    auto* err = reinterpret_cast<JpegError*>(cinfo->err);
    std::snprintf(err->message, sizeof err->message, "%s", msg);
    std::longjmp(err->jmp, 1);
}

}  // namespace vn
