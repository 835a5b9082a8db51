#!/usr/bin/env bash
# Installs the Debian/Ubuntu packages vahanorm builds and tests with (skips what is present).
set -euo pipefail
packages=(
  build-essential cmake ninja-build pkg-config
  libopenslide-dev libtiff-dev libpng-dev libjpeg-dev zlib1g-dev libzstd-dev libssl-dev libcairo2-dev
  libcli11-dev libspdlog-dev catch2 nlohmann-json3-dev
  # used by the tests and benchmarks only
  python3 python3-numpy python3-openslide python3-venv python3-dev python3-tifffile libvips-tools libtiff-tools
  patchelf  # scripts/device-bundle.sh: rpaths of the GPU bundle
  slurmctld slurmd slurm-client munge hyperfine bc time
)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  sudo=""
  [[ $(id -u) -eq 0 ]] || sudo="sudo"
  echo "installing: ${missing[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
