#include "io/slide_tiff_reader.hpp"
#include "io/jpeg_error.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <condition_variable>
#include <csetjmp>
#include <cstdio>
#include <cstring>
#include <mutex>
#include <unordered_map>
#include <vector>

// clang-format off
#include <jpeglib.h>
#include <jerror.h>
#include <tiffio.h>
// clang-format on

#include "core/error.hpp"
#include "io/libtiff.hpp"

namespace vn {
namespace {

constexpr JDIMENSION kJpegRowsPerCall = 16;  // rows a jpeg_read_scanlines call may return (one MCU row)
constexpr std::size_t kCacheSlack = 64;      // tiles cached beyond two rows of the level


// Decodes one JPEG tile of exactly w x h into out (rows of `stride` bytes). The colour space
// comes from Photometric, as OpenSlide takes it: YCbCr is converted, RGB is taken as is.
bool decode_jpeg_tile(const std::uint8_t* tables, std::size_t ntables, const std::uint8_t* data, std::size_t n,
                      bool ycbcr, JDIMENSION w, JDIMENSION h, std::uint8_t* out, std::size_t stride, char* msg) {
    jpeg_decompress_struct cinfo;
    JpegError err;
    cinfo.err = jpeg_init_error(&err);
    if (setjmp(err.jmp)) {
        std::snprintf(msg, kJpegMessageMax, "%s", err.message);
        jpeg_destroy_decompress(&cinfo);
        return false;
    }
    jpeg_create_decompress(&cinfo);
    if (ntables > 0) {
        jpeg_mem_src(&cinfo, tables, static_cast<unsigned long>(ntables));
        jpeg_read_header(&cinfo, FALSE);
    }
    jpeg_mem_src(&cinfo, data, static_cast<unsigned long>(n));
    jpeg_read_header(&cinfo, TRUE);
    if (cinfo.num_components != 3 || cinfo.image_width != w || cinfo.image_height != h) {
        std::snprintf(msg, JMSG_LENGTH_MAX, "JPEG tile is %ux%u with %d components, expected %ux%u RGB",
                      cinfo.image_width, cinfo.image_height, cinfo.num_components, w, h);
        jpeg_destroy_decompress(&cinfo);
        return false;
    }
    cinfo.jpeg_color_space = ycbcr ? JCS_YCbCr : JCS_RGB;
    cinfo.out_color_space = JCS_RGB;
    jpeg_start_decompress(&cinfo);
    JSAMPROW rows[kJpegRowsPerCall];
    while (cinfo.output_scanline < h) {
        const JDIMENSION y0 = cinfo.output_scanline;
        const JDIMENSION k = std::min<JDIMENSION>(kJpegRowsPerCall, h - y0);
        for (JDIMENSION i = 0; i < k; ++i) rows[i] = out + static_cast<std::size_t>(y0 + i) * stride;
        jpeg_read_scanlines(&cinfo, rows, k);
    }
    jpeg_finish_decompress(&cinfo);
    jpeg_destroy_decompress(&cinfo);
    return true;
}

class Fd {
public:
    explicit Fd(const std::string& path) : fd_(::open(path.c_str(), O_RDONLY | O_CLOEXEC)) {}
    ~Fd() {
        if (fd_ >= 0) ::close(fd_);
    }
    Fd(const Fd&) = delete;
    Fd& operator=(const Fd&) = delete;
    int get() const { return fd_; }

private:
    int fd_;
};

bool is_lossless_codec(std::uint16_t c) {
    switch (c) {
        case COMPRESSION_NONE:
        case COMPRESSION_LZW:
        case COMPRESSION_ADOBE_DEFLATE:
        case COMPRESSION_DEFLATE:
        case COMPRESSION_PACKBITS:
        case COMPRESSION_ZSTD:
        case COMPRESSION_LZMA:
            return true;
        default:
            return false;
    }
}

struct Layout {
    tdir_t dir = 0;
    int level = 0;
    std::uint32_t width = 0, height = 0, tile_w = 0, tile_h = 0;
    std::uint16_t compression = 0, photometric = 0;
    std::vector<std::uint64_t> offsets, counts;
    std::vector<std::uint8_t> jpeg_tables;
};

class TiffSource final : public RegionSource {
public:
    TiffSource(const SlideReader& slide, Layout layout)
        : path_(slide.path()), bg_(slide.background()), L_(std::move(layout)), fd_(slide.path()) {
        if (fd_.get() < 0) fail(ErrorKind::Input, path_ + ": cannot open (" + std::strerror(errno) + ")");
        tiles_x_ = (L_.width + L_.tile_w - 1) / L_.tile_w;
        tiles_y_ = (L_.height + L_.tile_h - 1) / L_.tile_h;
        capacity_ = 2 * static_cast<std::size_t>(tiles_x_) + kCacheSlack;
        tile_bytes_ = static_cast<std::size_t>(L_.tile_w) * L_.tile_h * 3u;
    }

