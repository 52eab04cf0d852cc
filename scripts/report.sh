#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Writes DIR/report.md from the example runs scripts/demo.sh left in DIR, and prints its comparison
# table. Reads DIR/examples.txt (the examples, in order) and, per example, DIR/<name>/metrics.txt
# (`name: value` lines), seconds.txt and the files the example wrote (*.svg, *.csv).
#
# usage: scripts/report.sh DIR [--build-seconds S] [--total-seconds S]
#
# An example may describe itself with these optional output lines, which win over the defaults
# below: `model: ...`, `task: ...`, `data: ...`, `baseline: ...` (what the baseline is) and
# `baseline_<metric>: value` (e.g. baseline_roc_auc: 0.5, baseline_mae: 12.3).
set -euo pipefail

dir="${1:?usage: scripts/report.sh DIR [--build-seconds S] [--total-seconds S]}"
shift
build_seconds="" total_seconds=""
while [[ $# -gt 0 ]]; do
  case "$1" in
    --build-seconds) build_seconds="$2"; shift 2 ;;
    --total-seconds) total_seconds="$2"; shift 2 ;;
    *) echo "report.sh: unknown argument '$1'" >&2; exit 2 ;;
  esac
done
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
[[ -f "$dir/examples.txt" ]] || { echo "report.sh: no $dir/examples.txt (run scripts/demo.sh)" >&2; exit 1; }
mapfile -t names <"$dir/examples.txt"

# What each known example is. Unknown ones fall back to their README and their own output lines.
# d_prefix: the key prefix of the example's main model (default none); d_baselines: comma-separated
# prefix=label pairs of baseline models whose metrics the example prints under that prefix.
declare -A d_model d_task d_data d_about d_prefix d_baselines
d_model[purchase_intent_logreg]="logistic regression"
d_task[purchase_intent_logreg]="purchase in the session"
d_data[purchase_intent_logreg]="UCI Online Shoppers, test sessions"
d_about[purchase_intent_logreg]="Will a browsing session end in a purchase? Logistic regression on 74 session features (10 numeric, standardised; 7 categorical, one-hot) of the UCI *Online Shoppers Purchasing Intention* data, stratified 80/20 split (seed 42), Adam with cosine decay and early stopping on a validation slice of the training rows. Metrics are on the 2,466 test sessions; uvp matches scikit-learn's \`LogisticRegression(C=1)\` on the same rows (see the example's README)."
# The repeat-purchase examples share one CDNOW task: will a customer buy again in the 39-week
# holdout period? Their baseline is BG/NBD's answer on the same test customers (keys bgnbd_*).
for name in purchase_lstm purchase_attention intent_conv1d; do
  d_task[$name]="repeat purchase in 39 weeks"
  d_data[$name]="CDNOW full log, test customers"
  d_baselines[$name]="bgnbd_=BG/NBD"
