// SPDX-License-Identifier: Apache-2.0
// LstmCell and Lstm: forward and every gradient against PyTorch (packed variable-length
// sequences), gradients against finite differences, cell vs sequence, threads, bad input.
#include <doctest/doctest.h>

#include <cmath>
#include <string>
#include <thread>
#include <vector>

#include "support/test_support.hpp"
#include "unit/optim/alloc_counter.hpp"
#include "uvp/core/parallel.hpp"
#include "uvp/nn/lstm.hpp"
#include "uvp/testing/gradient_check.hpp"

using Index = uvp::index;
using uvp::Matrix;
using uvp::Span;

namespace {

using Arrays = std::map<std::string, std::vector<double>>;

template <class T>
std::vector<T> cast(const std::vector<double>& v) {
  return std::vector<T>(v.begin(), v.end());
}

template <class T>
Matrix<T> matrix(const std::vector<double>& v, Index rows, Index cols) {
  REQUIRE(Index(v.size()) == rows * cols);
  Matrix<T> m(rows, cols);
  for (Index i = 0; i < rows * cols; ++i) m.data()[i] = T(v[std::size_t(i)]);
  return m;
}

template <class T>
void load(uvp::nn::Block<T>& m, const std::string& name, const std::vector<double>& v) {
  Span<T> s = m.values(m.tensor(name));
  REQUIRE(s.size() == Index(v.size()));
  for (Index i = 0; i < s.size(); ++i) s[i] = T(v[std::size_t(i)]);
}

template <class M>
Span<const typename M::Scalar> flat(const M& m) {
  return {m.data(), Index(m.size())};
}

template <class T>
Span<const T> grad(const uvp::nn::Block<T>& m, const std::string& name) {
  return m.grads(m.tensor(name));
}

bool all_zero(const std::vector<double>& v) {
  for (double x : v)
    if (x != 0) return false;
  return true;
}

template <class T>
double tol() {
  return std::is_same_v<T, float> ? 1e-5 : 1e-10;
}

const char* const lstm_cases[] = {"varlen_h0", "full", "last", "single_step"};
const char* const lstm_tensors[] = {"weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0"};

}  // namespace

TEST_CASE_TEMPLATE("Lstm matches PyTorch on packed sequences: outputs and every gradient", T, float, double) {
  for (const char* name : lstm_cases) {
    CAPTURE(name);
    Arrays f = uvp_test::read_arrays(uvp_test::fixture_path(std::string("nn_lstm/lstm_") + name + ".txt"));
    const Index I = Index(f["dims"][0]), H = Index(f["dims"][1]), B = Index(f["dims"][2]), S = Index(f["dims"][3]);
    const std::vector<Index> lengths(f["lengths"].begin(), f["lengths"].end());
    uvp::Rng rng(1);
    uvp::nn::Lstm<T> lstm(I, H, rng);
    for (const char* t : lstm_tensors) load(lstm, t, f[t]);
    const Matrix<T> X = matrix<T>(f["X"], B * S, I);
    const Matrix<T> h0 = matrix<T>(f["h0"], B, H), c0 = matrix<T>(f["c0"], B, H);
    const bool has_h0 = f["has_h0"][0] != 0;

    uvp::nn::LstmContext<T> ctx;
    if (has_h0)
      lstm.forward(X, B, S, uvp::as_span(lengths), h0, c0, ctx);
    else
      lstm.forward(X, B, S, uvp::as_span(lengths), ctx);
    CHECK(ctx.has_history());
    CHECK(uvp_test::rel_error(flat(ctx.output()), f["output"]) < tol<T>());
    CHECK(uvp_test::rel_error(flat(ctx.last_hidden()), f["h_n"]) < tol<T>());
    CHECK(uvp_test::rel_error(flat(ctx.last_cell()), f["c_n"]) < tol<T>());
    for (Index b = 0; b < B; ++b)  // padding rows are exactly 0
      for (Index t = lengths[std::size_t(b)]; t < S; ++t) CHECK(ctx.output().row(b * S + t).isZero(0));

    // Backward; an all-zero loss weight is passed as "none" (an empty matrix).
    const Matrix<T> dH = all_zero(f["dH"]) ? Matrix<T>() : matrix<T>(f["dH"], B * S, H);
    const Matrix<T> dl = all_zero(f["dh_last"]) ? Matrix<T>() : matrix<T>(f["dh_last"], B, H);
    Matrix<T> dX(B * S, I), dh0(B, H), dc0(B, H);
    lstm.backward(X, dH, dl, dX, dh0, dc0, ctx);
    CHECK(uvp_test::rel_error(flat(dX), f["grad_X"]) < tol<T>());
    CHECK(uvp_test::rel_error(flat(dh0), f["grad_h0"]) < tol<T>());
    CHECK(uvp_test::rel_error(flat(dc0), f["grad_c0"]) < tol<T>());
    for (const char* t : lstm_tensors) {
      CAPTURE(t);
      CHECK(uvp_test::rel_error(grad(lstm, t), f[std::string("grad_") + t]) < tol<T>());
    }

    // Gradients accumulate: a second backward doubles them.
    lstm.backward(X, dH, dl, ctx);
    for (const char* t : lstm_tensors) {
      std::vector<double> twice = f[std::string("grad_") + t];
      for (double& x : twice) x *= 2;
      CHECK(uvp_test::rel_error(grad(lstm, t), twice) < tol<T>());
    }

    // The inference path gives the same last hidden state.
    Matrix<T> h_last(B, H);
    uvp::nn::LstmContext<T> ictx;
    if (has_h0)
      lstm.forward_last(X, B, S, uvp::as_span(lengths), h0, c0, h_last, ictx);
    else
      lstm.forward_last(X, B, S, uvp::as_span(lengths), h_last, ictx);
    CHECK_FALSE(ictx.has_history());
    CHECK(uvp_test::rel_error(flat(h_last), f["h_n"]) < tol<T>());
    CHECK(uvp_test::rel_error(flat(ictx.last_cell()), f["c_n"]) < tol<T>());
  }
}

