// SPDX-License-Identifier: Apache-2.0
// Gru: forward and every gradient against PyTorch (packed variable-length sequences, 1 to 3
// layers), gradients against finite differences, forward_last, threads, allocation, bad input.
#include <doctest/doctest.h>

#include <cmath>
#include <string>
#include <thread>
#include <vector>

#include "support/test_support.hpp"
#include "unit/optim/alloc_counter.hpp"
#include "uvp/core/parallel.hpp"
#include "uvp/nn/gru.hpp"
#include "uvp/testing/gradient_check.hpp"

using Index = uvp::index;
using uvp::Matrix;
using uvp::Span;
using uvp::nn::SequenceBatch;

static_assert(uvp::nn::check_layer<uvp::nn::Gru<float>>());
static_assert(uvp::nn::check_layer<uvp::nn::Gru<double>>());

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
Span<const T> flat(const SequenceBatch<T>& s) {
  return {s.data, s.batch * s.steps * s.features};
}

std::vector<double> part(const std::vector<double>& v, std::size_t start, std::size_t count) {
  return {v.begin() + std::ptrdiff_t(start), v.begin() + std::ptrdiff_t(start + count)};
}

// A SequenceBatch over a whole matrix, with the lengths of a vector (or none).
template <class T>
SequenceBatch<T> seqb(const Matrix<T>& m, Index batch, Index steps, Span<const Index> lengths = {}) {
  return SequenceBatch<T>(uvp::ConstMatrixView<T>(m.data(), m.rows(), m.cols()), batch, steps, lengths);
}
template <class T>
SequenceBatch<T> seqb(const Matrix<T>& m, Index batch, Index steps, const std::vector<Index>& lengths) {
  return seqb(m, batch, steps, uvp::as_span(lengths));
}

template <class T>
double tol() {
  return std::is_same_v<T, float> ? 1e-5 : 1e-10;
}

std::vector<std::string> tensor_names(Index layers) {
  std::vector<std::string> names;
  for (Index l = 0; l < layers; ++l)
    for (const char* t : {"weight_ih_l", "weight_hh_l", "bias_ih_l", "bias_hh_l"}) names.push_back(t + std::to_string(l));
  return names;
}

const char* const gru_cases[] = {"one_layer", "two_layers", "two_layers_full", "three_layers_last"};

}  // namespace

