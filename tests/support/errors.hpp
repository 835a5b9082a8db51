// The vn::Error a piece of code throws, for the tests that check its kind and message.
#pragma once

#include <catch2/catch.hpp>

#include "core/error.hpp"

namespace vn::test {

// The Error that `run` throws; a run that throws none fails the test.
template <typename F>
Error error_of(F&& run) {
    try {
        run();
    } catch (const Error& e) {
        return e;
    }
    FAIL("no vn::Error was thrown");
    return Error(ErrorKind::Internal, "unreachable");
}

}  // namespace vn::test
