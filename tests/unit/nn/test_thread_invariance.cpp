// SPDX-License-Identifier: Apache-2.0
// The training passes that run on several threads (Lstm forward + backward, the attention's
// backward, Embedding's scatter into its sparse gradient) give the same bits on 1 and 2 threads:
// their work is split into chunks fixed by the shapes alone and combined in chunk order.
#include <doctest/doctest.h>

#include <cstring>
#include <vector>

#include "uvp/core/parallel.hpp"
#include "uvp/nn/attention.hpp"
#include "uvp/nn/embedding.hpp"
#include "uvp/nn/lstm.hpp"

namespace {


// Threads of the second run: 2 with OpenMP; without it both runs use 1 (and still compare).
int other_threads() { return uvp::has_openmp ? 2 : 1; }

uvp::Matrix<float> random_matrix(uvp::index rows, uvp::index cols, uvp::Rng& rng) {
  uvp::Matrix<float> m(rows, cols);
  for (uvp::index i = 0; i < m.size(); ++i) m.data()[i] = float(rng.uniform(-1, 1));
  return m;
}

template <class A, class B>
bool same_bits(const A& a, const B& b) {
  return a.size() == b.size() &&
         std::memcmp(a.data(), b.data(), static_cast<std::size_t>(a.size()) * sizeof(*a.data())) == 0;
}

std::vector<float> copy_of(uvp::Span<const float> s) { return {s.data(), s.data() + s.size()}; }

}  // namespace

TEST_CASE("uvp::parallel_chunks runs every chunk once, passes exceptions on, and may be nested") {
  const uvp::ThreadCountGuard guard(other_threads());
  std::vector<int> hits(1000, 0);
  for (int rep = 0; rep < 20; ++rep)
    uvp::parallel_chunks(uvp::index(hits.size()), [&](uvp::index k) {
      ++hits[static_cast<std::size_t>(k)];
      uvp::parallel_chunks(3, [](uvp::index) {});  // nested: runs on the calling thread
    });
  for (int h : hits) CHECK(h == 20);
  CHECK_THROWS_AS(uvp::parallel_chunks(16,
                                       [](uvp::index k) {
                                         if (k == 7) throw uvp::invalid_argument("chunk 7");
                                       }),
                  uvp::invalid_argument);
  CHECK(uvp::num_threads() == other_threads());  // restored after the loop, also after a throw
}

TEST_CASE("Lstm forward + backward: the same gradients on 1 and 2 threads") {
  // Batch 32 of 12 steps, 8 -> 32: two chunks of 16 sequences (lstm_train_chunk_count); batch 6:
  // one chunk, whose products must not fork either.
  for (const uvp::index B : {uvp::index(32), uvp::index(6)}) {
    CAPTURE(B);
    const uvp::index S = 12, I = 8, H = 32;
    uvp::Rng rng(15);
    uvp::nn::Lstm<float> lstm(I, H, rng);
    const uvp::Matrix<float> X = random_matrix(B * S, I, rng), dH = random_matrix(B * S, H, rng);
    const uvp::Matrix<float> dlast = random_matrix(B, H, rng);
    std::vector<uvp::index> lengths(static_cast<std::size_t>(B));
    for (auto& n : lengths) n = 1 + uvp::index(rng.uniform_int(S));
    const uvp::Span<const uvp::index> len(lengths.data(), B);
    CHECK((uvp::detail::lstm_train_chunk_count(B, S * 4 * H * (I + H)) > 1) == (B == 32));

    const auto run = [&](int threads, uvp::Matrix<float>& dX, std::vector<float>& grads, uvp::Matrix<float>& Y) {
      const uvp::ThreadCountGuard guard(threads);
      uvp::nn::LstmContext<float> ctx;
      lstm.zero_grad();
      lstm.forward(X, B, S, len, ctx);
      Y = ctx.output();
      dX.resize(B * S, I);
      lstm.backward(X, dH, dlast, dX, ctx);
      grads = copy_of(lstm.parameters().grads());
    };
    uvp::Matrix<float> dX1, dX2, Y1, Y2;
    std::vector<float> g1, g2;
    run(1, dX1, g1, Y1);
    run(other_threads(), dX2, g2, Y2);
    CHECK(same_bits(Y1, Y2));
    CHECK(same_bits(dX1, dX2));
    CHECK(same_bits(g1, g2));
    CHECK(uvp::Matrix<float>(dX1).cwiseAbs().maxCoeff() > 0);  // something was computed
  }
}

