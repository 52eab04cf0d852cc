// SPDX-License-Identifier: Apache-2.0
// Stacked Lstm (num_layers > 1) and the layer contract of Lstm and LstmCell: against PyTorch's
// nn.LSTM(num_layers=L) on packed sequences, finite differences through the contract form, the
// contract equal to the low-level forms, forward_last, specs, names and bad input.
#include <doctest/doctest.h>

#include <cmath>
#include <string>
#include <vector>

#include "support/test_support.hpp"
#include "unit/optim/alloc_counter.hpp"
#include "uvp/core/parallel.hpp"
#include "uvp/nn/lstm.hpp"
#include "uvp/testing/gradient_check.hpp"

using Index = uvp::index;
using uvp::ConstMatrixView;
using uvp::Matrix;
using uvp::Span;
using uvp::nn::SequenceBatch;

static_assert(uvp::nn::check_layer<uvp::nn::Lstm<float>>());
static_assert(uvp::nn::check_layer<uvp::nn::Lstm<double>>());
static_assert(uvp::nn::check_layer<uvp::nn::LstmCell<float>>());
static_assert(uvp::nn::check_layer<uvp::nn::LstmCell<double>>());
static_assert(std::is_same_v<uvp::nn::gradient_t<uvp::nn::LstmCellInput<double>>, uvp::nn::LstmCellInput<double>>);

namespace {

using Arrays = std::map<std::string, std::vector<double>>;

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
ConstMatrixView<T> view(const Matrix<T>& m) {
  return {m.data(), m.rows(), m.cols()};
}

template <class T>
std::vector<T> grads(const uvp::nn::Block<T>& m) {
  return {m.parameters().grads().begin(), m.parameters().grads().end()};
}

bool all_zero(const std::vector<double>& v) {
  for (double x : v)
    if (x != 0) return false;
  return true;
}

template <class T>
double tol() {
  return std::is_same_v<T, float> ? 2e-5 : 1e-10;
}

std::vector<std::string> tensor_names(Index layers) {
  std::vector<std::string> out;
  for (Index l = 0; l < layers; ++l)
    for (const char* t : {"weight_ih_l", "weight_hh_l", "bias_ih_l", "bias_hh_l"}) out.push_back(t + std::to_string(l));
  return out;
}

template <class T>
void fill_normal(uvp::Rng& rng, std::initializer_list<Matrix<T>*> ms) {
  for (auto* m : ms)
    for (Index i = 0; i < m->size(); ++i) m->data()[i] = T(rng.normal());
}

const char* const stacked_cases[] = {"l2_varlen_h0", "l3_varlen", "l2_last"};

}  // namespace

