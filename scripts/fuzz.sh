#!/usr/bin/env bash
# Builds the libFuzzer targets of vahanorm (clang-14, AddressSanitizer + UndefinedBehaviorSanitizer)
# in a build directory of their own and runs each for a bounded time (docs/bad-inputs.md).
#
#   scripts/fuzz.sh [SECONDS] [TARGET...]
#
# SECONDS per target (default 60); TARGETs among model png jpeg tiff (default: all four).
# Environment:
#   FUZZ_BUILD_DIR  build directory (default: build-fuzz)
#   FUZZ_CORPUS     where the corpora grow, one folder per target, kept between runs
#                   (default: $FUZZ_BUILD_DIR/corpus)
#   FUZZ_JOBS       targets run at the same time (default 1; 2 suits a 2-core machine)
#   FUZZ_RSS_MB     libFuzzer -rss_limit_mb (default 2048)
#   FUZZ_ARGS       extra libFuzzer arguments, e.g. "-only_ascii=1"
#   CC, CXX         compilers (default clang-14, clang++-14)
# The seed corpus is generated (vn_make_samples seeds: synthetic images written by the real
# codecs); the kept findings in tests/fuzz/regressions/<target>/ are added as seeds too.
# Exit status: 0 when no target found anything, 1 when one did (the crashing inputs are in
# $FUZZ_BUILD_DIR/artifacts/<target>/; minimise with -minimize_crash=1, then keep them in
# tests/fuzz/regressions/<target>/), 2 for usage or build errors.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

seconds=${1:-60}
if ! [[ $seconds =~ ^[0-9]+$ ]] || ((seconds < 1)); then
  echo "usage: scripts/fuzz.sh [SECONDS] [model|png|jpeg|tiff ...]" >&2
  exit 2
fi
shift || true
targets=("$@")
((${#targets[@]})) || targets=(model png jpeg tiff)
for t in "${targets[@]}"; do
  case $t in model | png | jpeg | tiff) ;; *) echo "fuzz.sh: unknown target '$t' (model, png, jpeg, tiff)" >&2; exit 2 ;; esac
done

build=${FUZZ_BUILD_DIR:-build-fuzz}
[[ $build = /* ]] || build=$root/$build
corpus=${FUZZ_CORPUS:-$build/corpus}
jobs=${FUZZ_JOBS:-1}
rss=${FUZZ_RSS_MB:-2048}
export CC=${CC:-clang-14} CXX=${CXX:-clang++-14}

if ! grep -q 'add_subdirectory(fuzz)' tests/CMakeLists.txt; then
  echo "fuzz.sh: tests/CMakeLists.txt does not add tests/fuzz (add_subdirectory(fuzz))" >&2
  exit 2
fi
command -v "$CXX" >/dev/null || { echo "fuzz.sh: $CXX not found (Debian: apt-get install clang-14 libclang-rt-14-dev)" >&2; exit 2; }

# The app is not needed: only core/ and io/ are fuzzed.
echo "== configuring $build ($CXX, -fsanitize=fuzzer-no-link,address,undefined)"
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_C_COMPILER="$CC" -DCMAKE_CXX_COMPILER="$CXX" \
  -DVAHANORM_FUZZ=ON -DVAHANORM_SANITIZE=fuzzer-no-link,address,undefined \
  -DVAHANORM_CUDA=OFF -DVAHANORM_BUILD_APP=OFF >"$build.configure.log" 2>&1 ||
  { cat "$build.configure.log" >&2; exit 2; }
echo "== building"
cmake --build "$build" -j "$(nproc)" --target vn_make_samples "${targets[@]/#/vn_fuzz_}" || exit 2

seeds=$build/seeds
rm -rf "$seeds"
"$build/tests/fuzz/vn_make_samples" seeds "$seeds"

# A 64 MiB quarantine: with the default, freed 48 MiB images pile up and the RSS passes 2 GiB.
export ASAN_OPTIONS=${ASAN_OPTIONS:-abort_on_error=1:detect_leaks=1:allocator_may_return_null=1:quarantine_size_mb=64}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

run_target() {
  local t=$1 dict=()
  local bin=$build/tests/fuzz/vn_fuzz_$t log=$build/logs/$t.log art=$build/artifacts/$t
  mkdir -p "$corpus/$t" "$art" "$build/logs"
  [[ -f tests/fuzz/dicts/$t.dict ]] && dict=("-dict=$root/tests/fuzz/dicts/$t.dict")
  # -timeout: a single input decoding for longer is a finding (a 2^24-pixel image takes well under 5 s).
  # shellcheck disable=SC2086
  "$bin" "$corpus/$t" "$seeds/$t" "$root/tests/fuzz/regressions/$t" \
    -max_total_time="$seconds" -rss_limit_mb="$rss" -malloc_limit_mb="$rss" -timeout=25 -max_len=65536 \
    -artifact_prefix="$art/" -print_final_stats=1 "${dict[@]}" ${FUZZ_ARGS:-} >"$log" 2>&1
}

echo "== fuzzing ${targets[*]} for ${seconds} s each, $jobs at a time (logs: $build/logs/)"
declare -A pids=()
failed=()
for t in "${targets[@]}"; do
  while (($(jobs -rp | wc -l) >= jobs)); do wait -n || true; done
  run_target "$t" &
  pids[$t]=$!
done
for t in "${targets[@]}"; do
  if wait "${pids[$t]}"; then rc=0; else rc=$?; fi
  log=$build/logs/$t.log
  stats=$(grep -E '^stat::(number_of_executed_units|new_units_added|peak_rss_mb)' "$log" | awk '{printf "%s ", $0}' || true)
  cov=$(grep -Eo 'cov: [0-9]+ ft: [0-9]+ corp: [0-9]+/[0-9]+[a-zA-Z]*' "$log" | tail -1 || true)
  if ((rc == 0)); then
    echo "   $t: ok  ($cov; $stats)"
  else
    failed+=("$t")
    echo "   $t: FOUND SOMETHING (exit $rc); log $log, inputs in $build/artifacts/$t/:"
    grep -E '^(==[0-9]+==ERROR|SUMMARY|vahanorm fuzz: BUG|ALARM|.*-timeout|.*out-of-memory)' "$log" | head -5 | sed 's/^/      /' || true
    find "$build/artifacts/$t/" -type f -printf "      %f\n" || true
  fi
done
if ((${#failed[@]})); then
  echo "fuzz.sh: findings in: ${failed[*]}" >&2
  exit 1
fi
echo "fuzz.sh: no findings"
