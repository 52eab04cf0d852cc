// SPDX-License-Identifier: Apache-2.0
// Serving a trained model: loads the purchase_lstm model (weights + settings file), scores a CSV
// of token sequences in batch, answers single requests from several threads on one const model,
// and checks that both give the same scores, bit for bit.
//
//   serve [--model DIR] [--input CSV] [--threads N] [--requests N] [--batch N] [--out DIR]
//
//   DIR/purchase_lstm.txt    settings written by purchase_lstm: architecture, max_len, vocabulary
//   DIR/purchase_lstm.uvpm   weights (uvp::nn::save)
//
// The model is rebuilt from the settings (Embedding -> Lstm -> Dense on the last hidden state),
// then uvp::nn::load fills its weights. Every scoring call is const: the model is shared by all
// threads, each of which owns a Workspace (the buffers and the Lstm context of its calls).
//
// Prints one `name: value` per line; writes DIR/scores.csv (customer_id, tokens, logit, p).
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "../common/cdnow_sequences.hpp"
#include "uvp/core/error.hpp"
#include "uvp/core/parallel.hpp"
#include "uvp/core/random.hpp"
#include "uvp/core/tensor.hpp"
#include "uvp/data/csv.hpp"
#include "uvp/io/file.hpp"
#include "uvp/nn/dense.hpp"
#include "uvp/nn/embedding.hpp"
#include "uvp/nn/lstm.hpp"
#include "uvp/nn/serialize.hpp"

#ifndef UVP_EXAMPLE_DATA_DIR
#define UVP_EXAMPLE_DATA_DIR "examples/data"
#endif

namespace {

using uvp::index;
namespace ex = uvp_examples;
using Clock = std::chrono::steady_clock;

struct Args {
  std::string model = "out/purchase_lstm";  // purchase_lstm's default --out, from the same directory
  std::string input;                        // empty: the bundled CDNOW sample, tokenised here
  std::string save_input;                   // write the sequences as a token CSV
  std::string out = "out/serve";
  int threads = 2;
  index requests = 20000;
  index batch = 256;
  bool alone = false;  // score a request as a batch of one (not bit-identical to the batch scores)
};

const char* usage_text =
    "usage: serve [--model DIR] [--input CSV] [--threads N] [--requests N] [--batch N] [--out DIR]\n"
    "             [--save-input CSV] [--alone]\n"
    "Scores customer purchase-token sequences with the model purchase_lstm saved: in batch, and as\n"
    "single requests from N threads on one const model; checks both give the same scores.\n"
    "  --model DIR       directory with purchase_lstm.txt and purchase_lstm.uvpm\n"
    "                    (default out/purchase_lstm: run `purchase_lstm` from the same directory)\n"
    "  --input CSV       sequences to score: header customer_id,tokens; tokens = space-separated\n"
    "                    vocabulary ids, oldest purchase first, END token last, no padding\n"
    "                    (default: the bundled CDNOW sample, tokenised with the model's vocabulary\n"
    "                    and calibration_end)\n"
    "  --save-input CSV  also write the sequences scored in that format\n"
    "  --threads N       request threads, and OpenMP threads of the batch scoring (2)\n"
    "  --requests N      single requests to time, over all threads (20000)\n"
    "  --batch N         sequences per batch (256)\n"
    "  --out DIR         where scores.csv goes (out/serve)\n"
    "  --alone           score each request as a batch of one instead of paired with a one-token\n"
    "                    filler: slightly faster, but not bit-identical to the batch scores\n";

template <class N>
N parse_number(const std::string& option, const std::string& text) {
  std::istringstream in(text);
  N value{};
  if (!(in >> value) || !in.eof())
    throw uvp::invalid_argument("option " + option + ": '" + text + "' is not a valid number");
  return value;
}

Args parse_args(int argc, char** argv) {
  Args a;
  for (int i = 1; i < argc; ++i) {
    const std::string k = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) throw uvp::invalid_argument("option " + k + " needs a value");
      return argv[++i];
    };
    if (k == "--model") a.model = value();
    else if (k == "--input") a.input = value();
    else if (k == "--save-input") a.save_input = value();
    else if (k == "--out") a.out = value();
    else if (k == "--threads") a.threads = parse_number<int>(k, value());
    else if (k == "--requests") a.requests = parse_number<index>(k, value());
    else if (k == "--batch") a.batch = parse_number<index>(k, value());
    else if (k == "--alone") a.alone = true;
    else if (k == "--help" || k == "-h") {
      std::fputs(usage_text, stdout);
      std::exit(0);
    } else {
      throw uvp::invalid_argument("unknown option " + k + " (see --help)");
    }
  }
  if (a.threads < 1) throw uvp::invalid_argument("option --threads must be >= 1");
  if (a.requests < 1) throw uvp::invalid_argument("option --requests must be >= 1");
  if (a.batch < 1) throw uvp::invalid_argument("option --batch must be >= 1");
  return a;
}

