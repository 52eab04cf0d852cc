// SPDX-License-Identifier: Apache-2.0
// Serving a trained model: loads any model an example saved (purchase_lstm, purchase_attention,
// intent_conv1d) from its model file alone, scores a CSV of token sequences in batch, answers
// single requests from several threads on one const model, and checks that both give the same
// scores, bit for bit.
//
//   serve [--model PATH] [--input CSV] [--threads N] [--requests N] [--batch N] [--out DIR]
//
// PATH is a model file, or a directory holding one of purchase_lstm.uvpm, purchase_attention.uvpm,
// intent_conv1d.uvpm (the first found, in that order). uvp::nn::load_model rebuilds the blocks from
// the architecture the file stores and loads their weights: no C++ type of the model and no
// settings file. The tokens are examples/common's Vocabulary, as for the examples that train.
// Every scoring call is const: the model is shared by all threads, each of which owns a Workspace
// (the AnyModel context of its calls). A single request is scored as a batch of one: it gets bit
// for bit the logit its sequence gets in any batch (the library's guarantee, docs/concepts.md).
//
// Prints one `name: value` per line; writes DIR/scores.csv (customer_id, tokens, logit, p).
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <exception>
#include <filesystem>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "../common/cdnow_sequences.hpp"
#include "uvp/core/error.hpp"
#include "uvp/core/parallel.hpp"
#include "uvp/core/tensor.hpp"
#include "uvp/data/csv.hpp"
#include "uvp/io/file.hpp"
#include "uvp/nn/any_model.hpp"

#ifndef UVP_EXAMPLE_DATA_DIR
#define UVP_EXAMPLE_DATA_DIR "examples/data"
#endif

namespace {

using uvp::index;
namespace ex = uvp_examples;
using Clock = std::chrono::steady_clock;

struct Args {
  std::string model = "out/purchase_lstm";  // a model file or a directory; purchase_lstm's default --out
  std::string input;                        // empty: the bundled CDNOW sample, tokenised here
  std::string save_input;                   // write the sequences as a token CSV
  std::string out = "out/serve";
  int threads = 2;
  index requests = 20000;
  index batch = 256;
};

const char* usage_text =
    "usage: serve [--model PATH] [--input CSV] [--threads N] [--requests N] [--batch N] [--out DIR]\n"
    "             [--save-input CSV]\n"
    "Scores customer purchase-token sequences with a model an example saved: in batch, and as\n"
    "single requests from N threads on one const model; checks both give the same scores.\n"
    "  --model PATH      a model file (.uvpm), or a directory with purchase_lstm.uvpm,\n"
    "                    purchase_attention.uvpm or intent_conv1d.uvpm (the first found, in that\n"
    "                    order); rebuilt from the file alone (default out/purchase_lstm: run\n"
    "                    `purchase_lstm` from the same directory)\n"
    "  --input CSV       sequences to score: header customer_id,tokens; tokens = space-separated\n"
    "                    vocabulary ids, oldest purchase first, END token last, no padding\n"
    "                    (default: the bundled CDNOW sample, tokenised as the examples' training\n"
    "                    data: examples/common's vocabulary and calibration_end)\n"
    "  --save-input CSV  also write the sequences scored in that format\n"
    "  --threads N       request threads, and OpenMP threads of the batch scoring (2)\n"
    "  --requests N      single requests to time, over all threads (20000)\n"
    "  --batch N         sequences per batch (256)\n"
    "  --out DIR         where scores.csv goes (out/serve)\n";

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
// The model: whatever a saved example model file describes, rebuilt by uvp::nn::load_model.

/// The example model files, in the order a --model directory is searched.
constexpr const char* kModelFiles[] = {"purchase_lstm.uvpm", "purchase_attention.uvpm", "intent_conv1d.uvpm"};

/// The model file --model names: the path itself when it is a file, else the first of kModelFiles
/// in that directory; empty when there is none.
std::string find_model_file(const std::string& path) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (fs::is_regular_file(path, ec)) return path;
  if (!fs::is_directory(path, ec)) return {};
  for (const char* name : kModelFiles)
    if (fs::is_regular_file(fs::path(path) / name, ec)) return (fs::path(path) / name).string();
  return {};
}

/// "Sum(Embedding, PositionEmbedding)": a block's kind, with its children's for a composite.
std::string describe(const uvp::nn::BlockSpec& s) {
  std::string out = s.kind;
  for (std::size_t c = 0; c < s.children.size(); ++c) out += (c ? ", " : "(") + describe(s.children[c]);
  return s.children.empty() ? out : out + ")";
}

/// The first argument `name` of a block of `kind` in the architecture (depth first), or -1.
double find_arg(const uvp::nn::BlockSpec& s, const std::string& kind, const std::string& name) {
  if (s.kind == kind)
    for (const auto& a : s.args)
      if (a.first == name) return a.second;
  for (const auto& c : s.children) {
    const double v = find_arg(c, kind, name);
    if (v >= 0) return v;
  }
  return -1;
}

