// Replays inputs through the fuzz entry points without libFuzzer, for CTest and for
// reproducing a finding in an ordinary (or sanitizer) build:
//     vn_fuzz_replay TARGET FILE_OR_DIR...      TARGET: model, png, jpeg or tiff
// Directories are read one level deep, in name order. An input whose name starts with
// "reject-" must be refused (vn::Error): a reader that accepts it is a bug, e.g. a corrupt
// TIFF that once decoded "successfully" into garbage. A bug aborts (as under the fuzzer);
// otherwise prints one line per input and exits 0. Exit 2 for usage errors, and when no
// input at all was found (an empty regression folder would otherwise pass silently).
// Also a bug: the process's peak RSS passing kMaxRssMiB (libFuzzer's -rss_limit_mb catches
// the same under the fuzzer), so that a kept out-of-memory input fails here too.
#include <dirent.h>
#include <sys/resource.h>
#include <sys/stat.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "tests/fuzz/fuzz_entry.hpp"

namespace {

constexpr long kMaxRssMiB = 1536;

long peak_rss_mib() {
    struct rusage ru {};
    ::getrusage(RUSAGE_SELF, &ru);
    return ru.ru_maxrss / 1024;  // KiB on Linux
}

std::vector<std::string> inputs_in(const std::string& path) {
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) return {};
    if (!S_ISDIR(st.st_mode)) return {path};
    std::vector<std::string> files;
    if (DIR* d = ::opendir(path.c_str())) {
        while (const dirent* e = ::readdir(d)) {
            const std::string name = e->d_name;
            if (name.empty() || name[0] == '.' || name == "README.md") continue;
            const std::string full = path + "/" + name;
            if (::stat(full.c_str(), &st) == 0 && S_ISREG(st.st_mode)) files.push_back(full);
        }
        ::closedir(d);
    }
    std::sort(files.begin(), files.end());
    return files;
}

}  // namespace

int main(int argc, char** argv) {
    vn::fuzz::Target target{};
    if (argc < 3 || !vn::fuzz::target_from_name(argv[1], &target)) {
        std::fprintf(stderr, "usage: %s model|png|jpeg|tiff FILE_OR_DIR...\n", argv[0]);
        return 2;
    }
    std::size_t count = 0;
    for (int i = 2; i < argc; ++i) {
        const std::vector<std::string> files = inputs_in(argv[i]);
        if (files.empty()) std::fprintf(stderr, "%s: no inputs\n", argv[i]);
        for (const std::string& f : files) {
            std::ifstream in(f, std::ios::binary);
            const std::vector<char> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
            if (!in.good() && !in.eof()) {
                std::fprintf(stderr, "%s: cannot read\n", f.c_str());
                return 2;
            }
            std::printf("%s %s (%zu bytes) ... ", vn::fuzz::target_name(target), f.c_str(), bytes.size());
            std::fflush(stdout);
            bool accepted = false;
            const int rc =
                vn::fuzz::run_one(target, reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size(), &accepted);
            std::printf("%s\n", rc != 0 ? "skipped (not this target's format)" : accepted ? "ok, accepted" : "ok, refused");
            const std::string base = f.substr(f.find_last_of('/') + 1);
            if (base.rfind("reject-", 0) == 0 && (rc != 0 || accepted)) {
                std::fprintf(stderr, "vahanorm fuzz: BUG: %s must be refused, but was %s\n", f.c_str(),
                             rc != 0 ? "skipped" : "accepted");
                std::abort();
            }
            if (const long rss = peak_rss_mib(); rss > kMaxRssMiB) {
                std::fprintf(stderr, "vahanorm fuzz: BUG: peak RSS %ld MiB after %s (limit %ld MiB)\n", rss, f.c_str(),
                             kMaxRssMiB);
                std::abort();
            }
            ++count;
        }
    }
    if (count == 0) return 2;
    std::printf("%zu inputs replayed, no bugs\n", count);
    return 0;
}
