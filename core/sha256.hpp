// SHA-256 of a file, for model provenance (FIPS 180-4).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace vn {

class Sha256 {
public:
    Sha256();
    void update(const void* data, std::size_t size);
    std::string hex_digest();  // finalises; call once

private:
    void block(const std::uint8_t* p);
    std::uint32_t h_[8];
    std::uint8_t buf_[64];
    std::size_t buf_len_ = 0;
    std::uint64_t total_ = 0;
};

// Hex digest of a file's bytes; empty string if it cannot be read.
std::string sha256_file(const std::string& path);

}  // namespace vn
