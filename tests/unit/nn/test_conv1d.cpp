// SPDX-License-Identifier: Apache-2.0
// Conv1d: against PyTorch (tests/fixtures/make_nn_conv_fixtures.py), against a direct loop, finite
// differences with stride, padding and lengths, padding steps ignored, bad input.
#include <doctest/doctest.h>

#include <cmath>
#include <limits>
#include <string>
#include <thread>
#include <vector>

#include "support/test_support.hpp"
#include "uvp/nn/conv1d.hpp"
#include "uvp/testing/gradient_check.hpp"

using uvp::Span;

namespace {

template <class T>
std::vector<T> cast(const std::vector<double>& v) {
  return std::vector<T>(v.begin(), v.end());
}

template <class T>
uvp::Matrix<T> matrix(const std::vector<double>& v, uvp::index rows, uvp::index cols) {
  REQUIRE(uvp::index(v.size()) == rows * cols);
  return uvp::view(v.data(), rows, cols).template cast<T>();
}

template <class T>
void set_values(uvp::nn::Block<T>& block, const std::string& name, const std::vector<double>& v) {
  auto dst = block.values(block.tensor(name));
  REQUIRE(dst.size() == uvp::index(v.size()));
  for (uvp::index i = 0; i < dst.size(); ++i) dst[i] = T(v[std::size_t(i)]);
}

/// Y by the definition, in double: the reference for the im2col path.
template <class T>
uvp::Matrix<double> direct_conv(const uvp::nn::Conv1d<T>& conv, const uvp::Matrix<T>& X, uvp::index batch, uvp::index L,
                                const std::vector<uvp::index>& lengths) {
  const uvp::index cin = conv.in_channels(), cout = conv.out_channels(), k = conv.kernel_size();
  const uvp::index s = conv.stride(), p = conv.padding(), lout = conv.output_length(L);
  uvp::Matrix<double> Y = uvp::Matrix<double>::Zero(batch * lout, cout);
  const auto w = conv.weight();
  for (uvp::index b = 0; b < batch; ++b) {
    const uvp::index n = lengths.empty() ? L : lengths[std::size_t(b)];
    const uvp::index m = (n + 2 * p - k) / s + 1;
    for (uvp::index t = 0; t < m; ++t)
      for (uvp::index o = 0; o < cout; ++o) {
        double acc = conv.has_bias() ? double(conv.bias()[o]) : 0.0;
        for (uvp::index c = 0; c < cin; ++c)
          for (uvp::index j = 0; j < k; ++j) {
            const uvp::index u = t * s - p + j;
            if (u >= 0 && u < n) acc += double(w[(o * cin + c) * k + j]) * double(X(b * L + u, c));
          }
        Y(b * lout + t, o) = acc;
      }
  }
  return Y;
}

}  // namespace

TEST_CASE_TEMPLATE("Conv1d matches PyTorch: same padding, stride with lengths, no bias", T, float, double) {
  const double tol = uvp_test::tolerance<T>::rel;
  for (const char* name : {"same", "strided", "nobias"}) {
    CAPTURE(name);
    auto f = uvp_test::read_arrays(uvp_test::fixture_path(std::string("nn_conv/conv_") + name + ".txt"));
    const auto& sh = f["shape"];
    const uvp::index batch = uvp::index(sh[0]), L = uvp::index(sh[1]), cin = uvp::index(sh[2]), cout = uvp::index(sh[3]), k = uvp::index(sh[4]);
    uvp::Rng rng(1);
    uvp::nn::Conv1d<T> conv(cin, cout, k, rng, {uvp::index(sh[5]), uvp::index(sh[6]), sh[7] != 0});
    set_values<T>(conv, "weight", f["weight"]);
    if (conv.has_bias()) set_values<T>(conv, "bias", f["bias"]);
    const std::vector<uvp::index> lengths(f["lengths"].begin(), f["lengths"].end());
    const uvp::index lout = conv.output_length(L);

    const uvp::Matrix<T> X = matrix<T>(f["X"], batch * L, cin);
    typename uvp::nn::Conv1d<T>::Context ctx;
    uvp::Matrix<T> Y(batch * lout, cout);
    conv.forward(X, batch, L, uvp::as_span(lengths), Y, ctx);
    CHECK(uvp_test::rel_error(Span<const T>(Y.data(), Y.size()), f["Y"]) < tol);

    const uvp::Matrix<T> dY = matrix<T>(f["dY"], batch * lout, cout);
    uvp::Matrix<T> dX(batch * L, cin);
    conv.backward(X, dY, dX, ctx);
    CHECK(uvp_test::rel_error(Span<const T>(dX.data(), dX.size()), f["dX"]) < tol);
    CHECK(uvp_test::rel_error(conv.weight_grad(), f["dweight"]) < tol);
    if (conv.has_bias()) CHECK(uvp_test::rel_error(conv.bias_grad(), f["dbias"]) < tol);

    // Gradients accumulate; the parameter-only overload adds the same.
    conv.backward(X, dY, ctx);
    std::vector<double> twice = f["dweight"];
    for (auto& v : twice) v *= 2;
    CHECK(uvp_test::rel_error(conv.weight_grad(), twice) < tol);
  }
}

