// SPDX-License-Identifier: Apache-2.0
// The same answer at any batch size (docs/concepts.md): every block's forward, and the composed
// models' inference paths, give each row (or sequence) bit for bit the result it gets when
// forwarded alone, whatever the batch size, its position in the batch and the thread count.
//
// Each case forwards the first N of 257 items (rows, sequences of varied lengths, bags) for N in
// {1, 2, 3, 7, 64, 257} at 1 and 2 threads and compares every item's output with the same item
// forwarded alone (memcmp of the values' bits). Sizes are odd on purpose (edge tiles of every
// kernel), and the largest batches cross the blocks' parallel thresholds.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include "support/test_support.hpp"
#include "uvp/core/init.hpp"
#include "uvp/core/parallel.hpp"
#include "uvp/core/random.hpp"
#include "uvp/nn/activations.hpp"
#include "uvp/nn/attention.hpp"
#include "uvp/nn/chain.hpp"
#include "uvp/nn/conv1d.hpp"
#include "uvp/nn/dense.hpp"
#include "uvp/nn/dropout.hpp"
#include "uvp/nn/embedding.hpp"
#include "uvp/nn/embedding_bag.hpp"
#include "uvp/nn/gru.hpp"
#include "uvp/nn/layer_norm.hpp"
#include "uvp/nn/lstm.hpp"
#include "uvp/nn/pooling.hpp"
#include "uvp/nn/position_embedding.hpp"
#include "uvp/nn/residual.hpp"
#include "uvp/nn/sequential.hpp"
#include "uvp/nn/sum.hpp"

namespace nn = uvp::nn;
using Index = uvp::index;
using uvp::Span;

