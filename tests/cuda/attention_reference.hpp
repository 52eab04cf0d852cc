// SPDX-License-Identifier: Apache-2.0
// CPU side of test_cuda_attention: uvp::nn::MultiHeadSelfAttention on the CPU (with Eigen),
// compiled by the host compiler; matrices are row-major std::vectors.
#pragma once

#include <cstdint>
#include <vector>

#include "uvp/core/config.hpp"

namespace uvp_cuda_test {

/// A CPU MultiHeadSelfAttention(E, H, Rng(seed), causal) on B sequences of L steps (lengths
/// empty: all L), with in_proj_bias / out_proj.bias replaced by b_in / b_out (when non-empty):
/// its weights, forward (Y and the head-averaged attention weights) and backward from dY
/// (dX and the parameter gradients).
template <class T>
struct AttentionRun {
  std::vector<T> w_in, b_in, w_out, b_out;
  std::vector<T> y, weights, dx, g_w_in, g_b_in, g_w_out, g_b_out;
};
template <class T>
AttentionRun<T> cpu_attention(uvp::index E, uvp::index H, bool causal, std::uint64_t seed, uvp::index B,
                              uvp::index L, const std::vector<uvp::index>& lengths, const std::vector<T>& b_in,
                              const std::vector<T>& b_out, const std::vector<T>& x, const std::vector<T>& dy);

}  // namespace uvp_cuda_test
