// Tissue pixels (docs/method.md §1) of a packed batch: counting, order-preserving
// compaction, and the gather of the seeded SNMF sample, so that the device sees exactly the
// sample the CPU's core/estimate.cpp draws (tissue pixels in image order, vn::sample_kept_ranks).
#pragma once

#include <cstddef>
#include <cstdint>

#include <cuda_runtime.h>

#include "cuda/common.cuh"

namespace vn::cuda {

// counts[c] = number of tissue pixels kept in chunk c; counts[chunk_count + c] = tissue pixels
// left out as ink or artefacts (px::is_artefact; always 0 without exclude_artefacts).
void launch_count_tissue(const TablesView& tables, bool exclude_artefacts, const PixelChunk* chunks,
                         std::size_t chunk_count, const std::uint8_t* pixels, std::uint32_t* counts,
                         cudaStream_t stream);

// Writes the kept tissue pixels of chunk c, in order, as packed 0x00BBGGRR words to
// out[offsets[c] ...] (offsets[c]: exclusive prefix sum of the kept counts, in chunk order), and
// the ranks of the pixels left out among their segment's tissue pixels (kept and left out, in
// image order) to artefact_out[offsets[chunk_count + c] ...] (exclusive prefix sum of the
// left-out counts); offsets[2 * chunk_count + c] is the segment rank of the chunk's first tissue
// pixel, and offsets[3 * chunk_count + c] is 1 when the chunk's segment leaves artefacts out
// (vn::leave_out_artefacts), else 0 (every tissue pixel kept). core/estimate.cpp gather_tissue
// keeps the same pixels and records the same ranks.
void launch_compact_tissue(const TablesView& tables, const PixelChunk* chunks, std::size_t chunk_count,
                           const std::uint8_t* pixels, const std::uint64_t* offsets, std::uint32_t* out,
                           std::uint32_t* artefact_out, cudaStream_t stream);

// Optical densities of the sampled tissue pixels: for segment s, sample k is the tissue pixel
// of rank ranks[seg.sample_begin + k] within the segment. Output block-interleaved (see
// SampleSegment) into r, g, b, each kBlock * total_items floats; item_segment[i] is the
// segment of block i.
void launch_gather_sample(const TablesView& tables, const SampleSegment* segments, const std::uint32_t* item_segment,
                          std::size_t total_items, const std::uint32_t* ranks, const std::uint32_t* tissue,
                          float* r, float* g, float* b, cudaStream_t stream);

}  // namespace vn::cuda
