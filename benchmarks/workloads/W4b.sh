# SPDX-License-Identifier: Apache-2.0
# W4b (LSTM batch scoring throughput, batch 1024) for benchmarks/compare: sourced by it.
# One line per peer and thread count, ratio = uvp_seq_per_s / peer_seq_per_s:
#   W4b threads=<t> uvp_seq_per_s=<> peer=libtorch peer_seq_per_s=<> ratio=<> peer_blas=<>
#   W4b threads=<t> uvp_seq_per_s=<> peer=onnxruntime peer_seq_per_s=<> ratio=<> max_abs_diff=<>
#       same_outputs=yes|no uvp_cpu_ms=<> peer_cpu_ms=<> cpu_ratio=<peer/uvp> ort_call_overhead_us=<>
#       peer_version=onnxruntime-node@<>
# (as in W4a.sh; ort_call_overhead_us is paid once per batch of 1,024; *_cpu_ms: process CPU time
# per batch, all threads, which other programs on a shared machine do not inflate)

# w4b_torch_line <threads> <uvp seq/s>: the LibTorch peer's line
w4b_torch_line() {
  local t=$1 rate=$2 line
  log "running w4_lstm_inference_torch --mode throughput --threads $t"
  line=$(measure env "${BLAS_ENV[@]}" "$W4B_TORCH" --mode throughput --threads "$t" --reps 5 2>"$WORK/w4b_torch_$t.err" | tee "$WORK/w4b_torch_$t.log" | tail -1)
  if [[ $line != *peer_seq_per_s=* ]]; then
    echo "W4b threads=$t uvp_seq_per_s=$(fmt "$rate") limit_frac=$(limit_frac fma "$t" "$W4_FLOPS_PER_SEQ" "$(div 1000 "$rate" 6)") peer=libtorch skipped: the peer failed (see $WORK/w4b_torch_$t.err)"
    return
  fi
  local prate pblas pcore
  prate=$(sed -n 's/.*peer_seq_per_s=\([^ ]*\).*/\1/p' <<<"$line")
  pblas=$(sed -n 's/.*blas=\([^ ]*\).*/\1/p' <<<"$line")
  pcore=$(sed -n 's/.*openblas_core=\([^ ]*\).*/\1/p' <<<"$line")
  echo "W4b threads=$t uvp_seq_per_s=$(fmt "$rate") limit_frac=$(limit_frac fma "$t" "$W4_FLOPS_PER_SEQ" "$(div 1000 "$rate" 6)") peer=libtorch peer_seq_per_s=$(fmt "$prate") ratio=$(div "$rate" "$prate")" \
    "peer_blas=$(basename "$pblas"):$pcore"
}

# w4b_ort_line <threads> <uvp seq/s> <uvp cpu ms per batch>: the ONNX Runtime peer's line
w4b_ort_line() {
  local t=$1 rate=$2 cpu=$3 line
  line=$(ort_run throughput "$t" "$WORK/w4b_ort_$t")
  if [[ $line != *peer_seq_per_s=* ]]; then
    echo "W4b threads=$t uvp_seq_per_s=$(fmt "$rate") limit_frac=$(limit_frac fma "$t" "$W4_FLOPS_PER_SEQ" "$(div 1000 "$rate" 6)") peer=onnxruntime skipped: the peer failed (see $WORK/w4b_ort_$t.err)"
    return
  fi
  local prate pcpu diff over ver
  prate=$(sed -n 's/.*peer_seq_per_s=\([^ ]*\).*/\1/p' <<<"$line")
  pcpu=$(sed -n 's/.*peer_cpu_ms=\([^ ]*\).*/\1/p' <<<"$line")
  diff=$(sed -n 's/.*max_abs_diff=\([^ ]*\).*/\1/p' <<<"$line")
  over=$(sed -n 's/.*ort_call_overhead_us=\([^ ]*\).*/\1/p' <<<"$line")
  ver=$(sed -n 's/^ort=\([^ ]*\).*/\1/p' <<<"$line")
  echo "W4b threads=$t uvp_seq_per_s=$(fmt "$rate") limit_frac=$(limit_frac fma "$t" "$W4_FLOPS_PER_SEQ" "$(div 1000 "$rate" 6)") peer=onnxruntime peer_seq_per_s=$(fmt "$prate") ratio=$(div "$rate" "$prate")" \
    "max_abs_diff=$(fmt "$diff" 3) same_outputs=$(awk -v d="$diff" 'BEGIN { print (d <= 1e-5 ? "yes" : "no") }')" \
    "uvp_cpu_ms=$(fmt "$cpu") peer_cpu_ms=$(fmt "$pcpu") cpu_ratio=$(div "$pcpu" "$cpu")" \
    "ort_call_overhead_us=$(fmt "$over") peer_version=onnxruntime-node@$ver"
}

workload_W4b() {
  local bin out=$WORK/w4b_uvp.json t why= owhy=
  uvp_bench bench_w4_lstm_inference || { skip W4b "$BUILD_REASON"; return; }
  bin=$BIN
  [[ -x $PY ]] || { skip W4b "$PY not found (needed to read benchmark results)"; return; }
  setup_blas
  run_bench "$bin" 'W4b_lstm_uvp/' "$out"
  W4B_TORCH=
  if torch_peer w4_lstm_inference; then W4B_TORCH=$BIN; else why=$BUILD_REASON; fi
  ort_peer "$bin" || owhy=$BUILD_REASON
  for t in $THREADS; do
    local rate cpu
    rate=$(bench_value "$out" W4b_lstm_uvp "$t" seq_per_s)
    if is_error "$rate"; then skip W4b "threads=$t uvp: ${rate#error: }"; continue; fi
    cpu=$(bench_value "$out" W4b_lstm_uvp "$t" cpu_ms)
    is_error "$cpu" && cpu=nan
    if [[ -n $W4B_TORCH ]]; then w4b_torch_line "$t" "$rate"
    else echo "W4b threads=$t uvp_seq_per_s=$(fmt "$rate") limit_frac=$(limit_frac fma "$t" "$W4_FLOPS_PER_SEQ" "$(div 1000 "$rate" 6)") peer=libtorch skipped: $why"; fi
    if [[ -z $owhy ]]; then w4b_ort_line "$t" "$rate" "$cpu"; else echo "W4b threads=$t uvp_seq_per_s=$(fmt "$rate") limit_frac=$(limit_frac fma "$t" "$W4_FLOPS_PER_SEQ" "$(div 1000 "$rate" 6)") peer=onnxruntime skipped: $owhy"; fi
  done
}
