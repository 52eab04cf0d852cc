#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Builds uvp (Release, C++17, every header also compiled alone) and runs the
# whole test suite. Installs missing Debian packages first. Usage: scripts/test.sh [ctest args...]
set -euo pipefail
cd "$(dirname "$0")/.."
# Open MPI: the mpi-labelled tests run under mpirun (uvp::mpi is optional; without it they report skipped).
bash scripts/install-deps.sh libopenmpi-dev openmpi-bin
export CMAKE_CXX_COMPILER_LAUNCHER="${CMAKE_CXX_COMPILER_LAUNCHER:-$(command -v ccache || true)}"
jobs="$(nproc)"
cmake --preset release >/dev/null
cmake --build --preset release -j "$jobs"
ctest --preset release -j "$jobs" "$@"
