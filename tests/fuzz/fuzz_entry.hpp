// Entry points shared by the libFuzzer targets (fuzz_*.cpp) and the regression replayer
// (replay_main.cpp), so that a regression input replays through exactly the code it was
// found with. Each returns 0 for an input that was handled (parsed, or refused with
// vn::Error of the expected kind) and -1 for one not worth keeping in a corpus (e.g. a PNG
// target given something without the PNG signature). Anything else (a wrong error kind,
// another exception, an inconsistent result) is a bug: the entry point prints what and
// calls std::abort(), which libFuzzer and the replayer both report.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace vn::fuzz {

// The pixel limit given to the readers: small enough that the allocation limits are
// exercised (a 16 Mi-pixel image is 48 MiB of RGB), large enough for any sensible tile.
constexpr std::uint64_t kMaxPixels = 1ull << 24;

enum class Target { Model, Png, Jpeg, Tiff };

// "model", "png", "jpeg", "tiff"; false for anything else.
bool target_from_name(const std::string& name, Target* target);
const char* target_name(Target target);

// *accepted (when given) tells whether the input was accepted (a model or image came back)
// rather than refused with vn::Error.
int run_one(Target target, const std::uint8_t* data, std::size_t size, bool* accepted = nullptr);

}  // namespace vn::fuzz