// ---------------------------------------------------------------------------------------------
// The settings file: "key value" lines, '#' comments. The architecture lines name the block
// types with their constructor arguments, e.g. "lstm uvp::nn::Lstm<float>(32, 64)".

struct Settings {
  index vocabulary = 0, embed = 0, padding = 0;  // Embedding(vocabulary, embed, padding)
  index lstm_in = 0, hidden = 0;                 // Lstm(lstm_in, hidden)
  index head_in = 0, head_out = 0;               // Dense(head_in, head_out)
  index max_len = 0;
  std::string calibration_end, holdout_end;
};

// The integers between the parentheses of "<type>(a, b, name c)", after checking the type.
std::vector<index> constructor_args(const std::string& path, const std::string& key, const std::string& value,
                                    const std::string& type, std::size_t count) {
  const auto open = value.find('('), close = value.rfind(')');
  if (value.compare(0, type.size(), type) != 0 || open == std::string::npos || close == std::string::npos ||
      close < open)
    uvp::detail::raise<uvp::format_error>(path, ": '", key, "' is '", value, "', expected ", type,
                                          "(...) (this server rebuilds only that architecture)");
  std::vector<index> out;
  std::string digits;
  for (std::size_t i = open + 1; i <= close; ++i) {
    if (i < close && value[i] >= '0' && value[i] <= '9') {
      digits += value[i];
    } else if (!digits.empty()) {
      out.push_back(std::stoll(digits));
      digits.clear();
    }
  }
  if (out.size() != count)
    uvp::detail::raise<uvp::format_error>(path, ": '", key, "' is '", value, "', expected ", count,
                                          " integer arguments");
  return out;
}

Settings read_settings(const std::string& path) {
  std::ifstream in(path);
  if (!in) uvp::detail::raise<uvp::io_error>("cannot open '", path, "'");
  std::unordered_map<std::string, std::string> kv;
  std::string line;
  while (std::getline(in, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty() || line[0] == '#') continue;
    const auto sp = line.find(' ');
    kv[line.substr(0, sp)] = sp == std::string::npos ? std::string() : line.substr(sp + 1);
  }
  const auto get = [&](const std::string& key) -> const std::string& {
    const auto it = kv.find(key);
    if (it == kv.end()) uvp::detail::raise<uvp::format_error>(path, ": no '", key, "' line");
    return it->second;
  };
  Settings s;
  const auto e = constructor_args(path, "embedding", get("embedding"), "uvp::nn::Embedding<float>", 3);
  const auto l = constructor_args(path, "lstm", get("lstm"), "uvp::nn::Lstm<float>", 2);
  const auto h = constructor_args(path, "head", get("head"), "uvp::nn::Dense<float>", 2);
  s.vocabulary = e[0], s.embed = e[1], s.padding = e[2];
  s.lstm_in = l[0], s.hidden = l[1];
  s.head_in = h[0], s.head_out = h[1];
  s.max_len = parse_number<index>(path + ": max_len", get("max_len"));
  s.calibration_end = get("calibration_end");
  s.holdout_end = get("holdout_end");
  if (s.lstm_in != s.embed || s.head_in != s.hidden || s.head_out != 1 || s.max_len < 2)
    uvp::detail::raise<uvp::format_error>(path, ": inconsistent architecture: Embedding(", s.vocabulary, ", ",
                                          s.embed, ") -> Lstm(", s.lstm_in, ", ", s.hidden, ") -> Dense(", s.head_in,
                                          ", ", s.head_out, "), max_len ", s.max_len);
  // The tokeniser below is examples/common's Vocabulary: the file must describe the same one.
  if (parse_number<index>(path + ": vocabulary_size", get("vocabulary_size")) != ex::Vocabulary::size ||
      s.vocabulary != ex::Vocabulary::size || s.padding != ex::Vocabulary::padding)
    uvp::detail::raise<uvp::format_error>(path, ": vocabulary of ", s.vocabulary, " ids (padding ", s.padding,
                                          "), this server tokenises with ", ex::Vocabulary::size, " (padding ",
                                          ex::Vocabulary::padding, ")");
  return s;
}

