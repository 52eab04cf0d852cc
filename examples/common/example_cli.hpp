// SPDX-License-Identifier: Apache-2.0
// Command line and output helpers shared by the CDNOW examples: the data options (the bundled
// full CDNOW log by default, or a log of your own), --out/--seed/--threads/--epochs, and small
// writers.
#pragma once

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <sstream>
#include <string>
#include <vector>

#include "cdnow_sequences.hpp"
#include "uvp/core/parallel.hpp"
#include "uvp/io/file.hpp"

#ifndef UVP_EXAMPLE_DATA_DIR
#define UVP_EXAMPLE_DATA_DIR "examples/data"
#endif

namespace uvp_examples {

struct CommonArgs {
  std::string data = std::string(UVP_EXAMPLE_DATA_DIR) + "/cdnow/CDNOW_master.txt";
  bool custom_data = false, csv = false;
  std::string id_col = "customer_id", date_col = "date", amount_col = "amount", quantity_col = "quantity";
  std::string calibration_end, holdout_end;
  index max_len = 32;
  std::string out;
  std::uint64_t seed = 42;
  int threads = 1;   ///< the models are small: one thread is fastest (see --help)
  index epochs = 0;  ///< 0: the example's default
  double lr = 0;     ///< Adam's learning rate; 0: the example's default
  double weight_decay = -1;  ///< AdamW's decoupled weight decay; < 0: the example's default
  index patience = 0;        ///< early-stopping patience in epochs; 0: the example's default
  index batch = 0;           ///< minibatch size; 0: the example's default
};

inline const char* common_usage() {
  return "  --data PATH            transaction log (default: the bundled full CDNOW log, CDNOW_master.txt,\n"
         "                         23,570 customers; examples/data/cdnow/CDNOW_sample.txt is its 1/10\n"
         "                         sample). CDNOW text layout:\n"
         "                         'customer_id yyyymmdd quantity amount' or 'master_id sample_id yyyymmdd\n"
         "                         quantity amount'; a path ending in .csv (or --csv) is read as a CSV\n"
         "  --csv                  read --data as a CSV with a header, columns named by:\n"
         "  --id-col C --date-col C --amount-col C --quantity-col C\n"
         "                         (defaults customer_id, date, amount, quantity; without a quantity\n"
         "                         column every transaction counts as 1 item)\n"
         "  --calibration-end D    last day of the calibration period, YYYY-MM-DD (1997-09-30 for the\n"
         "                         bundled data; required for your own)\n"
         "  --holdout-end D        last day of the holdout period (1998-06-30 / the log's last date)\n"
         "  --max-len N            tokens per customer sequence, END token included (32)\n"
         "  --out DIR              where the CSV/SVG/model files go\n"
         "  --seed S               split, initialisation and shuffling seed (42)\n"
         "  --threads N            OpenMP threads (1: at these model and batch sizes a parallel region\n"
         "                         costs more than it saves; 0 = OpenMP's default)\n"
         "  --epochs N             maximum training epochs\n"
         "  --lr X                 Adam's learning rate\n"
         "  --weight-decay X       AdamW's decoupled weight decay (0: plain Adam)\n"
         "  --patience N           epochs without a better validation score before stopping\n"
         "  --batch N              minibatch size\n"
         "  --help                 this text\n";
}

template <class N>
N parse_number(const std::string& option, const std::string& text) {
  std::istringstream in(text);
  N value{};
  if (!(in >> value) || !in.eof())
    throw uvp::invalid_argument("option " + option + ": '" + text + "' is not a valid number");
  return value;
}

/// A number >= lo (NaN refused).
template <class N>
N parse_at_least(const std::string& option, const std::string& text, N lo) {
  const N value = parse_number<N>(option, text);
  if (!(value >= lo))
    throw uvp::invalid_argument("option " + option + ": '" + text + "' must be >= " + std::to_string(lo));
  return value;
}

/// Parses the common options; `extra(key, value)` sees every other option first and returns
/// true when it consumed it (value() fetches its argument). --help prints `usage` + the common
/// options and exits 0.
inline CommonArgs parse_common(int argc, char** argv, const std::string& default_out, const std::string& usage,
                               const std::function<bool(const std::string&, const std::function<std::string()>&)>&
                                   extra = {}) {
  CommonArgs a;
  a.out = default_out;
  for (int i = 1; i < argc; ++i) {
    const std::string k = argv[i];
    const std::function<std::string()> value = [&]() -> std::string {
      if (i + 1 >= argc) throw uvp::invalid_argument("option " + k + " needs a value");
      return argv[++i];
    };
    if (extra && extra(k, value)) continue;
    if (k == "--data") a.data = value(), a.custom_data = true;
    else if (k == "--csv") a.csv = true;
    else if (k == "--id-col") a.id_col = value();
    else if (k == "--date-col") a.date_col = value();
    else if (k == "--amount-col") a.amount_col = value();
    else if (k == "--quantity-col") a.quantity_col = value();
    else if (k == "--calibration-end") a.calibration_end = value();
    else if (k == "--holdout-end") a.holdout_end = value();
    else if (k == "--max-len") a.max_len = parse_number<index>(k, value());
    else if (k == "--out") a.out = value();
    else if (k == "--seed") a.seed = parse_number<std::uint64_t>(k, value());
    else if (k == "--threads") a.threads = parse_number<int>(k, value());
    else if (k == "--epochs") a.epochs = parse_number<index>(k, value());
    else if (k == "--lr") a.lr = parse_number<double>(k, value());
    else if (k == "--weight-decay") a.weight_decay = parse_at_least(k, value(), 0.0);
    else if (k == "--patience") a.patience = parse_at_least(k, value(), index(1));
    else if (k == "--batch") a.batch = parse_at_least(k, value(), index(1));
    else if (k == "--help" || k == "-h") {
      std::fputs(usage.c_str(), stdout);
      std::fputs(common_usage(), stdout);
      std::exit(0);
    } else {
      throw uvp::invalid_argument("unknown option " + k + " (see --help)");
    }
  }
  if (a.data.size() > 4 && a.data.compare(a.data.size() - 4, 4, ".csv") == 0) a.csv = true;
  // The bundled logs (the full one and its 1/10 sample) share the published calibration and
  // holdout periods, so `--data .../CDNOW_sample.txt` needs no dates either.
  const std::string file = std::filesystem::path(a.data).filename().string();
  const bool bundled = !a.custom_data || file == "CDNOW_master.txt" || file == "CDNOW_sample.txt";
  if (bundled) {
    if (a.calibration_end.empty()) a.calibration_end = "1997-09-30";
    if (a.holdout_end.empty()) a.holdout_end = "1998-06-30";
  } else if (a.calibration_end.empty()) {
    throw uvp::invalid_argument("--calibration-end is required for a transaction log of your own");
  }
  if (a.lr < 0) throw uvp::invalid_argument("option --lr must be > 0");
  if (a.max_len < 2) throw uvp::invalid_argument("option --max-len must be >= 2");
  if (a.threads < 0) throw uvp::invalid_argument("option --threads must be >= 0");
  if (a.threads > 0) uvp::set_num_threads(a.threads);
  return a;
}

/// Reads the log and builds the data set the options describe.
inline CdnowDataset load_dataset(const CommonArgs& a) {
  const PurchaseLog log = a.csv ? read_csv_purchases(a.data, a.id_col, a.date_col, a.amount_col, a.quantity_col)
                                : read_cdnow_purchases(a.data);
  DatasetOptions o;
  o.calibration_end = uvp::parse_date(a.calibration_end);
  o.holdout_end = a.holdout_end.empty() ? *std::max_element(log.log.date.begin(), log.log.date.end())
                                        : uvp::parse_date(a.holdout_end);
  o.max_len = a.max_len;
  o.seed = a.seed;
  return build_dataset(log, o);
}

/// Prints the data set's size lines (customers, split sizes, positive rate).
inline void print_dataset(const CdnowDataset& ds) {
  double pos = 0;
  for (index i = 0; i < ds.size(); ++i) pos += ds.label[i];
  std::printf("threads: %d\n", uvp::num_threads());
  std::printf("customers: %lld\n", static_cast<long long>(ds.size()));
  std::printf("repeat_rate: %.4f\n", pos / double(ds.size()));
  std::printf("holdout_weeks: %.4f\n", ds.holdout_weeks);
  std::printf("train_customers: %zu\nvalidation_customers: %zu\ntest_customers: %zu\n", ds.train.size(),
              ds.validation.size(), ds.test.size());
}

/// A CSV written atomically: header line, then rows.
inline void write_csv(const std::string& path, const std::string& header, const std::vector<std::string>& rows) {
  std::string text = header + "\n";
  for (const auto& r : rows) text += r + "\n";
  uvp::write_file_atomic(path, text, "write_csv");
}

}  // namespace uvp_examples
