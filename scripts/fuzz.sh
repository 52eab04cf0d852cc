#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Builds uvp's libFuzzer targets with clang (ASan + UBSan, float-cast-overflow included, every report
# fatal) and runs each for a fixed time from its committed seed corpus. Fails on any finding: the
# crashing input is kept in build/fuzz/findings/<target>/ (add it to tests/fuzz/corpus/<target>/ once
# fixed, so the replay test keeps it). CI runs 60 s per target; run longer by hand.
# Usage: scripts/fuzz.sh [seconds per target (60)] [target ...]   targets: csv model_file cdnow_clv safetensors
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-60}"
shift || true
targets=("$@")
[ ${#targets[@]} -eq 0 ] && targets=(csv model_file cdnow_clv safetensors)
bash scripts/install-deps.sh clang-14 libclang-rt-14-dev
export CMAKE_CXX_COMPILER_LAUNCHER="${CMAKE_CXX_COMPILER_LAUNCHER:-$(command -v ccache || true)}"
san="-fsanitize=address,undefined,float-cast-overflow -fno-sanitize-recover=all -fno-omit-frame-pointer"
cmake -S . -B build/fuzz -DCMAKE_BUILD_TYPE=Fuzz -DCMAKE_CXX_COMPILER=clang++-14 \
  -DCMAKE_CXX_FLAGS="-O1 -gline-tables-only $san" -DUVP_WITH_OPENMP=OFF -DUVP_BUILD_FUZZERS=ON -DUVP_TEST_FILTER='^fuzz_' \
  -DUVP_HEADER_CHECK=OFF -DUVP_BUILD_EXAMPLES=OFF -DUVP_BUILD_BENCHMARKS=OFF >/dev/null
cmake --build build/fuzz -j "$(nproc)" --target "${targets[@]/#/fuzz_}"

# All targets at once (each on a scratch copy of its corpus): on CI's 2 cores three targets share
# them, which still runs each for the full time.
export ASAN_OPTIONS="detect_leaks=1:allocator_may_return_null=1"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
run() {
  local t="$1" work="build/fuzz/work/$1" out="build/fuzz/findings/$1"
  rm -rf "$work" "$out"; mkdir -p "$work" "$out"
  cp tests/fuzz/corpus/"$t"/* "$work"/
  if build/fuzz/tests/fuzz/fuzz_"$t" "$work" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
      -max_len=65536 -print_final_stats=1 -artifact_prefix="$out/" >"build/fuzz/$t.log" 2>&1; then
    echo "fuzz_$t: clean, $(grep -m1 -o 'stat::number_of_executed_units: *[0-9]*' "build/fuzz/$t.log" | grep -o '[0-9]*$') inputs in ${seconds} s"
  else
    echo "fuzz_$t: FINDING (log: build/fuzz/$t.log, input: $out/)"; tail -40 "build/fuzz/$t.log"; return 1
  fi
}
status=0
pids=()
for t in "${targets[@]}"; do run "$t" & pids+=($!); done
for p in "${pids[@]}"; do wait "$p" || status=1; done
exit $status
