#include "io/model_file.hpp"

#include <fstream>
#include <sstream>

#include "core/error.hpp"
#include "io/atomic_file.hpp"

namespace vn {

std::string read_model_text(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) fail(ErrorKind::Input, path + ": cannot open model file");
    std::ostringstream ss;
    ss << in.rdbuf();
    if (in.bad()) fail(ErrorKind::Input, path + ": cannot read model file");
    return ss.str();
}

StainModel load_model(const std::string& path) { return model_from_json(read_model_text(path), path); }

void save_model(const StainModel& m, const std::string& path) {
    const std::string text = to_json(m);
    write_file_atomic(path, text.data(), text.size());
}

}  // namespace vn