TEST_CASE_TEMPLATE("Stacked Lstm matches PyTorch's nn.LSTM(num_layers) on packed sequences", T, float, double) {
  for (const char* name : stacked_cases) {
    CAPTURE(name);
    Arrays f = uvp_test::read_arrays(uvp_test::fixture_path(std::string("nn_lstm/lstm_stacked_") + name + ".txt"));
    const auto& d = f["dims"];
    const Index I = Index(d[0]), H = Index(d[1]), B = Index(d[2]), S = Index(d[3]), L = Index(d[4]);
    const std::vector<Index> lengths(f["lengths"].begin(), f["lengths"].end());
    uvp::Rng rng(1);
    uvp::nn::Lstm<T> lstm(I, H, rng, L);
    REQUIRE(lstm.num_layers() == L);
    for (const auto& t : tensor_names(L)) load(lstm, t, f[t]);
    const Matrix<T> X = matrix<T>(f["X"], B * S, I);
    const Matrix<T> h0 = matrix<T>(f["h0"], L * B, H), c0 = matrix<T>(f["c0"], L * B, H);
    const bool has_h0 = f["has_h0"][0] != 0;
    const Matrix<T> dH = all_zero(f["dH"]) ? Matrix<T>() : matrix<T>(f["dH"], B * S, H);
    const Matrix<T> dl = all_zero(f["dh_last"]) ? Matrix<T>() : matrix<T>(f["dh_last"], B, H);

    uvp::nn::LstmContext<T> ctx;
    if (has_h0)
      lstm.forward(X, B, S, uvp::as_span(lengths), h0, c0, ctx);
    else
      lstm.forward(X, B, S, uvp::as_span(lengths), ctx);
    CHECK(ctx.num_layers() == L);
    CHECK(uvp_test::rel_error(flat(ctx.output()), f["output"]) < tol<T>());
    for (Index b = 0; b < B; ++b)
      for (Index t = lengths[std::size_t(b)]; t < S; ++t) CHECK(ctx.output().row(b * S + t).isZero(0));
    // h_n, c_n of every layer; last_hidden() / last_cell() are the top layer's.
    Matrix<T> hn(L * B, H), cn(L * B, H);
    for (Index l = 0; l < L; ++l) {
      hn.middleRows(l * B, B) = ctx.last_hidden(l);
      cn.middleRows(l * B, B) = ctx.last_cell(l);
    }
    CHECK(uvp_test::rel_error(flat(hn), f["h_n"]) < tol<T>());
    CHECK(uvp_test::rel_error(flat(cn), f["c_n"]) < tol<T>());
    CHECK(Matrix<T>(ctx.last_hidden()) == Matrix<T>(ctx.last_hidden(L - 1)));
    CHECK(Matrix<T>(ctx.last_cell()) == Matrix<T>(ctx.last_cell(L - 1)));

    Matrix<T> dX(B * S, I), dh0(L * B, H), dc0(L * B, H);
    lstm.backward(X, dH, dl, dX, dh0, dc0, ctx);
    CHECK(uvp_test::rel_error(flat(dX), f["grad_X"]) < tol<T>());
    CHECK(uvp_test::rel_error(flat(dh0), f["grad_h0"]) < tol<T>());
    CHECK(uvp_test::rel_error(flat(dc0), f["grad_c0"]) < tol<T>());
    for (const auto& t : tensor_names(L)) {
      CAPTURE(t);
      CHECK(uvp_test::rel_error(lstm.grads(lstm.tensor(t)), f["grad_" + t]) < tol<T>());
    }

    // The inference path: the top layer's h_n, and every layer's h_n, c_n.
    Matrix<T> h_last(B, H);
    uvp::nn::LstmContext<T> ictx;
    if (has_h0)
      lstm.forward_last(X, B, S, uvp::as_span(lengths), h0, c0, h_last, ictx);
    else
      lstm.forward_last(X, B, S, uvp::as_span(lengths), h_last, ictx);
    CHECK_FALSE(ictx.has_history());
    CHECK(uvp_test::rel_error(flat(h_last), flat(Matrix<T>(hn.bottomRows(B)))) < tol<T>());
    for (Index l = 0; l < L; ++l) {
      CHECK(uvp_test::rel_error(flat(Matrix<T>(ictx.last_hidden(l))), flat(Matrix<T>(hn.middleRows(l * B, B)))) <
            tol<T>());
      CHECK(uvp_test::rel_error(flat(Matrix<T>(ictx.last_cell(l))), flat(Matrix<T>(cn.middleRows(l * B, B)))) <
            tol<T>());
    }

    // The contract form (no initial state): the same outputs.
    if (!has_h0) {
      uvp::nn::LstmContext<T> cctx;
      const SequenceBatch<T> y = lstm.forward(SequenceBatch<T>(view(X), B, S, uvp::as_span(lengths)), cctx);
      CHECK(uvp_test::rel_error(flat(y.values()), f["output"]) < tol<T>());
      for (Index l = 0; l < L; ++l) CHECK(Matrix<T>(cctx.last_hidden(l)) == Matrix<T>(hn.middleRows(l * B, B)));
    }
  }
}

namespace {

// A 2-layer double Lstm with variable lengths; loss sum(A * y) through the contract forms.
struct ContractProblem {
  Index I = 3, H = 4, B = 3, S = 4, L = 2;
  std::vector<Index> lengths{4, 2, 3};
  uvp::Rng rng{21};
  uvp::nn::Lstm<double> lstm{I, H, rng, L};
  Matrix<double> X = Matrix<double>::Zero(B * S, I), A = Matrix<double>::Zero(B * S, H);
  uvp::nn::LstmContext<double> ctx;

  ContractProblem() {
    fill_normal<double>(rng, {&X, &A});
    // Larger weights than the default init, so that the gates leave their linear range.
    for (const auto& t : lstm.tensors())
      for (double& v : lstm.values(t)) v = 0.6 * rng.normal();
  }
  SequenceBatch<double> x() const { return {view(X), B, S, uvp::as_span(lengths)}; }
  double loss() {
    const SequenceBatch<double> y = lstm.forward(x(), ctx);
    return (A.array() * y.values().array()).sum();
  }
};

}  // namespace