TEST_CASE("MultiHeadSelfAttention backward: the same gradients on 1 and 2 threads") {
  const uvp::index B = 16, S = 20, E = 16;  // 16 x 16 valid rows at least: the parallel path
  uvp::Rng rng(16);
  uvp::nn::MultiHeadSelfAttention<float> mha(E, 2, rng);
  const uvp::Matrix<float> X = random_matrix(B * S, E, rng), dY = random_matrix(B * S, E, rng);
  std::vector<uvp::index> lengths(static_cast<std::size_t>(B));
  for (auto& n : lengths) n = 16 + uvp::index(rng.uniform_int(S - 15));
  const uvp::Span<const uvp::index> len(lengths.data(), B);

  const auto run = [&](int threads, uvp::Matrix<float>& dX, std::vector<float>& grads) {
    const uvp::ThreadCountGuard guard(threads);
    uvp::nn::MultiHeadSelfAttention<float>::Context ctx;
    uvp::Matrix<float> Y(B * S, E);
    mha.zero_grad();
    mha.forward(X, B, S, len, Y, ctx);
    dX.resize(B * S, E);
    mha.backward(X, dY, dX, ctx);
    grads = copy_of(mha.parameters().grads());
  };
  uvp::Matrix<float> dX1, dX2;
  std::vector<float> g1, g2;
  run(1, dX1, g1);
  run(other_threads(), dX2, g2);
  CHECK(same_bits(dX1, dX2));
  CHECK(same_bits(g1, g2));
  CHECK(uvp::Matrix<float>(dX1).cwiseAbs().maxCoeff() > 0);
}

TEST_CASE("Embedding backward: the same sparse gradient on 1 and 2 threads, rows in first-touch order") {
  // 16,384 x 64 scattered values: the parallel numbering (Embedding's threshold is 2^20).
  const uvp::index rows = 5000, dim = 64, n = 16384, pad = 3;
  uvp::Rng rng(17);
  uvp::nn::Embedding<float> emb(rows, dim, rng, pad);
  std::vector<uvp::index> ids(static_cast<std::size_t>(n));
  for (auto& id : ids) {  // skewed: many duplicates, some padding
    const double u = rng.uniform();
    id = uvp::index(u * u * u * double(rows));
  }
  const uvp::Span<const uvp::index> all(ids.data(), n);
  const uvp::Span<const uvp::index> half(ids.data(), n / 2);
  const uvp::Matrix<float> d_out = random_matrix(n, dim, rng);
  std::vector<uvp::index> offsets;
  for (uvp::index b = 0; b < n; b += 7) offsets.push_back(b);
  const uvp::Span<const uvp::index> off(offsets.data(), uvp::index(offsets.size()));
  const uvp::Matrix<float> d_bag = random_matrix(uvp::index(offsets.size()), dim, rng);

  struct Result {
    std::vector<uvp::index> rows;
    std::vector<float> values;
  };
  const auto run = [&](int threads) {
    const uvp::ThreadCountGuard guard(threads);
    std::vector<Result> out;
    emb.zero_grad();
    // A first backward, then one that adds to its rows and appends new ones, then a mean bag.
    emb.backward(half, d_out.topRows(n / 2));
    emb.backward(all, d_out);
    out.push_back({emb.sparse_grad().rows, emb.sparse_grad().values});
    emb.zero_grad();
    emb.backward_bag(all, off, uvp::nn::BagMode::mean, d_bag);
    out.push_back({emb.sparse_grad().rows, emb.sparse_grad().values});
    return out;
  };
  const std::vector<Result> r1 = run(1), r2 = run(other_threads());
  for (std::size_t k = 0; k < r1.size(); ++k) {
    CAPTURE(k);
    CHECK(r1[k].rows == r2[k].rows);
    CHECK(same_bits(r1[k].values, r2[k].values));
    CHECK(r1[k].rows.size() > 100);
  }
  // First-touch order, padding left out: the serial definition.
  std::vector<uvp::index> expected;
  std::vector<char> seen(static_cast<std::size_t>(rows), 0);
  for (uvp::index id : ids)
    if (id != pad && !seen[static_cast<std::size_t>(id)]) {
      seen[static_cast<std::size_t>(id)] = 1;
      expected.push_back(id);
    }
  CHECK(r1[1].rows == expected);
}
