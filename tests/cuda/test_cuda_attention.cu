// SPDX-License-Identifier: Apache-2.0
// uvp::nn::MultiHeadSelfAttention<T, uvp::cuda> against the CPU block (attention_reference.cpp) on
// the same weights, in float and double: Y, the head-averaged attention weights, dX and the four
// parameter gradients, with ragged lengths (1 and full included), the causal mask, one head and
// d = 1, equal lengths (the per-head GEMM grouping), non-zero biases; padding rows exactly 0;
// gradients accumulate; the CPU's errors; a NaN at a padding step is not an error.
// Host-only part (runs everywhere): constructor argument errors before any CUDA call or draw.
#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "attention_reference.hpp"
#include "cpu_reference.hpp"
#include "cuda_test_support.hpp"
#include "nn_reference.hpp"
#include "uvp/backend/cuda/attention.cuh"
#include "uvp/backend/cuda/device.cuh"
#include "uvp/backend/cuda/stream.cuh"

namespace {

using uvp::index;
using namespace uvp_cuda_test;
namespace cb = uvp::cuda_backend;

struct ReplayRng {
  std::vector<double> u;
  std::size_t next = 0;
  double uniform(double lo, double hi) { return lo + (hi - lo) * u.at(next++); }
};

template <class T>
using Mha = uvp::nn::MultiHeadSelfAttention<T, uvp::cuda>;

void host_checks() {
  ReplayRng rng{std::vector<double>(64, 0.5)};
  UVP_EXPECT_THROWS(uvp::invalid_argument, (Mha<float>(0, 1, rng)),
                    "uvp::nn::MultiHeadSelfAttention: embed_dim must be >= 1, got 0");
  UVP_EXPECT_THROWS(uvp::invalid_argument, (Mha<float>(4, 0, rng)),
                    "uvp::nn::MultiHeadSelfAttention: num_heads must be >= 1, got 0");
  UVP_EXPECT_THROWS(uvp::invalid_argument, (Mha<double>(6, 4, true)),
                    "uvp::nn::MultiHeadSelfAttention: embed_dim = 6 is not divisible by num_heads = 4");
  UVP_EXPECT(rng.next == 0);
}

template <class T>
std::string type_name() {
  return sizeof(T) == 4 ? "float" : "double";
}
template <class T>
std::vector<T> get(const cb::DeviceBlock<T>& b, const std::string& name, bool grads = false) {
  std::vector<T> v(static_cast<std::size_t>(b.tensor(name).numel()));
  if (grads)
    b.get_grads(name, v.data(), static_cast<index>(v.size()));
  else
    b.get_values(name, v.data(), static_cast<index>(v.size()));
  return v;
}
template <class T>
std::vector<T> host_copy(const cb::DeviceMatrix<T>& m) {
  std::vector<T> v(static_cast<std::size_t>(m.size()));
  m.to_host(v.data(), m.rows(), m.cols());
  return v;
}
template <class T>
bool close(const std::vector<T>& got, const std::vector<T>& want, double tol) {
  return worst_error(got, want, tol, tol) <= 1.0;
}
template <class T>
std::vector<T> twice(std::vector<T> v) {
  for (auto& x : v) x *= T(2);
  return v;
}

template <class T>
void attention_checks(const cb::Stream& stream) {
  struct Case {
    index E, H;
    bool causal;
    index B, L;
    std::vector<index> lengths;
  };
  const Case cases[] = {
      {8, 2, false, 3, 6, {6, 3, 1}},
      {8, 2, true, 3, 6, {6, 3, 1}},
      {12, 3, false, 5, 7, {}},            // equal lengths, H < batch: GEMMs grouped per head
      {6, 1, true, 4, 5, {5, 5, 5, 5}},    // one head, equal lengths given explicitly
      {4, 4, false, 2, 9, {9, 4}},         // d = 1
      {16, 4, true, 7, 40, {40, 1, 17, 33, 40, 2, 39}},  // rows longer than a warp
      {32, 2, false, 2, 130, {130, 129}},  // rows longer than a block of the row kernels
  };
  std::uint64_t seed = 500;
  for (const auto& c : cases) {
    seed += 10;
    const index N = c.B * c.L;
    auto x = uniform<T>(N * c.E, seed + 1, -1, 1);
    auto dy = uniform<T>(N * c.E, seed + 2, -1, 1);
    // Padding rows: garbage in X, dY (ignored), NaN in X included.
    for (index b = 0; b < c.B && !c.lengths.empty(); ++b)
      for (index t = c.lengths[static_cast<std::size_t>(b)]; t < c.L; ++t) {
        x[static_cast<std::size_t>((b * c.L + t) * c.E)] = std::numeric_limits<T>::quiet_NaN();
        dy[static_cast<std::size_t>((b * c.L + t) * c.E)] = T(1e6);
      }
    const auto b_in = uniform<T>(3 * c.E, seed + 3, -0.5, 0.5), b_out = uniform<T>(c.E, seed + 4, -0.5, 0.5);
    const auto cpu = cpu_attention<T>(c.E, c.H, c.causal, seed, c.B, c.L, c.lengths, b_in, b_out, x, dy);
    const std::string what = "MultiHeadSelfAttention<" + type_name<T>() + ", cuda> E " + std::to_string(c.E) +
                             " H " + std::to_string(c.H) + (c.causal ? " causal" : "") + " B " +
                             std::to_string(c.B) + " L " + std::to_string(c.L) + ": ";
    ReplayRng rng{rng_uniform_draws(seed, 4 * c.E * c.E)};
    Mha<T> mha(c.E, c.H, rng, c.causal, stream.get());
    UVP_EXPECT_MSG(get(mha, "in_proj_weight") == cpu.w_in && get(mha, "out_proj.weight") == cpu.w_out &&
                       get(mha, "in_proj_bias") == std::vector<T>(3 * c.E, T(0)),
                   what + "same weights from the same draws");
    mha.set_values("in_proj_bias", b_in.data(), 3 * c.E);
    mha.set_values("out_proj.bias", b_out.data(), c.E);
    typename Mha<T>::Context ctx;
    const cb::DeviceMatrix<T> X(x.data(), N, c.E, stream.get()), dY(dy.data(), N, c.E, stream.get());
    const cb::DeviceMatrix<T> Y = mha.forward(X, c.B, c.L, c.lengths, ctx);
    const double tol = sizeof(T) == 4 ? 2e-5 : 1e-12;
    const auto y = host_copy(Y);
    UVP_EXPECT_MSG(close(y, cpu.y, tol), what + "forward");
    bool padding_zero = true;
    for (index b = 0; b < c.B && !c.lengths.empty(); ++b)
      for (index k = (b * c.L + c.lengths[static_cast<std::size_t>(b)]) * c.E; k < (b + 1) * c.L * c.E; ++k)
        padding_zero = padding_zero && y[static_cast<std::size_t>(k)] == T(0);
    UVP_EXPECT_MSG(padding_zero, what + "padding rows of Y are 0");
    cb::DeviceMatrix<T> W(N, c.L, stream.get());
    mha.attention_weights(ctx, W);
    UVP_EXPECT_MSG(close(host_copy(W), cpu.weights, tol), what + "attention weights");
    cb::DeviceMatrix<T> dX(N, c.E, stream.get());
    mha.backward(X, dY, dX, ctx);
    UVP_EXPECT_MSG(close(host_copy(dX), cpu.dx, tol * 5), what + "dX");
    UVP_EXPECT_MSG(close(get(mha, "in_proj_weight", true), cpu.g_w_in, tol * 10) &&
                       close(get(mha, "in_proj_bias", true), cpu.g_b_in, tol * 10),
                   what + "input projection gradients");
    UVP_EXPECT_MSG(close(get(mha, "out_proj.weight", true), cpu.g_w_out, tol * 10) &&
                       close(get(mha, "out_proj.bias", true), cpu.g_b_out, tol * 10),
                   what + "output projection gradients");
    mha.backward(X, dY, ctx);  // parameter gradients only: they accumulate
    UVP_EXPECT_MSG(close(get(mha, "in_proj_weight", true), twice(cpu.g_w_in), tol * 10) &&
                       close(get(mha, "out_proj.bias", true), twice(cpu.g_b_out), tol * 10),
                   what + "gradients accumulate");
  }

  Mha<T> mha(4, 2, false, stream.get());
  typename Mha<T>::Context ctx;
  const cb::DeviceMatrix<T> X(std::vector<T>(32, T(1)).data(), 8, 4, stream.get());
  cb::DeviceMatrix<T> Y(8, 4, stream.get()), bad(8, 3, stream.get());
  UVP_EXPECT_THROWS(uvp::invalid_argument, mha.backward(X, X, ctx),
                    "uvp::nn::MultiHeadSelfAttention::backward: ctx holds no forward pass (call forward first)");
  UVP_EXPECT_THROWS(uvp::invalid_argument, mha.forward(X, 2, 4, std::vector<index>{4, 0}, Y, ctx),
                    "uvp::nn::MultiHeadSelfAttention::forward: lengths[1] = 0 must be >= 1");
  UVP_EXPECT_THROWS(uvp::out_of_range_error, mha.forward(X, 2, 4, std::vector<index>{4, 5}, Y, ctx),
                    "uvp::nn::MultiHeadSelfAttention::forward: lengths[1] = 5 exceeds seq_len = 4");
  UVP_EXPECT_THROWS(uvp::shape_error, mha.forward(X, 2, 4, std::vector<index>{4}, Y, ctx),
                    "uvp::nn::MultiHeadSelfAttention::forward: lengths has size 1, expected 2");
  UVP_EXPECT_THROWS(uvp::shape_error, mha.forward(X, 3, 4, {}, Y, ctx),
                    "uvp::nn::MultiHeadSelfAttention::forward: X has 8 rows, expected batch * seq_len = 12");
  UVP_EXPECT_THROWS(uvp::shape_error, mha.forward(X, 2, 4, {}, bad, ctx),
                    "uvp::nn::MultiHeadSelfAttention::forward: Y has shape (8, 3), expected (8, 4)");
  std::vector<T> nan_x(32, T(0));
  nan_x[31] = std::numeric_limits<T>::infinity();  // row 7 = sequence 1, step 3
  const cb::DeviceMatrix<T> Xn(nan_x.data(), 8, 4, stream.get());
  UVP_EXPECT_THROWS(uvp::numeric_error, mha.forward(Xn, 2, 4, {}, Y, ctx),
                    "uvp::nn::MultiHeadSelfAttention::forward: X has a non-finite value (inf) at row 7, column 3");
  UVP_EXPECT_THROWS(uvp::shape_error, mha.backward(X, bad, ctx),
                    "uvp::nn::MultiHeadSelfAttention::backward: dY has shape (8, 3), expected (8, 4)");
  mha.forward(X, 2, 4, {}, Y, ctx);
  UVP_EXPECT_THROWS(uvp::numeric_error, mha.backward(X, Xn, ctx),
                    "uvp::nn::MultiHeadSelfAttention::backward: dY has a non-finite value (inf) at row 7, column 3");
  mha.forward(Xn, 2, 4, std::vector<index>{4, 3}, Y, ctx);  // step 3 of sequence 1 is padding: fine
  const cb::DeviceMatrix<T> dYn(nan_x.data(), 8, 4, stream.get());
  cb::DeviceMatrix<T> dX(8, 4, stream.get());
  mha.backward(X, dYn, dX, ctx);  // fine with lengths {4, 3}
  const auto dx = host_copy(dX);
  bool finite = true;
  for (T v : dx) finite = finite && std::isfinite(v);
  UVP_EXPECT_MSG(finite, "a non-finite dY at a padding step is ignored");
  Mha<T> other(8, 2, false, stream.get());
  UVP_EXPECT_THROWS(uvp::invalid_argument, other.backward(X, X, ctx),
                    "uvp::nn::MultiHeadSelfAttention::backward: ctx comes from a block with embed_dim = 4");
}

void device_checks() {
  cb::Stream stream;
  attention_checks<float>(stream);
  attention_checks<double>(stream);
  stream.synchronize();
}

}  // namespace

int main() {
  return uvp_cuda_test::run("test_cuda_attention", host_checks, device_checks,
                            uvp::cuda_backend::device_available());
}
