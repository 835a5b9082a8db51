#!/usr/bin/env bash
# Makes the GPU device bundle on this (development) machine: one git-ignored folder that a bare
# CUDA machine (driver, CUDA toolkit libraries, Python + PyTorch; no OpenSlide, libtiff, libjpeg,
# libpng, zstd, spdlog, ..., no package registry) runs without compiling anything:
#
#   scripts/device-bundle.sh                 # prints the bundle's path as its last line
#   scripts/device-check.sh BUNDLE           # on the GPU machine (docs/cuda.md, "The device check")
#
# What it does: a Release build of its own (build-bundle/, CUDA for sm_90 only: H100/H200) of
# the CLI, the CUDA module libvahanorm-cuda.so, the parity runner, the GPU benchmark and the two
# generators of synthetic inputs; copies them to BUNDLE/bin with the RUNPATH $ORIGIN/../lib
# (patchelf); copies every shared library they need (ldd) except the CUDA driver and toolkit
# libraries (the GPU machine has those) and the C/C++ runtime to BUNDLE/lib (which travels as
# BUNDLE/lib.tar.gz, unpacked by bin/vn-env under $TMPDIR at first use); the C/C++ runtime
# itself goes to BUNDLE/lib/cxx (libstdc++, libgcc_s) and BUNDLE/lib/runtime (glibc, its loader),
# used only when the GPU machine's are older than this build needs (bin/vn-env decides); small synthetic inputs (tiles, a reference, a
# slide, models) to BUNDLE/data; the wheels of the Python GPU normalizers we compare against,
# with the pure-Python dependencies a plain PyTorch install lacks, to BUNDLE/wheels.
#
# Environment: VN_BUNDLE_BUILD (build folder, default build-bundle), VN_BUNDLE_DIR (default
# BUILD/bundle), VN_CUDA_ARCHS (default 90), VN_JOBS (default 2), VN_BUNDLE_WHEELS=0 to skip the
# wheels (no network). Exit status: 0 done; 1 a step failed (the message says which).
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${VN_BUNDLE_BUILD:-$repo/build-bundle}
bundle=${VN_BUNDLE_DIR:-$build/bundle}
archs=${VN_CUDA_ARCHS:-90}
jobs=${VN_JOBS:-2}
limit_mib=40

note() { printf 'device-bundle: %s\n' "$*" >&2; }
die() { note "$*"; exit 1; }

command -v nvcc >/dev/null || export PATH=/usr/local/cuda/bin:$PATH
command -v nvcc >/dev/null || die "nvcc not found (PATH, /usr/local/cuda/bin): the bundle needs the CUDA toolkit here"
command -v patchelf >/dev/null || die "patchelf not found: apt-get install patchelf (scripts/deps.sh)"

# ---- 1. build -----------------------------------------------------------------------------
mkdir -p "$build"
export CCACHE_BASEDIR=${CCACHE_BASEDIR:-$(dirname "$repo")}
launcher=()
if command -v ccache >/dev/null; then
    launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache -DCMAKE_CUDA_COMPILER_LAUNCHER=ccache)
fi
generator=()
[[ -f $build/CMakeCache.txt ]] || { command -v ninja >/dev/null && generator=(-G Ninja); }
note "configuring $build (Release, CUDA sm_$archs)"
cmake -S "$repo" -B "$build" "${generator[@]}" -DCMAKE_BUILD_TYPE=Release -DVAHANORM_CUDA=ON \
    "-DCMAKE_CUDA_ARCHITECTURES=$archs" -DVAHANORM_BUILD_TESTS=OFF -DVAHANORM_WERROR=ON "${launcher[@]}" \
    >"$build/bundle-configure.log" 2>&1 || { tail -30 "$build/bundle-configure.log" >&2; die "configure failed"; }
targets=(vahanorm vahanorm_cuda_plugin vahanorm_cuda_parity vahanorm_bench_gpu vahanorm-synth-tiles vahanorm-compare-images
         make-synthetic-slide)
note "building ${targets[*]} (-j$jobs)"
cmake --build "$build" -j "$jobs" --target "${targets[@]}" >"$build/bundle-build.log" 2>&1 ||
    { grep -E -A6 'error|Error' "$build/bundle-build.log" | head -60 >&2; die "build failed (log: $build/bundle-build.log)"; }

