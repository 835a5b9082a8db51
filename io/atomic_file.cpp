#include "io/atomic_file.hpp"

#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <mutex>
#include <map>
#include <set>

#include "core/error.hpp"
#include "io/paths.hpp"

namespace vn {
namespace {

constexpr const char* kTempMarker = ".vahanorm-tmp-";
constexpr const char* kLockSuffix = ".vahanorm-lock";
constexpr std::size_t kTempSuffixMax = 23;  // "PID-N-HEX" after kTempMarker (see AtomicOutput)
constexpr std::size_t kNameMax = 255;       // NAME_MAX of the usual Linux file systems
constexpr std::uint64_t kFnvOffset = 1469598103934665603ull;  // FNV-1a, 64-bit
constexpr std::uint64_t kFnvPrime = 1099511628211ull;
constexpr int kLockAttempts = 10;           // a lock file replaced under us this often: give up
constexpr mode_t kFileMode = 0644;          // outputs and lock files, before the umask

// A file name "." + base + tail that leaves `reserve` bytes within NAME_MAX (255): long bases
// are cut and followed by a hash of the whole base, so that distinct outputs keep distinct names.
std::string hidden_name(const std::string& base, const std::string& tail, std::size_t reserve) {
    if (1 + base.size() + tail.size() + reserve <= kNameMax) return "." + base + tail;
    std::uint64_t h = kFnvOffset;
    for (unsigned char c : base) h = (h ^ c) * kFnvPrime;
    char hash[24];
    std::snprintf(hash, sizeof hash, "~%016llx", static_cast<unsigned long long>(h));
    const std::size_t keep = kNameMax - 1 - tail.size() - std::strlen(hash) - reserve;
    return "." + base.substr(0, keep) + hash + tail;
}

const char* kind_of(mode_t mode) {
    if (S_ISDIR(mode)) return "a directory";
    if (S_ISCHR(mode)) return "a character device";
    if (S_ISBLK(mode)) return "a block device";
    if (S_ISFIFO(mode)) return "a FIFO";
    if (S_ISSOCK(mode)) return "a socket";
    return "not a regular file";
}

// The directory part made absolute and free of links (the output's directory may not exist:
// then the path is kept as given, and creating the lock or temporary file fails with a message).
std::string canonical_file(const std::string& path) {
    char buf[PATH_MAX];
    if (::realpath(parent_dir(path).c_str(), buf) == nullptr) return path;
    const std::string dir = buf;
    return (dir == "/" ? "" : dir) + "/" + file_name(path);
}

// Lock files this process holds (flock would refuse a second lock from the same process).
std::mutex g_held_mutex;
std::set<std::string> g_held;
std::map<std::string, std::string> g_temps;  // temporary path -> the output as given (guarded by g_held_mutex)

}  // namespace

std::string resolve_output(const std::string& path) {
    struct stat link {};
    if (::lstat(path.c_str(), &link) != 0) return path;  // absent (or its directory is): created later
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) {
        const int e = errno;
        fail(ErrorKind::Output, path + ": is a symbolic link to " +
                                    (e == ENOENT ? std::string("a missing file") : std::string(std::strerror(e))) +
                                    "; refusing to write through it");
    }
    if (!S_ISREG(st.st_mode))
        fail(ErrorKind::Output, path + ": exists and is " + kind_of(st.st_mode) +
                                    (S_ISLNK(link.st_mode) ? " (through a symbolic link)" : "") +
                                    ", not a regular file; refusing to replace it");
    if (!S_ISLNK(link.st_mode)) return path;
    char buf[PATH_MAX];
    if (::realpath(path.c_str(), buf) == nullptr)
        fail(ErrorKind::Output, path + ": cannot resolve the symbolic link (" + std::strerror(errno) + ")");
    return buf;
}