done
d_model[purchase_lstm]="LSTM over the purchase sequence"
d_model[purchase_attention]="self-attention over the purchase sequence"
d_model[intent_conv1d]="1-D convolution over the purchase sequence"
d_model[future_value_regression]="MLP"
d_task[future_value_regression]="spend in the 39-week holdout"
d_data[future_value_regression]="CDNOW full log, test customers"
d_prefix[future_value_regression]="mlp_"
d_baselines[future_value_regression]="linear_=linear regression,bgnbd_gg_=BG/NBD + Gamma-Gamma"
d_model[customer_lifetime_value]="BG/NBD + Gamma-Gamma"
d_task[customer_lifetime_value]="repeat purchases, CLV"
d_data[customer_lifetime_value]="CDNOW sample, customers"
d_about[customer_lifetime_value]="Which customers will come back, and what are they worth? BG/NBD (purchases) and Gamma-Gamma (spend) fitted by maximum likelihood to the calibration period (to 1997-09-30) of the bundled CDNOW sample; it reproduces the published parameters, and fits Pareto/NBD and MBG/NBD to the same data (see the CLV model table above). The metric is the mean absolute error of each customer's predicted number of purchases in the 39-week holdout period; the baseline extrapolates each customer's own calibration purchase rate. It then ranks every customer by discounted 12-month CLV (\`clv.csv\`). The plots: holdout purchases by calibration frequency, the period-transactions histogram, the weekly tracking of repeat purchases (cumulative and per week), and frequency x recency matrices of expected purchases and P(alive) for each model."
d_model[clv_discrete_contractual]="BG/BB, shifted-beta-geometric"
d_task[clv_discrete_contractual]="discrete-time repeat giving; contract retention"
d_data[clv_discrete_contractual]="donations (11,104 donors); Fader & Hardie's two cohorts"
d_about[clv_discrete_contractual]="The two other BTYD settings on their published data: BG/BB (donors who can give once a year) on the 11,104 donors of Fader, Hardie & Shang (2010), and the shifted-beta-geometric retention model on Fader & Hardie's (2007) regular and high-end cohorts, fitted on years 0-7 and projected to year 12 against what happened. Both reproduce the published estimates; the projections stay within 1.7 % (regular) and 4.1 % (high end) of the actual survivors (\`sbg_*_year_*\` lines, \`sbg_projections.csv\`)."
d_model[clv_online_retail]="BG/NBD, Pareto/NBD, MBG/NBD"
d_task[clv_online_retail]="repeat purchases in 13 weeks"
d_data[clv_online_retail]="UCI Online Retail, customers"
d_prefix[clv_online_retail]="retail_bgnbd_"
d_about[clv_online_retail]="The same purchase models on a second, larger real log: the UCI *Online Retail* data (541,909 invoice lines, 2010-12-01 .. 2011-12-09), read with \`uvp::read_csv\`; lines without a customer id, cancellations and non-positive quantities or prices are counted and left out (\`retail_lines_*\`). Calibration to 2011-09-09, holdout the 13 weeks to 2011-12-09. The metric is BG/NBD's mean absolute error of each customer's holdout purchases; the baseline extrapolates each customer's own calibration purchase rate. On this log none of the three models finds customers dropping out (a or s -> 0, see the warnings), and all under-predict the pre-Christmas holdout."

# Metric columns of the comparison table, in order: key, header. Only columns some example has are shown.
metric_keys=(roc_auc pr_auc f1 log_loss mae rmse r2 holdout_mae)
declare -A metric_header=([roc_auc]="ROC-AUC" [pr_auc]="PR-AUC" [f1]="F1" [log_loss]="log loss"
  [mae]="MAE" [rmse]="RMSE" [r2]="R2" [holdout_mae]="holdout MAE (purchases)")

# value KEY FILE: the value of the first `KEY: value` line, or nothing.
value() { awk -v k="$2" 'index($0, k ": ") == 1 { print substr($0, length(k) + 3); exit }' "$1"; }
num() { awk -v v="$1" 'BEGIN { printf "%.4f", v }'; }
thousands() { echo "$1" | sed -e ':a' -e 's/\([0-9]\)\([0-9]\{3\}\)\($\|,\)/\1,\2\3/' -e 'ta'; }

# The README's first paragraph after its title, else the first comment paragraph of main.cpp: the
# description of an example this script knows nothing about.
readme_paragraph() {
  local readme="$root/examples/$1/README.md" main="$root/examples/$1/main.cpp"
  if [[ ! -f "$readme" ]]; then
    [[ -f "$main" ]] && awk '/SPDX-License-Identifier/ { next } /^\/\/ ?/ { sub(/^\/\/ ?/, ""); if ($0 == "") exit; printf "%s%s", (n++ ? " " : ""), $0; next } { exit } END { if (n) print "" }' "$main"
    return 0
  fi
  awk 'NR == 1 && /^# / { next } /^[[:space:]]*$/ { if (p) exit; next } /^(```|#|\||- |[0-9]+\.)/ { if (p) exit; next } { p = 1; printf "%s%s", (n++ ? " " : ""), $0 } END { print "" }' "$readme"
}

