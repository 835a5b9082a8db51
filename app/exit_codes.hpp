// The exit codes of vahanorm (docs/cli.md has the table). sysexits(3)-style where one fits.
#pragma once

#include "core/error.hpp"

namespace vn::app {

enum ExitCode : int {
    kExitOk = 0,
    kExitPartial = 3,       // a batch finished, but some inputs failed (the others were written)
    kExitUsage = 64,        // EX_USAGE: bad command line or option value
    kExitData = 65,         // EX_DATAERR: no tissue, degenerate estimate, malformed model file
    kExitInput = 66,        // EX_NOINPUT: input missing, unreadable, corrupt or not an image/slide
    kExitDevice = 69,       // EX_UNAVAILABLE: the requested device cannot be used
    kExitInternal = 70,     // EX_SOFTWARE: a bug
    kExitSystem = 71,       // EX_OSERR: the system refused a resource (a thread: process or thread limit)
    kExitOutput = 73,       // EX_CANTCREAT: an output cannot be created or written
    kExitInterrupted = 75,  // EX_TEMPFAIL: stopped by SIGTERM/SIGINT; rerun to finish
};

inline int exit_code_for(ErrorKind kind) {
    switch (kind) {
        case ErrorKind::Usage: return kExitUsage;
        case ErrorKind::Input: return kExitInput;
        case ErrorKind::Data: return kExitData;
        case ErrorKind::Output: return kExitOutput;
        case ErrorKind::Device: return kExitDevice;
        case ErrorKind::Interrupted: return kExitInterrupted;
        case ErrorKind::Internal: return kExitInternal;
        case ErrorKind::Resource: return kExitSystem;
    }
    return kExitInternal;
}

}  // namespace vn::app
