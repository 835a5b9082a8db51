#include <sys/stat.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "app/commands.hpp"
#include "core/error.hpp"

namespace vn::app {

bool file_exists(const std::string& path) {
    struct stat st {};
    return ::stat(path.c_str(), &st) == 0;
}

bool is_stdout_path(const std::string& path) {
    return path == "-" || path == "/dev/stdout" || path == "/dev/fd/1" || path == "/proc/self/fd/1";
}

void write_stdout(const std::string& text) {
    std::clearerr(stdout);
    const std::size_t n = std::fwrite(text.data(), 1, text.size(), stdout);
    if (n != text.size() || std::fflush(stdout) != 0)
        fail(ErrorKind::Output, std::string("standard output: write failed (") + std::strerror(errno) + ")");
}

}  // namespace vn::app