# ---- 2. binaries, with their libraries ----------------------------------------------------
rm -rf "$bundle"
mkdir -p "$bundle/bin" "$bundle/lib/runtime" "$bundle/lib/cxx" "$bundle/data" "$bundle/wheels"
cp "$build/app/vahanorm" "$build/app/libvahanorm-cuda.so" "$build/cuda/vahanorm_cuda_parity" \
   "$build/cuda/vahanorm_bench_gpu" "$build/cuda/vahanorm-synth-tiles" "$build/cuda/vahanorm-compare-images" \
   "$build/io/make-synthetic-slide" "$bundle/bin/"
strip --strip-unneeded "$bundle"/bin/*

# Libraries the GPU machine provides itself: the CUDA driver and toolkit, and the C/C++ runtime
# (bundled separately, used only when needed; see bin/vn-env).
is_cuda_lib() {
    case $1 in
        libcuda.so* | libnvidia-* | libcudart.so* | libcublas.so* | libcublasLt.so* | libcusolver.so* | \
            libcusparse.so* | libnvJitLink.so* | libcufft.so* | libcurand.so* | libnvrtc.so*) return 0 ;;
    esac
    return 1
}
is_runtime_lib() {
    case $1 in
        linux-vdso.so* | ld-linux*.so* | libc.so.* | libm.so.* | libpthread.so.* | libdl.so.* | librt.so.* | \
            libresolv.so.* | libutil.so.* | libstdc++.so.* | libgcc_s.so.*) return 0 ;;
    esac
    return 1
}
declare -A copied=()
collect() {  # collect FILE: copies what FILE needs (transitively: ldd resolves the whole tree)
    local line name path
    while IFS= read -r line; do
        # "libfoo.so.1 => /path/libfoo.so.1 (0x...)" or "/lib64/ld-linux-x86-64.so.2 (0x...)"
        if [[ $line =~ ^[[:space:]]*([^[:space:]]+)[[:space:]]=\>[[:space:]]([^[:space:]]+) ]]; then
            name=${BASH_REMATCH[1]}
            path=${BASH_REMATCH[2]}
        elif [[ $line =~ ^[[:space:]]*(/[^[:space:]]+) ]]; then
            path=${BASH_REMATCH[1]}
            name=$(basename "$path")
        else
            continue
        fi
        [[ -n ${copied[$name]:-} ]] && continue
        if [[ $path == "not" ]]; then
            is_cuda_lib "$name" && continue
            die "$1 needs $name, which is not found here"
        fi
        copied[$name]=1
        if is_cuda_lib "$name"; then
            continue
        elif [[ $name == libstdc++.so.* || $name == libgcc_s.so.* ]]; then
            cp -L "$path" "$bundle/lib/cxx/$name"
        elif is_runtime_lib "$name"; then
            cp -L "$path" "$bundle/lib/runtime/$name"
        else
            cp -L "$path" "$bundle/lib/$name"
        fi
    done < <(ldd "$1")
}
for f in "$bundle"/bin/*; do collect "$f"; done
chmod u+w "$bundle"/lib/*.so* "$bundle"/lib/runtime/* "$bundle"/lib/cxx/*
strip --strip-unneeded "$bundle"/lib/*.so* 2>/dev/null || true

# ICU's data library (31 MB; OpenSlide -> libxml2 -> ICU) is replaced by ICU's own "stub data"
# form: an empty table of contents under the same symbol. libxml2 calls ICU only to convert
# character encodings it lacks (never for UTF-8 or the slide formats' XML), and then gets ICU's
# "missing data" error rather than wrong output.
for icudata in "$bundle"/lib/libicudata.so.*; do
    [[ -f $icudata ]] || continue
    sym=$(nm -D "$bundle"/lib/libicuuc.so.* 2>/dev/null | awk '$1 == "U" && $2 ~ /^icudt[0-9]+_dat$/ {s = $2} END {print s}')
    [[ -n $sym ]] || die "no icudtNN_dat symbol in libicuuc"
    cat >"$build/icu_stubdata.c" <<EOF
/* ICU stub data (as icu4c/source/stubdata): a valid common-data header with no entries. */
#include <stdint.h>
typedef struct {
    uint16_t headerSize;
    uint8_t magic1, magic2;
    struct { uint16_t size, reservedWord; uint8_t isBigEndian, charsetFamily, sizeofUChar, reservedByte;
             uint8_t dataFormat[4], formatVersion[4], dataVersion[4]; } info;
    char padding[8];
    uint32_t count, reserved;
    struct { const char* name; const void* data; } toc[1];
    int fakeNameAndData[4];
} IcuDataHeader;
__attribute__((visibility("default"))) const IcuDataHeader $sym = {
    32, 0xda, 0x27, {20, 0, 0, 0, 2, 0, {0x54, 0x6f, 0x43, 0x50}, {1, 0, 0, 0}, {0, 0, 0, 0}},
    {0}, 0, 0, {{0, 0}}, {0, 0, 0, 0}};
