#include "io/sha256.hpp"

#include <fcntl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <openssl/evp.h>

#include <cerrno>
#include <vector>

#include "core/error.hpp"

namespace vn {
namespace {

constexpr std::size_t kReadChunk = std::size_t{1} << 20;  // bytes per read() of a hashed file
constexpr int kBackgroundNice = 10;  // the hashing thread's nice value: below the pipeline's threads

}  // namespace

struct Sha256::Impl {
    EVP_MD_CTX* ctx = nullptr;
    ~Impl() {
        if (ctx) EVP_MD_CTX_free(ctx);
    }
};

Sha256::Sha256() : impl_(std::make_unique<Impl>()) {
    impl_->ctx = EVP_MD_CTX_new();
    if (!impl_->ctx || EVP_DigestInit_ex(impl_->ctx, EVP_sha256(), nullptr) != 1)
        fail(ErrorKind::Internal, "libcrypto: cannot start a SHA-256 digest");
}

Sha256::~Sha256() = default;

void Sha256::update(const void* data, std::size_t size) {
    if (size > 0 && EVP_DigestUpdate(impl_->ctx, data, size) != 1) fail(ErrorKind::Internal, "libcrypto: SHA-256 update failed");
}

std::string Sha256::hex_digest() {
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    if (EVP_DigestFinal_ex(impl_->ctx, md, &n) != 1) fail(ErrorKind::Internal, "libcrypto: SHA-256 final failed");
    static constexpr char kHex[] = "0123456789abcdef";
    std::string s;
    s.reserve(2u * n);
    for (unsigned int i = 0; i < n; ++i) {
        s += kHex[md[i] >> 4];
        s += kHex[md[i] & 15];
    }
    return s;
}

std::string sha256_file(const std::string& path, const std::atomic<bool>* stop) {
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return std::string();
    ::posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
    Sha256 h;
    std::vector<unsigned char> buf(kReadChunk);
    bool ok = true;
    for (;;) {
        if (stop && stop->load(std::memory_order_relaxed)) {
            ok = false;
            break;
        }
        const ssize_t n = ::read(fd, buf.data(), buf.size());
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) ok = false;
        if (n <= 0) break;
        h.update(buf.data(), static_cast<std::size_t>(n));
    }
    ::close(fd);
    return ok ? h.hex_digest() : std::string();
}

BackgroundSha256::BackgroundSha256(std::string path) : path_(std::move(path)) {
    thread_ = std::thread([this] {
        // Below the pipeline's threads: on a busy machine the hash takes the idle moments.
        ::setpriority(PRIO_PROCESS, static_cast<id_t>(::syscall(SYS_gettid)), kBackgroundNice);
        try {
            digest_ = sha256_file(path_, &cancel_);
        } catch (...) {
            digest_.clear();
        }
    });
}

BackgroundSha256::~BackgroundSha256() {
    cancel_ = true;
    if (thread_.joinable()) thread_.join();
}

std::string BackgroundSha256::get() {
    if (thread_.joinable()) thread_.join();
    return digest_;
}

}  // namespace vn