TEST_CASE("Conv1d output lengths follow the cut sequences") {
  uvp::Rng rng(3);
  uvp::nn::Conv1d<double> conv(5, 3, 4, rng, {2, 2, true});
  CHECK(conv.output_length(11) == 6);
  CHECK(conv.output_length(1) == 1);
  uvp::Matrix<double> X = uvp::Matrix<double>::Random(3 * 11, 5);
  const std::vector<uvp::index> lengths{11, 6, 1};
  uvp::nn::Conv1d<double>::Context ctx;
  const uvp::Matrix<double> Y = conv.forward(X, 3, 11, uvp::as_span(lengths), ctx);
  CHECK(Y.rows() == 18);
  REQUIRE(ctx.output_lengths().size() == 3);
  CHECK(ctx.output_lengths()[0] == 6);
  CHECK(ctx.output_lengths()[1] == 4);
  CHECK(ctx.output_lengths()[2] == 1);
  CHECK(ctx.out_len() == 6);
  CHECK(Y.middleRows(6 + 4, 2).isZero(0));
  CHECK(Y.middleRows(12 + 1, 5).isZero(0));
  conv.forward(X, 3, 11, {}, ctx);
  CHECK(ctx.output_lengths().empty());
}

TEST_CASE("Conv1d is initialised like PyTorch and registers PyTorch's tensors") {
  uvp::Rng rng(7);
  uvp::nn::Conv1d<float> conv(4, 6, 3, rng);
  REQUIRE(conv.tensors().size() == 2);
  CHECK(conv.tensor("weight").shape == std::vector<uvp::index>{6, 4, 3});
  CHECK(conv.tensor("bias").shape == std::vector<uvp::index>{6});
  CHECK(conv.parameter_count() == 6 * 4 * 3 + 6);
  const double bound = 1.0 / std::sqrt(12.0);
  double lo = 1, hi = -1;
  for (float w : conv.weight()) {
    lo = std::min(lo, double(w));
    hi = std::max(hi, double(w));
  }
  CHECK(lo >= -bound);
  CHECK(hi <= bound);
  CHECK(hi - lo > bound);  // spread over the interval, not constant
  for (float b : conv.bias()) CHECK(std::abs(b) <= bound);

  uvp::nn::Conv1d<float> nobias(4, 6, 3, rng, {1, 0, false});
  CHECK(nobias.tensors().size() == 1);
  CHECK(nobias.bias().empty());
  CHECK_FALSE(nobias.has_bias());
}

