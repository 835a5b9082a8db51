// Estimating a stain model from pixels (docs/method.md §2-§4) on the CPU.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/image.hpp"
#include "core/model.hpp"
#include "core/pixel_math.hpp"
#include "core/uninitialized.hpp"

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

// Whether the tissue pixels that fail px::is_artefact are left out of an estimate: only when
// they are at least 1 in kArtefactMinShareInverse (1,000) of all its tissue pixels
// (docs/method.md §2); fewer are the tissue's own extremes (saturated nuclei,
// pale grey edges), not ink. Shared by every backend.
constexpr std::uint64_t kArtefactMinShareInverse = 1000;
inline bool leave_out_artefacts(std::uint64_t artefacts, std::uint64_t all_tissue) {
    return artefacts > 0 && artefacts * kArtefactMinShareInverse >= all_tissue;
}

// The tissue pixels (docs/method.md §1) of a set of images, packed RGB in image order.
// With exclude_artefacts, tissue pixels that fail px::is_artefact are counted, not kept (when
// leave_out_artefacts says so; else every tissue pixel is kept and none counted), and their
// ranks among all tissue pixels (kept and left out, in image order) are recorded, so that the
// sample can be drawn over all tissue pixels as without the filter (sample_od).
struct TissuePixels {
    UninitializedBytes rgb;
    std::uint64_t total_pixels = 0;     // all pixels looked at
    std::uint64_t artefact_pixels = 0;  // tissue pixels left out as ink or artefacts
    std::vector<std::uint64_t> artefact_ranks;  // their ranks among all tissue pixels, ascending
    std::size_t count() const { return rgb.size() / 3; }
    std::uint64_t all_tissue() const { return count() + artefact_pixels; }  // kept and left out
};
TissuePixels gather_tissue(const std::vector<RgbView>& images, ThreadPool* pool, bool exclude_artefacts = true);

// The ranks (0-based, ascending) of a uniform sample of k out of n without replacement
// (Floyd's algorithm over a bitmap; all n when k >= n).
std::vector<std::uint64_t> sample_ranks(std::uint64_t n, std::uint64_t k, std::uint64_t seed);

// The seeded sample of the kept tissue pixels: sample_ranks over all tissue pixels (the draw
// without the filter), less the ranks that fall on pixels left out, mapped to ranks among the
// kept pixels (tissue.rgb). A clean image gets exactly the sample it gets without the filter.
std::vector<std::uint64_t> sample_kept_ranks(const TissuePixels& tissue, std::uint64_t k, std::uint64_t seed);

// Drops the ranks (ascending, over all tissue pixels) that are in artefact_ranks (ascending) and
// maps the others to ranks among the kept pixels, in place.
void drop_artefact_ranks(std::vector<std::uint64_t>& ranks, const std::vector<std::uint64_t>& artefact_ranks);

// Optical densities of the sampled tissue pixels (sample_kept_ranks), structure of arrays.
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