TEST_CASE("Stacked Lstm gradients through the contract form match finite differences (double)") {
  ContractProblem p;
  p.lstm.zero_grad();
  p.loss();
  const SequenceBatch<double> dx =
      p.lstm.backward(p.ctx, SequenceBatch<double>(view(p.A), p.B, p.S, uvp::as_span(p.lengths)));
  CHECK(dx.batch == p.B);
  CHECK(dx.steps == p.S);
  CHECK(dx.features == p.I);
  CHECK(dx.lengths.data() == p.lengths.data());
  const Matrix<double> dX = dx.values();
  for (Index b = 0; b < p.B; ++b)  // padding rows of dX are exactly 0
    for (Index t = p.lengths[std::size_t(b)]; t < p.S; ++t) CHECK(dX.row(b * p.S + t).isZero(0));
  for (const auto& t : p.lstm.tensors()) {
    CAPTURE(t.name);
    const std::vector<double> g(p.lstm.grads(t).begin(), p.lstm.grads(t).end());
    CHECK(uvp::testing::check_gradient([&] { return p.loss(); }, p.lstm.values(t), uvp::as_span(g)).relative_error <=
          1e-6);
  }
  CHECK(uvp::testing::check_gradient([&] { return p.loss(); }, Span<double>(p.X.data(), p.X.size()), flat(dX))
            .relative_error <= 1e-6);
}

TEST_CASE("Stacked Lstm initial-state gradients (low-level form) match finite differences (double)") {
  const Index I = 3, H = 4, B = 2, S = 3, L = 2;
  uvp::Rng rng(22);
  uvp::nn::Lstm<double> lstm(I, H, rng, L);
  for (const auto& t : lstm.tensors())
    for (double& v : lstm.values(t)) v = 0.6 * rng.normal();
  Matrix<double> X(B * S, I), h0(L * B, H), c0(L * B, H), A(B * S, H), Lw(B, H);
  fill_normal<double>(rng, {&X, &h0, &c0, &A, &Lw});
  const std::vector<Index> lengths{3, 1};
  uvp::nn::LstmContext<double> ctx;
  auto loss = [&] {
    lstm.forward(X, B, S, uvp::as_span(lengths), h0, c0, ctx);
    return (A.array() * ctx.output().array()).sum() + (Lw.array() * ctx.last_hidden().array()).sum();
  };
  loss();
  Matrix<double> dX(B * S, I), dh0(L * B, H), dc0(L * B, H);
  lstm.backward(X, A, Lw, dX, dh0, dc0, ctx);
  const Matrix<double> dh0c = dh0, dc0c = dc0;
  CHECK(uvp::testing::check_gradient(loss, Span<double>(h0.data(), h0.size()), flat(dh0c)).relative_error <= 1e-6);
  CHECK(uvp::testing::check_gradient(loss, Span<double>(c0.data(), c0.size()), flat(dc0c)).relative_error <= 1e-6);
  for (const auto& t : lstm.tensors()) {
    CAPTURE(t.name);
    const std::vector<double> g(lstm.grads(t).begin(), lstm.grads(t).end());
    CHECK(uvp::testing::check_gradient(loss, lstm.values(t), uvp::as_span(g)).relative_error <= 1e-6);
  }
}

