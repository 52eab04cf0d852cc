# SPDX-License-Identifier: Apache-2.0
# W4a (LSTM inference latency, batch 1) for benchmarks/compare: sourced by it, uses its helpers.
# One line per peer and thread count, ratio = peer_p50 / uvp_p50:
#   W4a threads=<t> uvp_p50_us=<> uvp_p99_us=<> allocs_per_call=<> peer=libtorch peer_p50_us=<>
#       peer_p99_us=<> ratio=<> peer_blas=<>
#   W4a threads=<t> uvp_p50_us=<> uvp_p99_us=<> allocs_per_call=<> peer=onnxruntime peer_p50_us=<>
#       peer_p99_us=<> ratio=<> max_abs_diff=<> same_outputs=yes|no ort_call_overhead_us=<>
#       peer_version=onnxruntime-node@<>
# (max_abs_diff: ONNX Runtime's logits against uvp's; ort_call_overhead_us: the p50 of a call of a
# one-element Add model through the same binding, part of every peer_*_us.)

# w4a_torch_line <threads> <head> <uvp p50>: the LibTorch peer's line
w4a_torch_line() {
  local t=$1 head=$2 p50=$3 line
  log "running w4_lstm_inference_torch --mode latency --threads $t"
  line=$(measure env "${BLAS_ENV[@]}" "$W4A_TORCH" --mode latency --threads "$t" 2>"$WORK/w4a_torch_$t.err" | tee "$WORK/w4a_torch_$t.log" | tail -1)
  if [[ $line != *peer_p50_us=* ]]; then
    echo "$head peer=libtorch skipped: the peer failed (see $WORK/w4a_torch_$t.err)"
    return
  fi
  local pp50 pp99 pblas pcore
  pp50=$(sed -n 's/.*peer_p50_us=\([^ ]*\).*/\1/p' <<<"$line")
  pp99=$(sed -n 's/.*peer_p99_us=\([^ ]*\).*/\1/p' <<<"$line")
  pblas=$(sed -n 's/.*blas=\([^ ]*\).*/\1/p' <<<"$line")
  pcore=$(sed -n 's/.*openblas_core=\([^ ]*\).*/\1/p' <<<"$line")
  echo "$head peer=libtorch peer_p50_us=$(fmt "$pp50") peer_p99_us=$(fmt "$pp99") ratio=$(div "$pp50" "$p50")" \
    "peer_blas=$(basename "$pblas"):$pcore"
}

# w4a_ort_line <threads> <head> <uvp p50>: the ONNX Runtime peer's line
w4a_ort_line() {
  local t=$1 head=$2 p50=$3 line
  line=$(ort_run latency "$t" "$WORK/w4a_ort_$t")
  if [[ $line != *peer_p50_us=* ]]; then
    echo "$head peer=onnxruntime skipped: the peer failed (see $WORK/w4a_ort_$t.err)"
    return
  fi
  local pp50 pp99 diff over ver
  pp50=$(sed -n 's/.*peer_p50_us=\([^ ]*\).*/\1/p' <<<"$line")
  pp99=$(sed -n 's/.*peer_p99_us=\([^ ]*\).*/\1/p' <<<"$line")
  diff=$(sed -n 's/.*max_abs_diff=\([^ ]*\).*/\1/p' <<<"$line")
  over=$(sed -n 's/.*ort_call_overhead_us=\([^ ]*\).*/\1/p' <<<"$line")
  ver=$(sed -n 's/^ort=\([^ ]*\).*/\1/p' <<<"$line")
  echo "$head peer=onnxruntime peer_p50_us=$(fmt "$pp50") peer_p99_us=$(fmt "$pp99") ratio=$(div "$pp50" "$p50")" \
    "max_abs_diff=$(fmt "$diff" 3) same_outputs=$(awk -v d="$diff" 'BEGIN { print (d <= 1e-5 ? "yes" : "no") }')" \
    "ort_call_overhead_us=$(fmt "$over") peer_version=onnxruntime-node@$ver"
}

workload_W4a() {
  local bin out=$WORK/w4a_uvp.json t why= owhy=
  uvp_bench bench_w4_lstm_inference || { skip W4a "$BUILD_REASON"; return; }
  bin=$BIN
  [[ -x $PY ]] || { skip W4a "$PY not found (needed to read benchmark results)"; return; }
  setup_blas
  run_bench "$bin" 'W4a_lstm_uvp/' "$out"
  W4A_TORCH=
  if torch_peer w4_lstm_inference; then W4A_TORCH=$BIN; else why=$BUILD_REASON; fi
  ort_peer "$bin" || owhy=$BUILD_REASON
  for t in $THREADS; do
    local p50 p99 allocs
    p50=$(bench_value "$out" W4a_lstm_uvp "$t" p50_us)
    if is_error "$p50"; then skip W4a "threads=$t uvp: ${p50#error: }"; continue; fi
    p99=$(bench_value "$out" W4a_lstm_uvp "$t" p99_us)
    allocs=$(bench_value "$out" W4a_lstm_uvp "$t" allocs_per_call)
    local head="W4a threads=$t uvp_p50_us=$(fmt "$p50") uvp_p99_us=$(fmt "$p99") allocs_per_call=$(fmt "$allocs") limit_frac=$(limit_frac fma "$t" "$W4_FLOPS_PER_SEQ" "$(div "$p50" 1000 6)")"
    if [[ -n $W4A_TORCH ]]; then w4a_torch_line "$t" "$head" "$p50"; else echo "$head peer=libtorch skipped: $why"; fi
    if [[ -z $owhy ]]; then w4a_ort_line "$t" "$head" "$p50"; else echo "$head peer=onnxruntime skipped: $owhy"; fi
  done
}
