#!/usr/bin/env bash
# Installs the Debian/Ubuntu packages Inference Lab builds with, if any are missing.
# Idempotent: when everything is there it only checks (about a second).
set -euo pipefail

packages=(
  build-essential cmake ninja-build pkg-config git ca-certificates
  libeigen3-dev libcli11-dev libgtest-dev nlohmann-json3-dev libpcre2-dev
  doxygen graphviz libjs-mathjax gnuplot-nox python3 python3-pip
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "install_deps: all ${#packages[@]} packages present"
  exit 0
fi

echo "install_deps: installing ${missing[*]}"
sudo_cmd=()
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "install_deps: need root or sudo to install: ${missing[*]}" >&2; exit 1; }
  sudo_cmd=(sudo)
fi
export DEBIAN_FRONTEND=noninteractive
"${sudo_cmd[@]}" apt-get update -qq
"${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