# Default baselines computed from the files an example wrote.
default_baseline() {
  local name="$1" m="$dir/$1/metrics.txt"
  case "$name" in
    customer_lifetime_value|clv_online_retail)
      local csv="$dir/$name/clv.csv" dur
      dur="$(value "$m" holdout_duration)"
      if [[ $name == clv_online_retail ]]; then csv="$dir/$name/customers.csv"; dur="$(value "$m" retail_holdout_duration)"; fi
      if [[ -f "$csv" && -n "$dur" ]]; then
        awk -F, -v d="$dur" 'NR == 1 { for (i = 1; i <= NF; i++) c[$i] = i; next }
          { p = $(c["T"]) > 0 ? $(c["frequency"]) / $(c["T"]) * d : 0; e += (p > $(c["holdout_actual"]) ? p - $(c["holdout_actual"]) : $(c["holdout_actual"]) - p); n++ }
          END { if (n) printf "own calibration rate: holdout MAE %.4f", e / n }' "$csv"
      fi ;;
    *)
      # A classifier that wrote predictions with a 0/1 label in column 2: chance level.
      local csv="$dir/$name/predictions.csv"
      if [[ -n "$(value "$m" roc_auc)" && -f "$csv" ]]; then
        awk -F, 'NR > 1 { s += $2; n++ } END { if (n) printf "chance: ROC-AUC 0.5000, PR-AUC %.4f (positive rate)", s / n }' "$csv"
      fi ;;
  esac
}

# prefix=label pairs -> "label: METRIC v, METRIC v; label2: ...", over the table's metric columns.
prefixed_metrics() {
  local m="$1" specs="$2" out="" spec prefix label part k v
  IFS=',' read -r -a specs_a <<<"$specs"
  for spec in "${specs_a[@]}"; do
    prefix="${spec%%=*}" label="${spec#*=}" part=""
    for k in "${shown[@]}"; do
      v="$(value "$m" "$prefix$k")"
      [[ -n "$v" ]] && part="$part${part:+, }${metric_header[$k]} $(num "$v")"
    done
    [[ -n "$part" ]] && out="$out${out:+; }$label: $part"
  done
  echo "$out"
}

baseline_of() {
  local name="$1" m="$dir/$1/metrics.txt" b
  b="$(prefixed_metrics "$m" "${d_baselines[$name]:-}${d_baselines[$name]:+,}baseline_=$(value "$m" baseline)")"
  [[ -z "$b" ]] && b="$(value "$m" baseline)"
  [[ -z "$b" ]] && b="$(default_baseline "$name")"
  echo "$b"
}

shown=()
for k in "${metric_keys[@]}"; do
  for name in "${names[@]}"; do
    if [[ -n "$(value "$dir/$name/metrics.txt" "${d_prefix[$name]:-}$k")" ]]; then shown+=("$k"); break; fi
  done
done

# The comparison table as tab-separated rows (header first).
table="$dir/comparison.tsv"
{
  printf "model\ttask\tdata"
  for k in "${shown[@]}"; do printf "\t%s" "${metric_header[$k]}"; done
  printf "\tbaseline\trun time\n"
  for name in "${names[@]}"; do
    m="$dir/$name/metrics.txt"
    model="$(value "$m" model)"; model="${model:-${d_model[$name]:-$name}}"
    task="$(value "$m" task)"; task="${task:-${d_task[$name]:-}}"
    data="$(value "$m" data)"; data="${data:-${d_data[$name]:-bundled data}}"
    rows=""
    for k in test_rows test_customers customers retail_customers; do [[ -z "$rows" ]] && rows="$(value "$m" "$k")"; done
    [[ -n "$rows" ]] && data="$data ($(thousands "$rows"))"
    printf "%s (\`%s\`)\t%s\t%s" "$model" "$name" "$task" "$data"
    for k in "${shown[@]}"; do
      v="$(value "$m" "${d_prefix[$name]:-}$k")"
      if [[ -n "$v" ]]; then printf "\t%s" "$(num "$v")"; else printf "\t-"; fi
    done
    b="$(baseline_of "$name")"
    cpu_note=""
    [[ -f "$dir/$name/cpu_seconds.txt" ]] && cpu_note=" (CPU $(cat "$dir/$name/cpu_seconds.txt") s)"
    printf "\t%s\t%s s%s\n" "${b:--}" "$(cat "$dir/$name/seconds.txt")" "$cpu_note"
  done
} >"$table"