// ---------------------------------------------------------------------------------------------
// The model: the blocks purchase_lstm trains, rebuilt from the settings, scored const.

class PurchaseModel {
 public:
  /// Everything one thread's calls write: only grows, so a thread's steady state allocates nothing.
  struct Workspace {
    std::vector<float> emb, h_last;
    std::vector<index> ids;
    uvp::nn::Lstm<float>::Context lstm;
  };

  PurchaseModel(const Settings& s, uvp::Rng& rng)
      : settings_(s),
        embedding_(s.vocabulary, s.embed, rng, s.padding),
        lstm_(s.lstm_in, s.hidden, rng),
        head_(s.head_in, s.head_out, rng) {}

  /// The entries purchase_lstm saved ("embedding", "lstm", "head"), for uvp::nn::load.
  uvp::nn::BlockList<float> blocks() {
    return uvp::nn::blocks<float>("embedding", embedding_, "lstm", lstm_, "head", head_);
  }

  /// Logits of `batch` sequences: ids is batch x seq_len (row-major, padded with any valid id,
  /// e.g. the padding id), lengths their valid tokens, each in [1, seq_len]. seq_len may be
  /// anything from the longest length up (the blocks skip the padding steps; a shorter seq_len
  /// only saves the input projections of padding positions). Const and thread-safe with one
  /// Workspace per thread.
  void logits(const index* ids, const index* lengths, index batch, index seq_len, Workspace& ws, float* out) const {
    const index E = settings_.embed, H = settings_.hidden;
    grow(ws.emb, batch * seq_len * E), grow(ws.h_last, batch * H);
    const uvp::MatrixView<float> emb(ws.emb.data(), batch * seq_len, E), h_last(ws.h_last.data(), batch, H);
    embedding_.forward(uvp::Span<const index>(ids, batch * seq_len), emb);
    lstm_.forward_last(emb, batch, seq_len, uvp::Span<const index>(lengths, batch), h_last, ws.lstm);
    head_.forward(h_last, uvp::MatrixView<float>(out, batch, 1));
  }

  /// One request: the logit of one sequence of n tokens (n in [1, max_len]).
  ///
  /// It is run as a batch of two, the request and a one-token filler (the padding id), because
  /// Eigen evaluates a product with one row by a matrix-vector kernel (a dot product for 1 x 1)
  /// that sums in another order than the matrix-matrix kernel of two or more rows: alone, a
  /// request's logit would differ from its batch logit in the last bits (measured: 1278 of the
  /// 2357 CDNOW customers, |difference| <= 4.8e-7). With two rows every row goes through the
  /// same kernels as in a batch. (Lstm::forward_last works in blocks of about 1 MiB of input
  /// projections, 1024 / seq_len sequences here; a batch whose last block held one sequence
  /// would put that one through the matrix-vector kernel again. main() checks every score.)
  float request(const index* tokens, index n, Workspace& ws) const {
    const std::size_t need = std::size_t(2 * n);
    if (ws.ids.size() < need) ws.ids.resize(need);
    std::copy_n(tokens, n, ws.ids.data());
    std::fill_n(ws.ids.data() + n, n, settings_.padding);
    const index lengths[2] = {n, 1};
    float out[2];
    logits(ws.ids.data(), lengths, 2, n, ws, out);
    return out[0];
  }

  /// The same sequence alone (a batch of one): what request() would cost without the filler.
  float request_alone(const index* tokens, index n, Workspace& ws) const {
    float out = 0;
    logits(tokens, &n, 1, n, ws, &out);
    return out;
  }

 private:
  static void grow(std::vector<float>& v, index n) {
    if (static_cast<index>(v.size()) < n) v.resize(static_cast<std::size_t>(n));
  }

  Settings settings_;
  uvp::nn::Embedding<float> embedding_;
  uvp::nn::Lstm<float> lstm_;
  uvp::nn::Dense<float> head_;
};

// ---------------------------------------------------------------------------------------------
// Sequences: customers x max_len token ids, padded.