TEST_CASE_TEMPLATE("LstmCell matches PyTorch's LSTMCell: outputs and every gradient", T, float, double) {
  Arrays f = uvp_test::read_arrays(uvp_test::fixture_path("nn_lstm/cell.txt"));
  const Index I = Index(f["dims"][0]), H = Index(f["dims"][1]), B = Index(f["dims"][2]);
  uvp::Rng rng(2);
  uvp::nn::LstmCell<T> cell(I, H, rng);
  for (const char* t : {"weight_ih", "weight_hh", "bias_ih", "bias_hh"}) load(cell, t, f[t]);
  const Matrix<T> x = matrix<T>(f["x"], B, I), h = matrix<T>(f["h"], B, H), c = matrix<T>(f["c"], B, H);
  Matrix<T> h1(B, H), c1(B, H);
  uvp::nn::LstmCellContext<T> ctx;
  cell.forward(x, h, c, h1, c1, ctx);
  CHECK(uvp_test::rel_error(flat(h1), f["h_out"]) < tol<T>());
  CHECK(uvp_test::rel_error(flat(c1), f["c_out"]) < tol<T>());
  const Matrix<T> dh1 = matrix<T>(f["dh_out"], B, H), dc1 = matrix<T>(f["dc_out"], B, H);
  Matrix<T> dx(B, I), dh(B, H), dc(B, H);
  cell.backward(x, h, c, dh1, dc1, dx, dh, dc, ctx);
  CHECK(uvp_test::rel_error(flat(dx), f["grad_x"]) < tol<T>());
  CHECK(uvp_test::rel_error(flat(dh), f["grad_h"]) < tol<T>());
  CHECK(uvp_test::rel_error(flat(dc), f["grad_c"]) < tol<T>());
  for (const char* t : {"weight_ih", "weight_hh", "bias_ih", "bias_hh"}) {
    CAPTURE(t);
    CHECK(uvp_test::rel_error(grad(cell, t), f[std::string("grad_") + t]) < tol<T>());
  }
  // In place (h_out = h, c_out = c) gives the same step.
  Matrix<T> hh = h, cc = c;
  cell.forward(x, hh, cc, hh, cc, ctx);
  CHECK(uvp_test::rel_error(flat(hh), f["h_out"]) < tol<T>());
  CHECK(uvp_test::rel_error(flat(cc), f["c_out"]) < tol<T>());
}