OutputLock::OutputLock(const std::string& output_path) {
    const std::string final_path = resolve_output(output_path);
    const std::string canonical = canonical_file(final_path);
    path_ = parent_dir(canonical) + "/" + hidden_name(file_name(canonical), kLockSuffix, 0);
    const std::string& shown = output_path;
    std::lock_guard<std::mutex> guard(g_held_mutex);
    if (g_held.count(path_)) {
        shared_ = true;
        return;
    }
    for (int attempt = 0; attempt < kLockAttempts; ++attempt) {
        fd_ = ::open(path_.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, kFileMode);
        if (fd_ < 0) {
            const int e = errno;
            fail(ErrorKind::Output, shown + ": cannot create (" +
                                        (e == ENOENT ? std::string("no such directory") : std::string(std::strerror(e))) + ")");
        }
        if (::flock(fd_, LOCK_EX | LOCK_NB) != 0) {
            const int e = errno;
            ::close(fd_);
            fd_ = -1;
            if (e == EWOULDBLOCK)
                fail(ErrorKind::Output, shown + ": another vahanorm process is writing this output");
            if (e == ENOSYS || e == ENOLCK || e == EOPNOTSUPP || e == EINVAL) {
                // The file system has no flock (Lustre mounted without -o flock, NFS without
                // a lock manager): go on unlocked. The temporary name and the rename still
                // keep every output complete or absent; only the early "another process"
                // refusal is lost (docs/hpc.md).
                ::unlink(path_.c_str());
                return;
            }
            fail(ErrorKind::Output, shown + ": cannot lock (" + std::strerror(e) + ")");
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
    fail(ErrorKind::Output, shown + ": cannot lock (lock file keeps changing)");
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

AtomicOutput::AtomicOutput(std::string final_path)
    : shown_(std::move(final_path)), final_(resolve_output(shown_)), lock_(shown_) {
    static std::atomic<unsigned> counter{0};
    const auto now = std::chrono::steady_clock::now().time_since_epoch().count();
    // At most 8 + 1 + 6 + 1 + 6 = 22 characters: within kTempSuffixMax.
    constexpr long kPidModulus = 100000000;        // 8 decimal digits
    constexpr unsigned kCounterModulus = 1000000;  // 6 decimal digits
    constexpr unsigned long long kClockMask = 0xffffff;  // 6 hex digits
    char suffix[64];
    std::snprintf(suffix, sizeof suffix, "%ld-%u-%llx", static_cast<long>(getpid()) % kPidModulus,
                  counter.fetch_add(1) % kCounterModulus, static_cast<unsigned long long>(now) & kClockMask);
    temp_ = parent_dir(final_) + "/" + hidden_name(file_name(final_), kTempMarker, kTempSuffixMax) + suffix;
    std::lock_guard<std::mutex> guard(g_held_mutex);
    g_temps[temp_] = shown_;
}

AtomicOutput::~AtomicOutput() {
    if (!committed_) ::unlink(temp_.c_str());
    std::lock_guard<std::mutex> guard(g_held_mutex);
    g_temps.erase(temp_);
}

std::string output_name(const std::string& path) {
    std::lock_guard<std::mutex> guard(g_held_mutex);
    for (const auto& [temp, shown] : g_temps)
        if (path.compare(0, temp.size(), temp) == 0) return shown;
    return path;
}

void AtomicOutput::commit() {
    const int fd = ::open(temp_.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) fail(ErrorKind::Output, shown_ + ": output was not written (" + std::strerror(errno) + ")");
    const int sync_rc = ::fsync(fd);
    const int sync_errno = errno;
    ::close(fd);
    if (sync_rc != 0) fail(ErrorKind::Output, shown_ + ": cannot flush output (" + std::strerror(sync_errno) + ")");
    // Checked again: something other than a regular file may have appeared meanwhile.
    struct stat st {};
    if (::lstat(final_.c_str(), &st) == 0 && !S_ISREG(st.st_mode))
        fail(ErrorKind::Output, shown_ + ": exists and is " + (S_ISLNK(st.st_mode) ? "a symbolic link" : kind_of(st.st_mode)) +
                                    " now, not a regular file; refusing to replace it");
    if (::rename(temp_.c_str(), final_.c_str()) != 0)
        fail(ErrorKind::Output, shown_ + ": cannot move output into place (" + std::strerror(errno) + ")");
    committed_ = true;
}

void write_file_atomic(const std::string& path, const void* data, std::size_t size) {
    AtomicOutput out(path);
    const int fd = ::open(out.temp_path().c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, kFileMode);
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

bool is_directory(const std::string& path) {
    struct stat st {};
    return ::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

void make_directories(const std::string& dir) {
    std::size_t pos = 0;
    while (pos != std::string::npos) {
        pos = dir.find('/', pos + 1);
        const std::string path = dir.substr(0, pos);
        if (path.empty() || is_directory(path)) continue;
        if (::mkdir(path.c_str(), 0755) != 0 && errno != EEXIST)
            fail(ErrorKind::Output, dir + ": cannot create output directory (" + std::strerror(errno) + ")");
    }
    if (!is_directory(dir)) fail(ErrorKind::Output, dir + ": not a directory");
}

}  // namespace vn
