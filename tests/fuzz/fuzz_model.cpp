// libFuzzer target: vn::model_from_json (the model-file parser).
#include <cstddef>
#include <cstdint>

#include "tests/fuzz/fuzz_entry.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    return vn::fuzz::run_one(vn::fuzz::Target::Model, data, size);
}
