#include "io/input_plan.hpp"

#include <limits.h>
#include <stdlib.h>
#include <sys/stat.h>

#include "io/slide_pipeline.hpp"

namespace vn {
namespace {

std::string real_path(const std::string& p) {
    char buf[PATH_MAX];
    return ::realpath(p.c_str(), buf) ? std::string(buf) : std::string();
}

}  // namespace

void check_output_is_not_input(const std::string& input, const std::string& output) {
    const std::string ri = real_path(input);
    if (!ri.empty() && ri == real_path(output))
        fail(ErrorKind::Output, output + ": output would overwrite its input; choose another output");
}

bool output_is_complete(const InputPlan& plan, std::uint64_t max_pixels) {
    struct stat st {};
    if (::stat(plan.output.c_str(), &st) != 0) return false;
    try {
        if (plan.is_slide) return slide_output_is_complete(plan.output);
        ReadOptions ro;
        ro.max_pixels = max_pixels;
        read_image(plan.output, nullptr, ro);
        return true;
    } catch (const Error&) {
        return false;
    }
}

}  // namespace vn
