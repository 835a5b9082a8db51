#!/usr/bin/env bash
# Builds vahanorm with AddressSanitizer (+LeakSanitizer) and UndefinedBehaviorSanitizer in a
# build directory of its own and runs the whole test suite there (docs/bad-inputs.md).
#
#   scripts/test-sanitizers.sh [extra CMake arguments]
#
# Environment: ASAN_BUILD_DIR (default build-asan), CTEST_ARGS (extra ctest arguments),
# JOBS (default: nproc). Exit status: ctest's.
#
# Any sanitizer report fails the test that saw it: the options below make the process abort
# (ASan, LSan at exit) or stop (UBSan, -fno-sanitize-recover=all) with a non-zero status, and
# every test checks exit codes; the Python-driven tests compare the binary's exit code with the
# expected one. Tests labelled no-sanitizer are left out (each says why where it is defined);
# VAHANORM_TEST_SANITIZED=1 tells the Python tests not to put address-space limits on the
# binary (the sanitizers' shadow memory needs terabytes of it).
set -euo pipefail
cd "$(dirname "$0")/.."
build=${ASAN_BUILD_DIR:-build-asan}
jobs=${JOBS:-$(nproc)}

start=$(date +%s)
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DVAHANORM_SANITIZE=address,undefined -DVAHANORM_CUDA=OFF "$@" >/dev/null
cmake --build "$build" -j "$jobs"
built=$(date +%s)

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export LSAN_OPTIONS=${LSAN_OPTIONS:-suppressions=$PWD/tests/lsan.supp:print_suppressions=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
export VAHANORM_TEST_SANITIZED=1
# shellcheck disable=SC2086
ctest --test-dir "$build" --output-on-failure -j "$jobs" -LE no-sanitizer ${CTEST_ARGS:-} && rc=0 || rc=$?
end=$(date +%s)
echo "test-sanitizers: build $((built - start)) s, tests $((end - built)) s, exit $rc"
exit "$rc"
