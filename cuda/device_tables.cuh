// The exact lookup tables of core/tables.hpp, copied once to a device.
#pragma once

#include <cstdint>

#include "cuda/common.cuh"
#include "cuda/raii.cuh"

namespace vn::cuda {

class DeviceTables {
public:
    // Copies vn::tables() to the current device (synchronously, once per backend and device).
    DeviceTables();
    TablesView view() const { return TablesView{od_.get(), luma_.get(), exp_out_.get()}; }

private:
    DeviceBuffer<float> od_;
    DeviceBuffer<std::uint32_t> luma_;
    DeviceBuffer<std::uint8_t> exp_out_;
};

// Launch-size helpers for the current device.
int multiprocessor_count();
// Grid for a grid-stride kernel over `work` units: enough blocks to fill the device, no more.
unsigned grid_for(std::size_t work, int block, int blocks_per_sm = 8);

}  // namespace vn::cuda
