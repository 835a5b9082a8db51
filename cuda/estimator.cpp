#include "cuda/estimator.cuh"

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <limits>
#include <string>

#include "core/error.hpp"
#include "core/estimate.hpp"
#include "core/thread_pool.hpp"
#include "cuda/histogram.cuh"
#include "cuda/principal_axes.hpp"
#include "cuda/snmf.cuh"
#include "cuda/tissue.cuh"

namespace vn::cuda {
namespace {

constexpr int kPollEvery = 8;  // SNMF steps between checks whether any segment still runs

}  // namespace

std::size_t layout_images(std::vector<BatchImage>& images) {
    std::size_t offset = 0;
    for (BatchImage& im : images) {
        im.device_offset = offset;
        offset += (3 * im.src.pixel_count() + 15) & ~std::size_t{15};
    }
    return offset;
}

std::vector<PixelChunk> make_chunks(const std::vector<BatchImage>& images) {
    std::vector<PixelChunk> chunks;
    for (std::size_t i = 0; i < images.size(); ++i) {
        const std::size_t n = images[i].src.pixel_count();
        for (std::size_t p = 0; p < n; p += kChunkPixels)
            chunks.push_back(PixelChunk{images[i].device_offset + 3 * p,
                                        static_cast<std::uint32_t>(std::min<std::size_t>(kChunkPixels, n - p)),
                                        static_cast<std::uint32_t>(i)});
    }
    return chunks;
}

void upload_images(Lane& lane, const std::vector<BatchImage>& images, std::uint8_t* device_pixels) {
    std::vector<HostRowsIn> parts;
    for (const BatchImage& im : images)
        if (im.src.pixel_count() > 0)
            parts.push_back(HostRowsIn{im.src.data, im.src.stride, 3 * static_cast<std::size_t>(im.src.width),
                                       im.src.height, im.device_offset});
    lane.upload_rows(parts, device_pixels);
}

TissueOnDevice compact_tissue(Lane& lane, const TablesView& tables, const std::vector<BatchImage>& images,
                              const std::vector<PixelChunk>& chunks, const PixelChunk* device_chunks,
                              const std::uint8_t* device_pixels, std::size_t segment_count,
                              bool exclude_artefacts) {
    TissueOnDevice t;
    t.begin.assign(segment_count, 0);
    t.count.assign(segment_count, 0);
    t.artefacts.assign(segment_count, 0);
    t.total.assign(segment_count, 0);
    for (const BatchImage& im : images) {
        if (im.segment >= segment_count) fail(ErrorKind::Internal, "compact_tissue: segment out of range");
        t.total[im.segment] += im.src.pixel_count();
    }
    for (std::size_t i = 1; i < images.size(); ++i)
        if (images[i].segment < images[i - 1].segment)
            fail(ErrorKind::Internal, "compact_tissue: images must be ordered by segment");

    std::uint32_t* counts = lane.scratch<std::uint32_t>(Slot::Counts, 2 * chunks.size());
    launch_count_tissue(tables, exclude_artefacts, device_chunks, chunks.size(), device_pixels, counts, lane.stream());
    const std::vector<std::uint32_t> h_counts = lane.download(counts, 2 * chunks.size());

    // Per segment: leave its artefacts out, or keep every tissue pixel (vn::leave_out_artefacts,
    // as core/estimate.cpp gather_tissue decides)?
    const std::size_t n = chunks.size();
    std::vector<std::uint64_t> kept(segment_count, 0), left_out(segment_count, 0);
    for (std::size_t c = 0; c < n; ++c) {
        kept[images[chunks[c].image].segment] += h_counts[c];
        left_out[images[chunks[c].image].segment] += h_counts[n + c];
    }
    std::vector<std::uint8_t> leave_out(segment_count, 0);
    for (std::size_t s = 0; s < segment_count; ++s)
        leave_out[s] = leave_out_artefacts(left_out[s], kept[s] + left_out[s]) ? 1 : 0;

    // Exclusive prefix sums in chunk order = image order = segment order: of the kept pixels,
    // of the pixels left out, and of both within the segment (the rank of a chunk's first
    // tissue pixel among its segment's tissue pixels); then the segment's decision.
    std::vector<std::uint64_t> offsets(4 * n);
    std::uint64_t running = 0, running_artefacts = 0, segment_rank = 0;
    for (std::size_t c = 0; c < n; ++c) {
        const std::uint32_t s = images[chunks[c].image].segment;
        if (c > 0 && s != images[chunks[c - 1].image].segment) segment_rank = 0;
        const std::uint64_t artefacts = leave_out[s] ? h_counts[n + c] : 0;
        const std::uint64_t tissue = h_counts[c] + h_counts[n + c] - artefacts;
        offsets[c] = running;
        offsets[n + c] = running_artefacts;
        offsets[2 * n + c] = segment_rank;
        offsets[3 * n + c] = leave_out[s];
        running += tissue;
        running_artefacts += artefacts;
        segment_rank += tissue + artefacts;
        t.count[s] += tissue;
        t.artefacts[s] += artefacts;
    }
    t.artefact_begin.assign(segment_count, 0);
    std::uint64_t begin = 0, artefact_begin = 0;
    for (std::size_t s = 0; s < segment_count; ++s) {
        t.begin[s] = begin;
        t.artefact_begin[s] = artefact_begin;
        begin += t.count[s];
        artefact_begin += t.artefacts[s];
    }
    // One buffer: the kept pixels, then the ranks of those left out.
    std::uint32_t* tissue = lane.scratch<std::uint32_t>(Slot::Tissue, std::max<std::uint64_t>(running + running_artefacts, 1));
    const std::uint64_t* d_offsets = lane.upload(Slot::Offsets, offsets);
    launch_compact_tissue(tables, device_chunks, n, device_pixels, d_offsets, tissue, tissue + running, lane.stream());
    t.pixels = tissue;
    t.artefact_ranks = tissue + running;
    return t;
}

std::vector<double> concentration_percentiles(Lane& lane, const TablesView& tables, const TissueOnDevice& tissue,
                                              const std::vector<const px::Solver<float>*>& solvers, double q,
                                              bool allow_shared, std::vector<std::uint32_t>* hist_out) {
    const std::size_t segments = solvers.size();
    std::vector<TissueRun> runs;
    std::vector<px::Solver<float>> solver_values(segments, px::Solver<float>{});
    for (std::size_t s = 0; s < segments; ++s) {
        if (!solvers[s]) continue;
        solver_values[s] = *solvers[s];
        for (std::uint64_t p = 0; p < tissue.count[s]; p += kHistRunPixels)
            runs.push_back(TissueRun{tissue.begin[s] + p,
                                     static_cast<std::uint32_t>(std::min<std::uint64_t>(kHistRunPixels, tissue.count[s] - p)),
                                     static_cast<std::uint32_t>(s)});
    }
    const std::size_t hist_words = segments * 2 * px::kHistBins;
    std::uint32_t* hist = lane.scratch<std::uint32_t>(Slot::Histograms, hist_words);
    if (hist_words) VN_CUDA_CHECK(cudaMemsetAsync(hist, 0, hist_words * sizeof(std::uint32_t), lane.stream()));
    const TissueRun* d_runs = lane.upload(Slot::Runs, runs);
    const px::Solver<float>* d_solvers = lane.upload(Slot::Solvers, solver_values);
    launch_concentration_histograms(tables, d_runs, runs.size(), tissue.pixels, d_solvers, hist, allow_shared,
                                    lane.stream());
    double* maxima = lane.scratch<double>(Slot::Maxima, 2 * segments);
    launch_percentiles(hist, segments, q, maxima, lane.stream());
    if (hist_out) *hist_out = lane.download(hist, hist_words);
    return lane.download(maxima, 2 * segments);
}

std::vector<SegmentEstimate> estimate_segments(Lane& lane, const TablesView& tables,
                                               const std::vector<BatchImage>& images,
                                               const std::vector<PixelChunk>& chunks, const PixelChunk* device_chunks,
                                               const std::uint8_t* device_pixels, std::size_t segment_count,
                                               const EstimateParams& params, ThreadPool* pool, bool allow_shared) {
    std::vector<SegmentEstimate> out(segment_count);
    const TissueOnDevice tissue =
        compact_tissue(lane, tables, images, chunks, device_chunks, device_pixels, segment_count,
                       params.exclude_artefacts);

    // Enough tissue? (core/estimate.cpp estimate_model, same message.)
    std::vector<std::size_t> todo;
    for (std::size_t s = 0; s < segment_count; ++s) {
        out[s].reason = tissue_shortfall(tissue.count[s], tissue.total[s], params, tissue.artefacts[s]);
        if (!out[s].reason.empty()) continue;
        const std::uint64_t all_tissue = tissue.count[s] + tissue.artefacts[s];
        if (all_tissue > std::numeric_limits<std::uint32_t>::max())
            fail(ErrorKind::Device, "the CUDA backend estimates from at most 2^32 - 1 tissue pixels at a time (got " +
                                        std::to_string(all_tissue) + "); use the CPU backend for this input");
        todo.push_back(s);
    }
    if (todo.empty()) return out;

    // The seeded sample of each segment: the ranks the CPU draws (vn::sample_kept_ranks), drawn
    // over all tissue pixels on the host while the device compacts, then less the ranks of the
    // pixels left out (copied back only when there are any).
    std::vector<std::vector<std::uint64_t>> ranks(segment_count);
    auto draw = [&](std::size_t i) {
        const std::size_t s = todo[i];
        ranks[s] = sample_ranks(tissue.count[s] + tissue.artefacts[s], params.sample_size, params.seed);
    };
    if (pool)
        pool->parallel_for(todo.size(), draw);
    else
        for (std::size_t i = 0; i < todo.size(); ++i) draw(i);
    std::uint64_t artefacts_total = 0;
    for (std::size_t s = 0; s < segment_count; ++s) artefacts_total += tissue.artefacts[s];
    if (artefacts_total > 0) {
        const std::vector<std::uint32_t> left_out = lane.download(tissue.artefact_ranks, artefacts_total);
        for (std::size_t s : todo) {
            const auto from = left_out.begin() + static_cast<std::ptrdiff_t>(tissue.artefact_begin[s]);
            drop_artefact_ranks(ranks[s], std::vector<std::uint64_t>(from, from + static_cast<std::ptrdiff_t>(tissue.artefacts[s])));
        }
    }

    std::vector<SampleSegment> segs(segment_count, SampleSegment{0, 0, 0, 0, 0});
    std::vector<std::uint32_t> flat_ranks, item_segment;
    for (std::size_t s = 0; s < segment_count; ++s) {
        SampleSegment& g = segs[s];
        g.tissue_begin = tissue.begin[s];
        if (flat_ranks.size() + ranks[s].size() > std::numeric_limits<std::uint32_t>::max())
            fail(ErrorKind::Device, "SNMF sample too large for one device batch");
        g.sample_begin = static_cast<std::uint32_t>(flat_ranks.size());
        g.sample_count = static_cast<std::uint32_t>(ranks[s].size());
        g.item_begin = static_cast<std::uint32_t>(item_segment.size());
        g.item_count = (g.sample_count + sm::kBlock - 1) / sm::kBlock;
        for (std::uint64_t r : ranks[s]) flat_ranks.push_back(static_cast<std::uint32_t>(r));
        item_segment.insert(item_segment.end(), g.item_count, static_cast<std::uint32_t>(s));
    }
    const std::size_t items = item_segment.size();
    cudaStream_t st = lane.stream();
    const SampleSegment* d_segs = lane.upload(Slot::Segments, segs);
    const std::uint32_t* d_item_segment = lane.upload(Slot::ItemSegment, item_segment);
    const std::uint32_t* d_ranks = lane.upload(Slot::Ranks, flat_ranks);
    const std::size_t sample_slots = std::max<std::size_t>(1, items * sm::kBlock);
    float* r = lane.scratch<float>(Slot::SampleR, sample_slots);
    float* g = lane.scratch<float>(Slot::SampleG, sample_slots);
    float* b = lane.scratch<float>(Slot::SampleB, sample_slots);
    launch_gather_sample(tables, d_segs, d_item_segment, items, d_ranks, tissue.pixels, r, g, b, st);

    // The start: moments, principal axes, extreme angles.
    const int batch = static_cast<int>(segment_count);
    double* cov = lane.scratch<double>(Slot::Cov, 9 * segment_count);
    double* evals = lane.scratch<double>(Slot::Eigenvalues, 3 * segment_count);
    int* info = lane.scratch<int>(Slot::EigenInfo, segment_count);
    launch_sample_moments(d_segs, segment_count, items, r, g, b, cov, st);
    const std::size_t lwork = principal_axes_workspace(lane.solver(), lane.syevj_params(), cov, evals, batch);
    double* work = lane.scratch<double>(Slot::EigenWork, std::max<std::size_t>(lwork, 1));
    launch_principal_axes(lane.solver(), lane.syevj_params(), cov, evals, work, lwork, info, batch, st);
    sm::State* states = lane.scratch<sm::State>(Slot::States, segment_count);
    launch_snmf_start(d_segs, segment_count, items, r, g, b, cov, states, st);

    // Alternating minimisation, all segments in step.
    double* partials = lane.scratch<double>(Slot::Partials, std::max<std::size_t>(1, items * sm::kPartials));
    int* active = lane.scratch<int>(Slot::Active, 1);
    const int steps = sm::max_c_steps(params.max_iterations);
    for (int step = 0; step < steps; ++step) {
        launch_c_step(d_segs, d_item_segment, items, r, g, b, states, params.lambda, partials, st);
        launch_snmf_update(d_segs, segment_count, partials, states, params.lambda, params.max_iterations,
                           params.tolerance, st);
        if (step % kPollEvery == kPollEvery - 1 && step + 1 < steps) {
            launch_count_active(states, segment_count, active, st);
            if (lane.download(active, 1)[0] == 0) break;
        }
    }
    const std::vector<sm::State> fits = lane.download(states, segment_count);
    // The eigensolver's verdict, per segment (the stream is idle now: no extra wait). A segment
    // whose Jacobi iteration did not converge (info > 0), whose input was refused (info < 0) or
    // whose eigenvalues are not finite would have started from a meaningless plane: an error,
    // never a silent start (the CPU's eigen_sym3 has no such failure, so this is a device fault).
    check_principal_axes(lane.download(info, segment_count), lane.download(evals, 3 * segment_count), todo);

    // Angle check and scaling statistics (core/estimate.cpp estimate_model, same messages).
    std::vector<px::Solver<float>> solver_store(segment_count);
    std::vector<const px::Solver<float>*> solvers(segment_count, nullptr);
    for (std::size_t s : todo) {
        StainModel& m = out[s].model;
        for (int k = 0; k < 2; ++k)
            for (int c = 0; c < 3; ++c) m.stain[static_cast<std::size_t>(k)][static_cast<std::size_t>(c)] = fits[s].w[k][c];
        m.params = params;
        m.tissue_pixels = tissue.count[s];
        m.artefact_pixels = tissue.artefacts[s];
        m.sampled_pixels = segs[s].sample_count;
        m.objective = fits[s].f;
        m.iterations = fits[s].iterations;
        out[s].reason = parallel_stains(m, params);
        if (!out[s].reason.empty()) continue;
        float wf[2][3];
        for (int k = 0; k < 2; ++k)
            for (int c = 0; c < 3; ++c)
                wf[k][c] = static_cast<float>(m.stain[static_cast<std::size_t>(k)][static_cast<std::size_t>(c)]);
        solver_store[s] = px::make_solver<float>(wf, static_cast<float>(params.lambda_conc));
        solvers[s] = &solver_store[s];
    }
    const std::vector<double> maxima =
        concentration_percentiles(lane, tables, tissue, solvers, params.percentile, allow_shared);
    for (std::size_t s : todo) {
        if (!solvers[s]) continue;
        StainModel& m = out[s].model;
        m.max_conc[0] = maxima[2 * s];
        m.max_conc[1] = maxima[2 * s + 1];
        out[s].reason = absent_stain(m);
        out[s].ok = out[s].reason.empty();
    }
    return out;
}

}  // namespace vn::cuda