TEST_CASE("Lstm and LstmCell: PyTorch's tensor names, shapes and initialisation") {
  uvp::Rng rng(3);
  uvp::nn::Lstm<float> lstm(32, 64, rng);
  const std::vector<std::vector<Index>> shapes{{256, 32}, {256, 64}, {256}, {256}};
  for (std::size_t k = 0; k < 4; ++k) {
    const auto& t = lstm.tensors()[k];
    CHECK(t.name == lstm_tensors[k]);
    CHECK(t.shape == shapes[k]);
    double lo = 1, hi = -1, mean = 0;
    for (float v : lstm.values(t)) {
      lo = std::min(lo, double(v));
      hi = std::max(hi, double(v));
      mean += v;
    }
    mean /= double(t.numel());
    CHECK(lo >= -0.125);
    CHECK(hi <= 0.125);
    CHECK(lo < -0.12);  // spans the range U(-1/sqrt(H), 1/sqrt(H))
    CHECK(hi > 0.12);
    CHECK(std::abs(mean) < 0.02);
  }
  CHECK(lstm.parameter_count() == 4 * 64 * (32 + 64 + 2));
  uvp::nn::LstmCell<double> cell(3, 5, rng);
  CHECK(cell.tensors()[0].name == "weight_ih");
  CHECK(cell.tensors()[1].name == "weight_hh");
  CHECK(cell.tensors()[2].name == "bias_ih");
  CHECK(cell.tensors()[3].name == "bias_hh");
  CHECK(cell.tensor("weight_hh").shape == std::vector<Index>{20, 5});
  for (const auto& t : cell.tensors())
    for (double v : cell.values(t)) CHECK(std::abs(v) <= 1 / std::sqrt(5.0));
}

namespace {

// Loss sum(A * output) + sum(L * last_hidden) of a double Lstm with variable lengths.
struct SequenceProblem {
  Index I = 3, H = 4, B = 3, S = 5;
  std::vector<Index> lengths{5, 2, 3};
  uvp::Rng rng{11};
  uvp::nn::Lstm<double> lstm{I, H, rng};
  Matrix<double> X = Matrix<double>::Zero(B * S, I), h0 = Matrix<double>::Zero(B, H), c0 = h0;
  Matrix<double> A = Matrix<double>::Zero(B * S, H), L = Matrix<double>::Zero(B, H);
  uvp::nn::LstmContext<double> ctx;

  SequenceProblem() {
    for (auto* m : {&X, &h0, &c0, &A, &L})
      for (Index i = 0; i < m->size(); ++i) m->data()[i] = rng.normal();
    // Larger weights than the default init, so that the gates leave their linear range.
    for (const auto& t : lstm.tensors())
      for (double& v : lstm.values(t)) v = 0.6 * rng.normal();
  }
  double loss() {
    lstm.forward(X, B, S, uvp::as_span(lengths), h0, c0, ctx);
    return (A.array() * ctx.output().array()).sum() + (L.array() * ctx.last_hidden().array()).sum();
  }
};

}  // namespace

TEST_CASE("Lstm gradients match finite differences (double, variable lengths, h0 and c0)") {
  SequenceProblem p;
  SUBCASE("from output and last hidden state") {}
  SUBCASE("from the last hidden state only") { p.A.setZero(); }
  SUBCASE("from the outputs only") { p.L.setZero(); }
  p.lstm.zero_grad();
  p.loss();
  Matrix<double> dX(p.B * p.S, p.I), dh0(p.B, p.H), dc0(p.B, p.H);
  const Matrix<double> none;
  p.lstm.backward(p.X, p.A.isZero(0) ? none : p.A, p.L.isZero(0) ? none : p.L, dX, dh0, dc0, p.ctx);
  for (const auto& t : p.lstm.tensors()) {
    CAPTURE(t.name);
    const std::vector<double> g(p.lstm.grads(t).begin(), p.lstm.grads(t).end());
    auto r = uvp::testing::check_gradient([&] { return p.loss(); }, p.lstm.values(t), uvp::as_span(g));
    CHECK(r.relative_error <= 1e-6);
  }
  const Matrix<double> dXc = dX, dh0c = dh0, dc0c = dc0;
  auto rx = uvp::testing::check_gradient([&] { return p.loss(); }, Span<double>(p.X.data(), p.X.size()), flat(dXc));
  CHECK(rx.relative_error <= 1e-6);
  auto rh = uvp::testing::check_gradient([&] { return p.loss(); }, Span<double>(p.h0.data(), p.h0.size()), flat(dh0c));
  CHECK(rh.relative_error <= 1e-6);
  auto rc = uvp::testing::check_gradient([&] { return p.loss(); }, Span<double>(p.c0.data(), p.c0.size()), flat(dc0c));
  CHECK(rc.relative_error <= 1e-6);
  // Padding rows of dX are exactly 0.
  for (Index b = 0; b < p.B; ++b)
    for (Index t = p.lengths[std::size_t(b)]; t < p.S; ++t) CHECK(dX.row(b * p.S + t).isZero(0));
}

