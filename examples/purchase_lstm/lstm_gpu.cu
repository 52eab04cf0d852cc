// SPDX-License-Identifier: Apache-2.0
// GpuLstm (lstm_gpu.hpp): uvp::nn::Lstm<float, uvp::cuda> with host copies in and out.
// Per call: the weights (set_weights), X in, h_last out; backward: d_last in, dX and the
// parameter gradients out. About 0.1 MB of weights and gradients per training step here.
#include "lstm_gpu.hpp"

#include <string>
#include <vector>

#include "uvp/backend/cuda/device.cuh"
#include "uvp/backend/cuda/lstm.cuh"
#include "uvp/backend/cuda/stream.cuh"

namespace uvp_examples {

namespace cb = uvp::cuda_backend;
using uvp::index;

struct GpuLstm::Impl {
  cb::Stream stream;
  uvp::nn::Lstm<float, uvp::cuda> lstm;
  uvp::nn::Lstm<float, uvp::cuda>::Context ctx;
  cb::DeviceMatrix<float> X, d_last, dX;
  const cb::DeviceMatrix<float> none;
  std::vector<index> lengths;
  std::vector<float> grad;
  Impl(index I, index H) : lstm(I, H, stream.get()) {
    lstm.check_finite(false);  // the embedding's rows: finite by construction
  }
};

bool GpuLstm::available() noexcept { return cb::device_available(); }

GpuLstm::GpuLstm(index input_size, index hidden_size) : impl_(std::make_unique<Impl>(input_size, hidden_size)) {}
GpuLstm::~GpuLstm() = default;
GpuLstm::GpuLstm(GpuLstm&&) noexcept = default;
GpuLstm& GpuLstm::operator=(GpuLstm&&) noexcept = default;

void GpuLstm::set_weights(const float* w_ih, const float* w_hh, const float* b_ih, const float* b_hh) {
  auto& l = impl_->lstm;
  const float* src[4] = {w_ih, w_hh, b_ih, b_hh};
  for (std::size_t i = 0; i < 4; ++i) l.set_values(l.tensors()[i].name, src[i], l.tensors()[i].numel());
}

void GpuLstm::forward(const float* X, index batch, index seq_len, const index* lengths, float* h_last) {
  Impl& m = *impl_;
  const index I = m.lstm.input_size(), H = m.lstm.hidden_size();
  m.X.resize(batch * seq_len, I);
  m.X.to_device(X, batch * seq_len, I);
  m.lengths.assign(lengths, lengths + batch);
  m.lstm.forward(m.X, batch, seq_len, m.lengths, m.ctx);
  m.stream.synchronize();  // the context's matrices copy on the default stream
  m.ctx.last_hidden().to_host(h_last, batch, H);
}

void GpuLstm::backward(const float* d_last, float* dX, float* g_w_ih, float* g_w_hh, float* g_b_ih,
                       float* g_b_hh) {
  Impl& m = *impl_;
  const index B = m.ctx.batch(), S = m.ctx.seq_len(), I = m.lstm.input_size(), H = m.lstm.hidden_size();
  m.d_last.resize(B, H);
  m.d_last.to_device(d_last, B, H);
  m.dX.resize(B * S, I);
  m.lstm.zero_grad();
  m.lstm.backward(m.X, m.none, m.d_last, m.dX, m.ctx);
  m.stream.synchronize();
  m.dX.to_host(dX, B * S, I);
  float* dst[4] = {g_w_ih, g_w_hh, g_b_ih, g_b_hh};
  for (std::size_t i = 0; i < 4; ++i) {
    const auto& t = m.lstm.tensors()[i];
    m.grad.resize(static_cast<std::size_t>(t.numel()));
    m.lstm.get_grads(t.name, m.grad.data(), t.numel());
    for (index k = 0; k < t.numel(); ++k) dst[i][k] += m.grad[static_cast<std::size_t>(k)];
  }
}

}  // namespace uvp_examples
