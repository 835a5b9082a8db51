#include "tests/support/test_support.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <random>
#include <stdexcept>

namespace vn::test {

std::string shared_data(const std::string& relative) { return std::string(VAHANORM_SHARED_DATA) + "/" + relative; }

bool shared_data_available() {
    struct stat st {};
    return ::stat(shared_data("tiles").c_str(), &st) == 0;
}

TempDir::TempDir() {
    const char* base = std::getenv("TMPDIR");
    std::string tmpl = std::string(base && *base ? base : "/tmp") + "/vahanorm-test-XXXXXX";
    if (::mkdtemp(tmpl.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
    path_ = tmpl;
}

TempDir::~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
}

RgbImage random_image(int width, int height, std::uint64_t seed) {
    RgbImage img(width, height);
    std::mt19937_64 rng(seed);
    for (auto& v : img.pixels) v = static_cast<std::uint8_t>(rng() >> 56);
    return img;
}

}  // namespace vn::test