TEST_CASE_TEMPLATE("Conv1d equals the direct sum on a batch large enough to run in parallel", T, float, double) {
  uvp::Rng rng(11);
  const uvp::index batch = 24, L = 40, cin = 16, cout = 20;
  uvp::nn::Conv1d<T> conv(cin, cout, 5, rng, {2, 3, true});
  uvp::Matrix<T> X(batch * L, cin);
  for (uvp::index i = 0; i < X.size(); ++i) X.data()[i] = T(rng.normal());
  std::vector<uvp::index> lengths(static_cast<std::size_t>(batch));
  for (uvp::index b = 0; b < batch; ++b) lengths[std::size_t(b)] = 1 + (b * 7) % L;
  typename uvp::nn::Conv1d<T>::Context ctx;
  for (const bool with_lengths : {true, false}) {
    const std::vector<uvp::index> lens = with_lengths ? lengths : std::vector<uvp::index>{};
    const uvp::Matrix<T> Y = conv.forward(X, batch, L, uvp::as_span(lens), ctx);
    const uvp::Matrix<double> ref = direct_conv(conv, X, batch, L, lens);
    CHECK(uvp_test::rel_error(Span<const T>(Y.data(), Y.size()), Span<const double>(ref.data(), ref.size())) <
          uvp_test::tolerance<T>::rel);
  }
  // A smaller batch after a larger one reuses the context.
  const uvp::Matrix<T> X2 = X.topRows(2 * L);
  const uvp::Matrix<T> Y2 = conv.forward(X2, 2, L, {}, ctx);
  const uvp::Matrix<double> ref2 = direct_conv(conv, X2, 2, L, {});
  CHECK(uvp_test::rel_error(Span<const T>(Y2.data(), Y2.size()), Span<const double>(ref2.data(), ref2.size())) <
        uvp_test::tolerance<T>::rel);
}

TEST_CASE("Conv1d gradients match finite differences with stride, padding and lengths") {
  for (const bool bias : {true, false}) {
    CAPTURE(bias);
    uvp::Rng rng(5);
    const uvp::index batch = 3, L = 7, cin = 2, cout = 3;
    uvp::nn::Conv1d<double> conv(cin, cout, 3, rng, {2, 1, bias});
    const std::vector<uvp::index> lengths{7, 4, 2};
    const uvp::index lout = conv.output_length(L);
    uvp::Matrix<double> X(batch * L, cin), R(batch * lout, cout);
    for (uvp::index i = 0; i < X.size(); ++i) X.data()[i] = rng.normal();
    for (uvp::index i = 0; i < R.size(); ++i) R.data()[i] = rng.normal();  // padding rows too: ignored
    uvp::nn::Conv1d<double>::Context ctx;
    auto loss = [&] {
      uvp::nn::Conv1d<double>::Context c;
      const uvp::Matrix<double> Y = conv.forward(X, batch, L, uvp::as_span(lengths), c);
      return (Y.array() * R.array()).sum();
    };
    conv.zero_grad();
    conv.forward(X, batch, L, uvp::as_span(lengths), ctx);
    uvp::Matrix<double> dX(batch * L, cin);
    conv.backward(X, R, dX, ctx);

    auto rx = uvp::testing::check_gradient(loss, Span<double>(X.data(), X.size()),
                                           Span<const double>(dX.data(), dX.size()));
    CHECK(rx.relative_error <= 1e-6);
    for (const auto& t : conv.tensors()) {
      CAPTURE(t.name);
      const std::vector<double> analytic(conv.grads(t).begin(), conv.grads(t).end());
      auto r = uvp::testing::check_gradient(loss, conv.values(t), uvp::as_span(analytic));
      CHECK(r.relative_error <= 1e-6);
    }
    // Padding steps get a zero gradient.
    CHECK(dX.middleRows(L + 4, 3).isZero(0));
    CHECK(dX.middleRows(2 * L + 2, 5).isZero(0));
  }
}