# Markdown, columns padded to equal width (for the terminal; renderers ignore the padding).
markdown_table() {
  awk -F'\t' '
    { for (i = 1; i <= NF; i++) { cell[NR, i] = $i; w = length($i); if (w > width[i]) width[i] = w } if (NF > nf) nf = NF }
    END {
      for (r = 1; r <= NR; r++) {
        line = "|"
        for (i = 1; i <= nf; i++) line = line " " sprintf("%-" width[i] "s", cell[r, i]) " |"
        print line
        if (r == 1) { line = "|"; for (i = 1; i <= nf; i++) { d = ""; for (j = 0; j < width[i] + 2; j++) d = d "-"; line = line d "|" } print line }
      }
    }' "$1"
}

# The CLV purchase models side by side, per data set: fit, holdout and tracking. Rows come from
# customer_lifetime_value (CDNOW, no key prefix) and clv_online_retail (keys prefixed retail_).
clv_models_table() {
  local name prefix label m key model params p est se cell actual
  echo "| data | model | log-likelihood | parameters (standard error) | holdout purchases: actual | predicted | MAE | RMSE | repeat purchases to the holdout end: actual | expected |"
  echo "|---|---|---|---|---|---|---|---|---|---|"
  for spec in "customer_lifetime_value::CDNOW sample" "clv_online_retail:retail_:UCI Online Retail"; do
    name="${spec%%:*}" rest="${spec#*:}"; prefix="${rest%%:*}" label="${rest#*:}"
    m="$dir/$name/metrics.txt"
    [[ -f "$m" ]] || continue
    for model in "bgnbd:BG/NBD:r alpha a b" "pnbd:Pareto/NBD:r alpha s beta" "mbgnbd:MBG/NBD:r alpha a b"; do
      key="${model%%:*}" rest="${model#*:}"; params="${rest#*:}"; rest="${rest%%:*}"
      [[ -n "$(value "$m" "$prefix${key}_loglik")" ]] || continue
      cell=""
      for p in $params; do
        est="$(value "$m" "$prefix${key}_$p")" se="$(value "$m" "$prefix${key}_${p}_se")"
        [[ "$se" == "nan" || "$se" == "-nan" ]] && se="n/a"
        cell="$cell${cell:+, }$p = $(awk -v v="$est" 'BEGIN { printf "%.4g", v }') (${se:+$([[ $se == n/a ]] && echo n/a || awk -v v="$se" 'BEGIN { printf "%.2g", v }')})"
      done
      actual="$(value "$m" "${prefix}holdout_actual_total")"
      printf "| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n" "$label" "$rest" "$(value "$m" "$prefix${key}_loglik")" "$cell" \
        "$actual" "$(value "$m" "$prefix${key}_holdout_predicted_total")" "$(value "$m" "$prefix${key}_holdout_mae")" \
        "$(value "$m" "$prefix${key}_holdout_rmse")" "$(value "$m" "${prefix}tracking_actual_cumulative_end")" \
        "$(value "$m" "$prefix${key}_tracking_expected_cumulative_end")"
    done
  done
}

