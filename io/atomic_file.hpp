// Outputs that appear complete or not at all: written under a unique temporary name in the
// destination's directory, flushed, then renamed over the destination.
//
// Only regular files are ever replaced. An output path that exists and is anything else (a
// device node such as /dev/null, a FIFO, a socket, a directory, a dangling symbolic link) is
// refused with Error(Output) before any work. A symbolic link to a regular file is followed: its
// target is replaced atomically (the link stays), and the lock is taken on the target, so that
// two spellings of one output (a link and its target, "a/../out.png" and "out.png") never both
// win. Temporary and lock names of long outputs (up to NAME_MAX bytes) are shortened with a hash.
#pragma once

#include <cstddef>
#include <string>

namespace vn {

// An exclusive advisory lock (flock) on a lock file beside an output, so that two processes
// given the same output never both write it: the second gets Error(Output) at once. The
// kernel drops the lock when its holder dies, so a killed process leaves no stale lock.
// Within one process a lock is re-entrant: a caller can take it before deciding whether to
// write (and so before any work), and the AtomicOutput that writes later shares it.
// The file an output path will be written at: the path itself, or the regular file a symbolic
// link names. Throws Error(Output) naming `path` when it exists and is not a regular file.
std::string resolve_output(const std::string& path);

class OutputLock {
public:
    explicit OutputLock(const std::string& final_path);
    OutputLock(const OutputLock&) = delete;
    OutputLock& operator=(const OutputLock&) = delete;
    ~OutputLock();

private:
    std::string path_;
    int fd_ = -1;
    bool shared_ = false;  // this process already held it: nothing to release
};

class AtomicOutput {
public:
    // Locks the output (OutputLock) and reserves a temporary path beside it; no file is created yet.
    explicit AtomicOutput(std::string final_path);
    AtomicOutput(const AtomicOutput&) = delete;
    AtomicOutput& operator=(const AtomicOutput&) = delete;
    // Removes the temporary file unless commit() succeeded.
    ~AtomicOutput();

    const std::string& temp_path() const { return temp_; }
    // The file that commit() replaces (a symbolic link's target; else the path as given).
    const std::string& final_path() const { return final_; }
    // fsyncs the temporary file and renames it to the final path; throws Error(Output).
    void commit();

private:
    std::string shown_;  // the path as given, for messages
    std::string final_;
    OutputLock lock_;
    std::string temp_;
    bool committed_ = false;
};

void write_file_atomic(const std::string& path, const void* data, std::size_t size);

// True when `path` is a directory (or a link to one).
bool is_directory(const std::string& path);

// Creates the directory `dir` and its missing parents (like mkdir -p), for outputs; Error(Output)
// when one cannot be made or `dir` exists and is not a directory.
void make_directories(const std::string& dir);

// For messages: the output that a live AtomicOutput's temporary file (`path`, or a file named
// after it) stands for, else `path` as it is. Users never see the temporary names.
std::string output_name(const std::string& path);

// True for names that AtomicOutput uses for its temporary files.
bool is_temp_name(const std::string& filename);

}  // namespace vn