struct Sequences {
  std::vector<std::string> id;
  std::vector<index> tokens, lengths;
  index max_len = 0;
  index size() const noexcept { return static_cast<index>(id.size()); }
  const index* row(index i) const noexcept { return tokens.data() + i * max_len; }
};

// The token CSV: customer_id,tokens with tokens space-separated ids. Longer sequences keep
// their last max_len tokens (the most recent purchases and the END token, as in training).
Sequences read_token_csv(const std::string& path, index max_len) {
  const uvp::CsvTable t = uvp::read_csv(path);
  const auto ids = t.column("customer_id");
  const auto text = t.column("tokens");
  const index tok_col = t.column_index("tokens");
  Sequences s;
  s.max_len = max_len;
  std::vector<index> seq;
  for (index r = 0; r < t.rows(); ++r) {
    seq.clear();
    std::istringstream in(text[std::size_t(r)]);
    std::string word;
    while (in >> word) {
      index v = -1;
      try {
        std::size_t used = 0;
        v = std::stoll(word, &used);
        if (used != word.size()) v = -1;
      } catch (const std::exception&) {
        v = -1;
      }
      if (v <= ex::Vocabulary::padding || v >= ex::Vocabulary::size)
        uvp::detail::raise<uvp::parse_error>(t.location(r, tok_col), ": token '", word, "' is not an id in [1, ",
                                             ex::Vocabulary::size, ")");
      seq.push_back(v);
    }
    if (seq.empty()) uvp::detail::raise<uvp::parse_error>(t.location(r, tok_col), ": no tokens");
    const index n = std::min<index>(index(seq.size()), max_len);
    s.id.push_back(ids[std::size_t(r)]);
    s.lengths.push_back(n);
    s.tokens.resize(s.tokens.size() + std::size_t(max_len), ex::Vocabulary::padding);
    std::copy(seq.end() - n, seq.end(), s.tokens.end() - max_len);
  }
  if (s.size() == 0) uvp::detail::raise<uvp::parse_error>(path, ": no sequences");
  return s;
}

// The bundled CDNOW log, tokenised exactly as purchase_lstm's training data (same builder).
Sequences bundled_sequences(const Settings& st) {
  const std::string path = std::string(UVP_EXAMPLE_DATA_DIR) + "/cdnow/CDNOW_sample.txt";
  ex::DatasetOptions o;
  o.calibration_end = uvp::parse_date(st.calibration_end);
  o.holdout_end = uvp::parse_date(st.holdout_end);
  o.max_len = st.max_len;
  const ex::CdnowDataset ds = ex::build_dataset(ex::read_cdnow_purchases(path), o);
  return {ds.id, ds.tokens, ds.lengths, ds.max_len};
}

std::string tokens_text(const Sequences& s, index i) {
  std::string out;
  for (index t = 0; t < s.lengths[std::size_t(i)]; ++t) {
    if (t) out += ' ';
    out += std::to_string(s.row(i)[t]);
  }
  return out;
}

void write_token_csv(const std::string& path, const Sequences& s) {
  std::string text = "customer_id,tokens\n";
  for (index i = 0; i < s.size(); ++i) text += s.id[std::size_t(i)] + "," + tokens_text(s, i) + "\n";
  uvp::write_file_atomic(path, text, "serve");
}

double seconds(Clock::duration d) { return std::chrono::duration<double>(d).count(); }

// Quantile q of sorted values (linear interpolation, numpy's default).
double quantile(const std::vector<double>& sorted, double q) {
  const double pos = q * double(sorted.size() - 1);
  const std::size_t lo = std::size_t(pos), hi = std::min(lo + 1, sorted.size() - 1);
  return sorted[lo] + (pos - double(lo)) * (sorted[hi] - sorted[lo]);
}