namespace {

// Under a sanitizer the largest batch is 64 (the Release run covers 257 and the parallel
// thresholds).
constexpr Index kItems = uvp_test::sanitized ? 64 : 257;
const std::vector<Index> kBatchSizes = uvp_test::sanitized ? std::vector<Index>{1, 2, 3, 7, 64}
                                                           : std::vector<Index>{1, 2, 3, 7, 64, 257};
constexpr Index kSteps = 9;  // the longest sequence

// One item's output, flattened (its valid rows).
template <class T>
using Out = std::vector<T>;

template <class T>
uvp::Matrix<T> random_matrix(Index rows, Index cols, std::uint64_t seed) {
  uvp::Rng rng(seed);
  uvp::Matrix<T> m(rows, cols);
  uvp::init::normal(Span<T>(m.data(), m.size()), 0.0, 1.0, rng);
  return m;
}

// Sequence i's length: every value in [1, kSteps], in no order.
Index length_of(Index i) { return 1 + (i * 5 + 3) % kSteps; }

std::vector<Index> all_lengths() {
  std::vector<Index> l(kItems);
  for (Index i = 0; i < kItems; ++i) l[std::size_t(i)] = length_of(i);
  return l;
}

// Rows [r0, r0 + n) of m, flattened.
template <class T, class M>
Out<T> rows_of(const M& m, Index r0, Index n) {
  Out<T> v(std::size_t(n * m.cols()));
  for (Index r = 0; r < n; ++r)
    for (Index c = 0; c < m.cols(); ++c) v[std::size_t(r * m.cols() + c)] = m(r0 + r, c);
  return v;
}

// forward(first, count) returns the outputs of items [first, first + count) forwarded as one
// batch. Checks that each equals the item forwarded alone, bit for bit, at 1 and 2 threads.
template <class T>
void check_invariance(const std::string& what, const std::function<std::vector<Out<T>>(Index, Index)>& forward) {
  INFO(what);
  const uvp::ThreadCountGuard restore(1);
  std::vector<Out<T>> alone(static_cast<std::size_t>(kItems));
  for (Index i = 0; i < kItems; ++i) {
    auto o = forward(i, 1);
    REQUIRE(o.size() == 1);
    alone[std::size_t(i)] = std::move(o[0]);
  }
  const int max_threads = uvp::has_openmp ? 2 : 1;
  for (int threads = 1; threads <= max_threads; ++threads) {
    uvp::set_num_threads(threads);
    for (const Index n : kBatchSizes) {
      const std::vector<Out<T>> batch = forward(0, n);
      REQUIRE(Index(batch.size()) == n);
      Index mismatches = 0, first = -1;
      double worst = 0;
      for (Index i = 0; i < n; ++i) {
        const Out<T>& a = batch[std::size_t(i)];
        const Out<T>& b = alone[std::size_t(i)];
        REQUIRE(a.size() == b.size());
        REQUIRE(!a.empty());
        if (std::memcmp(a.data(), b.data(), a.size() * sizeof(T)) == 0) continue;
        ++mismatches;
        if (first < 0) first = i;
        for (std::size_t k = 0; k < a.size(); ++k) worst = std::max(worst, std::abs(double(a[k]) - double(b[k])));
      }
      INFO("threads = " << threads << ", batch of " << n << ": " << mismatches << " items differ from their "
                        << "result alone (first: item " << first << ", largest difference " << worst << ")");
      CHECK(mismatches == 0);
    }
  }
}

// ---- Harnesses per input kind -------------------------------------------------------------

// A block on rows: item i is row i of X (kItems x in). forward_rows(X) returns the output rows.
template <class T, class F>
void check_rows(const std::string& what, Index in, F forward_rows, std::uint64_t seed = 1) {
  const uvp::Matrix<T> X = random_matrix<T>(kItems, in, seed);
  check_invariance<T>(what, [&](Index first, Index count) {
    // Alone, a row is copied to a buffer of its own: its address (and alignment) changes too.
    const uvp::Matrix<T> single = X.row(first);
    const uvp::ConstMatrixView<T> x(count == 1 ? single.data() : X.data() + first * in, count, in);
    const auto y = forward_rows(x);
    std::vector<Out<T>> out;
    for (Index r = 0; r < count; ++r) out.push_back(rows_of<T>(y, r, 1));
    return out;
  });
}

// A block on sequences of `features` features: item i is sequence i (length_of(i) valid steps of
// kSteps). forward_seq(x) returns the output rows. Alone, a sequence is forwarded twice: padded (steps kSteps, lengths {n_i}) and cut to its n_i
// steps (no lengths); both must equal its rows in the batch. per_step: the output has a row per
// step (its first n_i are compared); else one row per sequence.
template <class T, class F>
void check_sequences(const std::string& what, Index features, bool per_step, F forward_seq, std::uint64_t seed = 2) {
  const uvp::Matrix<T> X = random_matrix<T>(kItems * kSteps, features, seed);
  const std::vector<Index> lengths = all_lengths();
  for (const bool cut : {false, true}) {
    check_invariance<T>(what + (cut ? " (alone: cut to its length)" : " (alone: padded)"), [&](Index first,
                                                                                               Index count) {
      const bool cut_alone = cut && count == 1;
      const Index steps = cut_alone ? length_of(first) : kSteps;
      // Alone, a sequence is copied to a buffer of its own (another address and alignment).
      const uvp::Matrix<T> single = X.middleRows(first * kSteps, steps);
      const T* data = count == 1 ? single.data() : X.data() + first * kSteps * features;
      const nn::SequenceBatch<T> x(uvp::ConstMatrixView<T>(data, count * steps, features),
                                   count, steps,
                                   cut_alone ? Span<const Index>() : Span<const Index>(lengths.data() + first, count));
      const auto y = forward_seq(x);
      std::vector<Out<T>> out;
      for (Index b = 0; b < count; ++b) {
        if (per_step)
          out.push_back(rows_of<T>(y, b * steps, length_of(first + b)));
        else
          out.push_back(rows_of<T>(y, b, 1));
      }
      return out;
    });
  }
}

// A model on token ids: item i is sequence i of ids in [0, vocab), length_of(i) valid steps,
// padding id 0 past them. forward_tokens(TokenBatch) returns the output as check_sequences.
template <class T, class F>
void check_tokens(const std::string& what, Index vocab, bool per_step, F forward_tokens) {
  std::vector<Index> ids(std::size_t(kItems * kSteps), 0);
  const std::vector<Index> lengths = all_lengths();
  uvp::Rng rng(3);
  for (Index i = 0; i < kItems; ++i)
    for (Index t = 0; t < length_of(i); ++t)
      ids[std::size_t(i * kSteps + t)] = 1 + Index(rng.uniform() * double(vocab - 1)) % (vocab - 1);
  std::vector<Index> cut_ids;
  for (const bool cut : {false, true}) {
    check_invariance<T>(what + (cut ? " (alone: cut to its length)" : " (alone: padded)"), [&](Index first,
                                                                                               Index count) {
      const bool cut_alone = cut && count == 1;
      const Index steps = cut_alone ? length_of(first) : kSteps;
      const nn::TokenBatch x(Span<const Index>(ids.data() + first * kSteps, count * steps), count, steps,
                             cut_alone ? Span<const Index>() : Span<const Index>(lengths.data() + first, count));
      const auto y = forward_tokens(x);
      std::vector<Out<T>> out;
      for (Index b = 0; b < count; ++b) {
        if (per_step)
          out.push_back(rows_of<T>(y, b * steps, length_of(first + b)));
        else
          out.push_back(rows_of<T>(y, b, 1));
      }
      return out;
    });
  }
}

template <class T>
uvp::ConstMatrixView<T> values(const nn::SequenceBatch<T>& s) {
  return s.values();
}

}  // namespace