TEST_CASE_TEMPLATE("Lstm contract forms equal the low-level forms bit for bit; forward_last equals forward's last rows",
                   T, float, double) {
  for (Index L : {1, 2}) {
    CAPTURE(L);
    const Index I = 5, H = 6, B = 4, S = 5;
    uvp::Rng rng(23);
    uvp::nn::Lstm<T> lstm(I, H, rng, L);
    Matrix<T> X(B * S, I), A(B * S, H);
    fill_normal<T>(rng, {&X, &A});
    const std::vector<Index> lengths{5, 1, 3, 4};

    uvp::nn::LstmContext<T> c1, c2;
    lstm.zero_grad();
    lstm.forward(X, B, S, uvp::as_span(lengths), c1);
    const Matrix<T> out1 = c1.output();
    Matrix<T> dX1(B * S, I);
    lstm.backward(X, A, Matrix<T>(), dX1, c1);
    const std::vector<T> g1 = grads(lstm);

    lstm.zero_grad();
    const SequenceBatch<T> x(view(X), B, S, uvp::as_span(lengths));
    const SequenceBatch<T> y = lstm.forward(x, c2);
    CHECK(y.batch == B);
    CHECK(y.steps == S);
    CHECK(y.features == H);
    CHECK(y.lengths.data() == lengths.data());
    CHECK(Matrix<T>(y.values()) == out1);
    const SequenceBatch<T> dx = lstm.backward(c2, SequenceBatch<T>(view(A), B, S, uvp::as_span(lengths)));
    CHECK(Matrix<T>(dx.values()) == dX1);
    CHECK(grads(lstm) == g1);

    // forward_last (both forms) against the last valid row of each sequence of forward.
    Matrix<T> last(B, H), last2(B, H), expect(B, H);
    for (Index b = 0; b < B; ++b) expect.row(b) = out1.row(b * S + lengths[std::size_t(b)] - 1);
    uvp::nn::LstmContext<T> c3;
    lstm.forward_last(x, last, c3);
    lstm.forward_last(X, B, S, uvp::as_span(lengths), last2, c3);
    CHECK(last == last2);
    const double eps = std::is_same_v<T, float> ? 1e-6 : 1e-14;
    CHECK(uvp_test::rel_error(flat(last), flat(expect)) < eps);
    CHECK(Matrix<T>(c1.last_hidden()) == expect);
  }
}

TEST_CASE_TEMPLATE("Stacked Lstm: threads and chunks give the serial results", T, float, double) {
  const Index I = 8, H = 16, B = 40, S = 12, L = 3;
  uvp::Rng rng(24);
  uvp::nn::Lstm<T> lstm(I, H, rng, L);
  Matrix<T> X(B * S, I), A(B * S, H), Lw(B, H);
  fill_normal<T>(rng, {&X, &A, &Lw});
  std::vector<Index> lengths(B);
  for (Index b = 0; b < B; ++b) lengths[std::size_t(b)] = 1 + (b * 7) % S;
  auto run = [&](int threads, Matrix<T>& out, Matrix<T>& last, Matrix<T>& dX, std::vector<T>& g) {
    uvp::ThreadCountGuard guard(threads);
    uvp::nn::LstmContext<T> ctx;
    lstm.zero_grad();
    lstm.forward(X, B, S, uvp::as_span(lengths), ctx);
    out = ctx.output();
    dX.resize(B * S, I);
    lstm.backward(X, A, Lw, dX, ctx);
    g = grads(lstm);
    last.resize(B, H);
    lstm.forward_last(X, B, S, uvp::as_span(lengths), last, ctx);
  };
  Matrix<T> out1, last1, dX1;
  std::vector<T> g1;
  run(1, out1, last1, dX1, g1);
  Matrix<T> expect(B, H);
  for (Index b = 0; b < B; ++b) expect.row(b) = out1.row(b * S + lengths[std::size_t(b)] - 1);
  CHECK(uvp_test::rel_error(flat(last1), flat(expect)) < (std::is_same_v<T, float> ? 1e-6 : 1e-14));
  if (uvp::has_openmp) {
    Matrix<T> out2, last2, dX2;
    std::vector<T> g2;
    run(2, out2, last2, dX2, g2);
    const double eps = std::is_same_v<T, float> ? 1e-6 : 1e-14;
    CHECK(uvp_test::rel_error(flat(out2), flat(out1)) < eps);
    CHECK(uvp_test::rel_error(flat(last2), flat(last1)) < eps);
    CHECK(uvp_test::rel_error(flat(dX2), flat(dX1)) < eps);
    CHECK(uvp_test::rel_error(g2, g1) < eps);
  }
}

