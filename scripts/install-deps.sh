#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Installs what building and testing uvp needs on Debian 12 / Ubuntu, skipping what is present.
# Usage: scripts/install-deps.sh [extra Debian packages...]
set -euo pipefail

packages=(cmake g++ make pkg-config libeigen3-dev libxsimd-dev doctest-dev libbenchmark-dev ccache "$@")
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -eq 0 ]; then sudo=""; else sudo="sudo"; fi
echo "uvp: installing ${missing[*]}" >&2
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