class PurchaseModel {
 public:
  /// Everything one thread's calls write: only grows, so a thread's steady state allocates nothing.
  struct Workspace {
    uvp::nn::AnyModel<float>::Context ctx;
  };

  /// Rebuilds the model `path` holds from the file alone (architecture, then weights: names,
  /// shapes and checksum checked; an unknown block kind is the library's uvp::format_error), and
  /// checks it is a model this server can feed: token ids of examples/common's vocabulary in, one
  /// logit per sequence out.
  explicit PurchaseModel(const std::string& path) : file_(path), model_(uvp::nn::load_model<float>(path)) {
    model_.eval();  // Dropout off; a recurrent block before GlobalLastPool1d runs forward_last
    const auto arch = model_.architecture();
    for (const auto& block : arch) architecture_ += (architecture_.empty() ? "" : " -> ") + describe(block.second);
    if (model_.input_kind() != uvp::nn::BatchKind::tokens || model_.output_kind() != uvp::nn::BatchKind::rows ||
        model_.output_width() != 1)
      uvp::detail::raise<uvp::format_error>("'", path, "': the model (", architecture_, ") reads ",
                                            uvp::nn::batch_kind_name(model_.input_kind()), " and gives ",
                                            uvp::nn::batch_kind_name(model_.output_kind()), " of width ",
                                            model_.output_width(),
                                            "; this server scores token sequences with one logit each");
    // The tokeniser is examples/common's Vocabulary, as for the examples that train: the token
    // table must have its size. A position table caps the sequence length.
    double vocabulary = -1, max_steps = -1;
    for (const auto& block : arch) {
      if (vocabulary < 0) vocabulary = find_arg(block.second, "Embedding", "num_embeddings");
      if (max_steps < 0) max_steps = find_arg(block.second, "PositionEmbedding", "max_steps");
    }
    if (vocabulary < 0)
      uvp::detail::raise<uvp::format_error>("'", path, "': the model (", architecture_,
                                            ") has no Embedding; this server feeds token ids to one");
    if (vocabulary != double(ex::Vocabulary::size))
      uvp::detail::raise<uvp::format_error>("'", path, "': the model's token table (Embedding) has ", vocabulary,
                                            " ids, this server tokenises with ", ex::Vocabulary::size);
    max_len_ = ex::DatasetOptions{}.max_len;
    if (max_steps >= 1 && max_steps < double(max_len_)) max_len_ = index(max_steps);
  }

  const std::string& file() const noexcept { return file_; }
  /// The blocks' kinds joined by " -> ".
  const std::string& architecture() const noexcept { return architecture_; }
  index parameter_count() const noexcept { return model_.parameter_count(); }
  /// Tokens per sequence: examples/common's max_len (what the examples train on), or fewer if the
  /// model's position table is shorter. Longer sequences keep their last max_len tokens.
  index max_len() const noexcept { return max_len_; }

  /// Logits of `batch` sequences: ids is batch x seq_len (row-major, padded with any valid id,
  /// e.g. the padding id), lengths their valid tokens, each in [1, seq_len]. seq_len may be
  /// anything from the longest length up to max_len() (the blocks leave the padding steps out: a
  /// shorter seq_len only saves work). Const and thread-safe with one Workspace per thread.
  void logits(const index* ids, const index* lengths, index batch, index seq_len, Workspace& ws, float* out) const {
    const uvp::nn::TokenBatch x(uvp::Span<const index>(ids, batch * seq_len), batch, seq_len,
                                uvp::Span<const index>(lengths, batch));
    const uvp::ConstMatrixView<float> y = model_.forward(x, ws.ctx);  // batch x 1, owned by ws.ctx
    for (index b = 0; b < batch; ++b) out[b] = y(b, 0);
  }

  /// One request: the logit of one sequence of n tokens (n in [1, max_len]), scored as a batch
  /// of one. It is bit for bit the logit the same sequence gets in any batch, on any thread: the
  /// library's blocks give each row the same answer at any batch size (docs/concepts.md, "Same
  /// answer at any batch size"); main() checks every score.
  float request(const index* tokens, index n, Workspace& ws) const {
    float out = 0;
    logits(tokens, &n, 1, n, ws, &out);
    return out;
  }