TEST_CASE("Stacked Lstm allocates nothing per call once its context has grown") {
  const Index I = 8, H = 16, B = 6, S = 10, L = 2;
  uvp::Rng rng(25);
  uvp::nn::Lstm<float> lstm(I, H, rng, L);
  Matrix<float> X(B * S, I), A(B * S, H), h_last(B, H), dX(B * S, I);
  fill_normal<float>(rng, {&X, &A});
  const std::vector<Index> lengths{10, 3, 1, 7, 10, 5};
  const SequenceBatch<float> x(view(X), B, S, uvp::as_span(lengths)), d(view(A), B, S, uvp::as_span(lengths));
  uvp::ThreadCountGuard guard(1);
  uvp::nn::LstmContext<float> ctx;
  for (int warm = 0; warm < 2; ++warm) {
    lstm.forward(x, ctx);
    lstm.backward(ctx, d);
    lstm.forward(X, B, S, uvp::as_span(lengths), ctx);
    lstm.backward(X, A, Matrix<float>(), dX, ctx);
    lstm.forward_last(x, h_last, ctx);
  }
  const long before = uvp_test::allocations.load();
  lstm.forward(x, ctx);
  lstm.backward(ctx, d);
  lstm.forward(X, B, S, uvp::as_span(lengths), ctx);
  lstm.backward(X, A, Matrix<float>(), dX, ctx);
  lstm.forward_last(x, h_last, ctx);
  CHECK(uvp_test::allocations.load() == before);
}

TEST_CASE("Stacked Lstm: tensor names l0..l{L-1}, shapes, initialisation, spec round trip") {
  uvp::Rng rng(26);
  uvp::nn::Lstm<float> lstm(5, 8, rng, 3);
  const auto names = tensor_names(3);
  REQUIRE(lstm.tensors().size() == names.size());
  for (std::size_t k = 0; k < names.size(); ++k) {
    const auto& t = lstm.tensors()[k];
    CHECK(t.name == names[k]);
    const Index in = k < 4 ? 5 : 8;
    const std::vector<std::vector<Index>> shapes{{32, in}, {32, 8}, {32}, {32}};
    CHECK(t.shape == shapes[k % 4]);
    for (float v : lstm.values(t)) CHECK(std::abs(v) <= 1 / std::sqrt(8.0f));
  }
  CHECK(lstm.parameter_count() == 4 * 8 * (5 + 8 + 2) + 2 * 4 * 8 * (8 + 8 + 2));
  CHECK(lstm.weight_ih(1).cols() == 8);
  CHECK(lstm.weight_ih(0) == lstm.weight_ih());
  UVP_CHECK_THROWS_WITH_SUBSTR(lstm.weight_hh(3), uvp::out_of_range_error, "uvp::nn::Lstm::weight_hh: layer = 3");
  // One layer: the names of before.
  uvp::nn::Lstm<float> one(5, 8, rng);
  CHECK(one.num_layers() == 1);
  CHECK(one.tensors().size() == 4);
  CHECK(one.tensors()[3].name == "bias_hh_l0");
  // The same seed draws layer 0 alike whatever the number of layers (state_dict order).
  uvp::Rng r1(7), r2(7);
  uvp::nn::Lstm<double> a(3, 4, r1, 1), b(3, 4, r2, 2);
  for (std::size_t k = 0; k < 4; ++k)
    CHECK(uvp_test::rel_error(a.values(a.tensors()[k]), b.values(b.tensors()[k])) == 0);

  CHECK(std::string(uvp::nn::Lstm<float>::kind) == "Lstm");
  CHECK(lstm.input_width() == 5);
  CHECK(lstm.output_width(5) == 8);
  CHECK(lstm.output_width(-1) == 8);
  UVP_CHECK_THROWS_WITH_SUBSTR(lstm.output_width(4), uvp::shape_error, "Lstm takes 5 input features, got 4");
  const uvp::nn::BlockSpec s = lstm.spec();
  CHECK(s.kind == "Lstm");
  CHECK(s.get("input_size") == 5);
  CHECK(s.get("hidden_size") == 8);
  CHECK(s.get("num_layers") == 3);
  const auto back = uvp::nn::Lstm<float>::from_spec(s);
  CHECK(back.spec() == s);
  CHECK(back.num_layers() == 3);
  CHECK(back.parameter_count() == lstm.parameter_count());
  UVP_CHECK_THROWS_WITH_SUBSTR(uvp::nn::Lstm<float>::from_spec(uvp::nn::BlockSpec("Gru")), uvp::format_error,
                               "uvp::nn::Lstm::from_spec: the spec is of kind 'Gru', expected 'Lstm'");
  uvp::nn::BlockSpec no_layers("Lstm");
  no_layers.set("input_size", 5).set("hidden_size", 8);
  UVP_CHECK_THROWS_WITH_SUBSTR(uvp::nn::Lstm<float>::from_spec(no_layers), uvp::format_error,
                               "no argument 'num_layers'");
  no_layers.set("num_layers", 0);
  UVP_CHECK_THROWS_WITH_SUBSTR(uvp::nn::Lstm<float>::from_spec(no_layers), uvp::invalid_argument,
                               "num_layers must be > 0");

  uvp::nn::LstmCell<double> cell(3, 5, rng);
  CHECK(std::string(uvp::nn::LstmCell<double>::kind) == "LstmCell");
  const uvp::nn::BlockSpec cs = cell.spec();
  CHECK(cs.kind == "LstmCell");
  CHECK(cs.args.size() == 2);
  CHECK(uvp::nn::LstmCell<double>::from_spec(cs).spec() == cs);
  CHECK(cell.input_width() == 3);
  CHECK(cell.output_width(3) == 5);
}

