// Estimation of stain models on the device for many segments at once (a segment is a tile in
// per-tile mode, or all images of an `estimate` call), following core/estimate.cpp
// estimate_model step for step: tissue pixels in image order, the sample of vn::sample_kept_ranks,
// SNMF (cuda/snmf.cuh), the angle check, the concentration percentiles.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "core/image.hpp"
#include "core/model.hpp"
#include "cuda/common.cuh"
#include "cuda/lane.cuh"

namespace vn {
class ThreadPool;
}

namespace vn::cuda {

// One image of a batch: where its packed pixels sit in the lane's device buffer.
struct BatchImage {
    RgbView src;
    std::size_t device_offset = 0;  // bytes, 16-byte aligned
    std::uint32_t segment = 0;
};

// Assigns 16-byte aligned packed offsets; returns the total bytes.
std::size_t layout_images(std::vector<BatchImage>& images);
// The pixel runs (kChunkPixels each, aligned to 4 pixels) of every image, in order.
std::vector<PixelChunk> make_chunks(const std::vector<BatchImage>& images);
// Copies the images' pixels into the device buffer at their offsets.
void upload_images(Lane& lane, const std::vector<BatchImage>& images, std::uint8_t* device_pixels);

// The tissue pixels of every segment, compacted in order on the device.
struct TissueOnDevice {
    const std::uint32_t* pixels = nullptr;    // packed 0x00BBGGRR
    std::vector<std::uint64_t> begin, count;  // per segment: tissue pixels kept
    std::vector<std::uint64_t> total;         // per segment: all pixels looked at
    std::vector<std::uint64_t> artefacts;     // per segment: tissue pixels left out (px::is_artefact)
    // The ranks of the pixels left out among their segment's tissue pixels (kept and left out,
    // in image order), ascending, segment after segment (artefacts[s] from artefact_begin[s]);
    // the sample is drawn over all tissue pixels and drops these (vn::sample_kept_ranks).
    const std::uint32_t* artefact_ranks = nullptr;
    std::vector<std::uint64_t> artefact_begin;
};
TissueOnDevice compact_tissue(Lane& lane, const TablesView& tables, const std::vector<BatchImage>& images,
                              const std::vector<PixelChunk>& chunks, const PixelChunk* device_chunks,
                              const std::uint8_t* device_pixels, std::size_t segment_count,
                              bool exclude_artefacts = true);

// Concentration histograms and their percentile q for the segments with a solver
// (solvers[s] == nullptr: skipped, zero result). hist_out, when given, receives all histograms.
std::vector<double> concentration_percentiles(Lane& lane, const TablesView& tables, const TissueOnDevice& tissue,
                                              const std::vector<const px::Solver<float>*>& solvers, double q,
                                              bool allow_shared, std::vector<std::uint32_t>* hist_out = nullptr);

struct SegmentEstimate {
    bool ok = false;
    std::string reason;  // the message core/estimate.cpp's Error(Data) would carry
    StainModel model;
};

// The whole estimate of every segment (the images must be on the device already).
std::vector<SegmentEstimate> estimate_segments(Lane& lane, const TablesView& tables,
                                               const std::vector<BatchImage>& images,
                                               const std::vector<PixelChunk>& chunks, const PixelChunk* device_chunks,
                                               const std::uint8_t* device_pixels, std::size_t segment_count,
                                               const EstimateParams& params, ThreadPool* pool, bool allow_shared);

}  // namespace vn::cuda
