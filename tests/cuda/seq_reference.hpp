// SPDX-License-Identifier: Apache-2.0
// CPU side of test_cuda_seq: uvp::nn::Lstm, uvp::nn::LayerNorm and uvp::nn::Conv1d on the CPU
// (with Eigen), compiled by the host compiler; matrices are row-major std::vectors.
#pragma once

#include <cstdint>
#include <vector>

#include "uvp/core/config.hpp"

namespace uvp_cuda_test {

/// A CPU Lstm(I, H, Rng(seed)) on B sequences of S steps (lengths empty: all S; h0, c0 empty:
/// zero state): its weights, forward, forward_last, and backward from dH and / or dh_last
/// (empty: none) with dX, dh0, dc0 and the parameter gradients.
template <class T>
struct LstmRun {
  std::vector<T> w_ih, w_hh, b_ih, b_hh;
  std::vector<T> output, last_hidden, last_cell, h_last;
  std::vector<T> dx, dh0, dc0, g_w_ih, g_w_hh, g_b_ih, g_b_hh;
};
template <class T>
LstmRun<T> cpu_lstm(uvp::index I, uvp::index H, std::uint64_t seed, uvp::index B, uvp::index S,
                    const std::vector<uvp::index>& lengths, const std::vector<T>& x,
                    const std::vector<T>& h0, const std::vector<T>& c0, const std::vector<T>& dH,
                    const std::vector<T>& dh_last);

/// A CPU LayerNorm(d, eps, affine) with the given gamma / beta (affine): forward(X) and
/// backward(X, dY) with dX and the parameter gradients. n rows.
template <class T>
struct LayerNormRun {
  std::vector<T> y, dx, g_weight, g_bias;
};
template <class T>
LayerNormRun<T> cpu_layer_norm(uvp::index d, double eps, bool affine, const std::vector<T>& gamma,
                               const std::vector<T>& beta, uvp::index n, const std::vector<T>& x,
                               const std::vector<T>& dy);

/// A CPU Conv1d(C_in, C_out, k, Rng(seed), {stride, padding, bias}) on B sequences of L steps:
/// weights, forward (Y, output lengths), backward (dX, parameter gradients).
template <class T>
struct Conv1dRun {
  std::vector<T> weight, bias, y, dx, g_weight, g_bias;
  std::vector<uvp::index> out_lengths;
  uvp::index out_len = 0;
};
template <class T>
Conv1dRun<T> cpu_conv1d(uvp::index c_in, uvp::index c_out, uvp::index k, uvp::index stride,
                        uvp::index padding, bool bias, std::uint64_t seed, uvp::index B, uvp::index L,
                        const std::vector<uvp::index>& lengths, const std::vector<T>& x,
                        const std::vector<T>& dy_seed);

}  // namespace uvp_cuda_test
