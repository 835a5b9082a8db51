// Helpers shared by the tests.
#pragma once

#include <cstdint>
#include <string>

#include "core/image.hpp"

namespace vn::test {

// Path of a file under ../shared/data (the real H&E tiles and slides).
std::string shared_data(const std::string& relative);
bool shared_data_available();

// A fresh empty directory under the system temp dir, removed by the destructor.
class TempDir {
public:
    TempDir();
    ~TempDir();
    TempDir(const TempDir&) = delete;
    TempDir& operator=(const TempDir&) = delete;
    const std::string& path() const { return path_; }
    std::string file(const std::string& name) const { return path_ + "/" + name; }

private:
    std::string path_;
};

// Seeded random RGB pixels (deterministic).
RgbImage random_image(int width, int height, std::uint64_t seed);

}  // namespace vn::test
