// SPDX-License-Identifier: Apache-2.0
// The LSTM of purchase_lstm on the GPU (uvp::nn::Lstm<float, uvp::cuda>), behind a plain-pointer
// interface so that main.cpp stays host C++ (Eigen never meets nvcc); lstm_gpu.cu implements it.
// Used by the purchase_lstm_gpu target (main.cpp built with UVP_EXAMPLE_LSTM_CUDA=1).
#pragma once

#include <memory>

#include "uvp/core/config.hpp"

namespace uvp_examples {

class GpuLstm {
 public:
  /// Whether a CUDA device can be used (never throws).
  static bool available() noexcept;

  GpuLstm(uvp::index input_size, uvp::index hidden_size);
  ~GpuLstm();
  GpuLstm(GpuLstm&&) noexcept;
  GpuLstm& operator=(GpuLstm&&) noexcept;

  /// The four tensors of the CPU Lstm, PyTorch's order and shapes (weight_ih_l0 {4H, I}, ...).
  void set_weights(const float* w_ih, const float* w_hh, const float* b_ih, const float* b_hh);
  /// X: (batch * seq_len) x I row-major host data; writes each sequence's last valid h
  /// (batch x H) to h_last. Keeps what backward needs on the device.
  void forward(const float* X, uvp::index batch, uvp::index seq_len, const uvp::index* lengths, float* h_last);
  /// From d_last (batch x H, the gradient of h_last): writes dX ((batch * seq_len) x I) and ADDS
  /// the parameter gradients to the four host gradient arrays (as a CPU backward accumulates).
  void backward(const float* d_last, float* dX, float* g_w_ih, float* g_w_hh, float* g_b_ih, float* g_b_hh);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace uvp_examples