TEST_CASE("Conv1d ignores what padding steps hold, in X and in dY") {
  uvp::Rng rng(9);
  const uvp::index batch = 2, L = 6;
  uvp::nn::Conv1d<float> conv(3, 4, 2, rng, {1, 1, true});
  const std::vector<uvp::index> lengths{6, 3};
  const uvp::index lout = conv.output_length(L);
  uvp::Matrix<float> X(batch * L, 3);
  for (uvp::index i = 0; i < X.size(); ++i) X.data()[i] = float(rng.normal());
  uvp::Matrix<float> dY(batch * lout, 4);
  for (uvp::index i = 0; i < dY.size(); ++i) dY.data()[i] = float(rng.normal());
  uvp::nn::Conv1d<float>::Context ctx;
  const uvp::Matrix<float> Y = conv.forward(X, batch, L, uvp::as_span(lengths), ctx);
  uvp::Matrix<float> dX(batch * L, 3);
  conv.backward(X, dY, dX, ctx);
  const std::vector<float> gw(conv.weight_grad().begin(), conv.weight_grad().end());

  const float nan = std::numeric_limits<float>::quiet_NaN();
  uvp::Matrix<float> Xn = X, dYn = dY;
  Xn.middleRows(L + 3, 3).setConstant(nan);
  const uvp::index m1 = ctx.output_lengths()[1];
  dYn.middleRows(lout + m1, lout - m1).setConstant(nan);
  conv.zero_grad();
  const uvp::Matrix<float> Yn = conv.forward(Xn, batch, L, uvp::as_span(lengths), ctx);
  uvp::Matrix<float> dXn(batch * L, 3);
  conv.backward(Xn, dYn, dXn, ctx);
  CHECK(Yn == Y);
  CHECK(dXn == dX);
  CHECK(std::vector<float>(conv.weight_grad().begin(), conv.weight_grad().end()) == gw);
}

