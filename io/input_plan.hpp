// One planned input of `apply`: where it goes, whether it is a slide, and why it cannot be
// processed at all (found before any work). app/apply_plan.cpp makes the plans.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "core/error.hpp"
#include "io/image_io.hpp"

namespace vn {

struct InputPlan {
    std::string input;
    std::string output;
    bool is_slide = false;
    std::optional<Error> error;  // set when the input cannot be processed at all
};

// Throws Error(Output) when `output` is `input` itself (the same file, by its real path).
void check_output_is_not_input(const std::string& input, const std::string& output);

// True when the planned output exists and reads back completely (a tile image decodes under
// `max_pixels`; a slide opens and its last pixel reads).
bool output_is_complete(const InputPlan& plan, std::uint64_t max_pixels = ReadOptions{}.max_pixels);

}  // namespace vn