TEST_CASE("LstmCell gradients match finite differences (double)") {
  const Index I = 3, H = 5, B = 2;
  uvp::Rng rng(12);
  uvp::nn::LstmCell<double> cell(I, H, rng);
  for (const auto& t : cell.tensors())
    for (double& v : cell.values(t)) v = 0.6 * rng.normal();
  Matrix<double> x(B, I), h(B, H), c(B, H), A(B, H), C(B, H), h1(B, H), c1(B, H);
  for (auto* m : {&x, &h, &c, &A, &C})
    for (Index i = 0; i < m->size(); ++i) m->data()[i] = rng.normal();
  uvp::nn::LstmCellContext<double> ctx;
  auto loss = [&] {
    cell.forward(x, h, c, h1, c1, ctx);
    return (A.array() * h1.array()).sum() + (C.array() * c1.array()).sum();
  };
  loss();
  Matrix<double> dx(B, I), dh(B, H), dc(B, H);
  cell.backward(x, h, c, A, C, dx, dh, dc, ctx);
  for (const auto& t : cell.tensors()) {
    const std::vector<double> g(cell.grads(t).begin(), cell.grads(t).end());
    CHECK(uvp::testing::check_gradient(loss, cell.values(t), uvp::as_span(g)).relative_error <= 1e-6);
  }
  CHECK(uvp::testing::check_gradient(loss, Span<double>(x.data(), x.size()), flat(dx)).relative_error <= 1e-6);
  CHECK(uvp::testing::check_gradient(loss, Span<double>(h.data(), h.size()), flat(dh)).relative_error <= 1e-6);
  CHECK(uvp::testing::check_gradient(loss, Span<double>(c.data(), c.size()), flat(dc)).relative_error <= 1e-6);
  // No gradient into c' (dc_out empty) is the same as a zero one.
  cell.zero_grad();
  Matrix<double> dx2(B, I), dh2(B, H), dc2(B, H);
  cell.backward(x, h, c, A, Matrix<double>(), dx2, dh2, dc2, ctx);
  cell.zero_grad();
  cell.backward(x, h, c, A, Matrix<double>::Zero(B, H), dx, dh, dc, ctx);
  CHECK(dx2 == dx);
  CHECK(dh2 == dh);
  CHECK(dc2 == dc);
}

