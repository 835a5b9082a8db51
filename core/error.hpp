// Typed errors used everywhere inside vahanorm; app/ maps each kind to an exit code.
#pragma once

#include <stdexcept>
#include <string>

namespace vn {

enum class ErrorKind {
    Usage,        // the command line or an option value is wrong
    Input,        // an input is missing, unreadable or not a decodable image/slide
    Data,         // readable but unusable: no tissue, degenerate estimate, bad model file
    Output,       // an output cannot be created or written
    Device,       // a requested compute device is not usable
    Interrupted,  // stopped by a signal (SIGTERM/SIGINT)
    Internal,     // a bug
    Resource,     // the system refused a resource: a thread (process or thread limit)
};

class Error : public std::runtime_error {
public:
    Error(ErrorKind kind, const std::string& message) : std::runtime_error(message), kind_(kind) {}
    ErrorKind kind() const noexcept { return kind_; }

private:
    ErrorKind kind_;
};

[[noreturn]] inline void fail(ErrorKind kind, const std::string& message) { throw Error(kind, message); }

}  // namespace vn
