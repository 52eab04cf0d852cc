// SPDX-License-Identifier: Apache-2.0
// CPU side of test_cuda_nn: uvp::nn::Dense<T> and uvp::nn::Embedding<T> (with Eigen), compiled
// by the host compiler; matrices are row-major std::vectors.
#pragma once

#include <cstdint>
#include <vector>

#include "uvp/core/config.hpp"
#include "uvp/detail/adam_math.hpp"
#include "uvp/detail/sgd_math.hpp"

namespace uvp_cuda_test {

/// A CPU Dense(in, out, Rng(seed), bias): its weights, forward(X) and backward(X, dY) (called
/// twice, so the gradients show accumulation).
template <class T>
struct DenseRun {
  std::vector<T> weight, bias, y, grad_weight, grad_bias, dx;
};
template <class T>
DenseRun<T> cpu_dense(uvp::index in, uvp::index out, bool bias, std::uint64_t seed,
                      const std::vector<T>& x, const std::vector<T>& dy, uvp::index n);

/// The first `count` draws of uvp::Rng(seed).uniform() (to replay the CPU's initialisation).
std::vector<double> rng_uniform_draws(std::uint64_t seed, uvp::index count);

/// A CPU Embedding(num, dim, Rng(seed), padding_idx): its table, forward(ids), and the
/// gradient of backward(ids, d_out) as a dense num x dim table.
template <class T>
struct EmbeddingRun {
  std::vector<T> weight, out, dense_grad;
};
template <class T>
EmbeddingRun<T> cpu_embedding(uvp::index num, uvp::index dim, uvp::index padding_idx,
                              std::uint64_t seed, const std::vector<uvp::index>& ids,
                              const std::vector<T>& d_out);

/// The optimizers of cpu_embedding_train (and of the device run it is compared with).
inline uvp::AdamOptions embedding_adam_options() {
  uvp::AdamOptions o;
  o.lr = 0.05;
  o.weight_decay = 0.01;
  return o;
}
inline uvp::SgdOptions embedding_sgd_options() {
  uvp::SgdOptions o;
  o.lr = 0.1;
  o.momentum = 0.9;
  o.nesterov = true;
  return o;
}

/// A CPU Embedding(num, dim, Rng(seed), padding_idx) trained as uvp::nn::step trains it:
/// backward(ids1, d1) then backward(ids2, d2) give the sparse gradient (rows sorted ascending,
/// with their value rows); nn::step gives table1; zero_grad, backward(ids2, d2), nn::step give
/// table2. adam: uvp::Adam(embedding_adam_options()), else uvp::Sgd(embedding_sgd_options()).
template <class T>
struct EmbeddingTrainRun {
  std::vector<uvp::index> rows;
  std::vector<T> values, table1, table2;
};
template <class T>
EmbeddingTrainRun<T> cpu_embedding_train(uvp::index num, uvp::index dim, uvp::index padding_idx,
                                         std::uint64_t seed, const std::vector<uvp::index>& ids1,
                                         const std::vector<T>& d1,
                                         const std::vector<uvp::index>& ids2,
                                         const std::vector<T>& d2, bool adam);

/// A CPU LstmCell(I, H, Rng(seed)): its weights, forward(x, h, c) and backward(dh_out, dc_out)
/// (dc_out empty: none). B rows.
template <class T>
struct LstmCellRun {
  std::vector<T> w_ih, w_hh, b_ih, b_hh, h_out, c_out, dx, dh, dc, g_w_ih, g_w_hh, g_b_ih, g_b_hh;
};
template <class T>
LstmCellRun<T> cpu_lstm_cell(uvp::index I, uvp::index H, std::uint64_t seed, uvp::index B,
                             const std::vector<T>& x, const std::vector<T>& h,
                             const std::vector<T>& c, const std::vector<T>& dh_out,
                             const std::vector<T>& dc_out);

}  // namespace uvp_cuda_test