TEST_CASE("An LstmCell stepped by hand agrees with the Lstm over the sequence") {
  const Index I = 4, H = 6, B = 3, S = 5;
  uvp::Rng rng(13);
  uvp::nn::Lstm<double> lstm(I, H, rng);
  uvp::nn::LstmCell<double> cell(I, H, rng);
  for (std::size_t k = 0; k < 4; ++k) {
    auto src = lstm.values(lstm.tensors()[k]);
    auto dst = cell.values(cell.tensors()[k]);
    std::copy(src.begin(), src.end(), dst.begin());
  }
  Matrix<double> X(B * S, I), A(B * S, H), L(B, H);
  for (auto* m : {&X, &A, &L})
    for (Index i = 0; i < m->size(); ++i) m->data()[i] = rng.normal();
  uvp::nn::LstmContext<double> ctx;
  lstm.forward(X, B, S, {}, ctx);
  Matrix<double> dX(B * S, I);
  lstm.backward(X, A, L, dX, ctx);

  // The cell over t = 0 .. S - 1 on the whole batch (full lengths), keeping every step.
  std::vector<Matrix<double>> xs(S), hs(S + 1, Matrix<double>::Zero(B, H)), cs(S + 1, Matrix<double>::Zero(B, H));
  std::vector<uvp::nn::LstmCellContext<double>> cctx(S);
  for (Index t = 0; t < S; ++t) {
    xs[t].resize(B, I);
    for (Index b = 0; b < B; ++b) xs[t].row(b) = X.row(b * S + t);
    hs[t + 1].resize(B, H);
    cs[t + 1].resize(B, H);
    cell.forward(xs[t], hs[t], cs[t], hs[t + 1], cs[t + 1], cctx[t]);
    for (Index b = 0; b < B; ++b) CHECK((hs[t + 1].row(b) - ctx.output().row(b * S + t)).norm() < 1e-12);
  }
  CHECK((hs[S] - ctx.last_hidden()).norm() < 1e-12);
  CHECK((cs[S] - ctx.last_cell()).norm() < 1e-12);
  // Backward through the steps by hand.
  Matrix<double> dh = L, dc = Matrix<double>::Zero(B, H), dxt(B, I), dhp(B, H), dcp(B, H), dht(B, H);
  Matrix<double> dXc(B * S, I);
  for (Index t = S - 1; t >= 0; --t) {
    for (Index b = 0; b < B; ++b) dht.row(b) = dh.row(b) + A.row(b * S + t);
    cell.backward(xs[t], hs[t], cs[t], dht, dc, dxt, dhp, dcp, cctx[t]);
    for (Index b = 0; b < B; ++b) dXc.row(b * S + t) = dxt.row(b);
    dh = dhp;
    dc = dcp;
  }
  CHECK((dXc - dX).norm() < 1e-12 * (1 + dX.norm()));
  for (std::size_t k = 0; k < 4; ++k) {
    const auto g1 = lstm.grads(lstm.tensors()[k]), g2 = cell.grads(cell.tensors()[k]);
    CHECK(uvp_test::rel_error(g1, g2) < 1e-12);
  }
}

TEST_CASE_TEMPLATE("Lstm: chunks over OpenMP threads and concurrent forwards give the serial results", T, float,
                   double) {
  const Index I = 8, H = 16, B = 40, S = 12;
  uvp::Rng rng(14);
  uvp::nn::Lstm<T> lstm(I, H, rng);
  Matrix<T> X(B * S, I), A(B * S, H), L(B, H);
  for (auto* m : {&X, &A, &L})
    for (Index i = 0; i < m->size(); ++i) m->data()[i] = T(rng.normal());
  std::vector<Index> lengths(B);
  for (Index b = 0; b < B; ++b) lengths[std::size_t(b)] = 1 + (b * 7) % S;

  auto run = [&](int threads, Matrix<T>& out, Matrix<T>& last, Matrix<T>& dX, std::vector<T>& g) {
    uvp::ThreadCountGuard guard(threads);
    uvp::nn::LstmContext<T> ctx;
    lstm.zero_grad();
    lstm.forward(X, B, S, uvp::as_span(lengths), ctx);
    out = ctx.output();
    dX.resize(B * S, I);
    lstm.backward(X, A, L, dX, ctx);
    g.assign(lstm.parameters().grads().begin(), lstm.parameters().grads().end());
    last.resize(B, H);
    lstm.forward_last(X, B, S, uvp::as_span(lengths), last, ctx);
  };
  Matrix<T> out1, last1, dX1, out2, last2, dX2;
  std::vector<T> g1, g2;
  run(1, out1, last1, dX1, g1);
  if (uvp::has_openmp) {
    run(2, out2, last2, dX2, g2);
    const double eps = std::is_same_v<T, float> ? 1e-6 : 1e-14;
    CHECK(uvp_test::rel_error(flat(out2), flat(out1)) < eps);
    CHECK(uvp_test::rel_error(flat(last2), flat(last1)) < eps);
    CHECK(uvp_test::rel_error(flat(dX2), flat(dX1)) < eps);
    CHECK(uvp_test::rel_error(g2, g1) < eps);
  }
  // Two threads, each with its own context, on the same const model.
  const auto& model = lstm;
  Matrix<T> o1, o2;
  std::thread a([&] {
    uvp::ThreadCountGuard guard(1);
    uvp::nn::LstmContext<T> c;
    model.forward(X, B, S, uvp::as_span(lengths), c);
    o1 = c.output();
  });
  std::thread b([&] {
    uvp::ThreadCountGuard guard(1);
    uvp::nn::LstmContext<T> c;
    model.forward(X, B, S, uvp::as_span(lengths), c);
    o2 = c.output();
  });
  a.join();
  b.join();
  CHECK(o1 == out1);
  CHECK(o2 == out1);
}