    std::string name() const override {
        return L_.compression == COMPRESSION_JPEG ? "libtiff-direct (JPEG, libjpeg-turbo)" : "libtiff-direct";
    }

    void read(std::int64_t x, std::int64_t y, RgbSpan dst) override {
        if (x < 0 || y < 0 || x + dst.width > L_.width || y + dst.height > L_.height)
            fail(ErrorKind::Internal, path_ + ": region outside level " + std::to_string(L_.level));
        const std::int64_t tw = L_.tile_w, th = L_.tile_h;
        const std::int64_t tx0 = x / tw, ty0 = y / th;
        const std::int64_t tx1 = (x + dst.width - 1) / tw, ty1 = (y + dst.height - 1) / th;
        for (std::int64_t ty = ty0; ty <= ty1; ++ty) {
            for (std::int64_t tx = tx0; tx <= tx1; ++tx) {
                const auto index = static_cast<std::uint32_t>(ty * tiles_x_ + tx);
                // Part of the tile this request needs, in tile coordinates.
                const std::int64_t ax = std::max(x, tx * tw), ay = std::max(y, ty * th);
                const std::int64_t bx = std::min(x + dst.width, std::min<std::int64_t>((tx + 1) * tw, L_.width));
                const std::int64_t by = std::min(y + dst.height, std::min<std::int64_t>((ty + 1) * th, L_.height));
                const bool whole = ax == tx * tw && ay == ty * th &&
                                   bx == std::min<std::int64_t>((tx + 1) * tw, L_.width) &&
                                   by == std::min<std::int64_t>((ty + 1) * th, L_.height);
                std::shared_ptr<const std::vector<std::uint8_t>> cached;
                const std::uint8_t* tile = nullptr;
                if (whole && dst.width == static_cast<int>(L_.tile_w) && dst.height == static_cast<int>(L_.tile_h) &&
                    dst.stride == static_cast<std::size_t>(L_.tile_w) * 3u) {
                    // Exactly one whole tile, packed like a tile: decode in place.
                    decode(index, dst.data);
                    continue;
                }
                if (whole) {
                    // Needed once: no caching.
                    thread_local std::vector<std::uint8_t> scratch;
                    scratch.resize(tile_bytes_);
                    decode(index, scratch.data());
                    tile = scratch.data();
                } else {
                    cached = get_cached(index);
                    tile = cached->data();
                }
                const std::size_t row_bytes = static_cast<std::size_t>(bx - ax) * 3u;
                for (std::int64_t yy = ay; yy < by; ++yy) {
                    const std::uint8_t* src = tile + static_cast<std::size_t>(yy - ty * th) * L_.tile_w * 3u +
                                              static_cast<std::size_t>(ax - tx * tw) * 3u;
                    std::memcpy(dst.row(static_cast<int>(yy - y)) + static_cast<std::size_t>(ax - x) * 3u, src,
                                row_bytes);
                }
            }
        }
    }

private:
    struct Entry {
        std::shared_ptr<std::vector<std::uint8_t>> data;
        bool ready = false;
        std::exception_ptr error;
        std::uint64_t stamp = 0;
    };

    std::shared_ptr<const std::vector<std::uint8_t>> get_cached(std::uint32_t index) {
        std::unique_lock<std::mutex> lock(cache_mutex_);
        for (;;) {
            auto it = cache_.find(index);
            if (it == cache_.end()) break;
            if (!it->second.ready) {
                // Another thread is decoding it; it may be evicted again before we look.
                cache_cv_.wait(lock);
                continue;
            }
            if (it->second.error) std::rethrow_exception(it->second.error);
            it->second.stamp = ++clock_;
            return it->second.data;
        }
        cache_[index] = Entry{};
        lock.unlock();
        auto data = std::make_shared<std::vector<std::uint8_t>>(tile_bytes_);
        std::exception_ptr error;
        try {
            decode(index, data->data());
        } catch (...) {
            error = std::current_exception();
        }
        lock.lock();
        Entry& e = cache_[index];
        e.data = data;
        e.error = error;
        e.ready = true;
        e.stamp = ++clock_;
        evict_locked();
        cache_cv_.notify_all();
        if (error) std::rethrow_exception(error);
        return data;
    }

