// Estimating a stain model from pixels (docs/method.md) on the CPU.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/image.hpp"
#include "core/model.hpp"
#include "core/pixel_math.hpp"

namespace vn {

class ThreadPool;

// Percentile q (0..100, numpy's linear interpolation) of the values counted in a
// concentration histogram (px::hist_bin). Returns 0 for an empty histogram.
double percentile_from_histogram(const std::uint32_t* hist, int bins, double q);

// When an estimate is not an estimate: the reason, or "" when it is one. Shared by every
// backend, so that they refuse the same inputs with the same words.
// `artefacts`: tissue pixels left out as ink or artefacts (named in the message when any).
std::string tissue_shortfall(std::uint64_t tissue, std::uint64_t total, const EstimateParams& params,
                             std::uint64_t artefacts = 0);
std::string parallel_stains(const StainModel& m, const EstimateParams& params);
std::string absent_stain(const StainModel& m);

// The tissue pixels (docs/method.md, "Per pixel") of a set of images, packed RGB in image order.
// With exclude_artefacts, tissue pixels that fail px::is_artefact are counted, not kept.
struct TissuePixels {
    std::vector<std::uint8_t> rgb;
    std::uint64_t total_pixels = 0;     // all pixels looked at
    std::uint64_t artefact_pixels = 0;  // tissue pixels left out as ink or artefacts
    std::size_t count() const { return rgb.size() / 3; }
};
TissuePixels gather_tissue(const std::vector<RgbView>& images, ThreadPool* pool, bool exclude_artefacts = true);

// The ranks (0-based, ascending) of a uniform sample of k out of n without replacement
// (Floyd's algorithm over a bitmap; all n when k >= n).
std::vector<std::uint64_t> sample_ranks(std::uint64_t n, std::uint64_t k, std::uint64_t seed);

// Optical densities of the sampled tissue pixels, structure of arrays.
struct OdSample {
    std::vector<float> r, g, b;
};
OdSample sample_od(const TissuePixels& tissue, std::size_t sample_size, std::uint64_t seed);

// Histograms (H then E, px::kHistBins each) of the concentrations of the given pixels.
std::vector<std::uint32_t> concentration_histograms(const TissuePixels& tissue, const px::Solver<float>& solver,
                                                    ThreadPool* pool);

// The whole estimate: sample, SNMF, percentiles. Throws Error(Data) when there are fewer than
// params.min_tissue_pixels tissue pixels, the stains come out nearly parallel, or a stain is
// absent (zero percentile).
StainModel estimate_model(const std::vector<RgbView>& images, const EstimateParams& params, ThreadPool* pool);

}  // namespace vn