TEST_CASE("Lstm allocates nothing per call once its context has grown") {
  const Index I = 32, H = 64, B = 8, S = 50;
  uvp::Rng rng(15);
  uvp::nn::Lstm<float> lstm(I, H, rng);
  Matrix<float> X(B * S, I), L(B, H), dX(B * S, I), h_last(B, H), h1(1, H);
  for (Index i = 0; i < X.size(); ++i) X.data()[i] = float(rng.normal());
  L.setOnes();
  std::vector<Index> lengths{50, 10, 3, 50, 25, 1, 49, 50};
  uvp::ThreadCountGuard guard(1);
  uvp::nn::LstmContext<float> ctx;
  const Matrix<float> none;
  for (int warm = 0; warm < 2; ++warm) {
    lstm.forward(X, B, S, uvp::as_span(lengths), ctx);
    lstm.backward(X, none, L, dX, ctx);
    lstm.forward_last(X, B, S, uvp::as_span(lengths), h_last, ctx);
    lstm.forward_last(X.topRows(S), 1, S, {}, h1, ctx);
  }
  const long before = uvp_test::allocations.load();
  lstm.forward(X, B, S, uvp::as_span(lengths), ctx);
  lstm.backward(X, none, L, dX, ctx);
  lstm.forward_last(X, B, S, uvp::as_span(lengths), h_last, ctx);
  lstm.forward_last(X.topRows(S), 1, S, {}, h1, ctx);
  CHECK(uvp_test::allocations.load() == before);
}

TEST_CASE("Lstm: a context reused after the weights change gives the new weights' result") {
  // The context keeps W_ih and W_hh packed between calls while their bits are unchanged.
  const Index I = 5, H = 6, B = 3, S = 7;
  uvp::Rng rng(16);
  uvp::nn::Lstm<float> lstm(I, H, rng, 2);
  Matrix<float> X(B * S, I), h(B, H), fresh(B, H), before(B, H);
  for (Index i = 0; i < X.size(); ++i) X.data()[i] = float(rng.normal());
  uvp::nn::LstmContext<float> ctx;
  lstm.forward_last(X, B, S, {}, before, ctx);
  // One value at a time of layer 0's W_ih, W_hh and layer 1's W_hh.
  for (const char* name : {"weight_ih_l0", "weight_hh_l0", "weight_hh_l1"}) {
    CAPTURE(name);
    Span<float> w = lstm.values(lstm.tensor(name));
    w[w.size() - 1] += 0.5f;
    lstm.forward_last(X, B, S, {}, h, ctx);
    uvp::nn::LstmContext<float> new_ctx;
    lstm.forward_last(X, B, S, {}, fresh, new_ctx);
    CHECK(h == fresh);
    CHECK(h != before);
    before = h;
  }
}

