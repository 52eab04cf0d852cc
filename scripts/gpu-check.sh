#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The GPU check of uvp's CUDA backend, one command for a machine with an NVIDIA GPU (issue #16):
# configures the cuda preset for the GPU it finds (its compute capability, else 90), with the GPU
# benchmarks and the GPU example, builds, runs every CUDA test (ctest -L cuda, the GPU example
# included) and bench_cuda_workloads (W2, W3, W4b, W6 on the device), then uvp's own CPU W2, W3,
# W4b and W6 at 2 threads in the same run, and prints a summary:
#
#   gpu: <name> (sm_<cc>), driver <version>
#   cuda_tests: <n>% tests passed, <f> tests failed out of <total>   (+ cuda_tests_skipped: <n>)
#   W2 gpu_ms=… cpu2_ms=… speedup=… target=5 met=yes|no   (cpu2: uvp's CPU, 2 threads)
#   W3 gpu_ms=… cpu2_ms=… speedup=…
#   W4b gpu_seq_per_s=… cpu2_seq_per_s=… speedup=…
#   W6 gpu_sgemm_gflops=… gpu_dgemm_gflops=… cpu2_gflops=…
#
# Sized for one device session: the build is most of it (6 min cold on a 2-core machine without a
# GPU; not yet timed on a GPU host). Without a GPU it still builds and runs the tests (they exit
# 77: skipped, no CUDA device) and says so; exit status: 0 when every test passed, 1 otherwise.
# Usage: scripts/gpu-check.sh [--no-cpu]   (--no-cpu: skip the CPU benchmarks)
set -euo pipefail
cd "$(dirname "$0")/.."
cpu=1
for a in "$@"; do
  case "$a" in
    --no-cpu) cpu=0 ;;
    -h|--help) sed -n '3,19p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "gpu-check.sh: unknown argument '$a' (try --help)" >&2; exit 2 ;;
  esac
done
start=$SECONDS
bash scripts/install-deps.sh libbenchmark-dev
nvcc=/usr/local/cuda/bin/nvcc
[ -x "$nvcc" ] || nvcc="$(command -v nvcc || true)"
if [ -z "$nvcc" ]; then echo "gpu-check: no nvcc (the CUDA toolkit is needed)" >&2; exit 1; fi

gpu="none" arch=90
if command -v nvidia-smi >/dev/null && nvidia-smi -L >/dev/null 2>&1; then
  gpu="$(nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | head -1)"
  cc="$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader | head -1 | tr -d ' .')"
  [ -n "$cc" ] && arch="$cc"
fi
build=build/gpu-check
jobs="$(nproc)"
export CMAKE_CXX_COMPILER_LAUNCHER="${CMAKE_CXX_COMPILER_LAUNCHER:-$(command -v ccache || true)}"
echo "== configure (cuda preset, sm_$arch) =="
cmake --preset cuda -B "$build" -DCMAKE_CUDA_COMPILER="$nvcc" -DCMAKE_CUDA_ARCHITECTURES="$arch" \
  -DUVP_BUILD_BENCHMARKS=ON -DUVP_BUILD_EXAMPLES=ON -DUVP_WERROR=ON >/dev/null
echo "== build =="
cmake --build "$build" -j "$jobs"  # CUDA tests, consumers, examples (purchase_lstm_gpu), benchmarks
echo "== CUDA tests =="
status=0
ctest --test-dir "$build" -L cuda -j "$jobs" --output-on-failure | tee "$build/ctest-cuda.log" || status=1
echo "== GPU benchmarks =="
"$build/benchmarks/cuda/bench_cuda_workloads" --reps 50 | tee "$build/gpu-bench.log" || status=1

# CPU figures of the same build, 2 threads (Google Benchmark's median of repetitions).
cpu_median() {  # <program> <filter> <counter or real_time>: the median row's value
  "$build/benchmarks/$1" --benchmark_filter="$2" --benchmark_format=csv 2>/dev/null |
    awk -F, -v want="$3" 'NR == 1 { for (i = 1; i <= NF; i++) { h = $i; gsub(/"/, "", h); col[h] = i } next }
      $1 ~ /_median"?$/ { v = $col[want]; found = 1; next }
      !found { v = $col[want] } END { print v }'
}
if [ $cpu -eq 1 ]; then
  echo "== CPU benchmarks (2 threads) =="
  w2_cpu="$(cpu_median bench_w2_lstm 'W2_lstm_uvp/threads:2' real_time)"
  w3_cpu="$(cpu_median bench_w3_attention 'W3_attention_step_uvp/threads:2' real_time)"
  w4_cpu="$(cpu_median bench_w4_lstm_inference 'W4b_lstm_uvp/threads:2' seq_per_s)"
  w6_cpu="$(cpu_median bench_w6_gemm 'W6_gemm_uvp/threads:2' GFLOPS)"
fi

field() { { grep -m1 "^$1 " "$build/gpu-bench.log" | grep -o "$2" | head -1 | grep -o '[0-9.]*' | head -1; } || true; }
w2_gpu="$(field W2 '[0-9.]* ms/step')"
w3_gpu="$(field W3 '[0-9.]* ms/step')"
w4_gpu="$(field W4b '[0-9.]* sequences/s')"
w6_s="$(grep -m1 '^W6 .*float' "$build/gpu-bench.log" | grep -o '[0-9.]* GFLOP/s' | grep -o '^[0-9.]*' || true)"
w6_d="$(grep -m1 '^W6 .*double' "$build/gpu-bench.log" | grep -o '[0-9.]* GFLOP/s' | grep -o '^[0-9.]*' || true)"
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a > 0 && b > 0) printf "%.2f", a / b; else print "n/a" }'; }

echo
echo "== summary ($(( SECONDS - start )) s) =="
echo "gpu: $gpu (sm_$arch)"
grep -Eo '[0-9]+% tests passed, [0-9]+ tests failed out of [0-9]+' "$build/ctest-cuda.log" | sed 's/^/cuda_tests: /' || true
skipped="$(grep -c '(Skipped)' "$build/ctest-cuda.log" || true)"
if [ "$skipped" != 0 ]; then echo "cuda_tests_skipped: $skipped (exit 77: no CUDA device)"; fi
if [ -n "$w2_gpu" ]; then
  sp="$(ratio "${w2_cpu:-0}" "$w2_gpu")"
  met="$(awk -v s="$sp" 'BEGIN { print (s + 0 >= 5) ? "yes" : "no" }')"
  echo "W2 gpu_ms=$w2_gpu cpu2_ms=${w2_cpu:-n/a} speedup=$sp target=5 met=$met"
  echo "W3 gpu_ms=$w3_gpu cpu2_ms=${w3_cpu:-n/a} speedup=$(ratio "${w3_cpu:-0}" "$w3_gpu")"
  echo "W4b gpu_seq_per_s=$w4_gpu cpu2_seq_per_s=${w4_cpu:-n/a} speedup=$(ratio "$w4_gpu" "${w4_cpu:-0}")"
  echo "W6 gpu_sgemm_gflops=$w6_s gpu_dgemm_gflops=$w6_d cpu2_gflops=${w6_cpu:-n/a}"
else
  echo "GPU workloads: skipped (no CUDA device)"
  if [ $cpu -eq 1 ]; then
    echo "cpu2: W2 ${w2_cpu:-n/a} ms, W3 ${w3_cpu:-n/a} ms, W4b ${w4_cpu:-n/a} seq/s, W6 ${w6_cpu:-n/a} GFLOP/s"
  fi
fi
exit $status
