// SPDX-License-Identifier: Apache-2.0
// CPU side of test_cuda_lstm and test_cuda_layers: uvp::nn::Lstm, LayerNorm and Conv1d on the CPU.
#include "seq_reference.hpp"

#include "uvp/core/random.hpp"
#include "uvp/nn/conv1d.hpp"
#include "uvp/nn/layer_norm.hpp"
#include "uvp/nn/lstm.hpp"

namespace uvp_cuda_test {

namespace {
template <class S>
auto to_vector(const S& s) {
  using T = std::remove_const_t<std::remove_pointer_t<decltype(s.data())>>;
  return std::vector<T>(s.data(), s.data() + s.size());
}
template <class M>
auto flat(const M& m) {
  using T = std::remove_const_t<std::remove_pointer_t<decltype(m.data())>>;
  return std::vector<T>(m.data(), m.data() + m.rows() * m.cols());
}
}  // namespace

template <class T>
LstmRun<T> cpu_lstm(uvp::index I, uvp::index H, std::uint64_t seed, uvp::index B, uvp::index S,
                    const std::vector<uvp::index>& lengths, const std::vector<T>& x,
                    const std::vector<T>& h0, const std::vector<T>& c0, const std::vector<T>& dH,
                    const std::vector<T>& dh_last) {
  uvp::Rng rng(seed);
  uvp::nn::Lstm<T> lstm(I, H, rng);
  typename uvp::nn::Lstm<T>::Context ctx, infer;
  LstmRun<T> r;
  const auto value = [&](const char* name) { return to_vector(lstm.values(lstm.tensor(name))); };
  const auto grad = [&](const char* name) { return to_vector(lstm.grads(lstm.tensor(name))); };
  r.w_ih = value("weight_ih_l0");
  r.w_hh = value("weight_hh_l0");
  r.b_ih = value("bias_ih_l0");
  r.b_hh = value("bias_hh_l0");
  const auto X = uvp::view(x.data(), B * S, I);
  const uvp::Span<const uvp::index> len(lengths.data(), static_cast<uvp::index>(lengths.size()));
  uvp::Matrix<T> h_last(B, H);
  const bool initial = !h0.empty();
  if (initial) {
    lstm.forward(X, B, S, len, uvp::view(h0.data(), B, H), uvp::view(c0.data(), B, H), ctx);
    lstm.forward_last(X, B, S, len, uvp::view(h0.data(), B, H), uvp::view(c0.data(), B, H), h_last, infer);
  } else {
    lstm.forward(X, B, S, len, ctx);
    lstm.forward_last(X, B, S, len, h_last, infer);
  }
  r.output = flat(ctx.output());
  r.last_hidden = flat(ctx.last_hidden());
  r.last_cell = flat(ctx.last_cell());
  r.h_last = flat(h_last);
  const uvp::Matrix<T> dHm = dH.empty() ? uvp::Matrix<T>() : uvp::Matrix<T>(uvp::view(dH.data(), B * S, H));
  const uvp::Matrix<T> dLm = dh_last.empty() ? uvp::Matrix<T>() : uvp::Matrix<T>(uvp::view(dh_last.data(), B, H));
  uvp::Matrix<T> dX(B * S, I), dh0(B, H), dc0(B, H);
  lstm.backward(X, dHm, dLm, dX, dh0, dc0, ctx);
  r.dx = flat(dX);
  r.dh0 = flat(dh0);
  r.dc0 = flat(dc0);
  r.g_w_ih = grad("weight_ih_l0");
  r.g_w_hh = grad("weight_hh_l0");
  r.g_b_ih = grad("bias_ih_l0");
  r.g_b_hh = grad("bias_hh_l0");
  return r;
}

#define UVP_SEQ_LSTM_REFERENCE(T)                                                                   \
  template LstmRun<T> cpu_lstm<T>(uvp::index, uvp::index, std::uint64_t, uvp::index, uvp::index,    \
                                  const std::vector<uvp::index>&, const std::vector<T>&,           \
                                  const std::vector<T>&, const std::vector<T>&, const std::vector<T>&, \
                                  const std::vector<T>&);
UVP_SEQ_LSTM_REFERENCE(float)
UVP_SEQ_LSTM_REFERENCE(double)

template <class T>
LayerNormRun<T> cpu_layer_norm(uvp::index d, double eps, bool affine, const std::vector<T>& gamma,
                               const std::vector<T>& beta, uvp::index n, const std::vector<T>& x,
                               const std::vector<T>& dy) {
  uvp::nn::LayerNorm<T> ln(d, eps, affine);
  if (affine) {
    auto g = ln.weight(), b = ln.bias();
    for (uvp::index j = 0; j < d; ++j) g[j] = gamma[j], b[j] = beta[j];
  }
  typename uvp::nn::LayerNorm<T>::Context ctx;
  uvp::Matrix<T> Y(n, d), dX(n, d);
  const auto X = uvp::view(x.data(), n, d);
  ln.forward(X, Y, ctx);
  ln.backward(X, ctx, uvp::view(dy.data(), n, d), dX);
  LayerNormRun<T> r;
  r.y = flat(Y);
  r.dx = flat(dX);
  if (affine) {
    r.g_weight = to_vector(ln.grads(ln.tensor("weight")));
    r.g_bias = to_vector(ln.grads(ln.tensor("bias")));
  }
  return r;
}

template <class T>
Conv1dRun<T> cpu_conv1d(uvp::index c_in, uvp::index c_out, uvp::index k, uvp::index stride,
                        uvp::index padding, bool bias, std::uint64_t seed, uvp::index B, uvp::index L,
                        const std::vector<uvp::index>& lengths, const std::vector<T>& x,
                        const std::vector<T>& dy_seed) {
  uvp::Rng rng(seed);
  uvp::nn::Conv1dOptions o;
  o.stride = stride, o.padding = padding, o.bias = bias;
  uvp::nn::Conv1d<T> conv(c_in, c_out, k, rng, o);
  Conv1dRun<T> r;
  r.weight = to_vector(conv.weight());
  r.bias = to_vector(conv.bias());
  typename uvp::nn::Conv1d<T>::Context ctx;
  const uvp::Span<const uvp::index> len(lengths.data(), static_cast<uvp::index>(lengths.size()));
  const auto X = uvp::view(x.data(), B * L, c_in);
  uvp::Matrix<T> Y = conv.forward(X, B, L, len, ctx);
  r.y = flat(Y);
  r.out_len = ctx.out_len();
  r.out_lengths = to_vector(ctx.output_lengths());
  // dY: dy_seed's first rows, reshaped to Y's shape.
  const uvp::Matrix<T> dY = uvp::view(dy_seed.data(), Y.rows(), Y.cols());
  uvp::Matrix<T> dX(B * L, c_in);
  conv.backward(X, dY, dX, ctx);
  r.dx = flat(dX);
  r.g_weight = to_vector(conv.weight_grad());
  r.g_bias = to_vector(conv.bias_grad());
  return r;
}

#define UVP_SEQ_LAYER_REFERENCE(T)                                                                     \
  template LayerNormRun<T> cpu_layer_norm<T>(uvp::index, double, bool, const std::vector<T>&,          \
                                             const std::vector<T>&, uvp::index, const std::vector<T>&, \
                                             const std::vector<T>&);                                   \
  template Conv1dRun<T> cpu_conv1d<T>(uvp::index, uvp::index, uvp::index, uvp::index, uvp::index, bool, \
                                      std::uint64_t, uvp::index, uvp::index,                          \
                                      const std::vector<uvp::index>&, const std::vector<T>&,          \
                                      const std::vector<T>&);
UVP_SEQ_LAYER_REFERENCE(float)
UVP_SEQ_LAYER_REFERENCE(double)

}  // namespace uvp_cuda_test