    void evict_locked() {
        while (cache_.size() > capacity_) {
            auto oldest = cache_.end();
            for (auto it = cache_.begin(); it != cache_.end(); ++it)
                if (it->second.ready && (oldest == cache_.end() || it->second.stamp < oldest->second.stamp)) oldest = it;
            if (oldest == cache_.end()) return;
            cache_.erase(oldest);
        }
    }

    [[noreturn]] void corrupt(std::uint32_t index, const std::string& what) const {
        fail(ErrorKind::Input, path_ + ": corrupt tile " + std::to_string(index) + " at level " + std::to_string(L_.level) + " (" + what + ")");
    }

    // Decodes tile `index` into a full tile buffer (tile_w x tile_h RGB).
    void decode(std::uint32_t index, std::uint8_t* out) {
        const std::uint64_t count = L_.counts[index];
        if (count == 0) {
            // A missing tile (seen in the wild): transparent for OpenSlide, so background here.
            for (std::size_t i = 0; i < tile_bytes_; i += 3) std::memcpy(out + i, bg_.data(), 3);
            return;
        }
        if (L_.compression != COMPRESSION_JPEG) {
            decode_libtiff(index, out);
            return;
        }
        thread_local std::vector<std::uint8_t> raw;
        raw.resize(count);
        std::size_t got = 0;
        while (got < count) {
            const ssize_t n = ::pread(fd_.get(), raw.data() + got, count - got, static_cast<off_t>(L_.offsets[index] + got));
            if (n < 0 && errno == EINTR) continue;
            if (n < 0) corrupt(index, std::string("read failed: ") + std::strerror(errno));
            if (n == 0) corrupt(index, "the file ends inside the tile: truncated?");
            got += static_cast<std::size_t>(n);
        }
        char msg[kJpegMessageMax];
        if (!decode_jpeg_tile(L_.jpeg_tables.data(), L_.jpeg_tables.size(), raw.data(), raw.size(),
                              L_.photometric == PHOTOMETRIC_YCBCR, L_.tile_w, L_.tile_h, out,
                              static_cast<std::size_t>(L_.tile_w) * 3u, msg))
            corrupt(index, msg);
    }

    void decode_libtiff(std::uint32_t index, std::uint8_t* out) {
        TiffHandle h;
        {
            std::lock_guard<std::mutex> lock(pool_mutex_);
            if (!pool_.empty()) {
                h = std::move(pool_.back());
                pool_.pop_back();
            }
        }
        if (!h.valid()) {
            h = TiffHandle(path_, "rm");
            if (!h.valid() || !TIFFSetDirectory(h.get(), L_.dir))
                fail(ErrorKind::Input, path_ + ": cannot reopen the TIFF (" + h.error() + ")");
        }
        h.clear_error();
        const tmsize_t n = TIFFReadEncodedTile(h.get(), index, out, static_cast<tmsize_t>(tile_bytes_));
        if (n < 0) corrupt(index, h.error().empty() ? "libtiff could not decode it" : h.error());
        std::lock_guard<std::mutex> lock(pool_mutex_);
        pool_.push_back(std::move(h));
    }

    std::string path_;
    std::array<std::uint8_t, 3> bg_;
    Layout L_;
    Fd fd_;
    std::uint32_t tiles_x_ = 0, tiles_y_ = 0;
    std::size_t tile_bytes_ = 0;
    std::size_t capacity_ = 0;

    std::mutex cache_mutex_;
    std::condition_variable cache_cv_;
    std::unordered_map<std::uint32_t, Entry> cache_;
    std::uint64_t clock_ = 0;

