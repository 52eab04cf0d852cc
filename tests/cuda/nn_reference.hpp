// SPDX-License-Identifier: Apache-2.0
// CPU side of test_cuda_nn: uvp::nn::Dense<T> and uvp::nn::Embedding<T> (with Eigen), compiled
// by the host compiler; matrices are row-major std::vectors.
#pragma once

#include <cstdint>
#include <vector>

#include "uvp/core/config.hpp"

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
