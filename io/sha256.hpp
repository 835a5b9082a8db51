// SHA-256 of files for model provenance: libcrypto's implementation (OpenSSL; it uses the CPU's SHA
// instructions where there are some).
#pragma once

#include <atomic>
#include <cstddef>
#include <memory>
#include <string>
#include <thread>

namespace vn {

class Sha256 {
public:
    Sha256();
    ~Sha256();
    Sha256(const Sha256&) = delete;
    Sha256& operator=(const Sha256&) = delete;
    void update(const void* data, std::size_t size);
    std::string hex_digest();  // finalises; call once

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

// Hex digest of a file's bytes; empty string if it cannot be read (or *stop was set).
std::string sha256_file(const std::string& path, const std::atomic<bool>* stop = nullptr);

// sha256_file on a thread of its own at a lower scheduling priority, so that hashing a large
// slide overlaps the work that reads it instead of adding to it. The destructor cancels an
// unfinished hash and joins.
class BackgroundSha256 {
public:
    explicit BackgroundSha256(std::string path);
    ~BackgroundSha256();
    BackgroundSha256(const BackgroundSha256&) = delete;
    BackgroundSha256& operator=(const BackgroundSha256&) = delete;
    // Waits for the digest ("" if the file could not be read).
    std::string get();

private:
    std::string path_, digest_;
    std::atomic<bool> cancel_{false};
    std::thread thread_;
};

}  // namespace vn