report="$dir/report.md"
cores="$(nproc 2>/dev/null || echo "?")"
cpu="$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo 2>/dev/null || true)"
compiler="$(${CXX:-c++} --version 2>/dev/null | head -n 1 || true)"
version="$(awk '/#define UVP_VERSION_(MAJOR|MINOR|PATCH) / { v = v (v == "" ? "" : ".") $3 } END { print v }' "$root/include/uvp/version.hpp")"
run_seconds="$(for name in "${names[@]}"; do cat "$dir/$name/seconds.txt"; echo; done | awk 'NF { s += $1 } END { printf "%.1f", s }')"
{
  echo "# uvp demo report"
  echo
  echo "Made by \`bash scripts/demo.sh\` on $(date -u '+%Y-%m-%d %H:%M UTC'): uvp $version, ${compiler:-unknown compiler},"
  echo "$cores CPU cores${cpu:+ ($cpu)}. Every number below was computed in this run, from the data bundled in"
  echo "\`examples/data/\`."
  echo
  echo "## Comparison"
  echo
  markdown_table "$table"
  echo
  echo "Each model is scored on data it did not see while training (its own held-out split or period;"
  echo "the sections below say which). Higher is better for ROC-AUC, PR-AUC and F1, lower for log loss,"
  echo "MAE and RMSE. \"run time\" is the example's whole run, wall clock (and CPU time: user + system,"
  echo "all threads): reading the data, training, evaluating, writing its files."
  echo
  echo "Time: ${build_seconds:-?} s to configure and build ${#names[@]} example programs (Release; with ccache a"
  echo "re-run takes seconds), $run_seconds s to run them${total_seconds:+, $total_seconds s in all}."
  if [[ -f "$dir/customer_lifetime_value/metrics.txt" || -f "$dir/clv_online_retail/metrics.txt" ]]; then
    echo
    echo "## CLV purchase models"
    echo
    clv_models_table
    echo
    echo "Each model is fitted by maximum likelihood to the calibration period only; standard errors from"
    echo "the observed information (n/a: the information is singular, the estimate is on the boundary of"
    echo "the parameter space, and the example prints a warning saying so). Holdout: each customer's"
    echo "purchases in the holdout period against the model's conditional expectation (MAE and RMSE per"
    echo "customer). The last two columns are the tracking plot's end point: the calibration customers'"
    echo "cumulative repeat purchases from their first purchase to the end of the holdout period."
  fi
  for name in "${names[@]}"; do
    m="$dir/$name/metrics.txt"
    model="$(value "$m" model)"; model="${model:-${d_model[$name]:-$name}}"
    echo
    echo "## $model: \`$name\`"
    echo
    about="${d_about[$name]:-}"
    [[ -z "$about" ]] && about="$(readme_paragraph "$name")"
    [[ -n "$about" ]] && { echo "$about" | fold -s -w 100 | sed 's/ *$//'; echo; }
    echo "Source and full description: [\`examples/$name\`]($(realpath -m --relative-to="$dir" "$root/examples/$name"))."
    shopt -s nullglob
    svgs=("$dir/$name"/*.svg)
    others=("$dir/$name"/*.csv)
    shopt -u nullglob
    for svg in "${svgs[@]}"; do
      f="$(basename "$svg")"
      title="$(sed -n 's:.*<text[^>]*font-size="16">\([^<]*\)</text>.*:\1:p' "$svg" | head -n 1)"
      echo
      echo "![${title:-$f}]($name/$f)"
    done
    echo
    echo "<details><summary>Everything it printed ($(grep -cE '^[A-Za-z0-9_]+: ' "$m") values)</summary>"
    echo
    echo '```text'
    grep -E '^[A-Za-z0-9_]+: ' "$m"
    echo '```'
    echo
    echo "</details>"
    if [[ ${#others[@]} -gt 0 || ${#svgs[@]} -gt 0 ]]; then
      echo
      printf "Files:"
      for f in "${svgs[@]}" "${others[@]}"; do printf " [%s](%s/%s)" "$(basename "$f")" "$name" "$(basename "$f")"; done
      printf ", and its stdout (\`metrics.txt\`) and stderr (\`log.txt\`).\n"
    fi
  done
} >"$report"

echo
markdown_table "$table"
echo
echo "Report: $report (build ${build_seconds:-?} s, runs $run_seconds s${total_seconds:+, total $total_seconds s})"