EOF
    cc -shared -fPIC -O2 -o "$icudata" -Wl,-soname,"$(basename "$icudata")" "$build/icu_stubdata.c" ||
        die "cannot build the ICU stub data"
done

# RUNPATHs: executables look in ../lib; the libraries in their own folder; the CUDA module also
# in the usual CUDA toolkit folders (the GPU machine's cuSOLVER and cuBLAS).
cuda_dirs=/usr/local/cuda/lib64:/usr/local/cuda/targets/x86_64-linux/lib
for f in "$bundle"/bin/*; do
    [[ $f == *.so ]] && continue
    patchelf --set-rpath '$ORIGIN/../lib' "$f"
done
patchelf --set-rpath "\$ORIGIN/../lib:$cuda_dirs" "$bundle/bin/libvahanorm-cuda.so"
for f in "$bundle"/lib/*.so*; do patchelf --set-rpath '$ORIGIN' "$f"; done

# The newest glibc and libstdc++ symbol versions the bundle needs (bin/vn-env compares them with
# the GPU machine's).
max_version() {  # max_version PREFIX FILES...: the highest PREFIX_x.y[.z] referenced
    local prefix=$1; shift
    objdump -T "$@" 2>/dev/null | grep -oE "${prefix}_[0-9]+(\.[0-9]+)+" | sed "s/${prefix}_//" | sort -V | tail -1
}
need_glibc=$(max_version GLIBC "$bundle"/bin/* "$bundle"/lib/*.so*)
# The CUDA toolkit libraries the module resolves here (bin/vn-env looks for them there).
cuda_needed=$(ldd "$bundle/bin/libvahanorm-cuda.so" | awk '{print $1}' |
              grep -E '^lib(cusolver|cublas|cublasLt|cusparse|nvJitLink|cudart)\.so' | sort -u | paste -sd' ' -)
need_glibcxx=$(max_version GLIBCXX "$bundle"/bin/* "$bundle"/lib/*.so*)

# bin/vn-env: sourced by scripts/device-check.sh (or by hand) to run the bundle's programs.
cat >"$bundle/bin/vn-env" <<EOF
# Sourced: sets up the bundle's programs for this machine.  source BUNDLE/bin/vn-env
# Needs glibc >= $need_glibc and libstdc++ with GLIBCXX_$need_glibcxx (the build machine's).
vn_bundle=\$(cd "\$(dirname "\${BASH_SOURCE[0]}")/.." && pwd)
vn_need_glibc=$need_glibc
vn_need_glibcxx=$need_glibcxx
vn_cuda_needed="$cuda_needed"
EOF
cat >>"$bundle/bin/vn-env" <<'EOF'
# The libraries travel as lib.tar.gz, unpacked once into a folder under $TMPDIR named by its
# checksum (the bundle stays as it came), and found through LD_LIBRARY_PATH or the bundled
# loader's --library-path. An unpacked BUNDLE/lib, if there is one, is used as it is.
vn_libdir=$vn_bundle/lib
if [[ ! -d $vn_libdir ]]; then
    vn_libdir=${TMPDIR:-/tmp}/vahanorm-bundle-lib-$(cksum <"$vn_bundle/lib.tar.gz" | cut -d' ' -f1)
    if [[ ! -f $vn_libdir/.complete ]]; then
        vn_tmp=$vn_libdir.unpack.$$
        mkdir -p "$vn_tmp" && tar -xzf "$vn_bundle/lib.tar.gz" -C "$vn_tmp" && touch "$vn_tmp/.complete" &&
            { mv -T "$vn_tmp" "$vn_libdir" 2>/dev/null || rm -rf "$vn_tmp"; }
    fi
fi
vn_have_glibc=$(getconf GNU_LIBC_VERSION 2>/dev/null | awk '{print $2}')
vn_libstdcxx=$( (/sbin/ldconfig -p 2>/dev/null || ldconfig -p 2>/dev/null) | awk '/libstdc\+\+\.so\.6 .*x86-64/ {print $NF; exit}')
# CUDA libraries: nvcc's toolkit folder (/usr/local/cuda/lib64 is also in the module's RUNPATH).
vn_cuda_lib=/usr/local/cuda/lib64
if command -v nvcc >/dev/null; then
    vn_cuda_lib=$(cd "$(dirname "$(command -v nvcc)")/../lib64" 2>/dev/null && pwd || echo "$vn_cuda_lib")
fi
# Where the loader would not find a CUDA library the module needs, the first of the usual
# toolkit folders, or of Python's nvidia-* wheels (PyTorch's), that has it joins the search path.
vn_cuda_extra=""
vn_ldcache=$( (/sbin/ldconfig -p 2>/dev/null || ldconfig -p 2>/dev/null) | awk '{print $1}')
for vn_lib in $vn_cuda_needed; do
    grep -qx "$vn_lib" <<<"$vn_ldcache" && continue
    [[ -e $vn_cuda_lib/$vn_lib ]] && continue
    for vn_dir in /usr/local/cuda/lib64 /usr/local/cuda/targets/x86_64-linux/lib /usr/local/cuda-*/lib64 \
                  /usr/local/cuda-*/targets/x86_64-linux/lib /usr/lib/x86_64-linux-gnu \
                  $(python3 -c 'import site; print(" ".join(site.getsitepackages()))' 2>/dev/null |
                    xargs -n1 2>/dev/null | sed 's|$|/nvidia/*/lib|'); do
        for vn_d in $vn_dir; do
            if [[ -e $vn_d/$vn_lib ]]; then
                [[ :$vn_cuda_extra: == *:$vn_d:* ]] || vn_cuda_extra=$vn_cuda_extra:$vn_d
                break 2
            fi
        done
    done
