// Model files: the JSON text of core/model.hpp read from and written to the file system.
#pragma once

#include <string>

#include "core/model.hpp"

namespace vn {

// The file's text; Error(Input) when it cannot be read.
std::string read_model_text(const std::string& path);
// Error(Input) when the file cannot be read, Error(Data) when its text is not a valid model.
StainModel load_model(const std::string& path);
// Written atomically (io/atomic_file.hpp); Error(Output).
void save_model(const StainModel& m, const std::string& path);

}  // namespace vn
