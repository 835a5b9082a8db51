#include "core/estimate.hpp"

#include <algorithm>
#include <cstddef>
#include <cstdio>
#include <cstring>
#include <cmath>
#include <string>

#include "core/error.hpp"
#include "core/pixel_vectors.hpp"
#include "core/snmf.hpp"
#include "core/snmf_math.hpp"
#include "core/splitmix64.hpp"
#include "core/tables.hpp"
#include "core/thread_pool.hpp"
#include "core/tissue_scan.hpp"
#include "core/vector_clones.hpp"

namespace vn {
namespace {

constexpr int kBandRows = 16;  // work unit: fixed, so results never depend on the thread count

struct Band {
    std::size_t image;
    int y0, y1;
    std::size_t bytes;  // of its pixels, packed
};

std::vector<Band> make_bands(const std::vector<RgbView>& images) {
    std::vector<Band> bands;
    for (std::size_t i = 0; i < images.size(); ++i)
        for (int y = 0; y < images[i].height; y += kBandRows) {
            const int y1 = std::min(images[i].height, y + kBandRows);
            bands.push_back(Band{i, y, y1, 3 * static_cast<std::size_t>(images[i].width) * static_cast<std::size_t>(y1 - y)});
        }
    return bands;
}

}  // namespace

double percentile_from_histogram(const std::uint32_t* hist, int bins, double q) {
    return sm::percentile_from_histogram(hist, bins, q);
}

std::string tissue_shortfall(std::uint64_t tissue, std::uint64_t total, const EstimateParams& params,
                             std::uint64_t artefacts) {
    const double fraction = total ? static_cast<double>(tissue) / static_cast<double>(total) : 0.0;
    if (tissue >= params.min_tissue_pixels && !(fraction < params.min_tissue_fraction)) return "";
    char pct[32];
    std::snprintf(pct, sizeof pct, "%.1f%%", 100.0 * fraction);
    return "only " + std::to_string(tissue) + " tissue pixels (" + pct + " of the image; need at least " +
           std::to_string(params.min_tissue_pixels) + " and " +
           std::to_string(static_cast<int>(100 * params.min_tissue_fraction)) + "%): blank or mostly glass?" +
           (artefacts > 0 ? " (" + std::to_string(artefacts) + " ink or artefact pixels left out; --no-exclude-ink keeps them)"
                          : std::string());
}

std::string parallel_stains(const StainModel& m, const EstimateParams& params) {
    const double angle = stain_angle_deg(m);
    if (angle >= params.min_stain_angle_deg) return "";
    return "stain vectors are nearly parallel (" + std::to_string(angle) + " degrees): not a two-stain H&E image?";
}

std::string absent_stain(const StainModel& m) {
    if (m.max_conc[0] > 0 && m.max_conc[1] > 0) return "";
    return std::string("the ") + (m.max_conc[0] > 0 ? "eosin" : "hematoxylin") +
           " stain is absent from the tissue: not an H&E image?";
}

std::vector<std::uint64_t> sample_ranks(std::uint64_t n, std::uint64_t k, std::uint64_t seed) {
    std::vector<std::uint64_t> out;
    if (k >= n) {
        out.resize(static_cast<std::size_t>(n));
        for (std::uint64_t i = 0; i < n; ++i) out[static_cast<std::size_t>(i)] = i;
        return out;
    }
    // Floyd's algorithm: k draws, every k-subset equally likely; a bitmap keeps the set.
    SplitMix64 rng{seed};
    std::vector<std::uint64_t> bits(static_cast<std::size_t>((n + 63) / 64), 0);
    auto test_and_set = [&](std::uint64_t i) {
        std::uint64_t& word = bits[static_cast<std::size_t>(i >> 6)];
        const std::uint64_t mask = 1ull << (i & 63);
        const bool was = (word & mask) != 0;
        word |= mask;
        return was;
    };
    for (std::uint64_t j = n - k; j < n; ++j) {
        const std::uint64_t t = rng.below(j + 1);
        if (test_and_set(t)) test_and_set(j);
    }
    out.reserve(static_cast<std::size_t>(k));
    for (std::size_t w = 0; w < bits.size(); ++w)
        for (std::uint64_t word = bits[w]; word != 0; word &= word - 1)
            out.push_back(static_cast<std::uint64_t>(w) * 64 + static_cast<std::uint64_t>(__builtin_ctzll(word)));
    return out;
}

TissuePixels gather_tissue(const std::vector<RgbView>& images, ThreadPool* pool, bool exclude_artefacts) {
    const std::vector<Band> bands = make_bands(images);
    // Room for every pixel of every band (not zero-filled: each band's scan writes what is read).
    std::size_t room = 0;
    for (const Band& b : bands) room += b.bytes;
    TissuePixels out;
    out.rgb.resize(room);
    // Band bi packs its tissue pixels at start[bi]. On the pool each band starts where it would
    // with every pixel kept, and the pieces are joined below; on one thread each band starts
    // where the one before ended, so the pixels are in place already. A scan writes only within
    // the room of the band's own pixels from its start (core/tissue_scan.hpp).
    std::vector<std::size_t> start(bands.size(), 0), used(bands.size(), 0);
    // Per band: the ranks, among the band's tissue pixels, of those left out, and their colors.
    std::vector<LeftOut> left_out(bands.size());
    const auto scan = [&](std::size_t bi) {
        const Band& band = bands[bi];
        used[bi] = scan_tissue_band(images[band.image], band.y0, band.y1, exclude_artefacts, out.rgb.data() + start[bi],
                                    left_out[bi]);
    };
    if (pool) {
        for (std::size_t i = 1; i < bands.size(); ++i) start[i] = start[i - 1] + bands[i - 1].bytes;
        pool->parallel_for(bands.size(), scan);
    } else {
        for (std::size_t i = 0; i < bands.size(); ++i) {
            if (i > 0) start[i] = start[i - 1] + used[i - 1];
            scan(i);
        }
    }
    std::size_t end = 0;
    std::vector<std::uint8_t> artefact_rgb;
    for (std::size_t i = 0; i < bands.size(); ++i) {
        if (end != start[i]) std::memmove(out.rgb.data() + end, out.rgb.data() + start[i], used[i]);
        // The band's first tissue pixel has rank end / 3 + (pixels left out so far).
        const std::uint64_t base = end / 3 + out.artefact_ranks.size();
        for (std::uint64_t r : left_out[i].ranks) out.artefact_ranks.push_back(base + r);
        artefact_rgb.insert(artefact_rgb.end(), left_out[i].rgb.begin(), left_out[i].rgb.end());
        end += used[i];
    }
    out.rgb.resize(end);
    for (const RgbView& img : images) out.total_pixels += img.pixel_count();
    out.artefact_pixels = out.artefact_ranks.size();
    if (out.artefact_pixels == 0 || leave_out_artefacts(out.artefact_pixels, out.all_tissue())) return out;
    // Too few to be ink: every tissue pixel is kept, as without the filter. The pixels left out
    // go back in place, from the back (the buffer has room for every pixel: no reallocation).
    std::size_t from = out.rgb.size();  // the kept bytes [0, from) are not yet in place
    out.rgb.resize(3 * static_cast<std::size_t>(out.all_tissue()));
    std::uint8_t* const data = out.rgb.data();
    std::size_t to = out.rgb.size();  // the bytes from `to` on are
    for (std::size_t j = out.artefact_ranks.size(); j-- > 0;) {
        const std::size_t before = 3 * static_cast<std::size_t>(out.artefact_ranks[j] - j);  // kept bytes before it
        to -= from - before;
        std::memmove(data + to, data + before, from - before);
        from = before;
        to -= 3;
        std::memcpy(data + to, artefact_rgb.data() + 3 * j, 3);
    }
    out.artefact_ranks.clear();
    out.artefact_pixels = 0;
    return out;
}

void drop_artefact_ranks(std::vector<std::uint64_t>& ranks, const std::vector<std::uint64_t>& artefact_ranks) {
    // Both ascending: one merge. A kept rank r has (artefact ranks below r) fewer kept pixels before it.
    std::size_t j = 0, kept = 0;
    for (std::uint64_t r : ranks) {
        while (j < artefact_ranks.size() && artefact_ranks[j] < r) ++j;
        if (j < artefact_ranks.size() && artefact_ranks[j] == r) continue;
        ranks[kept++] = r - j;
    }
    ranks.resize(kept);
}

std::vector<std::uint64_t> sample_kept_ranks(const TissuePixels& tissue, std::uint64_t k, std::uint64_t seed) {
    std::vector<std::uint64_t> ranks = sample_ranks(tissue.all_tissue(), k, seed);
    drop_artefact_ranks(ranks, tissue.artefact_ranks);
    return ranks;
}

OdSample sample_od(const TissuePixels& tissue, std::size_t sample_size, std::uint64_t seed) {
    const Tables& t = tables();
    const std::vector<std::uint64_t> ranks = sample_kept_ranks(tissue, sample_size, seed);
    OdSample s;
    s.r.resize(ranks.size());
    s.g.resize(ranks.size());
    s.b.resize(ranks.size());
    for (std::size_t k = 0; k < ranks.size(); ++k) {
        const std::uint8_t* p = tissue.rgb.data() + 3 * static_cast<std::size_t>(ranks[k]);
        s.r[k] = t.od[p[0]];
        s.g[k] = t.od[p[1]];
        s.b[k] = t.od[p[2]];
    }
    return s;
}

// Adds the concentrations of tissue pixels [i0, i1) to the histograms hh (H) and he (E), in
// blocks of steps (lookups, solve, bins, counts) so that the solve vectorises. Two versions:
// the AVX2 one looks the optical densities up eight pixels at a time (core/pixel_vectors.hpp).
namespace {

constexpr std::size_t kCountBlock = 64;

// The steps after the lookups, inlined into each version (and vectorised for its target).
__attribute__((always_inline)) inline void count_block(const px::Solver<float>& solver, std::size_t m, const float* o0,
                                                       const float* o1, const float* o2, std::uint32_t* hh,
                                                       std::uint32_t* he) {
    int bh[kCountBlock], be[kCountBlock];
    for (std::size_t i = 0; i < m; ++i) {
        const px::Conc<float> c = px::solve(solver, o0[i], o1[i], o2[i]);
        bh[i] = px::hist_bin(c.h);
        be[i] = px::hist_bin(c.e);
    }
#pragma GCC unroll 4
    for (std::size_t i = 0; i < m; ++i) {
        ++hh[bh[i]];
        ++he[be[i]];
    }
}

__attribute__((always_inline)) inline void od_lookup(const Tables& t, const std::uint8_t* p, std::size_t i0, std::size_t m,
                                                     float* o0, float* o1, float* o2) {
#pragma GCC unroll 4
    for (std::size_t i = i0; i < m; ++i) {
        o0[i] = t.od[p[3 * i]];
        o1[i] = t.od[p[3 * i + 1]];
        o2[i] = t.od[p[3 * i + 2]];
    }
}

}  // namespace

// The versions have external linkage: Clang takes an internal one for an unused function.
namespace versions {

#if VN_HAVE_VERSIONS
VN_VERSION_AVX2
void count_concentrations(const std::uint8_t* rgb, std::size_t i0, std::size_t i1, const px::Solver<float>& solver,
                          std::uint32_t* hh, std::uint32_t* he) {
    const Tables& t = tables();
    float o0[kCountBlock], o1[kCountBlock], o2[kCountBlock];
    for (std::size_t b0 = i0; b0 < i1; b0 += kCountBlock) {
        const std::size_t m = std::min(kCountBlock, i1 - b0);
        const std::uint8_t* p = rgb + 3 * b0;
        std::size_t i = 0;
        for (; i + 8 <= m; i += 8) avx2::od8(t.od, p + 3 * i, o0 + i, o1 + i, o2 + i);
        od_lookup(t, p, i, m, o0, o1, o2);
        count_block(solver, m, o0, o1, o2, hh, he);
    }
}

VN_VERSION_DEFAULT
#endif
void count_concentrations(const std::uint8_t* rgb, std::size_t i0, std::size_t i1, const px::Solver<float>& solver,
                          std::uint32_t* hh, std::uint32_t* he) {
    const Tables& t = tables();
    float o0[kCountBlock], o1[kCountBlock], o2[kCountBlock];
    for (std::size_t b0 = i0; b0 < i1; b0 += kCountBlock) {
        const std::size_t m = std::min(kCountBlock, i1 - b0);
        od_lookup(t, rgb + 3 * b0, 0, m, o0, o1, o2);
        count_block(solver, m, o0, o1, o2, hh, he);
    }
}

}  // namespace versions

std::vector<std::uint32_t> concentration_histograms(const TissuePixels& tissue, const px::Solver<float>& solver,
                                                    ThreadPool* pool) {
    constexpr std::size_t kChunk = 1 << 16;
    const std::size_t n = tissue.count();
    const std::size_t chunks = (n + kChunk - 1) / kChunk;
    std::vector<std::uint32_t> out(2 * px::kHistBins, 0);
    if (chunks == 0) return out;
    // Integer counts: neither the merge order nor counting in one pass can change the result.
    if (!pool) {
        versions::count_concentrations(tissue.rgb.data(), 0, n, solver, out.data(), out.data() + px::kHistBins);
        return out;
    }
    std::vector<std::vector<std::uint32_t>> partial(chunks);
    pool->parallel_for(chunks, [&](std::size_t ci) {
        partial[ci].assign(2 * px::kHistBins, 0);
        std::uint32_t* hh = partial[ci].data();
        versions::count_concentrations(tissue.rgb.data(), ci * kChunk, std::min(n, (ci + 1) * kChunk), solver, hh,
                                       hh + px::kHistBins);
    });
    for (const auto& h : partial)
        for (std::size_t i = 0; i < out.size(); ++i) out[i] += h[i];
    return out;
}

StainModel estimate_model(const std::vector<RgbView>& images, const EstimateParams& params, ThreadPool* pool) {
    const TissuePixels tissue = gather_tissue(images, pool, params.exclude_artefacts);
    if (const std::string why = tissue_shortfall(tissue.count(), tissue.total_pixels, params, tissue.artefact_pixels);
        !why.empty())
        fail(ErrorKind::Data, why);
    const OdSample sample = sample_od(tissue, params.sample_size, params.seed);
    const OdSamples x{sample.r.data(), sample.g.data(), sample.b.data(), sample.r.size()};
    const SnmfResult fit = snmf(x, params.lambda, params.max_iterations, params.tolerance);

    StainModel m;
    m.stain = fit.w;
    m.params = params;
    m.tissue_pixels = tissue.count();
    m.artefact_pixels = tissue.artefact_pixels;
    m.sampled_pixels = sample.r.size();
    m.objective = fit.objective;
    m.iterations = fit.iterations;
    if (const std::string why = parallel_stains(m, params); !why.empty()) fail(ErrorKind::Data, why);

    float wf[2][3];
    for (int k = 0; k < 2; ++k)
        for (int c = 0; c < 3; ++c) wf[k][c] = static_cast<float>(m.stain[k][c]);
    const px::Solver<float> solver = px::make_solver<float>(wf, static_cast<float>(params.lambda_conc));
    const std::vector<std::uint32_t> hist = concentration_histograms(tissue, solver, pool);
    m.max_conc[0] = percentile_from_histogram(hist.data(), px::kHistBins, params.percentile);
    m.max_conc[1] = percentile_from_histogram(hist.data() + px::kHistBins, px::kHistBins, params.percentile);
    if (const std::string why = absent_stain(m); !why.empty()) fail(ErrorKind::Data, why);
    return m;
}

}  // namespace vn
