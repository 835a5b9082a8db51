// Outputs that appear complete or not at all: written under a unique temporary name in the
// destination's directory, flushed, then renamed over the destination.
#pragma once

#include <cstddef>
#include <string>

namespace vn {

class AtomicOutput {
public:
    // Reserves a temporary path beside `final_path`; nothing is created yet.
    explicit AtomicOutput(std::string final_path);
    AtomicOutput(const AtomicOutput&) = delete;
    AtomicOutput& operator=(const AtomicOutput&) = delete;
    // Removes the temporary file unless commit() succeeded.
    ~AtomicOutput();

    const std::string& temp_path() const { return temp_; }
    const std::string& final_path() const { return final_; }
    // fsyncs the temporary file and renames it to the final path; throws Error(Output).
    void commit();

private:
    std::string final_;
    std::string temp_;
    bool committed_ = false;
};

void write_file_atomic(const std::string& path, const void* data, std::size_t size);

// True for names that AtomicOutput uses for its temporary files.
bool is_temp_name(const std::string& filename);

}  // namespace vn