TEST_CASE_TEMPLATE("Gru matches PyTorch's GRU on packed sequences: outputs, h_n and every gradient", T, float,
                   double) {
  for (const char* name : gru_cases) {
    CAPTURE(name);
    Arrays f = uvp_test::read_arrays(uvp_test::fixture_path(std::string("nn_gru/gru_") + name + ".txt"));
    const Index I = Index(f["dims"][0]), H = Index(f["dims"][1]), L = Index(f["dims"][2]);
    const Index B = Index(f["dims"][3]), S = Index(f["dims"][4]);
    const std::vector<Index> lengths(f["lengths"].begin(), f["lengths"].end());
    uvp::Rng rng(1);
    uvp::nn::Gru<T> gru(I, H, rng, L);
    const auto names = tensor_names(L);
    for (const auto& t : names) load(gru, t, f[t]);
    const Matrix<T> X = matrix<T>(f["X"], B * S, I);
    // The full-length case passes no lengths (every sequence has all steps).
    const bool full = std::string(name) == "two_layers_full";
    const SequenceBatch<T> x = seqb(X, B, S, full ? Span<const Index>() : uvp::as_span(lengths));

    uvp::nn::GruContext<T> ctx;
    const SequenceBatch<T> y = gru.forward(x, ctx);
    CHECK(ctx.has_history());
    CHECK(y.batch == B);
    CHECK(y.steps == S);
    CHECK(y.features == H);
    CHECK(y.lengths.size() == (full ? 0 : B));
    CHECK(uvp_test::rel_error(flat(y), f["output"]) < tol<T>());
    for (Index l = 0; l < L; ++l)
      CHECK(uvp_test::rel_error(flat(ctx.last_hidden(l)), part(f["h_n"], std::size_t(l * B * H), std::size_t(B * H))) <
            tol<T>());
    CHECK(uvp_test::rel_error(flat(ctx.last_hidden()), part(f["h_n"], std::size_t((L - 1) * B * H), std::size_t(B * H))) <
          tol<T>());
    for (Index b = 0; b < B; ++b)  // padding rows are exactly 0
      for (Index t = lengths[std::size_t(b)]; t < S; ++t) CHECK(y.values().row(b * S + t).isZero(0));

    // The contract's backward: the loss's weights on h_n fold into d_output at each last step.
    const Matrix<T> dH = matrix<T>(f["dH"], B * S, H), dl = matrix<T>(f["dh_last"], B, H);
    Matrix<T> d_out = dH;
    for (Index b = 0; b < B; ++b) d_out.row(b * S + lengths[std::size_t(b)] - 1) += dl.row(b);
    const SequenceBatch<T> dX = gru.backward(ctx, seqb(d_out, B, S, x.lengths));
    CHECK(dX.batch == B);
    CHECK(dX.features == I);
    CHECK(uvp_test::rel_error(flat(dX), f["grad_X"]) < tol<T>());
    for (const auto& t : names) {
      CAPTURE(t);
      CHECK(uvp_test::rel_error(gru.grads(gru.tensor(t)), f["grad_" + t]) < tol<T>());
    }

    // The low-level form from dH and dh_last (an all-zero one passed as none) gives the same.
    gru.zero_grad();
    const Matrix<T> none;
    const SequenceBatch<T> dX2 = gru.backward(ctx, dH.isZero(0) ? none : dH, dl.isZero(0) ? none : dl);
    CHECK(uvp_test::rel_error(flat(dX2), f["grad_X"]) < tol<T>());
    for (const auto& t : names) {
      CAPTURE(t);
      CHECK(uvp_test::rel_error(gru.grads(gru.tensor(t)), f["grad_" + t]) < tol<T>());
    }
    // Gradients accumulate: a second backward doubles them.
    gru.backward(ctx, seqb(d_out, B, S, x.lengths));
    for (const auto& t : names) {
      std::vector<double> twice = f["grad_" + t];
      for (double& v : twice) v *= 2;
      CHECK(uvp_test::rel_error(gru.grads(gru.tensor(t)), twice) < tol<T>());
    }

    // The inference path gives the last valid rows of forward's output, and every layer's h_n.
    Matrix<T> h_last(B, H);
    uvp::nn::GruContext<T> ictx;
    gru.forward_last(x, h_last, ictx);
    CHECK_FALSE(ictx.has_history());
    CHECK(ictx.output().batch == 0);
    CHECK(uvp_test::rel_error(flat(h_last), part(f["h_n"], std::size_t((L - 1) * B * H), std::size_t(B * H))) < tol<T>());
    for (Index b = 0; b < B; ++b)
      CHECK((h_last.row(b) - y.values().row(b * S + lengths[std::size_t(b)] - 1)).norm() <=
            (std::is_same_v<T, float> ? 1e-6 : 1e-14));
    for (Index l = 0; l < L; ++l)
      CHECK(uvp_test::rel_error(flat(ictx.last_hidden(l)), part(f["h_n"], std::size_t(l * B * H), std::size_t(B * H))) <
            tol<T>());
  }
}

