// libtiff handles with RAII and per-handle error capture (libtiff >= 4.5 TIFFOpenExt), shared by
// the direct slide reader and the pyramidal writer. Nothing is printed to stderr by libtiff for
// these handles; the last error is kept for the exception message.
#pragma once

#include <memory>
#include <string>

typedef struct tiff TIFF;

namespace vn {

class TiffHandle {
public:
    TiffHandle() = default;
    // mode as TIFFOpen ("r", "rm", "w", "w8", ...). Check valid() / error() afterwards.
    TiffHandle(const std::string& path, const char* mode);
    ~TiffHandle();
    TiffHandle(TiffHandle&& o) noexcept;
    TiffHandle& operator=(TiffHandle&& o) noexcept;
    TiffHandle(const TiffHandle&) = delete;
    TiffHandle& operator=(const TiffHandle&) = delete;

    bool valid() const { return tif_ != nullptr; }
    TIFF* get() const { return tif_; }
    // The last libtiff error message for this handle ("" if none).
    std::string error() const;
    void clear_error();
    // TIFFClose now; for writers, close() flushes and returns false when that failed.
    bool close();

    struct Messages {
        std::string error;
    };

private:
    TIFF* tif_ = nullptr;
    std::unique_ptr<Messages> msgs_;
};

}  // namespace vn
