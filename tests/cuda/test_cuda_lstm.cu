// SPDX-License-Identifier: Apache-2.0
// uvp::nn::Lstm<T, uvp::cuda> against the CPU Lstm (seq_reference.cpp) on the same weights:
// every output of forward (all steps, last hidden, last cell), forward_last, and backward (dX,
// dh0, dc0, the four parameter gradients), with variable lengths, an initial state, dH and / or
// dh_last; padding rows exactly 0; the CPU's errors and messages. Host-only part (runs
// everywhere): constructor argument errors, raised before any CUDA call or draw.
#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "cpu_reference.hpp"
#include "cuda_test_support.hpp"
#include "nn_reference.hpp"
#include "seq_reference.hpp"
#include "uvp/backend/cuda/device.cuh"
#include "uvp/backend/cuda/lstm.cuh"
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
std::string type_name() {
  return sizeof(T) == 4 ? "float" : "double";
}

void host_checks() {
  ReplayRng rng{std::vector<double>(10, 0.5)};
  UVP_EXPECT_THROWS(uvp::invalid_argument, (uvp::nn::Lstm<float, uvp::cuda>(0, 3, rng)),
                    "uvp::nn::Lstm: input_size must be > 0, got 0");
  UVP_EXPECT_THROWS(uvp::invalid_argument, (uvp::nn::Lstm<double, uvp::cuda>(4, -2)),
                    "uvp::nn::Lstm: hidden_size must be > 0, got -2");
  UVP_EXPECT(rng.next == 0);
  // HostSpan views host ranges without copying.
  const std::vector<index> v = {3, 1, 2};
  const cb::HostSpan<index> s = v;
  UVP_EXPECT(s.size() == 3 && s.data() == v.data() && s[2] == 2 && !s.empty());
  UVP_EXPECT(cb::HostSpan<index>().empty());
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
cb::DeviceMatrix<T> device(const std::vector<T>& v, index rows, index cols, const cb::Stream& s) {
  if (v.empty()) return cb::DeviceMatrix<T>();
  return cb::DeviceMatrix<T>(v.data(), rows, cols, s.get());
}

struct Case {
  index I, H, B, S;
  std::vector<index> lengths;
  bool initial, with_dH, with_last;
};

template <class T>
void lstm_case(const Case& c, std::uint64_t seed, const cb::Stream& stream) {
  const index I = c.I, H = c.H, B = c.B, S = c.S, N = B * S;
  const auto x = uniform<T>(N * I, seed + 1, -1, 1);
  const auto h0 = c.initial ? uniform<T>(B * H, seed + 2, -1, 1) : std::vector<T>();
  const auto c0 = c.initial ? uniform<T>(B * H, seed + 3, -2, 2) : std::vector<T>();
  const auto dH = c.with_dH ? uniform<T>(N * H, seed + 4, -1, 1) : std::vector<T>();
  const auto dL = c.with_last ? uniform<T>(B * H, seed + 5, -1, 1) : std::vector<T>();
  const auto cpu = cpu_lstm<T>(I, H, seed, B, S, c.lengths, x, h0, c0, dH, dL);
  const std::string what = "Lstm<" + type_name<T>() + ", cuda> I " + std::to_string(I) + " H " +
                           std::to_string(H) + " B " + std::to_string(B) + " S " + std::to_string(S) +
                           (c.lengths.empty() ? "" : " lengths") + (c.initial ? " h0" : "") +
                           (c.with_dH ? " dH" : "") + (c.with_last ? " dh_last" : "") + ": ";
  // float: S steps of GEMMs over 4H + I terms and sigmoid / tanh; errors grow with S.
  const double tol = sizeof(T) == 4 ? 5e-5 * double(S) : 1e-12 * double(S);

  ReplayRng rng{rng_uniform_draws(seed, 4 * H * (I + H) + 8 * H)};
  uvp::nn::Lstm<T, uvp::cuda> lstm(I, H, rng, stream.get());
  UVP_EXPECT_MSG(get(lstm, "weight_ih_l0") == cpu.w_ih && get(lstm, "weight_hh_l0") == cpu.w_hh &&
                     get(lstm, "bias_ih_l0") == cpu.b_ih && get(lstm, "bias_hh_l0") == cpu.b_hh,
                 what + "same weights from the same draws");

  const auto X = device(x, N, I, stream);
  const auto H0 = device(h0, B, H, stream), C0 = device(c0, B, H, stream);
  const auto dHm = device(dH, N, H, stream), dLm = device(dL, B, H, stream);
  typename uvp::nn::Lstm<T, uvp::cuda>::Context ctx, infer;
  cb::DeviceMatrix<T> h_last(B, H, stream.get());
  if (c.initial) {
    lstm.forward(X, B, S, c.lengths, H0, C0, ctx);
    lstm.forward_last(X, B, S, c.lengths, H0, C0, h_last, infer);
  } else {
    lstm.forward(X, B, S, c.lengths, ctx);
    lstm.forward_last(X, B, S, c.lengths, h_last, infer);
  }
  const auto out = host_copy(ctx.output());
  UVP_EXPECT_MSG(close(out, cpu.output, tol), what + "output");
  bool zero_pad = true;
  for (index b = 0; b < B; ++b)
    for (index t = c.lengths.empty() ? S : c.lengths[b]; t < S; ++t)
      for (index j = 0; j < H; ++j) zero_pad = zero_pad && out[(b * S + t) * H + j] == T(0);
  UVP_EXPECT_MSG(zero_pad, what + "padding rows of output are 0");
  UVP_EXPECT_MSG(close(host_copy(ctx.last_hidden()), cpu.last_hidden, tol), what + "last_hidden");
  UVP_EXPECT_MSG(close(host_copy(ctx.last_cell()), cpu.last_cell, tol), what + "last_cell");
  UVP_EXPECT_MSG(close(host_copy(h_last), cpu.h_last, tol), what + "forward_last");
  UVP_EXPECT_MSG(ctx.has_history() && !infer.has_history(), what + "history flags");

  cb::DeviceMatrix<T> dX(N, I, stream.get()), dh0(B, H, stream.get()), dc0(B, H, stream.get());
  lstm.backward(X, dHm, dLm, dX, dh0, dc0, ctx);
  const auto dx = host_copy(dX);
  UVP_EXPECT_MSG(close(dx, cpu.dx, tol), what + "dX");
  UVP_EXPECT_MSG(close(host_copy(dh0), cpu.dh0, tol), what + "dh0");
  UVP_EXPECT_MSG(close(host_copy(dc0), cpu.dc0, tol), what + "dc0");
  UVP_EXPECT_MSG(close(get(lstm, "weight_ih_l0", true), cpu.g_w_ih, tol) &&
                     close(get(lstm, "weight_hh_l0", true), cpu.g_w_hh, tol) &&
                     close(get(lstm, "bias_ih_l0", true), cpu.g_b_ih, tol) &&
                     close(get(lstm, "bias_hh_l0", true), cpu.g_b_hh, tol),
                 what + "parameter gradients");
  bool zero_dx = true;
  for (index b = 0; b < B; ++b)
    for (index t = c.lengths.empty() ? S : c.lengths[b]; t < S; ++t)
      for (index j = 0; j < I; ++j) zero_dx = zero_dx && dx[(b * S + t) * I + j] == T(0);
  UVP_EXPECT_MSG(zero_dx, what + "padding rows of dX are 0");

  // Accumulation: a second backward doubles the parameter gradients.
  const auto g1 = get(lstm, "weight_hh_l0", true);
  lstm.backward(X, dHm, dLm, ctx);
  const auto g2 = get(lstm, "weight_hh_l0", true);
  std::vector<T> twice(g1.size());
  for (std::size_t i = 0; i < g1.size(); ++i) twice[i] = T(2) * g1[i];
  UVP_EXPECT_MSG(close(g2, twice, 1e-6), what + "gradients accumulate");
}

template <class T>
void lstm_checks(const cb::Stream& stream) {
  std::vector<index> ragged(33);
  const auto u = uniform<double>(33, 97, 0, 1);
  for (std::size_t i = 0; i < ragged.size(); ++i) ragged[i] = 1 + static_cast<index>(u[i] * 9);
  const Case cases[] = {
      {5, 4, 3, 6, {6, 2, 4}, false, true, true},
      {7, 8, 5, 5, {}, true, true, false},
      {3, 16, 33, 9, ragged, false, false, true},
      {6, 5, 4, 7, {1, 7, 3, 7}, true, true, true},
  };
  std::uint64_t seed = 200;
  for (const auto& c : cases) lstm_case<T>(c, seed += 10, stream);

  // The CPU's errors and messages.
  uvp::nn::Lstm<T, uvp::cuda> lstm(3, 2, stream.get());
  typename uvp::nn::Lstm<T, uvp::cuda>::Context ctx;
  const cb::DeviceMatrix<T> X(std::vector<T>(12, T(0.5)).data(), 4, 3, stream.get());
  const std::vector<index> zero_len = {2, 0}, long_len = {2, 3};
  UVP_EXPECT_THROWS(uvp::shape_error, lstm.forward(X, 2, 3, {}, ctx),
                    "uvp::nn::Lstm::forward: X has 4 rows, expected batch * seq_len = 6");
  UVP_EXPECT_THROWS(uvp::invalid_argument, lstm.forward(X, 2, 2, zero_len, ctx),
                    "uvp::nn::Lstm::forward: lengths[1] = 0 (a sequence needs at least one step)");
  UVP_EXPECT_THROWS(uvp::out_of_range_error, lstm.forward(X, 2, 2, long_len, ctx),
                    "uvp::nn::Lstm::forward: lengths[1] = 3 is outside [1, seq_len = 2]");
  UVP_EXPECT_THROWS(uvp::shape_error, lstm.forward(X, 2, 2, std::vector<index>{1}, ctx),
                    "uvp::nn::Lstm::forward: lengths has size 1, expected 2");
  std::vector<T> nan_x(12, T(0));
  nan_x[7] = std::numeric_limits<T>::quiet_NaN();
  const cb::DeviceMatrix<T> Xn(nan_x.data(), 4, 3, stream.get());
  UVP_EXPECT_THROWS(uvp::numeric_error, lstm.forward(Xn, 2, 2, {}, ctx),
                    "uvp::nn::Lstm::forward: X has a non-finite value (", ") at row 2, column 1");
  cb::DeviceMatrix<T> h_last(2, 2, stream.get()), dX(4, 3, stream.get());
  lstm.forward_last(X, 2, 2, {}, h_last, ctx);
  const cb::DeviceMatrix<T> dL(2, 2, stream.get()), none;
  UVP_EXPECT_THROWS(uvp::invalid_argument, lstm.backward(X, none, dL, dX, ctx),
                    "uvp::nn::Lstm::backward: ctx holds no forward pass of this Lstm");
  lstm.forward(X, 2, 2, {}, ctx);
  UVP_EXPECT_THROWS(uvp::invalid_argument, lstm.backward(X, none, none, dX, ctx),
                    "uvp::nn::Lstm::backward: dH and dh_last are both empty");
  const cb::DeviceMatrix<T> wrong(2, 3, stream.get());
  UVP_EXPECT_THROWS(uvp::shape_error, lstm.backward(X, none, wrong, dX, ctx),
                    "uvp::nn::Lstm::backward: dh_last has shape (2, 3), expected (2, 2)");
  UVP_EXPECT_THROWS(uvp::shape_error, lstm.forward_last(X, 2, 2, {}, dX, ctx),
                    "uvp::nn::Lstm::forward_last: h_last has shape (4, 3), expected (2, 2)");
}

void device_checks() {
  cb::Stream stream;
  lstm_checks<float>(stream);
  lstm_checks<double>(stream);
  stream.synchronize();
}

}  // namespace

int main() {
  return uvp_cuda_test::run("test_cuda_lstm", host_checks, device_checks,
                            uvp::cuda_backend::device_available());
}