TEST_CASE("Gru: PyTorch's tensor names, shapes, initialisation and spec round trip") {
  uvp::Rng rng(3);
  uvp::nn::Gru<float> gru(32, 64, rng, 2);
  const auto names = tensor_names(2);
  const std::vector<std::vector<Index>> shapes{{192, 32}, {192, 64}, {192}, {192}, {192, 64}, {192, 64}, {192}, {192}};
  REQUIRE(gru.tensors().size() == 8);
  for (std::size_t k = 0; k < 8; ++k) {
    const auto& t = gru.tensors()[k];
    CHECK(t.name == names[k]);
    CHECK(t.shape == shapes[k]);
    double lo = 1, hi = -1;
    for (float v : gru.values(t)) lo = std::min(lo, double(v)), hi = std::max(hi, double(v));
    CHECK(lo >= -0.125);
    CHECK(hi <= 0.125);
    CHECK(lo < -0.11);  // spans U(-1/sqrt(H), 1/sqrt(H))
    CHECK(hi > 0.11);
  }
  CHECK(gru.parameter_count() == 192 * (32 + 64 + 2) + 192 * (64 + 64 + 2));
  CHECK(gru.input_width() == 32);
  CHECK(gru.output_width(32) == 64);
  CHECK(std::string(uvp::nn::Gru<float>::kind) == "Gru");
  CHECK(gru.weight_ih(1).rows() == 192);
  CHECK(gru.weight_ih(1).cols() == 64);
  CHECK(gru.weight_ih(0).data() == gru.values(gru.tensor("weight_ih_l0")).data());
  CHECK(gru.bias_hh(1).data() == gru.values(gru.tensor("bias_hh_l1")).data());

  const uvp::nn::BlockSpec s = gru.spec();
  CHECK(s.kind == "Gru");
  CHECK(s.get_index("input_size") == 32);
  CHECK(s.get_index("hidden_size") == 64);
  CHECK(s.get_index("num_layers") == 2);
  const auto g2 = uvp::nn::Gru<float>::from_spec(s);
  CHECK(g2.spec() == s);
  CHECK(g2.parameter_count() == gru.parameter_count());
  uvp::nn::BlockSpec bad("Lstm");
  UVP_CHECK_THROWS_WITH_SUBSTR(uvp::nn::Gru<float>::from_spec(bad), uvp::format_error,
                               "uvp::nn::Gru::from_spec: kind is 'Lstm', expected 'Gru'");
  uvp::nn::BlockSpec zero = s;
  zero.set("num_layers", 0);
  UVP_CHECK_THROWS_WITH_SUBSTR(uvp::nn::Gru<float>::from_spec(zero), uvp::format_error, "'num_layers' = 0");
}

namespace {

// Loss sum(A * output) + sum(Lw * last_hidden) of a double Gru with variable lengths.
struct GruProblem {
  Index I = 3, H = 4, B = 3, S = 4, layers;
  std::vector<Index> lengths{4, 2, 3};
  uvp::Rng rng{11};
  uvp::nn::Gru<double> gru;
  Matrix<double> X = Matrix<double>::Zero(B * S, I), A = Matrix<double>::Zero(B * S, H), Lw = Matrix<double>::Zero(B, H);
  uvp::nn::GruContext<double> ctx;

  explicit GruProblem(Index layers_) : layers(layers_), gru(I, H, rng, layers_) {
    for (auto* m : {&X, &A, &Lw})
      for (Index i = 0; i < m->size(); ++i) m->data()[i] = rng.normal();
    // Larger weights than the default init, so that the gates leave their linear range.
    for (const auto& t : gru.tensors())
      for (double& v : gru.values(t)) v = 0.6 * rng.normal();
  }
  SequenceBatch<double> x() const { return seqb(X, B, S, lengths); }
  double loss() {
    const auto y = gru.forward(x(), ctx);
    return (A.array() * y.values().array()).sum() + (Lw.array() * ctx.last_hidden().array()).sum();
  }
};

}  // namespace

TEST_CASE("Gru gradients match finite differences (double, variable lengths, 1 and 2 layers)") {
  for (Index layers : {1, 2}) {
    CAPTURE(layers);
    GruProblem p(layers);
    p.gru.zero_grad();
    p.loss();
    const SequenceBatch<double> dx = p.gru.backward(p.ctx, p.A, p.Lw);
    const std::vector<double> dX(flat(dx).begin(), flat(dx).end());
    for (const auto& t : p.gru.tensors()) {
      CAPTURE(t.name);
      const std::vector<double> g(p.gru.grads(t).begin(), p.gru.grads(t).end());
      auto r = uvp::testing::check_gradient([&] { return p.loss(); }, p.gru.values(t), uvp::as_span(g));
      CHECK(r.relative_error <= 1e-6);
    }
    auto rx = uvp::testing::check_gradient([&] { return p.loss(); }, Span<double>(p.X.data(), p.X.size()),
                                           uvp::as_span(dX));
    CHECK(rx.relative_error <= 1e-6);
    for (Index b = 0; b < p.B; ++b)  // padding rows of dX are exactly 0
      for (Index t = p.lengths[std::size_t(b)]; t < p.S; ++t)
        for (Index j = 0; j < p.I; ++j) CHECK(dX[std::size_t((b * p.S + t) * p.I + j)] == 0);
  }
}

