#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""W5 peer: times scikit-learn's roc_auc_score on the W5 data.

Data (same distribution as benchmarks/bench_w5_roc_auc.cpp; the exact numbers differ):
label ~ Bernoulli(0.03); score = sigmoid(z) rounded to 1e-4, z ~ Normal(-3 + 1.5 * label, 1),
10,000,000 float32 scores, drawn by numpy's default_rng(2024).

Run with Debian's interpreter (python3-sklearn): /usr/bin/python3 benchmarks/peers/w5_sklearn.py
Prints one line per run, then `peer_ms=<median over runs>` (last line, what benchmarks/compare
reads). roc_auc_score is single-threaded (numpy's sort), so there is no thread setting.
"""
import argparse
import time

import numpy as np
import sklearn
from sklearn.metrics import roc_auc_score


def make_data(n, seed, rounded=True):
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < 0.03).astype(np.float32)
    z = rng.normal(-3.0 + 1.5 * y, 1.0)
    p = 1.0 / (1.0 + np.exp(-z))
    s = (np.round(p * 1e4) / 1e4 if rounded else p).astype(np.float32)
    return y, s


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=10_000_000, help="number of scores (default 10,000,000)")
    ap.add_argument("--runs", type=int, default=5, help="timed runs, >= 3 (default 5)")
    ap.add_argument("--seed", type=int, default=2024)
    ap.add_argument("--untied", action="store_true",
                    help="do not round the scores (compare with roc_auc_untied_uvp; not W5)")
    args = ap.parse_args()
    runs = max(3, args.runs)

    y, s = make_data(args.n, args.seed, rounded=not args.untied)
    print(f"sklearn={sklearn.__version__} numpy={np.__version__} n={args.n} "
          f"positives={int(y.sum())} distinct_scores={np.unique(s).size}", flush=True)
    times = []
    auc = None
    for r in range(runs):
        t0 = time.perf_counter()
        auc = roc_auc_score(y, s)
        times.append((time.perf_counter() - t0) * 1e3)
        print(f"run {r}: {times[-1]:.1f} ms auc={auc:.9f}", flush=True)
    print(f"peer_ms={float(np.median(times)):.3f}")


if __name__ == "__main__":
    main()
