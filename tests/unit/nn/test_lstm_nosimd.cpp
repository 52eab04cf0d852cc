// SPDX-License-Identifier: Apache-2.0
// The LSTM's scalar gate loops (what targets without SIMD run), forced with UVP_NO_SIMD, against
// the same PyTorch fixtures as test_lstm.cpp.
#define UVP_NO_SIMD 1

#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "support/test_support.hpp"
#include "uvp/nn/lstm.hpp"

namespace {
template <class T>
uvp::Matrix<T> matrix(const std::vector<double>& v, uvp::index rows, uvp::index cols) {
  uvp::Matrix<T> m(rows, cols);
  for (uvp::index i = 0; i < rows * cols; ++i) m.data()[i] = T(v[std::size_t(i)]);
  return m;
}
template <class T>
void load(uvp::nn::Block<T>& m, const std::string& name, const std::vector<double>& v) {
  uvp::Span<T> s = m.values(m.tensor(name));
  for (uvp::index i = 0; i < s.size(); ++i) s[i] = T(v[std::size_t(i)]);
}
template <class M>
uvp::Span<const typename M::Scalar> flat(const M& m) {
  return {m.data(), uvp::index(m.size())};
}
}  // namespace

TEST_CASE_TEMPLATE("with UVP_NO_SIMD the Lstm still matches PyTorch", T, float, double) {
  static_assert(!uvp::detail::simd::enabled<T>);
  const double tol = std::is_same_v<T, float> ? 1e-5 : 1e-10;
  auto f = uvp_test::read_arrays(uvp_test::fixture_path("nn_lstm/lstm_varlen_h0.txt"));
  const uvp::index I = uvp::index(f["dims"][0]), H = uvp::index(f["dims"][1]), B = uvp::index(f["dims"][2]),
                   S = uvp::index(f["dims"][3]);
  const std::vector<uvp::index> lengths(f["lengths"].begin(), f["lengths"].end());
  uvp::Rng rng(1);
  uvp::nn::Lstm<T> lstm(I, H, rng);
  for (const char* t : {"weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0"}) load(lstm, t, f[t]);
  const auto X = matrix<T>(f["X"], B * S, I), h0 = matrix<T>(f["h0"], B, H), c0 = matrix<T>(f["c0"], B, H);
  uvp::nn::LstmContext<T> ctx;
  lstm.forward(X, B, S, uvp::as_span(lengths), h0, c0, ctx);
  CHECK(uvp_test::rel_error(flat(ctx.output()), f["output"]) < tol);
  CHECK(uvp_test::rel_error(flat(ctx.last_cell()), f["c_n"]) < tol);
  uvp::Matrix<T> dX(B * S, I), dh0(B, H), dc0(B, H);
  lstm.backward(X, matrix<T>(f["dH"], B * S, H), matrix<T>(f["dh_last"], B, H), dX, dh0, dc0, ctx);
  CHECK(uvp_test::rel_error(flat(dX), f["grad_X"]) < tol);
  CHECK(uvp_test::rel_error(flat(dc0), f["grad_c0"]) < tol);
  CHECK(uvp_test::rel_error(lstm.grads(lstm.tensor("weight_hh_l0")), f["grad_weight_hh_l0"]) < tol);
  uvp::Matrix<T> h_last(B, H);
  lstm.forward_last(X, B, S, uvp::as_span(lengths), h0, c0, h_last, ctx);
  CHECK(uvp_test::rel_error(flat(h_last), f["h_n"]) < tol);
}

TEST_CASE_TEMPLATE("with UVP_NO_SIMD the LstmCell still matches PyTorch", T, float, double) {
  const double tol = std::is_same_v<T, float> ? 1e-5 : 1e-10;
  auto f = uvp_test::read_arrays(uvp_test::fixture_path("nn_lstm/cell.txt"));
  const uvp::index I = uvp::index(f["dims"][0]), H = uvp::index(f["dims"][1]), B = uvp::index(f["dims"][2]);
  uvp::Rng rng(2);
  uvp::nn::LstmCell<T> cell(I, H, rng);
  for (const char* t : {"weight_ih", "weight_hh", "bias_ih", "bias_hh"}) load(cell, t, f[t]);
  const auto x = matrix<T>(f["x"], B, I), h = matrix<T>(f["h"], B, H), c = matrix<T>(f["c"], B, H);
  uvp::Matrix<T> h1(B, H), c1(B, H), dx(B, I), dh(B, H), dc(B, H);
  uvp::nn::LstmCellContext<T> ctx;
  cell.forward(x, h, c, h1, c1, ctx);
  CHECK(uvp_test::rel_error(flat(h1), f["h_out"]) < tol);
  cell.backward(x, h, c, matrix<T>(f["dh_out"], B, H), matrix<T>(f["dc_out"], B, H), dx, dh, dc, ctx);
  CHECK(uvp_test::rel_error(flat(dx), f["grad_x"]) < tol);
  CHECK(uvp_test::rel_error(flat(dc), f["grad_c"]) < tol);
  CHECK(uvp_test::rel_error(cell.grads(cell.tensor("weight_ih")), f["grad_weight_ih"]) < tol);
}
