// Plain descriptors shared by the kernels' host launchers and the host orchestration.
// Host-only header: trivially copyable structs, no device code.
#pragma once

#include <cstdint>

#include "core/pixel_math.hpp"

namespace vn::cuda {

// Device copies of the exact tables of core/tables.hpp (copied once per device).
struct TablesView {
    const float* od = nullptr;             // [256]
    const std::uint32_t* luma = nullptr;   // [768]
    const std::uint8_t* exp_out = nullptr; // [px::kExpLutSize]
};

// A run of consecutive pixels of one image inside a packed (stride = 3 * width) device buffer.
// Images start on 16-byte boundaries and runs on multiples of 4 pixels, so every run starts
// 4-byte aligned and the kernels can move 4 pixels as three 32-bit words.
struct PixelChunk {
    std::uint64_t byte_offset;
    std::uint32_t count;  // pixels, at most kChunkPixels
    std::uint32_t image;  // index into the batch's images (tile index in per-tile mode)
};
constexpr std::uint32_t kChunkPixels = 8192;

// Per-tile transform constants; `copy` passes the tile through unchanged.
struct TilePlan {
    px::Solver<float> solver;
    px::Render render;
    int copy;
};

// A run of compacted tissue pixels (packed 0x00BBGGRR) of one segment.
struct TissueRun {
    std::uint64_t begin;
    std::uint32_t count;
    std::uint32_t segment;
};
constexpr std::uint32_t kHistRunPixels = 65536;

// One segment's SNMF sample. Samples are stored block-interleaved: the SNMF works on blocks of
// sm::kBlock samples (one GPU thread per block, as core/snmf.cpp sums them), and sample j of
// block `item` lives at [j * total_items + item], so that a warp's threads read consecutive
// addresses.
struct SampleSegment {
    std::uint64_t tissue_begin;  // first tissue pixel of the segment in the compacted array
    std::uint32_t sample_begin;  // first rank in the concatenated rank list
    std::uint32_t sample_count;
    std::uint32_t item_begin;    // first block
    std::uint32_t item_count;
};

}  // namespace vn::cuda