// ---- Row blocks -----------------------------------------------------------------------------

TEST_CASE_TEMPLATE("batch invariance: Dense", T, float, double) {
  uvp::Rng rng(11);
  const nn::Dense<T> small(37, 19, rng), large(96, 130, rng), no_bias(5, 3, rng, false), one(64, 1, rng);
  for (const auto* d : {&small, &large, &no_bias, &one}) {
    typename nn::Dense<T>::Context ctx;
    check_rows<T>("Dense(" + std::to_string(d->in_features()) + ", " + std::to_string(d->out_features()) + ")",
                  d->in_features(), [&](const uvp::ConstMatrixView<T>& x) { return d->forward(x, ctx); });
  }
}

TEST_CASE_TEMPLATE("batch invariance: activations, LayerNorm and Dropout in eval", T, float, double) {
  constexpr Index d = 37;
  {
    nn::Relu<T> b;
    typename nn::Relu<T>::Context ctx;
    check_rows<T>("Relu", d, [&](const uvp::ConstMatrixView<T>& x) { return b.forward(x, ctx); });
  }
  {
    nn::Sigmoid<T> b;
    typename nn::Sigmoid<T>::Context ctx;
    check_rows<T>("Sigmoid", d, [&](const uvp::ConstMatrixView<T>& x) { return b.forward(x, ctx); });
  }
  {
    nn::Tanh<T> b;
    typename nn::Tanh<T>::Context ctx;
    check_rows<T>("Tanh", d, [&](const uvp::ConstMatrixView<T>& x) { return b.forward(x, ctx); });
  }
  {
    nn::Gelu<T> b;
    typename nn::Gelu<T>::Context ctx;
    check_rows<T>("Gelu", d, [&](const uvp::ConstMatrixView<T>& x) { return b.forward(x, ctx); });
  }
  {
    nn::Softmax<T> b;
    typename nn::Softmax<T>::Context ctx;
    check_rows<T>("Softmax", d, [&](const uvp::ConstMatrixView<T>& x) { return b.forward(x, ctx); });
  }
  {
    nn::LayerNorm<T> b(d);
    uvp::Rng rng(5);
    uvp::init::normal(b.weight(), 1.0, 0.5, rng);
    uvp::init::normal(b.bias(), 0.0, 0.5, rng);
    typename nn::LayerNorm<T>::Context ctx;
    check_rows<T>("LayerNorm", d, [&](const uvp::ConstMatrixView<T>& x) { return b.forward(x, ctx); });
  }
  {
    nn::Dropout<T> b(0.3);
    b.eval();
    typename nn::Dropout<T>::Context ctx;
    check_rows<T>("Dropout (eval)", d, [&](const uvp::ConstMatrixView<T>& x) { return b.forward(x, ctx); });
  }
}