TEST_CASE("Lstm contract and stacked forms reject bad input with messages that name Lstm") {
  uvp::Rng rng(27);
  const Index I = 3, H = 4, B = 2, S = 3, L = 2;
  uvp::nn::Lstm<double> lstm(I, H, rng, L);
  Matrix<double> X = Matrix<double>::Ones(B * S, I), wide = Matrix<double>::Ones(B * S, I + 1);
  Matrix<double> h_last(B, H), dH = Matrix<double>::Ones(B * S, H);
  const SequenceBatch<double> x(view(X), B, S);
  uvp::nn::LstmContext<double> ctx;
  using uvp::invalid_argument;
  using uvp::shape_error;

  UVP_CHECK_THROWS_WITH_SUBSTR(uvp::nn::Lstm<double>(3, 4, rng, 0), invalid_argument,
                               "uvp::nn::Lstm: num_layers must be > 0");
  // Backward before any forward, after forward_last, after the low-level forward.
  UVP_CHECK_THROWS_WITH_SUBSTR(lstm.backward(ctx, SequenceBatch<double>(view(dH), B, S)), invalid_argument,
                               "uvp::nn::Lstm::backward: ctx holds no forward pass of this Lstm");
  lstm.forward_last(x, h_last, ctx);
  UVP_CHECK_THROWS_WITH_SUBSTR(lstm.backward(ctx, SequenceBatch<double>(view(dH), B, S)), invalid_argument,
                               "ctx holds no contract forward of this Lstm");
  lstm.forward(X, B, S, {}, ctx);
  UVP_CHECK_THROWS_WITH_SUBSTR(lstm.backward(ctx, SequenceBatch<double>(view(dH), B, S)), invalid_argument,
                               "not forward_last or the low-level forward");
  // A forward that throws leaves no forward behind.
  UVP_CHECK_THROWS_WITH_SUBSTR(lstm.forward(SequenceBatch<double>(view(wide), B, S), ctx), shape_error,
                               "uvp::nn::Lstm::forward: X has 4 columns, expected 3");
  CHECK_FALSE(ctx.holds_forward());
  UVP_CHECK_THROWS_WITH_SUBSTR(lstm.backward(ctx, SequenceBatch<double>(view(dH), B, S)), invalid_argument,
                               "call forward first");
  UVP_CHECK_THROWS_WITH_SUBSTR(lstm.forward_last(SequenceBatch<double>(view(wide), B, S), h_last, ctx), shape_error,
                               "uvp::nn::Lstm::forward_last: X has 4 columns, expected 3");
  Matrix<double> wrong_last(B, H + 1);
  UVP_CHECK_THROWS_WITH_SUBSTR(lstm.forward_last(x, wrong_last, ctx), shape_error,
                               "uvp::nn::Lstm::forward_last: h_last has shape (2, 5), expected (2, 4)");
  SequenceBatch<double> broken = x;
  broken.batch = -1;
  UVP_CHECK_THROWS_WITH_SUBSTR(lstm.forward(broken, ctx), invalid_argument, "uvp::nn::Lstm::forward: x has batch -1");

  // d_output of another shape.
  lstm.forward(x, ctx);
  Matrix<double> dH5 = Matrix<double>::Ones(B * S, H + 1), dH_short = Matrix<double>::Ones(B * (S - 1), H);
  UVP_CHECK_THROWS_WITH_SUBSTR(lstm.backward(ctx, SequenceBatch<double>(view(dH5), B, S)), shape_error,
                               "uvp::nn::Lstm::backward: d_output has batch 2, steps 3 and 5 features, expected batch "
                               "2, steps 3 and 4 features");
  UVP_CHECK_THROWS_WITH_SUBSTR(lstm.backward(ctx, SequenceBatch<double>(view(dH_short), B, S - 1)), shape_error,
                               "d_output has batch 2, steps 2");
  // Input or gradient in the context's own buffers.
  const SequenceBatch<double> y = lstm.forward(x, ctx);
  uvp::nn::Lstm<double> square(H, H, rng, L);
  uvp::nn::LstmContext<double> sctx;
  const SequenceBatch<double> ys = square.forward(y, sctx);  // another context: fine
  UVP_CHECK_THROWS_WITH_SUBSTR(square.forward(ys, sctx), invalid_argument, "x lies in the context's own buffers");
  const SequenceBatch<double> ys2 = square.forward(y, sctx);
  const SequenceBatch<double> dxs = square.backward(sctx, ys2);  // d_output = output: allowed
  CHECK(dxs.features == H);
  UVP_CHECK_THROWS_WITH_SUBSTR(square.backward(sctx, dxs), invalid_argument, "d_output lies in the context's own");

  // Stacked initial state: (num_layers * batch) x H.
  Matrix<double> h0 = Matrix<double>::Zero(B, H), h0L = Matrix<double>::Zero(L * B, H);
  UVP_CHECK_THROWS_WITH_SUBSTR(lstm.forward(X, B, S, {}, h0, h0L, ctx), shape_error,
                               "uvp::nn::Lstm::forward: h0 has shape (2, 4), expected (4, 4)");
  UVP_CHECK_THROWS_WITH_SUBSTR(lstm.forward(X, B, S, {}, h0L, h0, ctx), shape_error,
                               "c0 has shape (2, 4), expected (4, 4)");
  lstm.forward(X, B, S, {}, h0L, h0L, ctx);
  Matrix<double> dX(B * S, I), dh0(B, H), dc0(L * B, H);
  UVP_CHECK_THROWS_WITH_SUBSTR(lstm.backward(X, dH, Matrix<double>(), dX, dh0, dc0, ctx), shape_error,
                               "dh0 has shape (2, 4), expected (4, 4)");
  // A context of a 1-layer Lstm of the same sizes is not this one's.
  uvp::nn::Lstm<double> one(I, H, rng);
  uvp::nn::LstmContext<double> octx;
  one.forward(x, octx);
  UVP_CHECK_THROWS_WITH_SUBSTR(lstm.backward(octx, SequenceBatch<double>(view(dH), B, S)), invalid_argument,
                               "ctx comes from a block with input_size = 3, hidden_size = 4, this one has input_size = "
                               "3, hidden_size = 4, num_layers = 2");
  UVP_CHECK_THROWS_WITH_SUBSTR(octx.last_hidden(1), uvp::out_of_range_error,
                               "uvp::nn::LstmContext::last_hidden: layer = 1 is outside [0, num_layers = 1)");
}

