// SPDX-License-Identifier: Apache-2.0
// The SIMD math layer on the arguments where xsimd 8's exp family casts a non-finite or huge float
// to an integer (undefined behaviour): -inf, +inf, NaN, huge values, in every lane. Built with
// clang++-14 -fsanitize=undefined,float-cast-overflow -fno-sanitize-recover=all, this file
// aborts without the clamping of detail::simd::safe_argument; in any build it checks that the
// results are the exact limits and that every finite result is xsimd's own.
#include <doctest/doctest.h>

#include <cmath>
#include <limits>
#include <vector>

#include "uvp/backend/cpu/elementwise.hpp"
#include "uvp/core/random.hpp"
#include "uvp/detail/simd_math.hpp"
#include "uvp/nn/attention.hpp"

namespace {

namespace s = uvp::detail::simd;
using Index = uvp::index;

template <class T>
constexpr T inf = std::numeric_limits<T>::infinity();
template <class T>
constexpr T nan_v = std::numeric_limits<T>::quiet_NaN();

// Evaluates f on a batch whose lane `lane` holds x and whose other lanes hold `fill`; returns
// lane `lane` of the result and checks the other lanes equal f(fill) computed alone.
template <class T, class F>
T lane_value(F f, T x, std::size_t lane, T fill) {
  using B = s::batch<T>;
  constexpr std::size_t W = B::size;
  alignas(64) T in[W], out[W], ref[W];
  for (std::size_t k = 0; k < W; ++k) in[k] = fill;
  f(B::load_aligned(in)).store_aligned(ref);
  in[lane] = x;
  f(B::load_aligned(in)).store_aligned(out);
  for (std::size_t k = 0; k < W; ++k)
    if (k != lane) CHECK(out[k] == ref[k]);
  return out[lane];
}

template <class T, class F>
void check_limits(F f, T at_minus_inf, T at_plus_inf, T fill) {
  constexpr std::size_t W = s::batch<T>::size;
  const T huge = std::numeric_limits<T>::max();
  for (std::size_t lane = 0; lane < W; ++lane) {
    CAPTURE(lane);
    CHECK(lane_value<T>(f, -inf<T>, lane, fill) == at_minus_inf);
    CHECK(lane_value<T>(f, inf<T>, lane, fill) == at_plus_inf);
    CHECK(lane_value<T>(f, -huge, lane, fill) == at_minus_inf);
    CHECK(lane_value<T>(f, huge, lane, fill) == at_plus_inf);
    CHECK(lane_value<T>(f, T(-1e19), lane, fill) == at_minus_inf);
    CHECK(lane_value<T>(f, T(1e19), lane, fill) == at_plus_inf);
    CHECK(std::isnan(lane_value<T>(f, nan_v<T>, lane, fill)));
  }
}

}  // namespace

TEST_CASE_TEMPLATE("simd exp, expm1, tanh, erf: exact limits for +-inf, huge values and NaN in every lane", T,
                   float, double) {
  if constexpr (s::enabled<T>) {
    using B = s::batch<T>;
    const T fill = T(0.25);
    check_limits<T>([](const B& x) { return s::exp(x); }, T(0), inf<T>, fill);
    check_limits<T>([](const B& x) { return s::expm1(x); }, T(-1), inf<T>, fill);
    check_limits<T>([](const B& x) { return s::tanh(x); }, T(-1), T(1), fill);
    check_limits<T>([](const B& x) { return s::erf(x); }, T(-1), T(1), fill);
    check_limits<T>([](const B& x) { return s::sigmoid(x); }, T(0), T(1), fill);
  }
}