TEST_CASE("Lstm and LstmCell reject bad input with messages that name it") {
  uvp::Rng rng(16);
  const Index I = 3, H = 4, B = 2, S = 3;
  uvp::nn::Lstm<double> lstm(I, H, rng);
  uvp::nn::LstmContext<double> ctx;
  Matrix<double> X = Matrix<double>::Ones(B * S, I), h0 = Matrix<double>::Zero(B, H), c0 = h0;
  const std::vector<Index> ok{3, 1};
  Matrix<double> h_last(B, H);
  using uvp::invalid_argument;
  using uvp::numeric_error;
  using uvp::out_of_range_error;
  using uvp::shape_error;

  UVP_CHECK_THROWS_WITH_SUBSTR(uvp::nn::Lstm<double>(0, 4, rng), invalid_argument, "input_size must be > 0");
  UVP_CHECK_THROWS_WITH_SUBSTR(uvp::nn::LstmCell<float>(3, 0, rng), invalid_argument, "hidden_size must be > 0");

  // Shapes of X and lengths.
  UVP_CHECK_THROWS_WITH_SUBSTR(lstm.forward(X, B, S + 1, {}, ctx), shape_error,
                               "uvp::nn::Lstm::forward: X has 6 rows, expected batch * seq_len = 8");
  UVP_CHECK_THROWS_WITH_SUBSTR(lstm.forward(Matrix<double>::Ones(B * S, I + 1), B, S, {}, ctx), shape_error,
                               "X has 4 columns, expected 3");
  UVP_CHECK_THROWS_WITH_SUBSTR(lstm.forward(X, -1, S, {}, ctx), invalid_argument, "batch must be >= 0, got -1");
  UVP_CHECK_THROWS_WITH_SUBSTR(lstm.forward(X, B, 0, {}, ctx), invalid_argument, "seq_len must be >= 1, got 0");
  const std::vector<Index> too_long{3, 4}, zero{0, 3}, negative{3, -1}, wrong_size{3, 3, 3};
  UVP_CHECK_THROWS_WITH_SUBSTR(lstm.forward(X, B, S, uvp::as_span(too_long), ctx), out_of_range_error,
                               "lengths[1] = 4 is outside [1, seq_len = 3]");
  UVP_CHECK_THROWS_WITH_SUBSTR(lstm.forward(X, B, S, uvp::as_span(negative), ctx), out_of_range_error,
                               "lengths[1] = -1");
  UVP_CHECK_THROWS_WITH_SUBSTR(lstm.forward(X, B, S, uvp::as_span(zero), ctx), invalid_argument,
                               "lengths[0] = 0 (a sequence needs at least one step)");
  UVP_CHECK_THROWS_WITH_SUBSTR(lstm.forward_last(X, B, S, uvp::as_span(wrong_size), h_last, ctx), shape_error,
                               "lengths has size 3, expected 2");

  // Non-finite inputs.
  Matrix<double> Xn = X;
  Xn(4, 2) = std::nan("");
  UVP_CHECK_THROWS_WITH_SUBSTR(lstm.forward(Xn, B, S, uvp::as_span(ok), ctx), numeric_error,
                               "uvp::nn::Lstm::forward: X has a non-finite value (nan) at row 4, column 2");
  Xn(4, 2) = INFINITY;
  UVP_CHECK_THROWS_WITH_SUBSTR(lstm.forward_last(Xn, B, S, {}, h_last, ctx), numeric_error, "X has a non-finite");
  Matrix<double> bad0 = h0;
  bad0(1, 1) = std::nan("");
  UVP_CHECK_THROWS_WITH_SUBSTR(lstm.forward(X, B, S, {}, bad0, c0, ctx), numeric_error, "h0 has a non-finite");
  UVP_CHECK_THROWS_WITH_SUBSTR(lstm.forward(X, B, S, {}, h0, bad0, ctx), numeric_error, "c0 has a non-finite");
  UVP_CHECK_THROWS_WITH_SUBSTR(lstm.forward(X, B, S, {}, Matrix<double>::Zero(B, H + 1), c0, ctx), shape_error,
                               "h0 has shape (2, 5), expected (2, 4)");
  UVP_CHECK_THROWS_WITH_SUBSTR(lstm.forward(X, B, S, {}, h0, Matrix<double>::Zero(1, H), ctx), shape_error,
                               "c0 has shape (1, 4), expected (2, 4)");
  Matrix<double> wrong_last(B + 1, H);
  UVP_CHECK_THROWS_WITH_SUBSTR(lstm.forward_last(X, B, S, {}, wrong_last, ctx), shape_error,
                               "uvp::nn::Lstm::forward_last: h_last has shape (3, 4), expected (2, 4)");

  // Backward without a forward pass, or after forward_last.
  Matrix<double> dX(B * S, I), dH = Matrix<double>::Ones(B * S, H), dl = Matrix<double>::Ones(B, H);
  uvp::nn::LstmContext<double> fresh;
  UVP_CHECK_THROWS_WITH_SUBSTR(lstm.backward(X, dH, dl, fresh), invalid_argument, "call forward");
  lstm.forward_last(X, B, S, {}, h_last, ctx);
  UVP_CHECK_THROWS_WITH_SUBSTR(lstm.backward(X, dH, dl, dX, ctx), invalid_argument,
                               "ctx holds no forward pass of this Lstm");
  uvp::nn::Lstm<double> other(I, H + 1, rng);
  lstm.forward(X, B, S, uvp::as_span(ok), ctx);
  UVP_CHECK_THROWS_WITH_SUBSTR(other.backward(X, Matrix<double>(), Matrix<double>::Ones(B, H + 1), ctx),
                               invalid_argument,
                               "ctx comes from a block with input_size = 3, hidden_size = 4, this one has input_size "
                               "= 3, hidden_size = 5");

  // Backward shapes.
  UVP_CHECK_THROWS_WITH_SUBSTR(lstm.backward(X, Matrix<double>(), Matrix<double>(), dX, ctx), invalid_argument,
                               "dH and dh_last are both empty");
  UVP_CHECK_THROWS_WITH_SUBSTR(lstm.backward(X, Matrix<double>::Ones(B * S - 1, H), dl, dX, ctx), shape_error,
                               "dH has shape (5, 4), expected (6, 4)");
  UVP_CHECK_THROWS_WITH_SUBSTR(lstm.backward(X, dH, Matrix<double>::Ones(B, H - 1), dX, ctx), shape_error,
                               "dh_last has shape (2, 3), expected (2, 4)");
  Matrix<double> small_dX(B * S, I - 1), dh0(B, H), dc0(B + 1, H);
  UVP_CHECK_THROWS_WITH_SUBSTR(lstm.backward(X, dH, dl, small_dX, ctx), shape_error,
                               "dX has shape (6, 2), expected (6, 3)");
  UVP_CHECK_THROWS_WITH_SUBSTR(lstm.backward(X, dH, dl, dX, dh0, dc0, ctx), shape_error,
                               "dc0 has shape (3, 4), expected (2, 4)");
  UVP_CHECK_THROWS_WITH_SUBSTR(lstm.backward(X.topRows(4), dH, dl, ctx), shape_error,
                               "X has shape (4, 3), expected (6, 3)");

  // The cell.
  uvp::nn::LstmCell<double> cell(I, H, rng);
  uvp::nn::LstmCellContext<double> cctx;
  Matrix<double> x = Matrix<double>::Ones(B, I), h = Matrix<double>::Zero(B, H), c = h, h1(B, H), c1(B, H);
  UVP_CHECK_THROWS_WITH_SUBSTR(cell.forward(Matrix<double>::Ones(B, I + 1), h, c, h1, c1, cctx), shape_error,
                               "uvp::nn::LstmCell::forward: x has 4 columns, expected 3");
  UVP_CHECK_THROWS_WITH_SUBSTR(cell.forward(x, Matrix<double>::Zero(B + 1, H), c, h1, c1, cctx), shape_error,
                               "h has shape (3, 4), expected (2, 4)");
  UVP_CHECK_THROWS_WITH_SUBSTR(cell.forward(x, h, c, h1, c0.leftCols(2), cctx), shape_error,
                               "c_out has shape (2, 2), expected (2, 4)");
  Matrix<double> xn = x;
  xn(0, 0) = std::nan("");
  UVP_CHECK_THROWS_WITH_SUBSTR(cell.forward(xn, h, c, h1, c1, cctx), numeric_error, "x has a non-finite value");
  Matrix<double> dx(B, I), dh(B, H), dc(B, H);
  UVP_CHECK_THROWS_WITH_SUBSTR(cell.backward(x, h, c, h, c, dx, dh, dc, cctx), invalid_argument,
                               "uvp::nn::LstmCell::backward: ctx holds no forward");
  cell.forward(x, h, c, h1, c1, cctx);
  UVP_CHECK_THROWS_WITH_SUBSTR(cell.backward(x, h, c, Matrix<double>::Zero(B, H + 1), c, dx, dh, dc, cctx),
                               shape_error, "dh_out has shape (2, 5), expected (2, 4)");
  UVP_CHECK_THROWS_WITH_SUBSTR(cell.backward(x, h, c, h, c, dx, dh, dc.topRows(1), cctx), shape_error,
                               "dc has shape (1, 4), expected (2, 4)");
}
