# SPDX-License-Identifier: Apache-2.0
# W4a (LSTM inference latency, batch 1) for benchmarks/compare: sourced by it, uses its helpers.
#   W4a threads=<t> uvp_p50_us=<> uvp_p99_us=<> allocs_per_call=<> peer=libtorch peer_p50_us=<>
#       peer_p99_us=<> ratio=<peer_p50/uvp_p50>
workload_W4a() {
  local bin peer out=$WORK/w4a_uvp.json t why=
  uvp_bench bench_w4_lstm_inference || { skip W4a "$BUILD_REASON"; return; }
  bin=$BIN
  [[ -x $PY ]] || { skip W4a "$PY not found (needed to read benchmark results)"; return; }
  setup_blas
  run_bench "$bin" 'W4a_lstm_uvp/' "$out"
  if torch_peer w4_lstm_inference; then peer=$BIN; else peer=; why=$BUILD_REASON; fi
  for t in $THREADS; do
    local p50 p99 allocs
    p50=$(bench_value "$out" W4a_lstm_uvp "$t" p50_us)
    if is_error "$p50"; then skip W4a "threads=$t uvp: ${p50#error: }"; continue; fi
    p99=$(bench_value "$out" W4a_lstm_uvp "$t" p99_us)
    allocs=$(bench_value "$out" W4a_lstm_uvp "$t" allocs_per_call)
    local head="W4a threads=$t uvp_p50_us=$(fmt "$p50") uvp_p99_us=$(fmt "$p99") allocs_per_call=$(fmt "$allocs")"
    if [[ -z $peer ]]; then echo "$head peer=libtorch skipped: $why"; continue; fi
    log "running w4_lstm_inference_torch --mode latency --threads $t"
    local line
    line=$(env "${BLAS_ENV[@]}" "$peer" --mode latency --threads "$t" 2>"$WORK/w4a_torch_$t.err" | tee "$WORK/w4a_torch_$t.log" | tail -1)
    if [[ $line != *peer_p50_us=* ]]; then
      echo "$head peer=libtorch skipped: the peer failed (see $WORK/w4a_torch_$t.err)"
      continue
    fi
    local pp50 pp99 pblas pcore
    pp50=$(sed -n 's/.*peer_p50_us=\([^ ]*\).*/\1/p' <<<"$line")
    pp99=$(sed -n 's/.*peer_p99_us=\([^ ]*\).*/\1/p' <<<"$line")
    pblas=$(sed -n 's/.*blas=\([^ ]*\).*/\1/p' <<<"$line")
    pcore=$(sed -n 's/.*openblas_core=\([^ ]*\).*/\1/p' <<<"$line")
    echo "$head peer=libtorch peer_p50_us=$(fmt "$pp50") peer_p99_us=$(fmt "$pp99") ratio=$(div "$pp50" "$p50")" \
      "peer_blas=$(basename "$pblas"):$pcore"
  done
}
