# SPDX-License-Identifier: Apache-2.0
# W4b (LSTM batch scoring throughput, batch 1024) for benchmarks/compare: sourced by it.
#   W4b threads=<t> uvp_seq_per_s=<> peer=libtorch peer_seq_per_s=<> ratio=<uvp/peer>
workload_W4b() {
  local bin peer out=$WORK/w4b_uvp.json t why=
  uvp_bench bench_w4_lstm_inference || { skip W4b "$BUILD_REASON"; return; }
  bin=$BIN
  [[ -x $PY ]] || { skip W4b "$PY not found (needed to read benchmark results)"; return; }
  setup_blas
  run_bench "$bin" 'W4b_lstm_uvp/' "$out"
  if torch_peer w4_lstm_inference; then peer=$BIN; else peer=; why=$BUILD_REASON; fi
  for t in $THREADS; do
    local rate
    rate=$(bench_value "$out" W4b_lstm_uvp "$t" seq_per_s)
    if is_error "$rate"; then skip W4b "threads=$t uvp: ${rate#error: }"; continue; fi
    if [[ -z $peer ]]; then echo "W4b threads=$t uvp_seq_per_s=$(fmt "$rate") peer=libtorch skipped: $why"; continue; fi
    log "running w4_lstm_inference_torch --mode throughput --threads $t"
    local line
    line=$(env "${BLAS_ENV[@]}" "$peer" --mode throughput --threads "$t" --reps 5 2>"$WORK/w4b_torch_$t.err" | tee "$WORK/w4b_torch_$t.log" | tail -1)
    if [[ $line != *peer_seq_per_s=* ]]; then
      echo "W4b threads=$t uvp_seq_per_s=$(fmt "$rate") peer=libtorch skipped: the peer failed (see $WORK/w4b_torch_$t.err)"
      continue
    fi
    local prate pblas pcore
    prate=$(sed -n 's/.*peer_seq_per_s=\([^ ]*\).*/\1/p' <<<"$line")
    pblas=$(sed -n 's/.*blas=\([^ ]*\).*/\1/p' <<<"$line")
    pcore=$(sed -n 's/.*openblas_core=\([^ ]*\).*/\1/p' <<<"$line")
    echo "W4b threads=$t uvp_seq_per_s=$(fmt "$rate") peer=libtorch peer_seq_per_s=$(fmt "$prate") ratio=$(div "$rate" "$prate")" \
      "peer_blas=$(basename "$pblas"):$pcore"
  done
}