done
vn_runtime=system
vn_ld=$vn_libdir:$vn_cuda_lib$vn_cuda_extra${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
if [[ -z $vn_have_glibc ]] ||
   [[ $(printf '%s\n%s\n' "$vn_need_glibc" "$vn_have_glibc" | sort -V | head -1) != "$vn_need_glibc" ]]; then
    vn_runtime="bundled glibc and libstdc++ (system glibc ${vn_have_glibc:-unknown}, needs $vn_need_glibc)"
    vn_ld=$vn_libdir:$vn_libdir/runtime:$vn_libdir/cxx:$vn_cuda_lib$vn_cuda_extra${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
elif [[ -z $vn_libstdcxx ]] || ! grep -qa "GLIBCXX_$vn_need_glibcxx" "$vn_libstdcxx" 2>/dev/null; then
    vn_runtime="bundled libstdc++ (system ${vn_libstdcxx:-none} lacks GLIBCXX_$vn_need_glibcxx)"
    vn_ld=$vn_libdir:$vn_libdir/cxx:$vn_cuda_lib$vn_cuda_extra${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
fi
# The CLI finds the module next to itself; through the bundled loader /proc/self/exe is the
# loader, so say where it is.
export VAHANORM_CUDA_PLUGIN=$vn_bundle/bin/libvahanorm-cuda.so
# vn_run PROGRAM ARGS...: runs bin/PROGRAM with the bundle's libraries (LD_LIBRARY_PATH only for
# that process, so Python and the system tools keep theirs).
vn_run() {
    local prog=$1; shift
    case $vn_runtime in
        "bundled glibc"*)
            "$vn_libdir/runtime/ld-linux-x86-64.so.2" --library-path "$vn_ld" "$vn_bundle/bin/$prog" "$@" ;;
        *) LD_LIBRARY_PATH=$vn_ld "$vn_bundle/bin/$prog" "$@" ;;
    esac
}
EOF
cat >"$bundle/bin/vn" <<'EOF'
#!/usr/bin/env bash
# vn PROGRAM ARGS...: runs the bundle's bin/PROGRAM on this machine (bin/vn-env).
source "$(dirname "${BASH_SOURCE[0]}")/vn-env"
[[ $# -ge 1 && -x $vn_bundle/bin/$1 ]] || { echo "usage: vn PROGRAM ARGS... (a program in $vn_bundle/bin)" >&2; exit 64; }
case $vn_runtime in
    "bundled glibc"*) exec "$vn_libdir/runtime/ld-linux-x86-64.so.2" --library-path "$vn_ld" "$vn_bundle/bin/$1" "${@:2}" ;;
    *) LD_LIBRARY_PATH=$vn_ld exec "$vn_bundle/bin/$1" "${@:2}" ;;
esac
EOF
chmod +x "$bundle/bin/vn"

# ---- 3. small synthetic inputs ------------------------------------------------------------
note "generating synthetic inputs"
data=$bundle/data
mkdir -p "$data/tiles" "$data/odd"
tiles_bin=$bundle/bin/vahanorm-synth-tiles
"$tiles_bin" "$data/tiles" --count 16 --size 512 --ext jpg --quality 90 --reference "$data/reference.jpg"
"$tiles_bin" "$data/odd" --count 0 --awkward --ext png
"$bundle/bin/make-synthetic-slide" "$data/slide.svs" --width 4000 --height 3000 --quality 80 --seed 7 >/dev/null
"$bundle/bin/vahanorm" -q fit --ref "$data/reference.jpg" -o "$data/target.json"
"$bundle/bin/vahanorm" -q estimate "$data/tiles/tile_0001.jpg" -o "$data/source.json"

# ---- 4. the Python GPU normalizers' wheels ------------------------------------------------
# Only the pure-Python packages a PyTorch install lacks: the two packages, kornia (+ packaging)
# and tqdm. Not torch, numpy, torchvision, OpenCV, SciPy, SPAMS, matplotlib or kornia-rs (binary,
# MBs to tens of MBs each): the benchmark (scripts/bench/gpu_tools.py) uses the packages' GPU
# code paths, which do not call them, and lists what it stands in for.
if [[ ${VN_BUNDLE_WHEELS:-1} != 0 ]]; then
    note "downloading wheels"
    python3 -m pip download -q --no-deps -d "$bundle/wheels" --only-binary=:all: --python-version 3.12 \
        --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux2014_x86_64 \
        wsi-normalizer==1.0.1 torch-staintools==1.0.7 "kornia~=0.8.2" packaging tqdm \
        >"$build/bundle-wheels.log" 2>&1 || { tail -20 "$build/bundle-wheels.log" >&2; die "pip download failed"; }
fi
cp "$repo/scripts/bench/gpu_tools.py" "$bundle/bin/"

# ---- 5. the libraries compressed, size, manifest ---------------------------------------------
lib_list=$(cd "$bundle/lib" && find . -type f -printf '%s\t%p\n' | sort -k2)
tar -czf "$bundle/lib.tar.gz" -C "$bundle/lib" .
rm -rf "$bundle/lib"
size_kib=$(du -sk "$bundle" | cut -f1)
(( size_kib < limit_mib * 1024 )) || die "bundle is $((size_kib / 1024)) MiB, over the ${limit_mib} MiB limit"
{
    echo "vahanorm device bundle: $(git -C "$repo" describe --always --dirty 2>/dev/null || echo unknown)," \
         "built $(date -u +%Y-%m-%dT%H:%M:%SZ) for sm_$archs with $(nvcc --version | tail -2 | head -1)"
    echo "needs glibc >= $need_glibc, GLIBCXX_$need_glibcxx (else the bundled runtime is used)"
    (cd "$bundle" && find . -type f ! -name MANIFEST -printf '%s\t%p\n' | sort -k2)
    echo "lib.tar.gz holds (unpacked under \$TMPDIR at first use by bin/vn-env):"
    sed 's|\t\./|\tlib/|' <<<"$lib_list"
} >"$bundle/MANIFEST"
note "bundle: $((size_kib / 1024)) MiB, $(find "$bundle" -type f | wc -l) files (list: $bundle/MANIFEST)"
echo "$bundle"