TEST_CASE("LstmCell contract forms equal the low-level forms and step a recurrence") {
  const Index I = 3, H = 5, B = 2;
  uvp::Rng rng(28);
  uvp::nn::LstmCell<double> cell(I, H, rng);
  Matrix<double> x(B, I), h(B, H), c(B, H), A(B, H), C(B, H);
  fill_normal<double>(rng, {&x, &h, &c, &A, &C});

  uvp::nn::LstmCellContext<double> c1, c2;
  Matrix<double> h1(B, H), cc1(B, H), dx(B, I), dh(B, H), dc(B, H);
  cell.zero_grad();
  cell.forward(x, h, c, h1, cc1, c1);
  cell.backward(x, h, c, A, C, dx, dh, dc, c1);
  const std::vector<double> g1 = grads(cell);

  cell.zero_grad();
  const uvp::nn::LstmCellState<double> s = cell.forward(uvp::nn::LstmCellInput<double>(view(x), view(h), view(c)), c2);
  CHECK(Matrix<double>(s.h()) == h1);
  CHECK(Matrix<double>(s.c()) == cc1);
  const uvp::nn::LstmCellInput<double> d = cell.backward(c2, uvp::nn::LstmCellState<double>(view(A), view(C)));
  CHECK(Matrix<double>(d.x()) == dx);
  CHECK(Matrix<double>(d.h()) == dh);
  CHECK(Matrix<double>(d.c()) == dc);
  CHECK(grads(cell) == g1);

  // Gradients through the contract form against finite differences, no gradient into c'.
  uvp::nn::LstmCellContext<double> c3;
  auto loss = [&] {
    const auto st = cell.forward(uvp::nn::LstmCellInput<double>(view(x), view(h), view(c)), c3);
    return (A.array() * st.h().array()).sum();
  };
  cell.zero_grad();
  loss();
  const auto dd = cell.backward(c3, uvp::nn::LstmCellState<double>(view(A), ConstMatrixView<double>(nullptr, 0, H)));
  const Matrix<double> gx = dd.x(), gh = dd.h(), gc = dd.c();
  CHECK(uvp::testing::check_gradient(loss, Span<double>(x.data(), x.size()), flat(gx)).relative_error <= 1e-6);
  CHECK(uvp::testing::check_gradient(loss, Span<double>(h.data(), h.size()), flat(gh)).relative_error <= 1e-6);
  CHECK(uvp::testing::check_gradient(loss, Span<double>(c.data(), c.size()), flat(gc)).relative_error <= 1e-6);
  for (const auto& t : cell.tensors()) {
    const std::vector<double> g(cell.grads(t).begin(), cell.grads(t).end());
    CHECK(uvp::testing::check_gradient(loss, cell.values(t), uvp::as_span(g)).relative_error <= 1e-6);
  }

  // A recurrence: each step's state feeds the next step, one context per step.
  uvp::nn::LstmCellContext<double> s0, s1;
  const auto st1 = cell.forward(uvp::nn::LstmCellInput<double>(view(x), view(h), view(c)), s0);
  const auto st2 = cell.forward(uvp::nn::LstmCellInput<double>(view(x), st1), s1);
  Matrix<double> h2(B, H), cc2(B, H);
  cell.forward(x, h1, cc1, h2, cc2, c1);
  CHECK(Matrix<double>(st2.h()) == h2);
  CHECK(Matrix<double>(st2.c()) == cc2);
}

