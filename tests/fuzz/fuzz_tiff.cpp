// libFuzzer target: vn::read_image on TIFF input (written to an in-memory file).
#include <cstddef>
#include <cstdint>

#include "tests/fuzz/fuzz_entry.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    return vn::fuzz::run_one(vn::fuzz::Target::Tiff, data, size);
}
