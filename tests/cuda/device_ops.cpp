#include "tests/cuda/device_ops.hpp"

#include "cuda/device_tables.cuh"
#include "cuda/estimator.cuh"
#include "cuda/lane.cuh"
#include "cuda/transform.cuh"
#include "tests/cuda/downsample.cuh"

namespace vn {

void PinnedDeleter::operator()(std::uint8_t* p) const noexcept {
    if (p) (void)cudaFreeHost(p);
}

PinnedBytes cuda_alloc_pinned(std::size_t bytes) {
    void* p = nullptr;
    VN_CUDA_CHECK(cudaMallocHost(&p, bytes ? bytes : 1));
    return PinnedBytes(static_cast<std::uint8_t*>(p));
}

RgbImage cuda_transform_image(const TransformPlan& plan, RgbView src, int device, std::size_t misalign) {
    RgbImage out(src.width, src.height);
    if (src.pixel_count() == 0) return out;
    misalign &= 15u;
    cuda::DeviceGuard guard(device);
    const cuda::DeviceTables tables;
    cuda::Stream stream;
    const std::size_t row = 3 * static_cast<std::size_t>(src.width);
    const std::size_t bytes = row * static_cast<std::size_t>(src.height);
    cuda::DeviceBuffer<std::uint8_t> d_in(bytes + 16), d_out(bytes + 16);
    VN_CUDA_CHECK(cudaMemcpy2DAsync(d_in.get() + misalign, row, src.data, src.stride, row,
                                    static_cast<std::size_t>(src.height), cudaMemcpyHostToDevice, stream.get()));
    cuda::launch_transform(tables.view(), plan, d_in.get() + misalign, d_out.get() + misalign, src.pixel_count(),
                           stream.get());
    VN_CUDA_CHECK(cudaMemcpyAsync(out.pixels.data(), d_out.get() + misalign, bytes, cudaMemcpyDeviceToHost,
                                  stream.get()));
    stream.synchronize();
    return out;
}

RgbImage cuda_downsample_2x2(RgbView src, int device) {
    RgbImage out((src.width + 1) / 2, (src.height + 1) / 2);
    if (src.pixel_count() == 0) return out;
    cuda::DeviceGuard guard(device);
    cuda::Stream stream;
    const std::size_t row = 3 * static_cast<std::size_t>(src.width);
    cuda::DeviceBuffer<std::uint8_t> d_src(row * static_cast<std::size_t>(src.height));
    cuda::DeviceBuffer<std::uint8_t> d_dst(out.pixels.size());
    VN_CUDA_CHECK(cudaMemcpy2DAsync(d_src.get(), row, src.data, src.stride, row, static_cast<std::size_t>(src.height),
                                    cudaMemcpyHostToDevice, stream.get()));
    cuda::launch_downsample_2x2(d_src.get(), row, src.width, src.height, d_dst.get(), out.stride(), stream.get());
    VN_CUDA_CHECK(cudaMemcpyAsync(out.pixels.data(), d_dst.get(), out.pixels.size(), cudaMemcpyDeviceToHost,
                                  stream.get()));
    stream.synchronize();
    return out;
}

CudaConcentrationStats cuda_concentration_stats(const std::vector<RgbView>& images, const px::Solver<float>& solver,
                                                double q, int device, bool shared_memory_histograms) {
    cuda::DeviceGuard guard(device);
    const cuda::DeviceTables tables;
    cuda::Lane lane(device, 16u << 20);
    std::vector<cuda::BatchImage> batch;
    for (const RgbView& v : images) batch.push_back(cuda::BatchImage{v, 0, 0});
    const std::size_t bytes = cuda::layout_images(batch);
    std::uint8_t* pixels = lane.pixels_in(bytes);
    cuda::upload_images(lane, batch, pixels);
    const std::vector<cuda::PixelChunk> chunks = cuda::make_chunks(batch);
    const cuda::PixelChunk* d_chunks = lane.upload(cuda::Slot::Chunks, chunks);
    const cuda::TissueOnDevice tissue = cuda::compact_tissue(lane, tables.view(), batch, chunks, d_chunks, pixels, 1);
    CudaConcentrationStats out;
    const std::vector<double> p = cuda::concentration_percentiles(lane, tables.view(), tissue, {&solver}, q,
                                                                  shared_memory_histograms, &out.histograms);
    out.percentile[0] = p[0];
    out.percentile[1] = p[1];
    out.tissue_pixels = tissue.count[0];
    return out;
}

}  // namespace vn