int run(const Args& a) {
  const std::string settings_path = a.model + "/purchase_lstm.txt", weights_path = a.model + "/purchase_lstm.uvpm";
  for (const auto& p : {settings_path, weights_path})
    if (!std::filesystem::exists(p)) {
      std::fprintf(stderr,
                   "serve: no model in '%s' (%s is missing).\n"
                   "Create it with the purchase_lstm example, run from this directory:\n"
                   "  purchase_lstm --out %s\n"
                   "(from a CMake build tree: BUILD/examples/purchase_lstm/purchase_lstm --out %s)\n",
                   a.model.c_str(), p.c_str(), a.model.c_str(), a.model.c_str());
      return 3;
    }

  // Load: rebuild the blocks from the settings, then the weights (checked: names, shapes, CRC).
  auto t0 = Clock::now();
  const Settings st = read_settings(settings_path);
  uvp::Rng rng(0);  // any initialisation: every value is overwritten by load
  PurchaseModel model_storage(st, rng);
  uvp::nn::load(weights_path, model_storage.blocks());
  const PurchaseModel& model = model_storage;  // from here on, only const calls
  const double t_load = seconds(Clock::now() - t0);

  const Sequences seqs = a.input.empty() ? bundled_sequences(st) : read_token_csv(a.input, st.max_len);
  if (!a.save_input.empty()) write_token_csv(a.save_input, seqs);
  const index n = seqs.size();
  std::printf("model: %s\n", weights_path.c_str());
  std::printf("architecture: Embedding(%ld, %ld) -> Lstm(%ld, %ld) -> Dense(%ld, 1)\n", long(st.vocabulary),
              long(st.embed), long(st.lstm_in), long(st.hidden), long(st.head_in));
  std::printf("max_len: %ld\n", long(st.max_len));
  std::printf("input: %s\n", a.input.empty() ? "bundled CDNOW sample (tokenised on the fly)" : a.input.c_str());
  std::printf("sequences: %ld\n", long(n));
  std::printf("threads: %d\n", a.threads);
  std::printf("seconds_load: %.4f\n", t_load);

  // Batch scoring: the sequences sorted by length (stable), cut into batches of --batch, each
  // padded to its longest sequence only. The batches are shared out to --threads threads (a
  // counter), each with its own Workspace and one OpenMP thread: at these sizes a fork per block
  // costs more than it saves. The first pass warms the workspaces; the timed passes allocate
  // nothing.
  std::vector<index> order(static_cast<std::size_t>(n));
  for (index i = 0; i < n; ++i) order[std::size_t(i)] = i;
  std::stable_sort(order.begin(), order.end(), [&](index u, index v) {
    return seqs.lengths[std::size_t(u)] < seqs.lengths[std::size_t(v)];
  });
  std::vector<float> batch_logits(static_cast<std::size_t>(n));
  struct BatchBuffers {
    PurchaseModel::Workspace ws;
    std::vector<index> ids, lengths;
    std::vector<float> out;
  };
  std::vector<BatchBuffers> buffers(static_cast<std::size_t>(a.threads));
  const index batches = (n + a.batch - 1) / a.batch;
  const auto score_batches = [&](BatchBuffers& bb, std::atomic<index>& next_batch) {
    uvp::set_num_threads(1);
    bb.ids.resize(std::size_t(a.batch * st.max_len)), bb.lengths.resize(std::size_t(a.batch));
    bb.out.resize(std::size_t(a.batch));
    for (index k = next_batch++; k < batches; k = next_batch++) {
      const index s = k * a.batch, m = std::min(a.batch, n - s);
      const index seq_len = seqs.lengths[std::size_t(order[std::size_t(s + m - 1)])];
      for (index b = 0; b < m; ++b) {
        const index i = order[std::size_t(s + b)];
        std::copy_n(seqs.row(i), seq_len, bb.ids.data() + b * seq_len);
        bb.lengths[std::size_t(b)] = seqs.lengths[std::size_t(i)];
      }
      if (m == 1)  // a batch of one is a request (see PurchaseModel::request)
        bb.out[0] = model.request(bb.ids.data(), seq_len, bb.ws);
      else
        model.logits(bb.ids.data(), bb.lengths.data(), m, seq_len, bb.ws, bb.out.data());
      for (index b = 0; b < m; ++b) batch_logits[std::size_t(order[std::size_t(s + b)])] = bb.out[std::size_t(b)];
    }
  };
  const auto score_all = [&] {
    std::atomic<index> next_batch{0};
    if (a.threads == 1) return score_batches(buffers[0], next_batch);
    std::vector<std::thread> pool;
    for (int w = 0; w < a.threads; ++w)
      pool.emplace_back([&, w] { score_batches(buffers[std::size_t(w)], next_batch); });
    for (auto& th : pool) th.join();
  };
  score_all();
  index passes = 0;
  t0 = Clock::now();
  do score_all(), ++passes;
  while (seconds(Clock::now() - t0) < 0.5 && passes < 1000);
  const double t_batch = seconds(Clock::now() - t0) / double(passes);
  std::printf("batch_size: %ld\n", long(a.batch));
  std::printf("batch_seconds: %.6f\n", t_batch);
  std::printf("batch_sequences_per_s: %.0f\n", double(n) / t_batch);

  // Single requests: a.threads threads share the const model, each with its own Workspace, and
  // take request numbers from one counter; request k scores sequence k mod n, one at a time.
  // The first n requests (one per sequence) give the scores checked below and warm the
  // workspaces; the next --requests are timed.
  std::vector<float> single_logits(static_cast<std::size_t>(n), std::nanf(""));
  std::vector<std::vector<double>> latency(static_cast<std::size_t>(a.threads));
  std::atomic<index> next{0};
  std::vector<std::string> errors(static_cast<std::size_t>(a.threads));
  const auto worker = [&](int w) {
    try {
      uvp::set_num_threads(1);  // one request = one core; the threads give the parallelism
      PurchaseModel::Workspace mine;
      auto& lat = latency[std::size_t(w)];
      lat.reserve(std::size_t(a.requests / a.threads + 1));
      for (index k = next++; k < a.requests + n; k = next++) {
        const index i = k % n, len = seqs.lengths[std::size_t(i)];
        const auto start = Clock::now();
        const float logit = a.alone ? model.request_alone(seqs.row(i), len, mine) : model.request(seqs.row(i), len, mine);
        const auto stop = Clock::now();
        if (k < n) single_logits[std::size_t(i)] = logit;
        else lat.push_back(seconds(stop - start));
      }
    } catch (const std::exception& e) {
      errors[std::size_t(w)] = e.what();
    }
  };
  t0 = Clock::now();
  std::vector<std::thread> pool;
  for (int w = 0; w < a.threads; ++w) pool.emplace_back(worker, w);
  for (auto& th : pool) th.join();
  const double t_single = seconds(Clock::now() - t0);
  for (const auto& e : errors)
    if (!e.empty()) throw std::runtime_error(e);
  std::vector<double> all;
  for (const auto& l : latency) all.insert(all.end(), l.begin(), l.end());
  std::sort(all.begin(), all.end());
  std::printf("requests: %ld\n", long(all.size()));
  std::printf("request_threads: %d\n", a.threads);
  std::printf("request_mode: %s\n", a.alone ? "alone" : "paired");
  std::printf("requests_per_s: %.0f\n", double(a.requests + n) / t_single);
  std::printf("latency_p50_us: %.1f\n", 1e6 * quantile(all, 0.50));
  std::printf("latency_p99_us: %.1f\n", 1e6 * quantile(all, 0.99));
  std::printf("latency_max_us: %.1f\n", 1e6 * all.back());

  // The same sequence must score the same, alone or in a batch of any size, on any thread.
  index differ = 0;
  double max_diff = 0;
  for (index i = 0; i < n; ++i) {
    const float b = batch_logits[std::size_t(i)], s = single_logits[std::size_t(i)];
    if (std::memcmp(&b, &s, sizeof b) != 0) ++differ;
    max_diff = std::max(max_diff, std::abs(double(b) - double(s)));
  }
  std::printf("batch_vs_single_identical: %s\n", differ == 0 ? "true" : "false");
  std::printf("batch_vs_single_differing: %ld\n", long(differ));
  std::printf("batch_vs_single_max_abs_diff: %.3g\n", max_diff);

  double mean_p = 0;
  std::string csv = "customer_id,tokens,logit,p_purchase\n";
  char buf[64];
  for (index i = 0; i < n; ++i) {
    const double p = 1.0 / (1.0 + std::exp(-double(batch_logits[std::size_t(i)])));
    mean_p += p / double(n);
    std::snprintf(buf, sizeof buf, ",%.9g,%.6f\n", double(batch_logits[std::size_t(i)]), p);
    csv += seqs.id[std::size_t(i)] + "," + tokens_text(seqs, i) + buf;
  }
  std::printf("mean_p_purchase: %.4f\n", mean_p);
  std::filesystem::create_directories(a.out);
  uvp::write_file_atomic(a.out + "/scores.csv", csv, "serve");
  std::printf("scores_csv: %s/scores.csv\n", a.out.c_str());
  return differ == 0 ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run(parse_args(argc, argv));
  } catch (const std::exception& e) {
    std::fprintf(stderr, "serve: %s\n", e.what());
    return 2;
  }
}
