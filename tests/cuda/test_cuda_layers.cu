// SPDX-License-Identifier: Apache-2.0
// uvp::nn::LayerNorm<T, uvp::cuda> and uvp::nn::Conv1d<T, uvp::cuda> against the CPU blocks
// (seq_reference.cpp) on the same weights: outputs, input gradients, accumulated parameter
// gradients; Conv1d with stride, padding, lengths and without bias; the CPU's errors.
// Host-only part (runs everywhere): constructor argument errors and the options conversion.
#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "cpu_reference.hpp"
#include "cuda_test_support.hpp"
#include "nn_reference.hpp"
#include "seq_reference.hpp"
#include "uvp/backend/cuda/conv1d.cuh"
#include "uvp/backend/cuda/device.cuh"
#include "uvp/backend/cuda/layer_norm.cuh"
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

struct OtherOptions {  // stands for uvp::nn::Conv1dOptions
  index stride = 2, padding = 1;
  bool bias = false;
};

void host_checks() {
  UVP_EXPECT_THROWS(uvp::invalid_argument, (uvp::nn::LayerNorm<float, uvp::cuda>(0)),
                    "uvp::nn::LayerNorm: normalized_shape must be > 0, got 0");
  UVP_EXPECT_THROWS(uvp::invalid_argument, (uvp::nn::LayerNorm<double, uvp::cuda>(4, 0.0)),
                    "uvp::nn::LayerNorm: eps must be > 0, got 0");
  ReplayRng rng{std::vector<double>(10, 0.5)};
  UVP_EXPECT_THROWS(uvp::invalid_argument, (uvp::nn::Conv1d<float, uvp::cuda>(3, 0, 2, rng)),
                    "uvp::nn::Conv1d: out_channels must be > 0, got 0");
  UVP_EXPECT_THROWS(uvp::invalid_argument, (uvp::nn::Conv1d<float, uvp::cuda>(3, 2, 2, rng, {0, 0, true})),
                    "uvp::nn::Conv1d: stride must be > 0, got 0");
  UVP_EXPECT_THROWS(uvp::invalid_argument, (uvp::nn::Conv1d<double, uvp::cuda>(3, 2, 2, {1, -1, true})),
                    "uvp::nn::Conv1d: padding must be >= 0, got -1");
  UVP_EXPECT(rng.next == 0);
  const cb::Conv1dOptions o = OtherOptions{};
  UVP_EXPECT(o.stride == 2 && o.padding == 1 && !o.bias);
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
void layer_norm_checks(const cb::Stream& stream) {
  struct Case {
    index n, d;
    bool affine;
  };
  // d = 300 > one block of 256 threads; n = 0 included.
  const Case cases[] = {{7, 5, true}, {40, 300, true}, {3, 64, false}, {0, 8, true}};
  std::uint64_t seed = 300;
  for (const auto& c : cases) {
    seed += 10;
    auto x = uniform<T>(c.n * c.d, seed, -1, 1);
    for (auto& v : x) v = T(100) + v;  // a large mean: the double statistics matter
    const auto dy = uniform<T>(c.n * c.d, seed + 1, -1, 1);
    const auto gamma = uniform<T>(c.d, seed + 2, 0.5, 1.5), beta = uniform<T>(c.d, seed + 3, -1, 1);
    const auto cpu = cpu_layer_norm<T>(c.d, 1e-5, c.affine, gamma, beta, c.n, x, dy);
    const std::string what = "LayerNorm<" + type_name<T>() + ", cuda> " + std::to_string(c.n) + " x " +
                             std::to_string(c.d) + (c.affine ? "" : " no affine") + ": ";
    uvp::nn::LayerNorm<T, uvp::cuda> ln(c.d, 1e-5, c.affine, stream.get());
    if (c.affine) {
      UVP_EXPECT_MSG(get(ln, "weight") == std::vector<T>(c.d, T(1)), what + "gamma starts at 1");
      ln.set_values("weight", gamma.data(), c.d);
      ln.set_values("bias", beta.data(), c.d);
    }
    typename uvp::nn::LayerNorm<T, uvp::cuda>::Context ctx;
    const cb::DeviceMatrix<T> X(x.data(), c.n, c.d, stream.get()), dY(dy.data(), c.n, c.d, stream.get());
    cb::DeviceMatrix<T> Y(c.n, c.d, stream.get()), dX(c.n, c.d, stream.get());
    ln.forward(X, Y, ctx);
    ln.backward(X, ctx, dY, dX);
    // Statistics in double on both sides: results within a few ulps of T.
    const double tol = sizeof(T) == 4 ? 4e-6 : 1e-13;
    UVP_EXPECT_MSG(close(host_copy(Y), cpu.y, tol), what + "forward");
    UVP_EXPECT_MSG(close(host_copy(dX), cpu.dx, tol * 10), what + "dX");
    if (c.affine)
      UVP_EXPECT_MSG(close(get(ln, "weight", true), cpu.g_weight, tol * 10) &&
                         close(get(ln, "bias", true), cpu.g_bias, tol),
                     what + "parameter gradients");
  }
  uvp::nn::LayerNorm<T, uvp::cuda> ln(4, 1e-5, true, stream.get());
  typename uvp::nn::LayerNorm<T, uvp::cuda>::Context ctx;
  const cb::DeviceMatrix<T> X(std::vector<T>(8, T(1)).data(), 2, 4, stream.get());
  cb::DeviceMatrix<T> bad(2, 3, stream.get());
  UVP_EXPECT_THROWS(uvp::shape_error, ln.forward(X, bad, ctx),
                    "uvp::nn::LayerNorm::forward: Y has shape (2, 3), expected (2, 4)");
  UVP_EXPECT_THROWS(uvp::shape_error, ln.backward(X, ctx, X),
                    "uvp::nn::LayerNorm::backward: the context holds 0 rows of statistics, X has 2");
}

template <class T>
void conv1d_checks(const cb::Stream& stream) {
  struct Case {
    index c_in, c_out, k, stride, padding;
    bool bias;
    index B, L;
    std::vector<index> lengths;
  };
  const Case cases[] = {
      {3, 4, 3, 1, 0, true, 2, 8, {}},
      {5, 6, 3, 2, 1, true, 3, 9, {9, 4, 1}},
      {2, 3, 5, 1, 2, false, 4, 6, {6, 2, 3, 5}},
      {8, 16, 1, 1, 0, true, 5, 7, {7, 7, 1, 2, 6}},
  };
  std::uint64_t seed = 400;
  for (const auto& c : cases) {
    seed += 10;
    const auto x = uniform<T>(c.B * c.L * c.c_in, seed + 1, -1, 1);
    const auto dy = uniform<T>(c.B * c.L * c.c_out * 2, seed + 2, -1, 1);
    const auto cpu = cpu_conv1d<T>(c.c_in, c.c_out, c.k, c.stride, c.padding, c.bias, seed, c.B, c.L, c.lengths, x, dy);
    const std::string what = "Conv1d<" + type_name<T>() + ", cuda> " + std::to_string(c.c_in) + " -> " +
                             std::to_string(c.c_out) + " k " + std::to_string(c.k) + " s " +
                             std::to_string(c.stride) + " p " + std::to_string(c.padding) + ": ";
    const index K = c.c_in * c.k;
    ReplayRng rng{rng_uniform_draws(seed, c.c_out * K + c.c_out)};
    uvp::nn::Conv1d<T, uvp::cuda> conv(c.c_in, c.c_out, c.k, rng, {c.stride, c.padding, c.bias}, stream.get());
    UVP_EXPECT_MSG(get(conv, "weight") == cpu.weight && (!c.bias || get(conv, "bias") == cpu.bias),
                   what + "same weights from the same draws");
    typename uvp::nn::Conv1d<T, uvp::cuda>::Context ctx;
    const cb::DeviceMatrix<T> X(x.data(), c.B * c.L, c.c_in, stream.get());
    const cb::DeviceMatrix<T> Y = conv.forward(X, c.B, c.L, c.lengths, ctx);
    UVP_EXPECT_MSG(ctx.out_len() == cpu.out_len, what + "L_out");
    const auto ol = ctx.output_lengths();
    UVP_EXPECT_MSG(std::vector<index>(ol.data(), ol.data() + ol.size()) == cpu.out_lengths, what + "output lengths");
    // GEMMs of k C_in terms (cuBLAS's order), then the bias.
    const double tol = sizeof(T) == 4 ? 1e-5 : 1e-13;
    UVP_EXPECT_MSG(close(host_copy(Y), cpu.y, tol), what + "forward");
    const cb::DeviceMatrix<T> dY(dy.data(), Y.rows(), Y.cols(), stream.get());
    cb::DeviceMatrix<T> dX(c.B * c.L, c.c_in, stream.get());
    conv.backward(X, dY, dX, ctx);
    UVP_EXPECT_MSG(close(host_copy(dX), cpu.dx, tol), what + "dX");
    UVP_EXPECT_MSG(close(get(conv, "weight", true), cpu.g_weight, tol * 10) &&
                       (!c.bias || close(get(conv, "bias", true), cpu.g_bias, tol * 10)),
                   what + "parameter gradients");
  }
  uvp::nn::Conv1d<T, uvp::cuda> conv(2, 3, 3, cb::Conv1dOptions{}, stream.get());
  typename uvp::nn::Conv1d<T, uvp::cuda>::Context ctx;
  const cb::DeviceMatrix<T> X(std::vector<T>(16, T(1)).data(), 8, 2, stream.get());
  UVP_EXPECT_THROWS(uvp::invalid_argument, conv.forward(X, 2, 4, std::vector<index>{4, 2}, ctx),
                    "uvp::nn::Conv1d::forward: lengths[1] = 2 + 2 * padding 0 is shorter than kernel_size 3");
  UVP_EXPECT_THROWS(uvp::out_of_range_error, conv.forward(X, 2, 4, std::vector<index>{4, 5}, ctx),
                    "uvp::nn::Conv1d::forward: lengths[1] = 5 exceeds seq_len = 4");
  UVP_EXPECT_THROWS(uvp::invalid_argument, conv.backward(X, X, ctx),
                    "uvp::nn::Conv1d::backward: the context holds no forward pass");
  std::vector<T> nan_x(16, T(0));
  nan_x[15] = std::numeric_limits<T>::infinity();  // row 7 = sequence 1, step 3
  const cb::DeviceMatrix<T> Xn(nan_x.data(), 8, 2, stream.get());
  UVP_EXPECT_THROWS(uvp::numeric_error, conv.forward(Xn, 2, 4, {}, ctx),
                    "uvp::nn::Conv1d::forward: X has a non-finite value (inf) at row 7, column 1");
  conv.forward(Xn, 2, 4, std::vector<index>{4, 3}, ctx);  // step 3 of sequence 1 is padding: fine
}

void device_checks() {
  cb::Stream stream;
  layer_norm_checks<float>(stream);
  layer_norm_checks<double>(stream);
  conv1d_checks<float>(stream);
  conv1d_checks<double>(stream);
  stream.synchronize();
}

}  // namespace

int main() {
  return uvp_cuda_test::run("test_cuda_layers", host_checks, device_checks,
                            uvp::cuda_backend::device_available());
}
