# SPDX-License-Identifier: Apache-2.0
# W7: embedding gather + gradient scatter (benchmarks/bench_w7_embedding.cpp) against LibTorch
# (benchmarks/peers/libtorch/w7_embedding.cpp) and the triad bandwidth of the same uvp run.
# Sourced by benchmarks/compare, whose helpers it uses. One line per thread count:
#   W7 threads=<t> uvp_gbs=<x> peer=libtorch peer_gbs=<y> ratio=<x/y> triad_gbs=<z> frac=<x/z>
#      peer_frac=<y/z> peer_uncoalesced_gbs=<u> uncoalesced_ratio=<x/u> uvp_cpu_ms=<a>
#      peer_cpu_ms=<b> peer_uncoalesced_cpu_ms=<c> same_ids=yes|no limit_frac=<x/z>
# GB/s = the bytes of benchmarks/support/w7_data.hpp (4 x 100,000 x 64 x 4 B) / the median time;
# peer_gbs times torch::embedding forward + backward + grad.coalesce() (the summed rows uvp's
# backward produces); peer_uncoalesced_gbs without coalesce() (its sparse gradient is then d_out
# itself: nothing scattered yet). *_cpu_ms: process CPU time per step (all threads), which a shared machine's load
# disturbs less than the wall time.

workload_W7() {
  local bin out=$WORK/w7_uvp.json t
  uvp_bench bench_w7_embedding || { skip W7 "$BUILD_REASON"; return; }
  bin=$BIN
  [[ -x $PY ]] || { skip W7 "$PY not found (needed to read benchmark results)"; return; }
  run_bench "$bin" 'W7_(triad|embedding_uvp/)' "$out" --benchmark_enable_random_interleaving=true
  local peer= why=
  if torch_peer w7_embedding; then peer=$BIN; else why=$BUILD_REASON; fi
  setup_blas
  for t in $THREADS; do
    local gbs triad hash cpu
    gbs=$(bench_value "$out" W7_embedding_uvp "$t" GBs)
    triad=$(bench_value "$out" W7_triad "$t" GBs)
    hash=$(bench_value "$out" W7_embedding_uvp "$t" ids_hash)
    cpu=$(bench_value "$out" W7_embedding_uvp "$t" cpu_ms)
    if is_error "$gbs" || is_error "$triad"; then
      skip W7 "threads=$t uvp: $(is_error "$gbs" && echo "${gbs#error: }" || echo "${triad#error: }")"
      continue
    fi
    local head="W7 threads=$t uvp_gbs=$(fmt "$gbs") peer=libtorch"
    local tail="triad_gbs=$(fmt "$triad") frac=$(div "$gbs" "$triad")"
    # limit_frac: frac itself (W7's own triad, measured in its program's run next to the gather).
    if [[ -z $peer ]]; then
      echo "$head skipped: $why $tail limit_frac=$(div "$gbs" "$triad")"
      continue
    fi
    log "running w7_embedding_torch --threads $t"
    local line
    line=$(measure env "${BLAS_ENV[@]}" "$peer" --threads "$t" --reps 5 2>"$WORK/w7_torch_$t.err" | tee "$WORK/w7_torch_$t.log" | tail -1)
    if [[ $line != *peer_gbs=* ]]; then
      echo "$head skipped: the peer failed (see $WORK/w7_torch_$t.err) $tail limit_frac=$(div "$gbs" "$triad")"
      continue
    fi
    local pgbs pcgbs pcpu pccpu phash same=no
    pgbs=$(sed -n 's/.* peer_gbs=\([^ ]*\).*/\1/p' <<<"$line")
    pcgbs=$(sed -n 's/.*peer_coalesced_gbs=\([^ ]*\).*/\1/p' <<<"$line")
    pcpu=$(sed -n 's/.* peer_cpu_ms=\([^ ]*\).*/\1/p' <<<"$line")
    pccpu=$(sed -n 's/.*peer_coalesced_cpu_ms=\([^ ]*\).*/\1/p' <<<"$line")
    phash=$(sed -n 's/.*ids_hash=\([^ ]*\).*/\1/p' <<<"$line")
    [[ $(fmt "$hash" 12) == "$(fmt "$phash" 12)" ]] && same=yes
    # The peer's figure is its coalesced gradient: the summed rows that uvp's backward produces
    # and that any optimizer step needs. Its raw backward (d_out wrapped as an uncoalesced sparse
    # tensor) scatters nothing yet, so its "GB/s" by the same byte count exceeds the triad.
    echo "$head peer_gbs=$(fmt "$pcgbs") ratio=$(div "$gbs" "$pcgbs") $tail peer_frac=$(div "$pcgbs" "$triad")" \
      "peer_uncoalesced_gbs=$(fmt "$pgbs") uncoalesced_ratio=$(div "$gbs" "$pgbs")" \
      "uvp_cpu_ms=$(fmt "$cpu") peer_cpu_ms=$(fmt "$pccpu") peer_uncoalesced_cpu_ms=$(fmt "$pcpu") same_ids=$same" \
      "limit_frac=$(div "$gbs" "$triad")"
  done
}