TEST_CASE_TEMPLATE("batch invariance: Sequential (an MLP with LayerNorm)", T, float, double) {
  uvp::Rng rng(12);
  nn::MlpOptions o;
  o.layer_norm = true;
  o.dropout = 0.2;
  o.output = nn::Activation::sigmoid;
  auto mlp = nn::make_mlp<T>({29, 64, 33, 1}, nn::Activation::gelu, rng, o);
  mlp.eval();
  typename nn::Sequential<T>::Context ctx;
  check_rows<T>("Sequential", 29, [&](const uvp::ConstMatrixView<T>& x) { return mlp.forward(x, ctx); });
}

TEST_CASE_TEMPLATE("batch invariance: LstmCell", T, float, double) {
  uvp::Rng rng(13);
  const nn::LstmCell<T> cell(11, 24, rng);
  constexpr Index I = 11, H = 24;
  const uvp::Matrix<T> X = random_matrix<T>(kItems, I + 2 * H, 4);  // x | h | c of each row
  typename nn::LstmCell<T>::Context ctx;
  check_invariance<T>("LstmCell", [&](Index first, Index count) {
    const uvp::Matrix<T> x = X.block(first, 0, count, I), h = X.block(first, I, count, H),
                         c = X.block(first, I + H, count, H);
    const nn::LstmCellState<T> s = cell.forward(
        nn::LstmCellInput<T>(uvp::ConstMatrixView<T>(x.data(), count, I), uvp::ConstMatrixView<T>(h.data(), count, H),
                             uvp::ConstMatrixView<T>(c.data(), count, H)),
        ctx);
    std::vector<Out<T>> out;
    for (Index r = 0; r < count; ++r) {
      Out<T> o = rows_of<T>(s.h(), r, 1), oc = rows_of<T>(s.c(), r, 1);
      o.insert(o.end(), oc.begin(), oc.end());
      out.push_back(std::move(o));
    }
    return out;
  });
}

// ---- Token blocks ---------------------------------------------------------------------------

TEST_CASE_TEMPLATE("batch invariance: Embedding, PositionEmbedding, EmbeddingBag", T, float, double) {
  uvp::Rng rng(14);
  const nn::Embedding<T> emb(40, 13, rng, 0);
  const nn::PositionEmbedding<T> pos(kSteps, 13, rng);
  {
    typename nn::Embedding<T>::Context ctx;
    check_tokens<T>("Embedding", 40, true, [&](const nn::TokenBatch& x) { return values(emb.forward(x, ctx)); });
  }
  {
    typename nn::PositionEmbedding<T>::Context ctx;
    check_tokens<T>("PositionEmbedding", 40, true, [&](const nn::TokenBatch& x) { return values(pos.forward(x, ctx)); });
  }
  for (const nn::BagMode mode : {nn::BagMode::mean, nn::BagMode::sum}) {
    uvp::Rng r2(15);
    const nn::EmbeddingBag<T> bag(40, 13, r2, mode, 0);
    // Bag i: ids of sequence i's valid steps.
    std::vector<Index> ids, offsets;
    uvp::Rng r3(16);
    for (Index i = 0; i < kItems; ++i) {
      offsets.push_back(Index(ids.size()));
      for (Index t = 0; t < length_of(i); ++t) ids.push_back(Index(r3.uniform() * 40.0) % 40);
    }
    typename nn::EmbeddingBag<T>::Context ctx;
    check_invariance<T>(mode == nn::BagMode::mean ? "EmbeddingBag (mean)" : "EmbeddingBag (sum)",
                        [&](Index first, Index count) {
                          const Index o0 = offsets[std::size_t(first)];
                          const Index end =
                              first + count < kItems ? offsets[std::size_t(first + count)] : Index(ids.size());
                          std::vector<Index> off(static_cast<std::size_t>(count));
                          for (Index b = 0; b < count; ++b) off[std::size_t(b)] = offsets[std::size_t(first + b)] - o0;
                          const nn::TokenBags x{Span<const Index>(ids.data() + o0, end - o0), uvp::as_span(off)};
                          const auto y = bag.forward(x, ctx);
                          std::vector<Out<T>> out;
                          for (Index b = 0; b < count; ++b) out.push_back(rows_of<T>(y, b, 1));
                          return out;
                        });
  }
}