    std::mutex pool_mutex_;
    std::vector<TiffHandle> pool_;
};

}  // namespace

std::unique_ptr<RegionSource> make_tiff_source(const SlideReader& slide, std::string* why, int level) {
    auto no = [&](const std::string& reason) -> std::unique_ptr<RegionSource> {
        if (why) *why = reason;
        return nullptr;
    };
    const std::string& vendor = slide.vendor();
    if (vendor != "aperio" && vendor != "generic-tiff") return no("vendor " + vendor + " is not TIFF-based");
    TiffHandle h(slide.path(), "rm");
    if (!h.valid()) return no("libtiff cannot open it (" + h.error() + ")");
    TIFF* t = h.get();
    Layout L;
    bool found = false;
    if (level < 0 || level >= slide.level_count()) return no("no level " + std::to_string(level));
    const std::int64_t lw = slide.level(level).width, lh = slide.level(level).height;
    // Aperio: level 0 is directory 0. Generic TIFF, and reduced levels: the first tiled directory
    // of the level's size.
    do {
        std::uint32_t w = 0, hh = 0;
        TIFFGetField(t, TIFFTAG_IMAGEWIDTH, &w);
        TIFFGetField(t, TIFFTAG_IMAGELENGTH, &hh);
        if (TIFFIsTiled(t) && w == lw && hh == lh) {
            L.dir = TIFFCurrentDirectory(t);
            found = true;
            break;
        }
        if (vendor == "aperio" && level == 0) break;
    } while (TIFFReadDirectory(t));
    if (!found) return no("no tiled directory of the level's size");
    L.level = level;
    L.width = static_cast<std::uint32_t>(lw);
    L.height = static_cast<std::uint32_t>(lh);
    std::uint16_t bps = 0, spp = 0, planar = PLANARCONFIG_CONTIG, orientation = ORIENTATION_TOPLEFT;
    TIFFGetFieldDefaulted(t, TIFFTAG_BITSPERSAMPLE, &bps);
    TIFFGetFieldDefaulted(t, TIFFTAG_SAMPLESPERPIXEL, &spp);
    TIFFGetFieldDefaulted(t, TIFFTAG_PLANARCONFIG, &planar);
    TIFFGetFieldDefaulted(t, TIFFTAG_ORIENTATION, &orientation);
    TIFFGetFieldDefaulted(t, TIFFTAG_COMPRESSION, &L.compression);
    TIFFGetField(t, TIFFTAG_PHOTOMETRIC, &L.photometric);
    TIFFGetField(t, TIFFTAG_TILEWIDTH, &L.tile_w);
    TIFFGetField(t, TIFFTAG_TILELENGTH, &L.tile_h);
    if (bps != 8 || spp != 3 || planar != PLANARCONFIG_CONTIG) return no("not 8-bit contiguous RGB");
    if (orientation != ORIENTATION_TOPLEFT) return no("orientation is not top-left");
    if (L.tile_w == 0 || L.tile_h == 0) return no("no tile size");
    if (L.compression == COMPRESSION_JPEG) {
        if (L.photometric != PHOTOMETRIC_YCBCR && L.photometric != PHOTOMETRIC_RGB)
            return no("JPEG with photometric " + std::to_string(L.photometric));
        std::uint32_t n = 0;
        void* p = nullptr;
        if (TIFFGetField(t, TIFFTAG_JPEGTABLES, &n, &p) && p && n > 0) {
            const auto* b = static_cast<const std::uint8_t*>(p);
            L.jpeg_tables.assign(b, b + n);
        }
    } else {
        if (!is_lossless_codec(L.compression) || !TIFFIsCODECConfigured(L.compression))
            return no("compression " + std::to_string(L.compression) + " is left to OpenSlide");
        if (L.photometric != PHOTOMETRIC_RGB) return no("photometric " + std::to_string(L.photometric));
    }
    const std::uint32_t ntiles = TIFFNumberOfTiles(t);
    std::uint64_t* offsets = nullptr;
    std::uint64_t* counts = nullptr;
    if (!TIFFGetField(t, TIFFTAG_TILEOFFSETS, &offsets) || !TIFFGetField(t, TIFFTAG_TILEBYTECOUNTS, &counts) ||
        !offsets || !counts)
        fail(ErrorKind::Input, slide.path() + ": level " + std::to_string(level) + " has no tile offsets (" + h.error() + ")");
    L.offsets.assign(offsets, offsets + ntiles);
    L.counts.assign(counts, counts + ntiles);
    struct stat st {};
    if (::stat(slide.path().c_str(), &st) != 0)
        fail(ErrorKind::Input, slide.path() + ": cannot stat (" + std::strerror(errno) + ")");
    const auto size = static_cast<std::uint64_t>(st.st_size);
    for (std::uint32_t i = 0; i < ntiles; ++i)
        if (L.counts[i] > 0 && (L.offsets[i] > size || L.counts[i] > size - L.offsets[i]))
            fail(ErrorKind::Input, slide.path() + ": level-" + std::to_string(level) + " tile " + std::to_string(i) +
                                       " lies beyond the end of the file (truncated?)");
    return std::make_unique<TiffSource>(slide, std::move(L));
}

}  // namespace vn