TEST_CASE_TEMPLATE("Gru: one and two OpenMP threads, and concurrent forwards, give identical results", T, float,
                   double) {
  const Index I = 8, H = 16, B = 40, S = 12, L = 2;
  // The batch is split into several chunks, which the two threads share.
  REQUIRE(uvp::detail::gru_chunk_count(B, S * 3 * H * ((I + H) + (H + H))) == 4);
  uvp::Rng rng(14);
  uvp::nn::Gru<T> gru(I, H, rng, L);
  Matrix<T> X(B * S, I), A(B * S, H);
  for (auto* m : {&X, &A})
    for (Index i = 0; i < m->size(); ++i) m->data()[i] = T(rng.normal());
  std::vector<Index> lengths(B);
  for (Index b = 0; b < B; ++b) lengths[std::size_t(b)] = 1 + (b * 7) % S;
  const SequenceBatch<T> x = seqb(X, B, S, lengths), dy = seqb(A, B, S, lengths);

  auto run = [&](int threads, Matrix<T>& out, Matrix<T>& last, Matrix<T>& dX, std::vector<T>& g) {
#if defined(_OPENMP)
    const int previous = omp_get_max_threads();
    omp_set_num_threads(threads);
#else
    (void)threads;
#endif
    uvp::nn::GruContext<T> ctx;
    gru.zero_grad();
    out = gru.forward(x, ctx).values();
    dX = gru.backward(ctx, dy).values();
    g.assign(gru.parameters().grads().begin(), gru.parameters().grads().end());
    last.resize(B, H);
    gru.forward_last(x, last, ctx);
#if defined(_OPENMP)
    omp_set_num_threads(previous);
#endif
  };
  Matrix<T> out1, last1, dX1, out2, last2, dX2;
  std::vector<T> g1, g2;
  run(1, out1, last1, dX1, g1);
  run(2, out2, last2, dX2, g2);
  CHECK(out1 == out2);
  CHECK(last1 == last2);
  CHECK(dX1 == dX2);
  CHECK(g1 == g2);
  CHECK(dX1.norm() > 0);
  // Two std::threads, each with its own context, on the same const model.
  const auto& model = gru;
  Matrix<T> o1, o2;
  std::thread a([&] {
    uvp::nn::GruContext<T> c;
    o1 = model.forward(x, c).values();
  });
  std::thread b([&] {
    uvp::nn::GruContext<T> c;
    o2 = model.forward(x, c).values();
  });
  a.join();
  b.join();
  CHECK(o1 == out1);
  CHECK(o2 == out1);
}

TEST_CASE("Gru allocates nothing per call once its context has grown; an empty batch is valid") {
  const Index I = 16, H = 32, B = 24, S = 30, L = 2;
  uvp::Rng rng(15);
  uvp::nn::Gru<float> gru(I, H, rng, L);
  Matrix<float> X(B * S, I), D = Matrix<float>::Ones(B * S, H), h_last(B, H), h1(1, H);
  for (Index i = 0; i < X.size(); ++i) X.data()[i] = float(rng.normal());
  std::vector<Index> lengths(B);
  for (Index b = 0; b < B; ++b) lengths[std::size_t(b)] = 1 + (b * 11) % S;
  const SequenceBatch<float> x = seqb(X, B, S, lengths), d = seqb(D, B, S, lengths);
  const SequenceBatch<float> one(uvp::ConstMatrixView<float>(X.data(), S, I), 1, S);
  uvp::nn::GruContext<float> ctx;
  for (int warm = 0; warm < 2; ++warm) {
    gru.forward(x, ctx);
    gru.backward(ctx, d);
    gru.forward_last(x, h_last, ctx);
    gru.forward_last(one, h1, ctx);
  }
  const long before = uvp_test::allocations.load();
  gru.forward(x, ctx);
  gru.backward(ctx, d);
  gru.forward_last(x, h_last, ctx);
  gru.forward_last(one, h1, ctx);
  CHECK(uvp_test::allocations.load() == before);

  // An empty batch: empty output and gradient, parameters untouched.
  gru.zero_grad();
  const Matrix<float> none(0, I), dnone(0, H);
  const auto y = gru.forward(seqb(none, 0, S), ctx);
  CHECK(y.batch == 0);
  CHECK(ctx.last_hidden().rows() == 0);
  const auto dx = gru.backward(ctx, seqb(dnone, 0, S));
  CHECK(dx.batch == 0);
  CHECK(dx.features == I);
  for (float g : gru.parameters().grads()) CHECK(g == 0);
}

