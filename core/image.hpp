// 8-bit interleaved RGB images: the only pixel format the method works on.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace vn {

// A read-only view of packed RGB8 rows; stride is in bytes (>= 3 * width).
struct RgbView {
    const std::uint8_t* data = nullptr;
    int width = 0;
    int height = 0;
    std::size_t stride = 0;

    const std::uint8_t* row(int y) const { return data + static_cast<std::size_t>(y) * stride; }
    std::size_t pixel_count() const { return static_cast<std::size_t>(width) * static_cast<std::size_t>(height); }
};

// A writable view of packed RGB8 rows.
struct RgbSpan {
    std::uint8_t* data = nullptr;
    int width = 0;
    int height = 0;
    std::size_t stride = 0;

    std::uint8_t* row(int y) const { return data + static_cast<std::size_t>(y) * stride; }
    operator RgbView() const { return RgbView{data, width, height, stride}; }
};

// An owning, tightly packed RGB8 image.
struct RgbImage {
    int width = 0;
    int height = 0;
    std::vector<std::uint8_t> pixels;  // width * height * 3 bytes, row-major

    RgbImage() = default;
    RgbImage(int w, int h) : width(w), height(h), pixels(static_cast<std::size_t>(w) * static_cast<std::size_t>(h) * 3u) {}

    std::size_t stride() const { return static_cast<std::size_t>(width) * 3u; }
    std::size_t pixel_count() const { return static_cast<std::size_t>(width) * static_cast<std::size_t>(height); }
    RgbView view() const { return RgbView{pixels.data(), width, height, stride()}; }
    RgbSpan span() { return RgbSpan{pixels.data(), width, height, stride()}; }
};

}  // namespace vn
