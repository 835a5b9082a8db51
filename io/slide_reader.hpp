// Reading whole slides through OpenSlide: an RAII handle, metadata, and regions composited onto
// the slide's background colour. OpenSlide hands out premultiplied ARGB with transparent pixels
// outside the scanned area; every pixel that leaves this file is opaque 8-bit RGB (the one place
// where un-premultiplying happens, docs/architecture.md).
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/image.hpp"

typedef struct _openslide openslide_t;

namespace vn {

struct SlideLevel {
    std::int64_t width = 0;
    std::int64_t height = 0;
    double downsample = 1.0;
};

// An open slide. Thread-safe for reading (OpenSlide handles are).
class SlideReader {
public:
    // Throws Error(Input) with a one-line message naming the file when it is missing, not a
    // slide OpenSlide can read, or reports an error on open.
    explicit SlideReader(const std::string& path);
    ~SlideReader();
    SlideReader(const SlideReader&) = delete;
    SlideReader& operator=(const SlideReader&) = delete;

    const std::string& path() const { return path_; }
    const std::string& vendor() const { return vendor_; }
    int level_count() const { return static_cast<int>(levels_.size()); }
    const SlideLevel& level(int i) const { return levels_.at(static_cast<std::size_t>(i)); }
    std::int64_t width() const { return levels_[0].width; }
    std::int64_t height() const { return levels_[0].height; }
    // Micrometres per level-0 pixel: openslide.mpp-x/y, else the TIFF resolution tags of level 0
    // with their unit (centimeter or inch; none = unknown). 0 when unknown.
    double mpp_x() const { return mpp_x_; }
    double mpp_y() const { return mpp_y_; }
    // Where the pixel size came from ("openslide.mpp", "tiff.centimeter", "tiff.inch"), or ""
    // when unknown; then mpp_note() says why (for one log line).
    const std::string& mpp_source() const { return mpp_source_; }
    const std::string& mpp_note() const { return mpp_note_; }
    // A resolution from the TIFF tags outside this range (um/px) is a writer's default, not a
    // microscope's (72 dpi, libvips' 10 px/cm), and is ignored.
    static constexpr double kMinPlausibleMpp = 0.01, kMaxPlausibleMpp = 50.0;
    // openslide.objective-power; 0 when the slide does not say.
    double objective_power() const { return objective_power_; }
    // openslide.background-color, else white.
    std::array<std::uint8_t, 3> background() const { return background_; }
    // A property value, or "" when absent.
    std::string property(const std::string& name) const;
    // Level-0 tile size OpenSlide reports (0 when unknown).
    int tile_width() const { return tile_w_; }
    int tile_height() const { return tile_h_; }

    // Reads dst.width x dst.height pixels of `level` whose top-left corner is (x, y) in level-0
    // coordinates, composited onto the background. Checks openslide_get_error after the read:
    // an error is sticky and fatal for the slide (Error(Input)).
    void read_region(int level, std::int64_t x, std::int64_t y, RgbSpan dst) const;

    // Associated images (label, macro, thumbnail, ...), composited onto white.
    std::vector<std::string> associated_names() const;
    RgbImage read_associated(const std::string& name) const;

    openslide_t* handle() const { return osr_; }
    // Throws Error(Input) if OpenSlide has recorded an error for this slide.
    void check_error(const char* what) const;

private:
    std::string path_;
    std::string vendor_;
    openslide_t* osr_ = nullptr;
    std::vector<SlideLevel> levels_;
    void read_pixel_size();

    double mpp_x_ = 0, mpp_y_ = 0, objective_power_ = 0;
    std::string mpp_source_, mpp_note_;
    std::array<std::uint8_t, 3> background_{{255, 255, 255}};
    int tile_w_ = 0, tile_h_ = 0;
};

// The version of the OpenSlide library in use ("3.4.1").
std::string openslide_version();

// Composites premultiplied ARGB (OpenSlide's 0xAARRGGBB words) onto `bg` into RGB.
void composite_argb(const std::uint32_t* argb, std::size_t argb_stride_px, const std::array<std::uint8_t, 3>& bg,
                    RgbSpan dst);

// Where the pixels of level 0 come from while streaming: OpenSlide, or libtiff directly for
// TIFF-based slides (io/slide_tiff_reader.hpp). read() is called from several threads at once.
class RegionSource {
public:
    virtual ~RegionSource() = default;
    virtual std::string name() const = 0;
    // Level-0 pixels of the rectangle at (x, y) of dst's size, composited, inside the slide.
    virtual void read(std::int64_t x, std::int64_t y, RgbSpan dst) = 0;
};

std::unique_ptr<RegionSource> make_openslide_source(const SlideReader& slide);

// A low-resolution picture of the whole slide for finding tissue, QC and thumbnails: the level
// closest to `max_pixels` pixels, box-averaged by a whole factor when no level is small enough.
struct SlideOverview {
    RgbImage image;
    double scale = 1.0;  // level-0 pixels per overview pixel
    int level = 0;       // the level it was read from
    int factor = 1;      // box-average factor applied to that level
};
SlideOverview read_overview(const SlideReader& slide, std::uint64_t max_pixels,
                            const std::atomic<bool>* stop = nullptr);

}  // namespace vn