TEST_CASE("Gru: a context reused after the weights change gives the new weights' result") {
  // The context keeps W_ih and W_hh packed between calls while their bits are unchanged.
  const Index I = 5, H = 6, B = 3, S = 7;
  uvp::Rng rng(16);
  uvp::nn::Gru<float> gru(I, H, rng);
  Matrix<float> X(B * S, I), h(B, H), fresh(B, H), before(B, H);
  for (Index i = 0; i < X.size(); ++i) X.data()[i] = float(rng.normal());
  const SequenceBatch<float> x(uvp::ConstMatrixView<float>(X.data(), B * S, I), B, S);
  uvp::nn::GruContext<float> ctx;
  gru.forward_last(x, before, ctx);
  for (const char* name : {"weight_ih_l0", "weight_hh_l0"}) {
    CAPTURE(name);
    uvp::Span<float> w = gru.values(gru.tensor(name));
    w[w.size() - 1] += 0.5f;
    gru.forward_last(x, h, ctx);
    uvp::nn::GruContext<float> new_ctx;
    gru.forward_last(x, fresh, new_ctx);
    CHECK(h == fresh);
    CHECK(h != before);
    before = h;
  }
}

TEST_CASE("Gru rejects bad input with messages that name it") {
  uvp::Rng rng(16);
  const Index I = 3, H = 4, B = 2, S = 3;
  uvp::nn::Gru<double> gru(I, H, rng, 2);
  uvp::nn::GruContext<double> ctx;
  const Matrix<double> X = Matrix<double>::Ones(B * S, I);
  const std::vector<Index> ok{3, 1};
  Matrix<double> h_last(B, H);
  using uvp::invalid_argument;
  using uvp::numeric_error;
  using uvp::out_of_range_error;
  using uvp::shape_error;

  UVP_CHECK_THROWS_WITH_SUBSTR(uvp::nn::Gru<double>(0, 4, rng), invalid_argument,
                               "uvp::nn::Gru: input_size must be > 0");
  UVP_CHECK_THROWS_WITH_SUBSTR(uvp::nn::Gru<float>(3, 0, rng), invalid_argument, "hidden_size must be > 0");
  UVP_CHECK_THROWS_WITH_SUBSTR(uvp::nn::Gru<float>(3, 4, rng, -1), invalid_argument, "num_layers must be > 0");

  // Widths and lengths.
  const Matrix<double> wide = Matrix<double>::Ones(B * S, I + 1);
  UVP_CHECK_THROWS_WITH_SUBSTR(gru.forward(seqb(wide, B, S), ctx), shape_error,
                               "uvp::nn::Gru::forward: X has 4 columns, expected 3");
  const std::vector<Index> too_long{3, 4}, zero{0, 3}, negative{3, -1};
  UVP_CHECK_THROWS_WITH_SUBSTR(gru.forward(seqb(X, B, S, too_long), ctx),
                               out_of_range_error, "uvp::nn::Gru::forward: lengths[1] = 4 is outside [1, seq_len = 3]");
  UVP_CHECK_THROWS_WITH_SUBSTR(gru.forward(seqb(X, B, S, negative), ctx),
                               out_of_range_error, "lengths[1] = -1");
  UVP_CHECK_THROWS_WITH_SUBSTR(gru.forward_last(seqb(X, B, S, zero), h_last, ctx),
                               invalid_argument,
                               "uvp::nn::Gru::forward_last: lengths[0] = 0 (a sequence needs at least one step)");
  SequenceBatch<double> no_data;
  no_data.batch = 2, no_data.steps = 3, no_data.features = I;
  UVP_CHECK_THROWS_WITH_SUBSTR(gru.forward(no_data, ctx), invalid_argument, "x has batch = 2 and steps = 3 but no data");

  // Non-finite input.
  Matrix<double> Xn = X;
  Xn(4, 2) = std::nan("");
  UVP_CHECK_THROWS_WITH_SUBSTR(gru.forward(seqb(Xn, B, S, ok), ctx), numeric_error,
                               "uvp::nn::Gru::forward: X has a non-finite value (nan) at row 4, column 2");
  Xn(4, 2) = INFINITY;
  UVP_CHECK_THROWS_WITH_SUBSTR(gru.forward_last(seqb(Xn, B, S), h_last, ctx), numeric_error,
                               "X has a non-finite value (inf)");
  Matrix<double> wrong_last(B + 1, H);
  UVP_CHECK_THROWS_WITH_SUBSTR(gru.forward_last(seqb(X, B, S), wrong_last, ctx), shape_error,
                               "uvp::nn::Gru::forward_last: h_last has shape (3, 4), expected (2, 4)");

  // Backward without a forward, after one that threw, after forward_last.
  const Matrix<double> D = Matrix<double>::Ones(B * S, H);
  const SequenceBatch<double> d = seqb(D, B, S, ok);
  uvp::nn::GruContext<double> fresh;
  UVP_CHECK_THROWS_WITH_SUBSTR(gru.backward(fresh, d), invalid_argument,
                               "uvp::nn::Gru::backward: ctx holds no forward pass of this Gru (call forward first");
  gru.forward(seqb(X, B, S, ok), ctx);
  CHECK_THROWS_AS(gru.forward(seqb(Xn, B, S), ctx), numeric_error);
  CHECK_FALSE(ctx.holds_forward());
  CHECK(ctx.last_hidden().rows() == 0);
  UVP_CHECK_THROWS_WITH_SUBSTR(gru.backward(ctx, d), invalid_argument, "call forward first");
  gru.forward_last(seqb(X, B, S), h_last, ctx);
  UVP_CHECK_THROWS_WITH_SUBSTR(gru.backward(ctx, d), invalid_argument, "call forward, not forward_last, first");
  uvp::nn::Gru<double> other(I, H, rng, 1);
  gru.forward(seqb(X, B, S, ok), ctx);
  UVP_CHECK_THROWS_WITH_SUBSTR(other.backward(ctx, d), invalid_argument,
                               "ctx comes from a block with input_size = 3, hidden_size = 4, num_layers = 2, this "
                               "one has input_size = 3, hidden_size = 4, num_layers = 1");

  // Backward shapes.
  const Matrix<double> D5 = Matrix<double>::Ones(B * S, H + 1), D2 = Matrix<double>::Ones(B * 2, H);
  UVP_CHECK_THROWS_WITH_SUBSTR(gru.backward(ctx, seqb(D5, B, S)), shape_error,
                               "uvp::nn::Gru::backward: d_output has 5 columns, expected 4");
  UVP_CHECK_THROWS_WITH_SUBSTR(gru.backward(ctx, seqb(D2, B, 2)), shape_error,
                               "d_output has batch = 2 and steps = 2, expected those of the forward, 2 and 3");
  const Matrix<double> none;
  UVP_CHECK_THROWS_WITH_SUBSTR(gru.backward(ctx, none, none), invalid_argument, "dH and dh_last are both empty");
  UVP_CHECK_THROWS_WITH_SUBSTR(gru.backward(ctx, Matrix<double>::Ones(B * S - 1, H), none), shape_error,
                               "dH has shape (5, 4), expected (6, 4)");
  UVP_CHECK_THROWS_WITH_SUBSTR(gru.backward(ctx, none, Matrix<double>::Ones(B, H - 1)), shape_error,
                               "dh_last has shape (2, 3), expected (2, 4)");
  UVP_CHECK_THROWS_WITH_SUBSTR(ctx.last_hidden(2), out_of_range_error,
                               "uvp::nn::GruContext::last_hidden: layer = 2 is outside [0, num_layers = 2)");
  UVP_CHECK_THROWS_WITH_SUBSTR(gru.weight_hh(-1), out_of_range_error, "layer = -1 is outside [0, num_layers = 2)");
}
