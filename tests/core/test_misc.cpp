// Small pieces: SHA-256, atomic outputs, the thread pool, thread-count defaults.
#include <catch2/catch.hpp>

#include <dirent.h>
#include <sys/wait.h>
#include <unistd.h>
#include <sys/stat.h>

#include <atomic>
#include <cstdlib>
#include <fstream>
#include <stdexcept>

#include "core/atomic_file.hpp"
#include "core/backend.hpp"
#include "core/error.hpp"
#include "core/sha256.hpp"
#include "core/thread_pool.hpp"
#include "tests/support/test_support.hpp"

using namespace vn;

namespace {

std::vector<std::string> list_dir(const std::string& dir) {
    std::vector<std::string> names;
    if (DIR* d = opendir(dir.c_str())) {
        while (dirent* e = readdir(d))
            if (std::string(e->d_name) != "." && std::string(e->d_name) != "..") names.push_back(e->d_name);
        closedir(d);
    }
    return names;
}

}  // namespace

TEST_CASE("SHA-256 matches the FIPS 180-4 test vectors", "[misc]") {
    auto hex = [](const std::string& s) {
        Sha256 h;
        h.update(s.data(), s.size());
        return h.hex_digest();
    };
    CHECK(hex("") == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    CHECK(hex("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    CHECK(hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq") ==
          "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
    CHECK(hex(std::string(1000000, 'a')) == "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

TEST_CASE("atomic outputs appear complete or not at all", "[misc]") {
    test::TempDir dir;
    const std::string path = dir.file("out.bin");
    write_file_atomic(path, "hello", 5);
    std::ifstream in(path);
    std::string s;
    in >> s;
    CHECK(s == "hello");
    CHECK(list_dir(dir.path()).size() == 1);
    {
        AtomicOutput out(dir.file("never.bin"));
        std::ofstream(out.temp_path()) << "partial";
        CHECK(is_temp_name(out.temp_path()));
        // no commit: destroyed as if an exception unwound it
    }
    CHECK(list_dir(dir.path()).size() == 1);
    try {
        write_file_atomic(dir.file("no/such/dir/x.bin"), "x", 1);
        FAIL("wrote into a missing directory");
    } catch (const Error& e) {
        CHECK(e.kind() == ErrorKind::Output);
    }
}

TEST_CASE("thread pool runs every item once and propagates exceptions", "[misc]") {
    ThreadPool pool(3);
    std::vector<std::atomic<int>> hits(1000);
    pool.parallel_for(hits.size(), [&](std::size_t i) { ++hits[i]; });
    for (auto& h : hits) REQUIRE(h == 1);
    CHECK_THROWS_AS(pool.parallel_for(100, [](std::size_t i) { if (i == 37) throw std::runtime_error("x"); }),
                    std::runtime_error);
    std::atomic<int> n{0};
    pool.parallel_for(10, [&](std::size_t) { pool.parallel_for(10, [&](std::size_t) { ++n; }); });
    CHECK(n == 100);
}

TEST_CASE("thread count: explicit, then SLURM_CPUS_PER_TASK, then all cores", "[misc]") {
    CHECK(default_thread_count(3) == 3);
    ::setenv("SLURM_CPUS_PER_TASK", "5", 1);
    CHECK(default_thread_count(0) == 5);
    ::setenv("SLURM_CPUS_PER_TASK", "junk", 1);
    CHECK(default_thread_count(0) >= 1);
    ::unsetenv("SLURM_CPUS_PER_TASK");
    CHECK(default_thread_count(0) >= 1);
}

TEST_CASE("a second process writing the same output is refused while the first holds it", "[misc]") {
    test::TempDir dir;
    const std::string path = dir.file("out.tif");
    // Another process holds the output (it locks, says so, and waits to be told to go).
    int ready[2], go[2];
    REQUIRE(::pipe(ready) == 0);
    REQUIRE(::pipe(go) == 0);
    const pid_t child = ::fork();
    REQUIRE(child >= 0);
    if (child == 0) {
        char c = 0;
        try {
            AtomicOutput holder(path);
            c = 1;
            (void)!::write(ready[1], &c, 1);
            (void)!::read(go[0], &c, 1);
        } catch (...) {
            (void)!::write(ready[1], &c, 1);
        }
        ::_exit(0);
    }
    char c = 0;
    REQUIRE(::read(ready[0], &c, 1) == 1);
    REQUIRE(c == 1);
    try {
        AtomicOutput second(path);
        FAIL("two processes held the same output");
    } catch (const Error& e) {
        CHECK(e.kind() == ErrorKind::Output);
        CHECK(std::string(e.what()).find("another vahanorm process") != std::string::npos);
    }
    (void)!::write(go[1], &c, 1);
    int status = 0;
    ::waitpid(child, &status, 0);
    for (int fd : {ready[0], ready[1], go[0], go[1]}) ::close(fd);
    // Released when its holder ends: this process gets it now, and in-process the lock is
    // shared (a caller locks before deciding to write; the writer reuses that lock).
    {
        const OutputLock mine(path);
        AtomicOutput writer(path);
        std::ofstream(writer.temp_path()) << "data";
        writer.commit();
    }
    CHECK(list_dir(dir.path()) == std::vector<std::string>{"out.tif"});
}
