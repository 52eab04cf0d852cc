// SPDX-License-Identifier: Apache-2.0
// CPU side of test_cuda_nn: uvp::nn::Dense and uvp::nn::Embedding on the CPU.
#include "nn_reference.hpp"

#include <algorithm>

#include "uvp/core/random.hpp"
#include "uvp/nn/dense.hpp"
#include "uvp/nn/embedding.hpp"
#include "uvp/nn/lstm.hpp"
#include "uvp/nn/module.hpp"
#include "uvp/optim/adam.hpp"
#include "uvp/optim/sgd.hpp"

namespace uvp_cuda_test {

namespace {
template <class S>
auto to_vector(const S& s) {
  using T = std::remove_const_t<std::remove_pointer_t<decltype(s.data())>>;
  return std::vector<T>(s.data(), s.data() + s.size());
}
}  // namespace

template <class T>
DenseRun<T> cpu_dense(uvp::index in, uvp::index out, bool bias, std::uint64_t seed,
                      const std::vector<T>& x, const std::vector<T>& dy, uvp::index n) {
  uvp::Rng rng(seed);
  uvp::nn::Dense<T> dense(in, out, rng, bias);
  const auto X = uvp::view(x.data(), n, in);
  const auto dY = uvp::view(dy.data(), n, out);
  DenseRun<T> r;
  const auto& w = dense.tensor("weight");
  r.weight = to_vector(dense.values(w));
  if (bias) r.bias = to_vector(dense.values(dense.tensor("bias")));
  uvp::Matrix<T> Y = dense.forward(X);
  r.y.assign(Y.data(), Y.data() + Y.size());
  uvp::Matrix<T> dX(n, in);
  dense.backward(X, dY, dX);
  dense.backward(X, dY, dX);  // gradients accumulate: twice the one-pass gradient
  r.dx.assign(dX.data(), dX.data() + dX.size());
  r.grad_weight = to_vector(dense.grads(w));
  if (bias) r.grad_bias = to_vector(dense.grads(dense.tensor("bias")));
  return r;
}

std::vector<double> rng_uniform_draws(std::uint64_t seed, uvp::index count) {
  uvp::Rng rng(seed);
  std::vector<double> u(static_cast<std::size_t>(count));
  for (auto& x : u) x = rng.uniform();
  return u;
}

template <class T>
EmbeddingRun<T> cpu_embedding(uvp::index num, uvp::index dim, uvp::index padding_idx,
                              std::uint64_t seed, const std::vector<uvp::index>& ids,
                              const std::vector<T>& d_out) {
  uvp::Rng rng(seed);
  uvp::nn::Embedding<T> emb(num, dim, rng, padding_idx);
  const uvp::Span<const uvp::index> id_span(ids.data(), static_cast<uvp::index>(ids.size()));
  EmbeddingRun<T> r;
  r.weight = to_vector(emb.values(emb.tensor("weight")));
  uvp::Matrix<T> out = emb.forward(id_span);
  r.out.assign(out.data(), out.data() + out.size());
  emb.backward(id_span, uvp::view(d_out.data(), static_cast<uvp::index>(ids.size()), dim));
  r.dense_grad.assign(static_cast<std::size_t>(num * dim), T(0));
  const auto& g = emb.sparse_grad();
  for (uvp::index k = 0; k < g.size(); ++k) {
    const auto row = g.row(k);
    for (uvp::index c = 0; c < dim; ++c) r.dense_grad[g.rows[k] * dim + c] = row[c];
  }
  return r;
}

template <class T>
LstmCellRun<T> cpu_lstm_cell(uvp::index I, uvp::index H, std::uint64_t seed, uvp::index B,
                             const std::vector<T>& x, const std::vector<T>& h,
                             const std::vector<T>& c, const std::vector<T>& dh_out,
                             const std::vector<T>& dc_out) {
  uvp::Rng rng(seed);
  uvp::nn::LstmCell<T> cell(I, H, rng);
  typename uvp::nn::LstmCell<T>::Context ctx;
  LstmCellRun<T> r;
  const auto value = [&](const char* name) { return to_vector(cell.values(cell.tensor(name))); };
  const auto grad = [&](const char* name) { return to_vector(cell.grads(cell.tensor(name))); };
  r.w_ih = value("weight_ih");
  r.w_hh = value("weight_hh");
  r.b_ih = value("bias_ih");
  r.b_hh = value("bias_hh");
  const auto X = uvp::view(x.data(), B, I);
  const auto Hm = uvp::view(h.data(), B, H);
  const auto C = uvp::view(c.data(), B, H);
  uvp::Matrix<T> h_out(B, H), c_out(B, H), dx(B, I), dh(B, H), dc(B, H);
  cell.forward(X, Hm, C, h_out, c_out, ctx);
  const uvp::Matrix<T> dC = dc_out.empty() ? uvp::Matrix<T>(0, 0) : uvp::Matrix<T>(uvp::view(dc_out.data(), B, H));
  cell.backward(X, Hm, C, uvp::view(dh_out.data(), B, H), dC, dx, dh, dc, ctx);
  const auto flat = [](const uvp::Matrix<T>& m) { return std::vector<T>(m.data(), m.data() + m.size()); };
  r.h_out = flat(h_out);
  r.c_out = flat(c_out);
  r.dx = flat(dx);
  r.dh = flat(dh);
  r.dc = flat(dc);
  r.g_w_ih = grad("weight_ih");
  r.g_w_hh = grad("weight_hh");
  r.g_b_ih = grad("bias_ih");
  r.g_b_hh = grad("bias_hh");
  return r;
}

#define UVP_LSTM_REFERENCE(T)                                                                    \
  template LstmCellRun<T> cpu_lstm_cell<T>(uvp::index, uvp::index, std::uint64_t, uvp::index,   \
                                           const std::vector<T>&, const std::vector<T>&,        \
                                           const std::vector<T>&, const std::vector<T>&,        \
                                           const std::vector<T>&);
UVP_LSTM_REFERENCE(float)
UVP_LSTM_REFERENCE(double)

template DenseRun<float> cpu_dense<float>(uvp::index, uvp::index, bool, std::uint64_t,
                                          const std::vector<float>&, const std::vector<float>&,
                                          uvp::index);
template DenseRun<double> cpu_dense<double>(uvp::index, uvp::index, bool, std::uint64_t,
                                            const std::vector<double>&,
                                            const std::vector<double>&, uvp::index);
template <class T>
EmbeddingTrainRun<T> cpu_embedding_train(uvp::index num, uvp::index dim, uvp::index padding_idx,
                                         std::uint64_t seed, const std::vector<uvp::index>& ids1,
                                         const std::vector<T>& d1,
                                         const std::vector<uvp::index>& ids2,
                                         const std::vector<T>& d2, bool adam) {
  uvp::Rng rng(seed);
  uvp::nn::Embedding<T> emb(num, dim, rng, padding_idx);
  const auto span = [](const std::vector<uvp::index>& v) {
    return uvp::Span<const uvp::index>(v.data(), static_cast<uvp::index>(v.size()));
  };
  const auto mat = [dim](const std::vector<T>& v) {
    return uvp::view(v.data(), static_cast<uvp::index>(v.size()) / dim, dim);
  };
  auto list = uvp::nn::blocks<T>("emb", emb);
  uvp::Adam<T> a(embedding_adam_options());
  uvp::Sgd<T> s(embedding_sgd_options());
  const auto step = [&] { adam ? uvp::nn::step(a, list) : uvp::nn::step(s, list); };
  EmbeddingTrainRun<T> r;
  emb.backward(span(ids1), mat(d1));
  emb.backward(span(ids2), mat(d2));
  const auto& g = emb.sparse_grad();
  std::vector<uvp::index> order(static_cast<std::size_t>(g.size()));
  for (uvp::index k = 0; k < g.size(); ++k) order[static_cast<std::size_t>(k)] = k;
  std::sort(order.begin(), order.end(), [&g](uvp::index x, uvp::index y) {
    return g.rows[static_cast<std::size_t>(x)] < g.rows[static_cast<std::size_t>(y)];
  });
  for (uvp::index k : order) {
    r.rows.push_back(g.rows[static_cast<std::size_t>(k)]);
    const auto row = g.row(k);
    r.values.insert(r.values.end(), row.data(), row.data() + row.size());
  }
  step();
  r.table1 = to_vector(emb.values(emb.tensor("weight")));
  emb.zero_grad();
  emb.backward(span(ids2), mat(d2));
  step();
  r.table2 = to_vector(emb.values(emb.tensor("weight")));
  return r;
}

template EmbeddingTrainRun<float> cpu_embedding_train<float>(
    uvp::index, uvp::index, uvp::index, std::uint64_t, const std::vector<uvp::index>&,
    const std::vector<float>&, const std::vector<uvp::index>&, const std::vector<float>&, bool);
template EmbeddingTrainRun<double> cpu_embedding_train<double>(
    uvp::index, uvp::index, uvp::index, std::uint64_t, const std::vector<uvp::index>&,
    const std::vector<double>&, const std::vector<uvp::index>&, const std::vector<double>&, bool);

template EmbeddingRun<float> cpu_embedding<float>(uvp::index, uvp::index, uvp::index,
                                                  std::uint64_t, const std::vector<uvp::index>&,
                                                  const std::vector<float>&);
template EmbeddingRun<double> cpu_embedding<double>(uvp::index, uvp::index, uvp::index,
                                                    std::uint64_t, const std::vector<uvp::index>&,
                                                    const std::vector<double>&);

}  // namespace uvp_cuda_test
