// SPDX-License-Identifier: Apache-2.0
// CPU side of test_cuda_attention: uvp::nn::MultiHeadSelfAttention on the CPU.
#include "attention_reference.hpp"

#include <algorithm>

#include "uvp/core/random.hpp"
#include "uvp/nn/attention.hpp"

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
AttentionRun<T> cpu_attention(uvp::index E, uvp::index H, bool causal, std::uint64_t seed, uvp::index B,
                              uvp::index L, const std::vector<uvp::index>& lengths, const std::vector<T>& b_in,
                              const std::vector<T>& b_out, const std::vector<T>& x, const std::vector<T>& dy) {
  uvp::Rng rng(seed);
  uvp::nn::MultiHeadSelfAttention<T> mha(E, H, rng, causal);
  const auto set = [&](const char* name, const std::vector<T>& v) {
    if (v.empty()) return;
    auto dst = mha.values(mha.tensor(name));
    std::copy(v.begin(), v.end(), dst.data());
  };
  set("in_proj_bias", b_in);
  set("out_proj.bias", b_out);
  const auto value = [&](const char* name) { return to_vector(mha.values(mha.tensor(name))); };
  const auto grad = [&](const char* name) { return to_vector(mha.grads(mha.tensor(name))); };
  AttentionRun<T> r;
  r.w_in = value("in_proj_weight");
  r.b_in = value("in_proj_bias");
  r.w_out = value("out_proj.weight");
  r.b_out = value("out_proj.bias");
  typename uvp::nn::MultiHeadSelfAttention<T>::Context ctx;
  const auto X = uvp::view(x.data(), B * L, E);
  const uvp::Span<const uvp::index> len(lengths.data(), static_cast<uvp::index>(lengths.size()));
  uvp::Matrix<T> Y(B * L, E), W(B * L, L), dX(B * L, E);
  mha.forward(X, B, L, len, Y, ctx);
  mha.attention_weights(ctx, W);
  r.y = flat(Y);
  r.weights = flat(W);
  mha.backward(X, uvp::view(dy.data(), B * L, E), dX, ctx);
  r.dx = flat(dX);
  r.g_w_in = grad("in_proj_weight");
  r.g_b_in = grad("in_proj_bias");
  r.g_w_out = grad("out_proj.weight");
  r.g_b_out = grad("out_proj.bias");
  return r;
}

#define UVP_ATTENTION_REFERENCE(T)                                                                       \
  template AttentionRun<T> cpu_attention<T>(uvp::index, uvp::index, bool, std::uint64_t, uvp::index,    \
                                            uvp::index, const std::vector<uvp::index>&,                 \
                                            const std::vector<T>&, const std::vector<T>&,              \
                                            const std::vector<T>&, const std::vector<T>&);
UVP_ATTENTION_REFERENCE(float)
UVP_ATTENTION_REFERENCE(double)

}  // namespace uvp_cuda_test