TEST_CASE("LstmCell contract forms reject bad input") {
  const Index I = 3, H = 4, B = 2;
  uvp::Rng rng(29);
  uvp::nn::LstmCell<double> cell(I, H, rng);
  Matrix<double> x = Matrix<double>::Ones(B, I), h = Matrix<double>::Zero(B, H), c = h;
  const Matrix<double> wide = Matrix<double>::Ones(B, I + 1);
  uvp::nn::LstmCellContext<double> ctx;
  using uvp::invalid_argument;
  using uvp::shape_error;
  const uvp::nn::LstmCellState<double> d(view(h), view(c));
  UVP_CHECK_THROWS_WITH_SUBSTR(cell.backward(ctx, d), invalid_argument,
                               "uvp::nn::LstmCell::backward: ctx holds no forward pass of this LstmCell");
  UVP_CHECK_THROWS_WITH_SUBSTR(cell.forward(uvp::nn::LstmCellInput<double>(view(wide), view(h), view(c)), ctx),
                               shape_error, "uvp::nn::LstmCell::forward: x has 4 columns, expected 3");
  CHECK_FALSE(ctx.holds_forward());
  Matrix<double> h_out(B, H), c_out(B, H);
  cell.forward(x, h, c, h_out, c_out, ctx);
  UVP_CHECK_THROWS_WITH_SUBSTR(cell.backward(ctx, d), invalid_argument, "ctx holds a forward of the low-level form");
  const auto s = cell.forward(uvp::nn::LstmCellInput<double>(view(x), view(h), view(c)), ctx);
  UVP_CHECK_THROWS_WITH_SUBSTR(cell.forward(uvp::nn::LstmCellInput<double>(view(x), s), ctx), invalid_argument,
                               "the input lies in the context's own buffers");
  cell.forward(uvp::nn::LstmCellInput<double>(view(x), view(h), view(c)), ctx);
  Matrix<double> d5 = Matrix<double>::Zero(B, H + 1);
  UVP_CHECK_THROWS_WITH_SUBSTR(cell.backward(ctx, uvp::nn::LstmCellState<double>(view(d5), view(c))), shape_error,
                               "uvp::nn::LstmCell::backward: dh_out has shape (2, 5), expected (2, 4)");
  uvp::nn::LstmCellInput<double> bad(view(x), view(h), view(c));
  bad.h_rows = -1;
  UVP_CHECK_THROWS_WITH_SUBSTR(cell.forward(bad, ctx), invalid_argument, "h has -1 rows");
  CHECK_FALSE(ctx.holds_forward());
}
