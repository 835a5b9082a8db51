#include "core/atomic_file.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <mutex>
#include <set>

#include "core/error.hpp"

namespace vn {
namespace {

std::string dir_of(const std::string& path) {
    const auto slash = path.find_last_of('/');
    if (slash == std::string::npos) return ".";
    if (slash == 0) return "/";
    return path.substr(0, slash);
}

std::string base_of(const std::string& path) {
    const auto slash = path.find_last_of('/');
    return slash == std::string::npos ? path : path.substr(slash + 1);
}

constexpr const char* kTempMarker = ".vahanorm-tmp-";

// Lock files this process holds (flock would refuse a second lock from the same process).
std::mutex g_held_mutex;
std::set<std::string> g_held;

}  // namespace

OutputLock::OutputLock(const std::string& final_path)
    : path_(dir_of(final_path) + "/." + base_of(final_path) + ".vahanorm-lock") {
    std::lock_guard<std::mutex> guard(g_held_mutex);
    if (g_held.count(path_)) {
        shared_ = true;
        return;
    }
    for (int attempt = 0; attempt < 10; ++attempt) {
        fd_ = ::open(path_.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
        if (fd_ < 0) {
            const int e = errno;
            fail(ErrorKind::Output, final_path + ": cannot create (" +
                                        (e == ENOENT ? std::string("no such directory") : std::string(std::strerror(e))) + ")");
        }
        if (::flock(fd_, LOCK_EX | LOCK_NB) != 0) {
            const int e = errno;
            ::close(fd_);
            fd_ = -1;
            if (e == EWOULDBLOCK)
                fail(ErrorKind::Output, final_path + ": another vahanorm process is writing this output");
            if (e == ENOSYS || e == ENOLCK || e == EOPNOTSUPP || e == EINVAL) {
                // The file system has no flock (Lustre mounted without -o flock, NFS without
                // a lock manager): go on unlocked. The temporary name and the rename still
                // keep every output complete or absent; only the early "another process"
                // refusal is lost (docs/hpc.md).
                ::unlink(path_.c_str());
                return;
            }
            fail(ErrorKind::Output, final_path + ": cannot lock (" + std::strerror(e) + ")");
        }
        // The previous holder may have removed the lock file between our open and flock:
        // the lock only counts if it is on the file that the path names now.
        struct stat held {}, named {};
        if (::fstat(fd_, &held) == 0 && ::stat(path_.c_str(), &named) == 0 && held.st_ino == named.st_ino &&
            held.st_dev == named.st_dev) {
            g_held.insert(path_);
            return;
        }
        ::close(fd_);
        fd_ = -1;
    }
    fail(ErrorKind::Output, final_path + ": cannot lock (lock file keeps changing)");
}

OutputLock::~OutputLock() {
    if (shared_) return;
    std::lock_guard<std::mutex> guard(g_held_mutex);
    g_held.erase(path_);
    if (fd_ >= 0) {
        ::unlink(path_.c_str());
        ::close(fd_);
    }
}

AtomicOutput::AtomicOutput(std::string final_path) : final_(std::move(final_path)), lock_(final_) {
    static std::atomic<unsigned> counter{0};
    const auto now = std::chrono::steady_clock::now().time_since_epoch().count();
    char suffix[64];
    std::snprintf(suffix, sizeof suffix, "%ld-%u-%llx", static_cast<long>(getpid()), counter.fetch_add(1),
                  static_cast<unsigned long long>(now) & 0xffffffull);
    temp_ = dir_of(final_) + "/." + base_of(final_) + kTempMarker + suffix;
}

AtomicOutput::~AtomicOutput() {
    if (!committed_) ::unlink(temp_.c_str());
}

void AtomicOutput::commit() {
    const int fd = ::open(temp_.c_str(), O_RDONLY);
    if (fd < 0) fail(ErrorKind::Output, final_ + ": output was not written (" + std::strerror(errno) + ")");
    const int sync_rc = ::fsync(fd);
    const int sync_errno = errno;
    ::close(fd);
    if (sync_rc != 0) fail(ErrorKind::Output, final_ + ": cannot flush output (" + std::strerror(sync_errno) + ")");
    if (::rename(temp_.c_str(), final_.c_str()) != 0)
        fail(ErrorKind::Output, final_ + ": cannot move output into place (" + std::strerror(errno) + ")");
    committed_ = true;
}

void write_file_atomic(const std::string& path, const void* data, std::size_t size) {
    AtomicOutput out(path);
    const int fd = ::open(out.temp_path().c_str(), O_WRONLY | O_CREAT | O_EXCL, 0644);
    if (fd < 0) fail(ErrorKind::Output, path + ": cannot create (" + std::strerror(errno) + ")");
    const char* p = static_cast<const char*>(data);
    std::size_t left = size;
    while (left > 0) {
        const ssize_t n = ::write(fd, p, left);
        if (n < 0) {
            if (errno == EINTR) continue;
            const int e = errno;
            ::close(fd);
            fail(ErrorKind::Output, path + ": write failed (" + std::strerror(e) + ")");
        }
        p += n;
        left -= static_cast<std::size_t>(n);
    }
    if (::close(fd) != 0) fail(ErrorKind::Output, path + ": write failed (" + std::strerror(errno) + ")");
    out.commit();
}

bool is_temp_name(const std::string& filename) { return filename.find(kTempMarker) != std::string::npos; }

}  // namespace vn