 private:
  std::string file_, architecture_;
  uvp::nn::AnyModel<float> model_;
  index max_len_ = 0;
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

// The bundled CDNOW sample, tokenised exactly as the examples' training data (the same builder
// and its default calibration_end).
Sequences bundled_sequences(index max_len) {
  const std::string path = std::string(UVP_EXAMPLE_DATA_DIR) + "/cdnow/CDNOW_sample.txt";
  ex::DatasetOptions o;
  o.max_len = max_len;
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

// Runs f(w) for w in [0, threads) on as many threads (on the calling one for a single thread);
// once all have finished, rethrows the first exception one of them raised.
template <class F>
void on_threads(int threads, const F& f) {
  if (threads == 1) return f(0);
  std::vector<std::exception_ptr> errors(static_cast<std::size_t>(threads));
  std::vector<std::thread> pool;
  for (int w = 0; w < threads; ++w)
    pool.emplace_back([&, w] {
      try {
        f(w);
      } catch (...) {
        errors[std::size_t(w)] = std::current_exception();
      }
    });
  for (auto& th : pool) th.join();
  for (const auto& e : errors)
    if (e) std::rethrow_exception(e);
}

double seconds(Clock::duration d) { return std::chrono::duration<double>(d).count(); }

// Quantile q of sorted values (linear interpolation, numpy's default).
double quantile(const std::vector<double>& sorted, double q) {
  const double pos = q * double(sorted.size() - 1);
  const std::size_t lo = std::size_t(pos), hi = std::min(lo + 1, sorted.size() - 1);
  return sorted[lo] + (pos - double(lo)) * (sorted[hi] - sorted[lo]);
}

int run(const Args& a) {
  const std::string file = find_model_file(a.model);
  if (file.empty()) {
    // A path to a .uvpm file: the examples write it into their --out directory.
    const bool named_file = std::filesystem::path(a.model).extension() == ".uvpm";
    const std::string dir = named_file ? std::filesystem::path(a.model).parent_path().string() : a.model;
    std::fprintf(stderr,
                 "serve: no model in '%s' (%s).\n"
                 "Create one with an example that trains, run from this directory:\n"
                 "  purchase_lstm --out %s\n"
                 "(or purchase_attention / intent_conv1d --out %s; from a CMake build tree:\n"
                 " BUILD/examples/purchase_lstm/purchase_lstm --out %s)\n",
                 a.model.c_str(),
                 named_file ? "no such file"
                            : "no purchase_lstm.uvpm, purchase_attention.uvpm or intent_conv1d.uvpm there",
                 dir.empty() ? "." : dir.c_str(), dir.empty() ? "." : dir.c_str(), dir.empty() ? "." : dir.c_str());
    return 3;
  }

  // Load: the architecture and the weights, from the file alone (uvp::nn::load_model).
  auto t0 = Clock::now();
  const PurchaseModel model(file);  // from here on, only const calls
  const double t_load = seconds(Clock::now() - t0);
  const index max_len = model.max_len();

  const Sequences seqs = a.input.empty() ? bundled_sequences(max_len) : read_token_csv(a.input, max_len);
  if (!a.save_input.empty()) write_token_csv(a.save_input, seqs);
  const index n = seqs.size();
  std::printf("model: %s\n", model.file().c_str());
  std::printf("architecture: %s\n", model.architecture().c_str());
  std::printf("parameters: %ld\n", long(model.parameter_count()));
  std::printf("max_len: %ld\n", long(max_len));
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
    bb.ids.resize(std::size_t(a.batch * max_len)), bb.lengths.resize(std::size_t(a.batch));
    bb.out.resize(std::size_t(a.batch));
    for (index k = next_batch++; k < batches; k = next_batch++) {
      const index s = k * a.batch, m = std::min(a.batch, n - s);
      const index seq_len = seqs.lengths[std::size_t(order[std::size_t(s + m - 1)])];
      for (index b = 0; b < m; ++b) {
        const index i = order[std::size_t(s + b)];
        std::copy_n(seqs.row(i), seq_len, bb.ids.data() + b * seq_len);
        bb.lengths[std::size_t(b)] = seqs.lengths[std::size_t(i)];
      }
      model.logits(bb.ids.data(), bb.lengths.data(), m, seq_len, bb.ws, bb.out.data());
      for (index b = 0; b < m; ++b) batch_logits[std::size_t(order[std::size_t(s + b)])] = bb.out[std::size_t(b)];
    }
  };
  const auto score_all = [&] {
    std::atomic<index> next_batch{0};
    on_threads(a.threads, [&](int w) { score_batches(buffers[std::size_t(w)], next_batch); });
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
  const auto worker = [&](int w) {
    uvp::set_num_threads(1);  // one request = one core; the threads give the parallelism
    PurchaseModel::Workspace mine;
    auto& lat = latency[std::size_t(w)];
    lat.reserve(std::size_t(a.requests / a.threads + 1));
    for (index k = next++; k < a.requests + n; k = next++) {
      const index i = k % n, len = seqs.lengths[std::size_t(i)];
      const auto start = Clock::now();
      const float logit = model.request(seqs.row(i), len, mine);
      const auto stop = Clock::now();
      if (k < n) single_logits[std::size_t(i)] = logit;
      else lat.push_back(seconds(stop - start));
    }
  };
  t0 = Clock::now();
  on_threads(a.threads, worker);
  const double t_single = seconds(Clock::now() - t0);
  std::vector<double> all;
  for (const auto& l : latency) all.insert(all.end(), l.begin(), l.end());
  std::sort(all.begin(), all.end());
  std::printf("requests: %ld\n", long(all.size()));
  std::printf("request_threads: %d\n", a.threads);
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