// ---- Sequence blocks ------------------------------------------------------------------------

TEST_CASE_TEMPLATE("batch invariance: poolings", T, float, double) {
  {
    nn::GlobalMaxPool1d<T> p;
    typename nn::GlobalMaxPool1d<T>::Context ctx;
    check_sequences<T>("GlobalMaxPool1d", 21, false, [&](const nn::SequenceBatch<T>& x) { return p.forward(x, ctx); });
  }
  {
    nn::GlobalMeanPool1d<T> p;
    typename nn::GlobalMeanPool1d<T>::Context ctx;
    check_sequences<T>("GlobalMeanPool1d", 21, false, [&](const nn::SequenceBatch<T>& x) { return p.forward(x, ctx); });
  }
  {
    nn::GlobalLastPool1d<T> p;
    typename nn::GlobalLastPool1d<T>::Context ctx;
    check_sequences<T>("GlobalLastPool1d", 21, false, [&](const nn::SequenceBatch<T>& x) { return p.forward(x, ctx); });
  }
}

TEST_CASE_TEMPLATE("batch invariance: MultiHeadSelfAttention (key masks, causal)", T, float, double) {
  // E = 6: rows of 6 values, so a sequence's alignment changes with its place in the batch.
  for (const Index E : {24, 6})
    for (const bool causal : {false, true}) {
      uvp::Rng rng(17);
      const nn::MultiHeadSelfAttention<T> att(E, E == 6 ? 2 : 4, rng, causal);
      typename nn::MultiHeadSelfAttention<T>::Context ctx;
      check_sequences<T>(std::string(causal ? "MultiHeadSelfAttention (causal), E = " : "MultiHeadSelfAttention, E = ") +
                             std::to_string(E),
                         E, true, [&](const nn::SequenceBatch<T>& x) { return values(att.forward(x, ctx)); });
    }
}

TEST_CASE_TEMPLATE("batch invariance: Conv1d", T, float, double) {
  uvp::Rng rng(18);
  const nn::Conv1d<T> conv(12, 20, 3, rng, {/*stride=*/1, /*padding=*/1, /*bias=*/true});
  typename nn::Conv1d<T>::Context ctx;
  check_sequences<T>("Conv1d", 12, true, [&](const nn::SequenceBatch<T>& x) { return values(conv.forward(x, ctx)); });
}

TEST_CASE_TEMPLATE("batch invariance: Lstm (1 and 2 layers; forward and forward_last)", T, float, double) {
  for (const Index layers : {1, 2}) {
    const std::string L = " (" + std::to_string(layers) + " layer" + (layers > 1 ? "s)" : ")");
    uvp::Rng rng(19);
    const nn::Lstm<T> lstm(10, 24, rng, layers);
    typename nn::Lstm<T>::Context ctx;
    check_sequences<T>("Lstm::forward" + L, 10, true,
                       [&](const nn::SequenceBatch<T>& x) { return values(lstm.forward(x, ctx)); });
    uvp::Matrix<T> h;
    check_sequences<T>("Lstm::forward_last" + L, 10, false, [&](const nn::SequenceBatch<T>& x) {
      h.resize(x.batch, 24);
      lstm.forward_last(x, h, ctx);
      return h;
    });
  }
}

TEST_CASE_TEMPLATE("batch invariance: Gru (1 and 2 layers; forward and forward_last)", T, float, double) {
  for (const Index layers : {1, 2}) {
    const std::string L = " (" + std::to_string(layers) + " layer" + (layers > 1 ? "s)" : ")");
    uvp::Rng rng(19);
    const nn::Gru<T> gru(10, 24, rng, layers);
    typename nn::Gru<T>::Context ctx;
    check_sequences<T>("Gru::forward" + L, 10, true,
                       [&](const nn::SequenceBatch<T>& x) { return values(gru.forward(x, ctx)); });
    uvp::Matrix<T> h;
    check_sequences<T>("Gru::forward_last" + L, 10, false, [&](const nn::SequenceBatch<T>& x) {
      h.resize(x.batch, 24);
      gru.forward_last(x, h, ctx);
      return h;
    });
  }
}

