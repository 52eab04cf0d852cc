# SPDX-License-Identifier: Apache-2.0
# W3 (self-attention sequence model, one training step), sourced by benchmarks/compare.
# uvp: benchmarks/bench_w3_attention.cpp; peer: benchmarks/peers/libtorch/w3_attention.cpp. Both
# train the same model on the same 16 minibatches (benchmarks/support/w3_data.hpp) and report
# the median step time; ratio = peer / uvp. limit_frac: the step's attention products (the
# benchmark's flops counter, over each sequence's valid steps) at the FMA peak of the same run and
# thread count, over uvp_ms.
workload_W3() {
  local bin peer out=$WORK/w3_uvp.json t why=
  uvp_bench bench_w3_attention || { skip W3 "$BUILD_REASON"; return; }
  bin=$BIN
  [[ -x $PY ]] || { skip W3 "$PY not found (needed to read benchmark results)"; return; }
  setup_blas
  run_bench "$bin" 'W3_attention_step_uvp/' "$out"
  if torch_peer w3_attention; then peer=$BIN; else peer=; why=$BUILD_REASON; fi
  for t in $THREADS; do
    local ms cpu
    ms=$(bench_value "$out" W3_attention_step_uvp "$t" real_time)
    if is_error "$ms"; then skip W3 "threads=$t uvp: ${ms#error: }"; continue; fi
    cpu=$(bench_value "$out" W3_attention_step_uvp "$t" cpu_ms)
    local lf
    lf=$(limit_frac fma "$t" "$(bench_value "$out" W3_attention_step_uvp "$t" flops)" "$ms")
    if [[ -z $peer ]]; then
      echo "W3 threads=$t uvp_ms=$(fmt "$ms") peer=libtorch skipped: $why limit_frac=$lf"
      continue
    fi
    log "running w3_attention_torch --threads $t"
    local line
    line=$(measure env "${BLAS_ENV[@]}" "$peer" --threads "$t" --reps 5 --steps 200 2>"$WORK/w3_torch_$t.err" | tee "$WORK/w3_torch_$t.log" | tail -1)
    if [[ $line != *peer_ms=* ]]; then
      echo "W3 threads=$t uvp_ms=$(fmt "$ms") peer=libtorch skipped: the peer failed (see $WORK/w3_torch_$t.err) limit_frac=$lf"
      continue
    fi
    local pms pcpu pblas pcore
    pms=$(sed -n 's/.* peer_ms=\([^ ]*\).*/\1/p' <<<"$line")
    pcpu=$(sed -n 's/.*peer_cpu_ms=\([^ ]*\).*/\1/p' <<<"$line")
    pblas=$(sed -n 's/.*blas=\([^ ]*\).*/\1/p' <<<"$line")
    pcore=$(sed -n 's/.*openblas_core=\([^ ]*\).*/\1/p' <<<"$line")
    echo "W3 threads=$t uvp_ms=$(fmt "$ms") peer=libtorch peer_ms=$(fmt "$pms") ratio=$(div "$pms" "$ms")" \
      "uvp_cpu_ms=$(fmt "$cpu") peer_cpu_ms=$(fmt "$pcpu") cpu_ratio=$(div "$pcpu" "$cpu")" \
      "peer_blas=$(basename "$pblas"):$pcore limit_frac=$lf"
  done
}
