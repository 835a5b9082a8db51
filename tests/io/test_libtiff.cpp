// The libtiff module: per-handle errors with libtiff's text, nothing printed, and the
// process-wide handlers silenced on request.
#include <catch2/catch.hpp>

#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <functional>
#include <sstream>
#include <string>

#include <tiffio.h>

#include "io/libtiff.hpp"
#include "tests/support/test_support.hpp"

using vn::TiffHandle;
using vn::test::TempDir;

namespace {

// What `f` writes to standard error (file descriptor 2).
std::string stderr_of(const TempDir& dir, const std::function<void()>& f) {
    const std::string path = dir.file("stderr.txt");
    std::fflush(stderr);
    const int saved = ::dup(2);
    const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    REQUIRE(saved >= 0);
    REQUIRE(fd >= 0);
    ::dup2(fd, 2);
    ::close(fd);
    f();
    std::fflush(stderr);
    ::dup2(saved, 2);
    ::close(saved);
    std::ifstream in(path);
    std::ostringstream text;
    text << in.rdbuf();
    return text.str();
}

}  // namespace

TEST_CASE("libtiff handles keep their own errors, in libtiff's words, and print nothing", "[libtiff]") {
    TempDir dir;
    const std::string text = dir.file("text.tif"), empty = dir.file("empty.tif"), missing = dir.file("missing.tif");
    std::ofstream(text) << "not a TIFF at all\n";
    std::ofstream(empty).flush();
    // The control: libtiff's own TIFFOpen prints through the process-wide handler.
    const std::string printed = stderr_of(dir, [&] {
        TIFF* t = TIFFOpen(text.c_str(), "r");
        if (t) TIFFClose(t);
    });
    CHECK(printed.find("Not a TIFF") != std::string::npos);

    std::string by_path, by_fd, none, gone;
    const std::string quiet = stderr_of(dir, [&] {
        const TiffHandle a(text, "r");
        const TiffHandle b(empty, "r");
        const TiffHandle c(missing, "r");
        CHECK_FALSE(a.valid());
        CHECK_FALSE(b.valid());
        CHECK_FALSE(c.valid());
        by_path = a.error();
        none = b.error();
        gone = c.error();
        const int fd = ::open(text.c_str(), O_RDONLY | O_CLOEXEC);
        REQUIRE(fd >= 0);
        {
            const TiffHandle d(fd, text, "r");
            CHECK_FALSE(d.valid());
            by_fd = d.error();
        }
        ::close(fd);
    });
    CHECK(quiet.empty());
    INFO(by_path << " | " << none << " | " << gone << " | " << by_fd);
    CHECK(by_path.find("Not a TIFF") != std::string::npos);
    CHECK(by_fd.find("Not a TIFF") != std::string::npos);
    CHECK_FALSE(none.empty());
    CHECK(none.find("Not a TIFF") == std::string::npos);  // each handle its own message
    CHECK(gone.find("No such file") != std::string::npos);
    for (const std::string& e : {by_path, none, gone, by_fd}) {
        CHECK(e.find(dir.path()) == std::string::npos);  // the caller's message names the file
        CHECK(e.find('\n') == std::string::npos);
    }
}

TEST_CASE("a handle's error is cleared on request and its descriptor stays open", "[libtiff]") {
    TempDir dir;
    const std::string path = dir.file("a.tif");
    const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    REQUIRE(fd >= 0);
    {
        TiffHandle t(fd, path, "w");
        REQUIRE(t.valid());
        CHECK(t.error().empty());
        // Writing pixels before the image's size is set is an error of this handle.
        std::uint8_t px[3] = {1, 2, 3};
        CHECK(TIFFWriteEncodedStrip(t.get(), 0, px, 3) < 0);
        CHECK_FALSE(t.error().empty());
        t.clear_error();
        CHECK(t.error().empty());
        CHECK(t.io_errno() == 0);
    }
    CHECK(::fcntl(fd, F_GETFD) != -1);  // the caller's descriptor is not closed by the handle
    ::close(fd);
}

TEST_CASE("the process-wide libtiff handlers can be silenced", "[libtiff]") {
    TempDir dir;
    const std::string text = dir.file("text.tif");
    std::ofstream(text) << "not a TIFF at all\n";
    auto open_directly = [&] {
        TIFF* t = TIFFOpen(text.c_str(), "r");
        if (t) TIFFClose(t);
    };
    CHECK_FALSE(stderr_of(dir, open_directly).empty());  // the control
    vn::silence_libtiff_default_handlers();
    CHECK(stderr_of(dir, open_directly).empty());
}