// ---- Composed models ------------------------------------------------------------------------

// The shapes of examples/common/purchase_models.hpp (smaller widths), in eval mode (the fused
// LSTM + last-step inference path) and in train mode (every step kept).
namespace {

template <class T>
void check_composed_models(bool training) {
  constexpr Index vocab = 30, E = 16;
  {
    const std::string mode = training ? " (train mode)" : " (eval mode)";
    {
      uvp::Rng rng(20);
      nn::Chain<nn::Embedding<T>, nn::Lstm<T>, nn::GlobalLastPool1d<T>, nn::Dense<T>> m(
          nn::Embedding<T>(vocab, E, rng, 0), nn::Lstm<T>(E, 24, rng), nn::GlobalLastPool1d<T>(),
          nn::Dense<T>(24, 1, rng));
      m.train(training);
      typename decltype(m)::Context ctx;
      check_tokens<T>("purchase LSTM" + mode, vocab, false, [&](const nn::TokenBatch& x) { return m.forward(x, ctx); });
    }
    {
      uvp::Rng rng(21);
      nn::Chain<nn::Embedding<T>, nn::Gru<T>, nn::GlobalLastPool1d<T>, nn::Dense<T>, nn::Sigmoid<T>> m(
          nn::Embedding<T>(vocab, E, rng, 0), nn::Gru<T>(E, 24, rng, 2), nn::GlobalLastPool1d<T>(),
          nn::Dense<T>(24, 1, rng), nn::Sigmoid<T>());
      m.train(training);
      typename decltype(m)::Context ctx;
      check_tokens<T>("GRU model" + mode, vocab, false, [&](const nn::TokenBatch& x) { return m.forward(x, ctx); });
    }
    {
      uvp::Rng rng(22);
      nn::Embedding<T> tokens(vocab, E, rng, 0);
      nn::PositionEmbedding<T> positions(kSteps, E, rng);
      nn::MultiHeadSelfAttention<T> attention(E, 4, rng);
      nn::Dense<T> head(E, 1, rng);
      nn::Chain<nn::Sum<nn::Embedding<T>, nn::PositionEmbedding<T>>, nn::Residual<nn::MultiHeadSelfAttention<T>>,
                nn::GlobalMeanPool1d<T>, nn::Dense<T>>
          m(nn::Sum(std::move(tokens), std::move(positions)), nn::Residual(std::move(attention)),
            nn::GlobalMeanPool1d<T>(), std::move(head));
      m.train(training);
      typename decltype(m)::Context ctx;
      check_tokens<T>("purchase attention" + mode, vocab, false,
                      [&](const nn::TokenBatch& x) { return m.forward(x, ctx); });
    }
    {
      uvp::Rng rng(23);
      nn::Chain<nn::Embedding<T>, nn::Conv1d<T>, nn::Relu<T>, nn::GlobalMaxPool1d<T>, nn::LayerNorm<T>, nn::Dense<T>>
          m(nn::Embedding<T>(vocab, E, rng, 0), nn::Conv1d<T>(E, 20, 3, rng, {1, 1, true}), nn::Relu<T>(),
            nn::GlobalMaxPool1d<T>(), nn::LayerNorm<T>(20), nn::Dense<T>(20, 1, rng));
      m.train(training);
      typename decltype(m)::Context ctx;
      check_tokens<T>("intent conv1d" + mode, vocab, false, [&](const nn::TokenBatch& x) { return m.forward(x, ctx); });
    }
  }
}

}  // namespace

TEST_CASE_TEMPLATE("batch invariance: composed models in eval mode (purchase LSTM / GRU, attention, conv1d)", T, float,
                   double) {
  check_composed_models<T>(false);
}

TEST_CASE_TEMPLATE("batch invariance: composed models in train mode (every step kept)", T, float, double) {
  check_composed_models<T>(true);
}