TEST_CASE_TEMPLATE("simd exp family: the clamped argument leaves every finite result as xsimd computes it", T,
                   float, double) {
  if constexpr (s::enabled<T>) {
    using B = s::batch<T>;
    constexpr Index W = static_cast<Index>(B::size);
    // A grid across both cut-offs (and xsimd's own 0 / inf selections) but inside the range
    // where xsimd's cast is defined, so the plain xsimd call is a valid reference.
    const T top = std::is_same_v<T, float> ? T(120) : T(1000);
    std::vector<T> xs;
    for (T x = -top; x <= top; x += top / T(517)) xs.push_back(x);
    for (T x : {s::exp_minlog<T>, s::exp_maxlog<T>, T(0), T(-0.0), T(6), T(-6), T(30), T(-30), T(40)})
      xs.push_back(x);
    while (Index(xs.size()) % W != 0) xs.push_back(T(0.5));
    alignas(64) T got[64], want[64];
    for (std::size_t i = 0; i < xs.size(); i += std::size_t(W)) {
      const B x = B::load_unaligned(xs.data() + i);
      // exp: equal to xsimd's except in the window below the overflow threshold that s::exp
      // fixes (xsimd returns +inf there); checked against std::exp instead.
      s::exp(x).store_aligned(got);
      xsimd::exp(x).store_aligned(want);
      for (Index k = 0; k < W; ++k) {
        const T v = xs[i + std::size_t(k)];
        CAPTURE(v);
        const T e = std::exp(v);
        if (v >= T(std::is_same_v<T, float> ? 88.3 : 709.4) && std::isfinite(e))
          CHECK(got[k] == doctest::Approx(e).epsilon(std::is_same_v<T, float> ? 1e-6 : 1e-15));
        else if (std::isinf(e))
          CHECK(got[k] == e);
        else
          CHECK(got[k] == want[k]);
      }
      s::expm1(x).store_aligned(got);
      xsimd::expm1(x).store_aligned(want);
      for (Index k = 0; k < W; ++k) CHECK(got[k] == want[k]);
      s::tanh(x).store_aligned(got);
      xsimd::tanh(x).store_aligned(want);
      for (Index k = 0; k < W; ++k) CHECK(got[k] == want[k]);
      s::erf(x).store_aligned(got);
      xsimd::erf(x).store_aligned(want);
      for (Index k = 0; k < W; ++k) CHECK(got[k] == want[k]);
    }
  }
}

TEST_CASE_TEMPLATE("element-wise kernels on +-inf and NaN: exp, sigmoid, tanh, softplus", T, float, double) {
  // n = 7: full batches and a padded tail for every SIMD width.
  const std::vector<T> x = {-inf<T>, inf<T>, T(-1e30), T(1e30), T(0), T(-3), nan_v<T>};
  std::vector<T> y(x.size());
  const Index n = Index(x.size());
  uvp::kernels::exp(x.data(), y.data(), n);
  CHECK(y[0] == T(0));
  CHECK(y[1] == inf<T>);
  CHECK(y[2] == T(0));
  CHECK(y[3] == inf<T>);
  CHECK(y[4] == T(1));
  CHECK(std::isnan(y[6]));
  uvp::kernels::sigmoid(x.data(), y.data(), n);
  CHECK(y[0] == T(0));
  CHECK(y[1] == T(1));
  CHECK(y[4] == T(0.5));
  uvp::kernels::tanh(x.data(), y.data(), n);
  CHECK(y[0] == T(-1));
  CHECK(y[1] == T(1));
  CHECK(y[5] == doctest::Approx(std::tanh(-3.0)).epsilon(1e-6));
  CHECK(std::isnan(y[6]));
  uvp::kernels::softplus(x.data(), y.data(), n);
  CHECK(y[0] == T(0));
  CHECK(y[1] == inf<T>);
}

TEST_CASE("MultiHeadSelfAttention<double>: rows whose length is not a multiple of the SIMD width") {
  // The softmax pads each row's tail with -inf; seq_len 3, 5 and 7 and lengths below seq_len
  // give row lengths 1..7, none a multiple of a SIMD width > 1 except by chance of the mask.
  uvp::Rng rng(7);
  uvp::nn::MultiHeadSelfAttention<double> att(4, 2, rng);
  for (const Index L : {3, 5, 7}) {
    CAPTURE(L);
    const Index batch = 2;
    uvp::Matrix<double> X(batch * L, 4);
    for (Index i = 0; i < X.size(); ++i) X.data()[i] = std::sin(0.37 * double(i)) * 3.0;
    const std::vector<Index> lengths = {L, L - 1};
    uvp::Matrix<double> Y(batch * L, 4);
    uvp::nn::MultiHeadSelfAttention<double>::Context ctx;
    att.forward(X, batch, L, uvp::as_span(lengths), Y, ctx);
    CHECK(Y.allFinite());
    for (Index b = 0; b < batch; ++b)
      for (Index h = 0; h < 2; ++h) {
        const auto P = ctx.probabilities(b, h);
        for (Index i = 0; i < P.rows(); ++i) CHECK(P.row(i).sum() == doctest::Approx(1.0).epsilon(1e-14));
      }
  }
}
