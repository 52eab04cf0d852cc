# SPDX-License-Identifier: Apache-2.0
# W2 (LSTM training step) for benchmarks/compare: sourced by it, uses its helpers.
#   W2 threads=<t> uvp_ms=<median step> peer=libtorch peer_ms=<x> ratio=<peer/uvp> ... limit_frac=<f>
# limit_frac: the step's LSTM products (W2_FLOPS, benchmarks/compare) at the FMA peak of the same
# run and thread count, over uvp_ms.
workload_W2() {
  local bin peer out=$WORK/w2_uvp.json t why=
  uvp_bench bench_w2_lstm || { skip W2 "$BUILD_REASON"; return; }
  bin=$BIN
  [[ -x $PY ]] || { skip W2 "$PY not found (needed to read benchmark results)"; return; }
  setup_blas
  run_bench "$bin" 'W2_lstm_uvp/' "$out"
  if torch_peer w2_lstm; then peer=$BIN; else peer=; why=$BUILD_REASON; fi
  for t in $THREADS; do
    local ms cpu
    ms=$(bench_value "$out" W2_lstm_uvp "$t" real_time)
    if is_error "$ms"; then skip W2 "threads=$t uvp: ${ms#error: }"; continue; fi
    cpu=$(bench_value "$out" W2_lstm_uvp "$t" cpu_ms)
    local lf
    lf=$(limit_frac fma "$t" "$W2_FLOPS" "$ms")
    if [[ -z $peer ]]; then
      echo "W2 threads=$t uvp_ms=$(fmt "$ms") peer=libtorch skipped: $why limit_frac=$lf"
      continue
    fi
    log "running w2_lstm_torch --threads $t"
    local line
    line=$(measure env "${BLAS_ENV[@]}" "$peer" --threads "$t" --reps 5 2>"$WORK/w2_torch_$t.err" | tee "$WORK/w2_torch_$t.log" | tail -1)
    if [[ $line != *peer_ms=* ]]; then
      echo "W2 threads=$t uvp_ms=$(fmt "$ms") peer=libtorch skipped: the peer failed (see $WORK/w2_torch_$t.err) limit_frac=$lf"
      continue
    fi
    local pms pcpu pblas pcore
    pms=$(sed -n 's/.* peer_ms=\([^ ]*\).*/\1/p' <<<"$line")
    pcpu=$(sed -n 's/.*peer_cpu_ms=\([^ ]*\).*/\1/p' <<<"$line")
    pblas=$(sed -n 's/.*blas=\([^ ]*\).*/\1/p' <<<"$line")
    pcore=$(sed -n 's/.*openblas_core=\([^ ]*\).*/\1/p' <<<"$line")
    echo "W2 threads=$t uvp_ms=$(fmt "$ms") peer=libtorch peer_ms=$(fmt "$pms") ratio=$(div "$pms" "$ms")" \
      "uvp_cpu_ms=$(fmt "$cpu") peer_cpu_ms=$(fmt "$pcpu") cpu_ratio=$(div "$pcpu" "$cpu")" \
      "peer_blas=$(basename "$pblas"):$pcore limit_frac=$lf"
  done
}
