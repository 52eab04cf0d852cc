#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The main job: builds uvp's examples and runs the flagship one on the bundled real data,
# printing its metrics. Installs missing Debian packages first.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
export CMAKE_CXX_COMPILER_LAUNCHER="${CMAKE_CXX_COMPILER_LAUNCHER:-$(command -v ccache || true)}"
cmake --preset release >/dev/null
cmake --build --preset release -j "$(nproc)" --target purchase_intent_logreg
./build/release/examples/purchase_intent_logreg/purchase_intent_logreg "$@"
