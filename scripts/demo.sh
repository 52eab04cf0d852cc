#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The main job: installs what is missing, builds uvp's example programs, runs each on the bundled
# real data, and writes a report (Markdown with the examples' SVG plots) comparing the models.
#
# usage: scripts/demo.sh [--out DIR] [--build-dir DIR] [--jobs N] [--no-deps]
#   --out DIR        where the report and every example's files go (default: demo-report)
#   --build-dir DIR  CMake build directory (default: build/release, the release preset's)
#   --jobs N         parallel compile jobs (default: nproc)
#   --no-deps        do not run scripts/install-deps.sh
#
# The examples run are those of this list whose examples/<name>/ exists, in this order; each must
# accept `--out DIR` and print its results as `name: value` lines on stdout (progress on stderr).
# Output: DIR/report.md, and per example DIR/<name>/ with its own files plus metrics.txt (its
# stdout), log.txt (its stderr), seconds.txt and cpu_seconds.txt (its wall and CPU time). Exits
# non-zero, naming the example, when a build or an example fails.
set -euo pipefail

examples=(purchase_intent_logreg purchase_lstm purchase_attention intent_conv1d pytorch_interop
          future_value_regression customer_lifetime_value clv_online_retail clv_discrete_contractual)

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
out="demo-report"
build="$root/build/release"
jobs="$(nproc 2>/dev/null || echo 2)"
deps=1
while [[ $# -gt 0 ]]; do
  case "$1" in
    --out) out="${2:?--out needs a directory}"; shift 2 ;;
    --build-dir) build="${2:?--build-dir needs a directory}"; shift 2 ;;
    --jobs) jobs="${2:?--jobs needs a number}"; shift 2 ;;
    --no-deps) deps=0; shift ;;
    -h|--help) sed -n '3,17p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "demo.sh: unknown argument '$1' (try --help)" >&2; exit 2 ;;
  esac
done
fail() { echo "demo.sh: $*" >&2; exit 1; }
now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }

t_start="$(now)"
[[ $deps -eq 1 ]] && bash "$root/scripts/install-deps.sh"
mkdir -p "$out"
out="$(cd "$out" && pwd)"

present=()
for name in "${examples[@]}"; do
  [[ -f "$root/examples/$name/CMakeLists.txt" ]] && present+=("$name")
done
[[ ${#present[@]} -gt 0 ]] || fail "no example found under $root/examples"

# Build only the examples' targets (compiling dominates the demo's time; ccache helps re-runs).
echo "== building ${present[*]} (Release, $jobs jobs)" >&2
t_build="$(now)"
if [[ -z "${CMAKE_CXX_COMPILER_LAUNCHER:-}" ]] && command -v ccache >/dev/null; then
  export CMAKE_CXX_COMPILER_LAUNCHER=ccache
fi
cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release >"$out/build.log" 2>&1 ||
  { tail -n 30 "$out/build.log" >&2; fail "CMake configure failed (full log: $out/build.log)"; }
cmake --build "$build" -j "$jobs" --target "${present[@]}" >>"$out/build.log" 2>&1 ||
  { grep -E "error|Error" "$out/build.log" | head -n 30 >&2; fail "building the examples failed (full log: $out/build.log)"; }
build_seconds="$(elapsed "$t_build")"

# Run each example; its files go to DIR/<name>/.
: >"$out/examples.txt"
for name in "${present[@]}"; do
  exe="$build/examples/$name/$name"
  [[ -x "$exe" ]] || fail "$name: no executable at $exe after the build"
  dir="$out/$name"
  rm -rf "$dir"
  mkdir -p "$dir"
  echo "== running $name" >&2
  status=0
  TIMEFORMAT='%R %U %S'  # wall, user and system seconds (CPU time tells more on a busy machine)
  { time (cd "$root" && "$exe" --out "$dir" >"$dir/metrics.txt" 2>"$dir/log.txt"); } 2>"$dir/time.txt" || status=$?
  awk '{ printf "%.1f\n", $1 }' "$dir/time.txt" >"$dir/seconds.txt"
  awk '{ printf "%.1f\n", $2 + $3 }' "$dir/time.txt" >"$dir/cpu_seconds.txt"
  if [[ $status -ne 0 ]]; then
    echo "demo.sh: $name failed with exit status $status; the end of its output:" >&2
    tail -n 20 "$dir/log.txt" "$dir/metrics.txt" >&2 || true
    exit 1
  fi
  grep -qE '^[A-Za-z0-9_]+: ' "$dir/metrics.txt" || fail "$name printed no 'name: value' line (see $dir/metrics.txt)"
  echo "$name" >>"$out/examples.txt"
done

bash "$root/scripts/report.sh" "$out" --build-seconds "$build_seconds" --total-seconds "$(elapsed "$t_start")"