TEST_CASE("Conv1d rejects bad arguments with clear errors") {
  uvp::Rng rng(1);
  using C = uvp::nn::Conv1d<double>;
  UVP_CHECK_THROWS_WITH_SUBSTR(C(0, 2, 3, rng), uvp::invalid_argument, "in_channels must be > 0, got 0");
  UVP_CHECK_THROWS_WITH_SUBSTR(C(2, 0, 3, rng), uvp::invalid_argument, "out_channels must be > 0");
  UVP_CHECK_THROWS_WITH_SUBSTR(C(2, 2, 0, rng), uvp::invalid_argument, "kernel_size must be > 0");
  UVP_CHECK_THROWS_WITH_SUBSTR(C(2, 2, 3, rng, {0, 0, true}), uvp::invalid_argument, "stride must be > 0");
  UVP_CHECK_THROWS_WITH_SUBSTR(C(2, 2, 3, rng, {1, -1, true}), uvp::invalid_argument, "padding must be >= 0");

  C conv(2, 3, 3, rng, {1, 0, true});
  C::Context ctx;
  uvp::Matrix<double> X = uvp::Matrix<double>::Random(2 * 5, 2), Y(2 * 3, 3);
  const std::vector<uvp::index> ok{5, 3};
  UVP_CHECK_THROWS_WITH_SUBSTR(conv.forward(X, -1, 5, {}, Y, ctx), uvp::invalid_argument, "batch must be >= 0");
  UVP_CHECK_THROWS_WITH_SUBSTR(conv.forward(X, 2, 4, {}, Y, ctx), uvp::shape_error,
                               "X has 10 rows, expected batch * seq_len = 8");
  uvp::Matrix<double> X3 = uvp::Matrix<double>::Random(10, 3);
  UVP_CHECK_THROWS_WITH_SUBSTR(conv.forward(X3, 2, 5, {}, Y, ctx), uvp::shape_error, "X has 3 columns, expected 2");
  uvp::Matrix<double> Ybad(6, 2);
  UVP_CHECK_THROWS_WITH_SUBSTR(conv.forward(X, 2, 5, {}, Ybad, ctx), uvp::shape_error,
                               "Y has shape (6, 2), expected (6, 3)");
  const std::vector<uvp::index> short_lengths{5}, zero{5, 0}, too_long{5, 6}, too_short{5, 2};
  UVP_CHECK_THROWS_WITH_SUBSTR(conv.forward(X, 2, 5, uvp::as_span(short_lengths), Y, ctx), uvp::shape_error,
                               "lengths has size 1, expected 2");
  UVP_CHECK_THROWS_WITH_SUBSTR(conv.forward(X, 2, 5, uvp::as_span(zero), Y, ctx), uvp::invalid_argument,
                               "lengths[1] = 0 must be >= 1");
  UVP_CHECK_THROWS_WITH_SUBSTR(conv.forward(X, 2, 5, uvp::as_span(too_long), Y, ctx), uvp::out_of_range_error,
                               "lengths[1] = 6 exceeds seq_len = 5");
  UVP_CHECK_THROWS_WITH_SUBSTR(conv.forward(X, 2, 5, uvp::as_span(too_short), Y, ctx), uvp::invalid_argument,
                               "lengths[1] = 2 + 2 * padding 0 is shorter than kernel_size 3");
  uvp::Matrix<double> Xs = uvp::Matrix<double>::Random(4, 2);
  UVP_CHECK_THROWS_WITH_SUBSTR(conv.forward(Xs, 2, 2, {}, ctx), uvp::invalid_argument,
                               "seq_len 2 + 2 * padding 0 is shorter than kernel_size 3");
  uvp::Matrix<double> Xnan = X;
  Xnan(7, 1) = std::numeric_limits<double>::infinity();
  UVP_CHECK_THROWS_WITH_SUBSTR(conv.forward(Xnan, 2, 5, {}, Y, ctx), uvp::numeric_error,
                               "X has a non-finite value (inf) at row 7, column 1");
  uvp::Matrix<double> Xpad = X;
  Xpad(9, 0) = std::numeric_limits<double>::quiet_NaN();  // step 4 of sequence 1: padding
  CHECK_NOTHROW(conv.forward(Xpad, 2, 5, uvp::as_span(ok), Y, ctx));

  // Backward.
  C::Context fresh;
  uvp::Matrix<double> dY = uvp::Matrix<double>::Random(6, 3), dX(10, 2);
  UVP_CHECK_THROWS_WITH_SUBSTR(conv.backward(X, dY, dX, fresh), uvp::invalid_argument,
                               "ctx holds no forward pass of this Conv1d");
  conv.forward(X, 2, 5, uvp::as_span(ok), Y, ctx);
  uvp::Matrix<double> dYbad(5, 3), dXbad(10, 3);
  UVP_CHECK_THROWS_WITH_SUBSTR(conv.backward(X, dYbad, dX, ctx), uvp::shape_error,
                               "dY has shape (5, 3), expected (6, 3)");
  UVP_CHECK_THROWS_WITH_SUBSTR(conv.backward(X, dY, dXbad, ctx), uvp::shape_error,
                               "dX has shape (10, 3), expected (10, 2)");
  UVP_CHECK_THROWS_WITH_SUBSTR(conv.backward(X3, dY, dX, ctx), uvp::shape_error, "X has shape (10, 3)");
  uvp::Matrix<double> dYnan = dY;
  dYnan(0, 2) = std::nan("");
  UVP_CHECK_THROWS_WITH_SUBSTR(conv.backward(X, dYnan, dX, ctx), uvp::numeric_error,
                               "dY has a non-finite value (nan) at row 0, column 2");
  dYnan(0, 2) = 0;
  dYnan(4, 0) = std::nan("");  // sequence 1 has one output step: row 4 is padding
  CHECK_NOTHROW(conv.backward(X, dYnan, dX, ctx));
}

TEST_CASE("Conv1d forward is thread-safe: one context per thread, bit-identical results") {
  uvp::Rng rng(21);
  const uvp::index batch = 8, L = 30;
  const uvp::nn::Conv1d<float> conv(6, 10, 3, rng, {2, 1, true});
  uvp::Matrix<float> X(batch * L, 6);
  for (uvp::index i = 0; i < X.size(); ++i) X.data()[i] = float(rng.normal());
  const std::vector<uvp::index> lengths{30, 1, 7, 30, 12, 2, 29, 15};
  uvp::nn::Conv1d<float>::Context ctx;
  const uvp::Matrix<float> ref = conv.forward(X, batch, L, uvp::as_span(lengths), ctx);
  std::vector<uvp::Matrix<float>> out(4);
  std::vector<std::thread> threads;
  for (std::size_t i = 0; i < out.size(); ++i)
    threads.emplace_back([&, i] {
      uvp::nn::Conv1d<float>::Context c;
      for (int rep = 0; rep < 20; ++rep) out[i] = conv.forward(X, batch, L, uvp::as_span(lengths), c);
    });
  for (auto& t : threads) t.join();
  for (const auto& Y : out) CHECK(Y == ref);
}
