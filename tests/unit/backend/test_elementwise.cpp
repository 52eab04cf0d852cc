// SPDX-License-Identifier: Apache-2.0
// Tests of the SIMD element-wise kernels: accuracy against high-precision references, agreement with
// the scalar reference, limits, aliasing, tails, reductions, and no allocation.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "support/test_support.hpp"
#include "unit/optim/alloc_counter.hpp"
#include "uvp/backend/cpu/elementwise.hpp"
#include "uvp/core/random.hpp"

namespace {

namespace k = uvp::kernels;

/// Reference precision for T: double for float, long double for double.
template <class T>
using wide_t = std::conditional_t<std::is_same_v<T, float>, double, long double>;

/// Inputs over a wide range: log-uniform magnitudes in [1e-45, 1e4] of both signs, uniform on
/// [-800, 800] and [-100, 100], dense near the exp overflow thresholds, and special values.
template <class T>
std::vector<T> wide_inputs() {
  uvp::Rng rng(42);
  std::vector<T> v;
  const double lo = std::log(1e-45), hi = std::log(1e4);
  for (int i = 0; i < (1 << 17); ++i) {
    const T a = T(std::exp(rng.uniform(lo, hi)));
    v.push_back(i % 2 ? a : -a);
  }
  for (int i = 0; i < (1 << 15); ++i) v.push_back(T(rng.uniform(-800, 800)));
  for (int i = 0; i < (1 << 15); ++i) v.push_back(T(rng.uniform(-100, 100)));
  for (int i = 0; i < (1 << 13); ++i) {
    v.push_back(T(rng.uniform(87, 89.5)));
    v.push_back(T(rng.uniform(-89.5, -87)));
    v.push_back(T(rng.uniform(707, 710)));
    v.push_back(T(rng.uniform(-710, -707)));
  }
  const T lim = std::numeric_limits<T>::max();
  const T special[] = {T(0), std::numeric_limits<T>::denorm_min(), std::numeric_limits<T>::min(),
                       T(1e-30), T(1), T(20), T(88.7228317), T(100), T(709), T(709.78), T(1000), lim};
  for (T s : special) {
    v.push_back(s);
    v.push_back(-s);
  }
  return v;
}

/// Error of y against the exact value ref, in units of T's last place at ref. Results whose exact
/// value is below T's smallest normal number only need an absolute error below that number;
/// exact values beyond max() must come back as +-inf (or +-max()).
template <class T>
double ulp_error(T y, wide_t<T> ref) {
  using W = wide_t<T>;
  if (std::isnan(ref)) return std::isnan(y) ? 0 : 1e300;
  if (std::isnan(y)) return 1e300;
  const W a = std::abs(ref);
  if (a > W(std::numeric_limits<T>::max()))
    return (std::isinf(y) || std::abs(y) == std::numeric_limits<T>::max()) && (y > 0) == (ref > 0) ? 0 : 1e300;
  if (std::isinf(y)) return 1e300;
  if (a < W(std::numeric_limits<T>::min())) return std::abs(W(y) - ref) < W(std::numeric_limits<T>::min()) ? 0 : 1e300;
  int e = 0;
  std::frexp(a, &e);
  const W ulp = std::ldexp(W(1), e - std::numeric_limits<T>::digits);
  return double(std::abs(W(y) - ref) / ulp);
}

template <class T, class Kernel, class Ref>
double max_ulp(const std::vector<T>& x, Kernel kernel, Ref ref, T* worst_x = nullptr) {
  std::vector<T> y(x.size());
  kernel(x.data(), y.data(), uvp::index(x.size()));
  double m = 0;
  for (std::size_t i = 0; i < x.size(); ++i) {
    const double e = ulp_error<T>(y[i], ref(wide_t<T>(x[i])));
    if (e > m) {
      m = e;
      if (worst_x) *worst_x = x[i];
    }
  }
  return m;
}

template <class W>
W sigmoid_ref(W x) {
  const W e = std::exp(-std::abs(x));
  return x >= 0 ? 1 / (1 + e) : e / (1 + e);
}
template <class W>
W softplus_ref(W x) {
  return std::max(x, W(0)) + std::log1p(std::exp(-std::abs(x)));
}

}  // namespace

// The bounds stated in elementwise.hpp; the measured maxima are printed by MESSAGE.
TEST_CASE_TEMPLATE("exp, sigmoid, tanh, softplus are within their stated ulp bounds over a wide range", T, float,
                   double) {
  using W = wide_t<T>;
  const auto x = wide_inputs<T>();
  T at = 0;
  const double e_exp = max_ulp<T>(x, [](auto a, auto b, auto n) { k::exp(a, b, n); }, [](W v) { return std::exp(v); }, &at);
  MESSAGE("exp max ulp " << e_exp << " at x = " << at);
  CHECK(e_exp <= 2.0);
  const double e_sig = max_ulp<T>(x, [](auto a, auto b, auto n) { k::sigmoid(a, b, n); }, sigmoid_ref<W>, &at);
  MESSAGE("sigmoid max ulp " << e_sig << " at x = " << at);
  CHECK(e_sig <= 3.0);
  const double e_tanh = max_ulp<T>(x, [](auto a, auto b, auto n) { k::tanh(a, b, n); }, [](W v) { return std::tanh(v); }, &at);
  MESSAGE("tanh max ulp " << e_tanh << " at x = " << at);
  CHECK(e_tanh <= 2.0);
  const double e_sp = max_ulp<T>(x, [](auto a, auto b, auto n) { k::softplus(a, b, n); }, softplus_ref<W>, &at);
  MESSAGE("softplus max ulp " << e_sp << " at x = " << at);
  CHECK(e_sp <= 2.0);
  // The scalar references themselves (libm) for comparison.
  CHECK(max_ulp<T>(x, [](auto a, auto b, auto n) { k::scalar::sigmoid(a, b, n); }, sigmoid_ref<W>) <= 3.0);
  CHECK(max_ulp<T>(x, [](auto a, auto b, auto n) { k::scalar::softplus(a, b, n); }, softplus_ref<W>) <= 3.0);
}

TEST_CASE_TEMPLATE("SIMD kernels agree with the scalar reference", T, float, double) {
  uvp::Rng rng(7);
  const uvp::index n = 1003;  // odd: a tail for every width
  std::vector<T> x(n + 1), dy(n + 1), y(n + 1);
  for (auto& v : x) v = T(rng.normal(0, 4));
  for (auto& v : dy) v = T(rng.normal());
  for (auto& v : y) v = T(rng.uniform(-1, 1));
  x[5] = 0;
  x[6] = -T(0);
  // Offset by one element: unaligned for every width.
  const T* xs = x.data() + 1;
  const T* dys = dy.data() + 1;
  const T* ys = y.data() + 1;
  std::vector<T> a(n), b(n);
  auto ulp_diff = [&](const std::vector<T>& u, const std::vector<T>& w) {
    double m = 0;
    for (uvp::index i = 0; i < n; ++i) m = std::max(m, ulp_error<T>(u[std::size_t(i)], wide_t<T>(w[std::size_t(i)])));
    return m;
  };
  k::relu(xs, a.data(), n);
  k::scalar::relu(xs, b.data(), n);
  CHECK(a == b);
  k::relu_backward(xs, dys, a.data(), n);
  k::scalar::relu_backward(xs, dys, b.data(), n);
  CHECK(a == b);
  k::sigmoid_backward(ys, dys, a.data(), n);
  k::scalar::sigmoid_backward(ys, dys, b.data(), n);
  CHECK(ulp_diff(a, b) <= 1.0);
  k::tanh_backward(ys, dys, a.data(), n);
  k::scalar::tanh_backward(ys, dys, b.data(), n);
  CHECK(ulp_diff(a, b) <= 2.0);  // 1 - y^2 may cancel; allow an FMA-contracted reference
  std::copy(ys, ys + n, a.begin());
  std::copy(ys, ys + n, b.begin());
  k::axpy(T(0.75), xs, a.data(), n);
  k::scalar::axpy(T(0.75), xs, b.data(), n);
  for (uvp::index i = 0; i < n; ++i)
    CHECK(std::abs(a[std::size_t(i)] - b[std::size_t(i)]) <=
          std::numeric_limits<T>::epsilon() * (std::abs(ys[i]) + 0.75 * std::abs(xs[i])));
  std::copy(xs, xs + n, a.begin());
  std::copy(xs, xs + n, b.begin());
  k::scale(T(-1.5), a.data(), n);
  k::scalar::scale(T(-1.5), b.data(), n);
  CHECK(a == b);
  k::sigmoid(xs, a.data(), n);
  k::scalar::sigmoid(xs, b.data(), n);
  CHECK(ulp_diff(a, b) <= 4.0);
  k::tanh(xs, a.data(), n);
  k::scalar::tanh(xs, b.data(), n);
  CHECK(ulp_diff(a, b) <= 3.0);
  k::exp(xs, a.data(), n);
  k::scalar::exp(xs, b.data(), n);
  CHECK(ulp_diff(a, b) <= 3.0);
  k::softplus(xs, a.data(), n);
  k::scalar::softplus(xs, b.data(), n);
  CHECK(ulp_diff(a, b) <= 4.0);
}

TEST_CASE_TEMPLATE("limits: exact 0 / 1, no inf or NaN from finite inputs, NaN propagates", T, float, double) {
  const T inf = std::numeric_limits<T>::infinity();
  const T nan = std::numeric_limits<T>::quiet_NaN();
  const T dmin = std::numeric_limits<T>::denorm_min();
  const std::vector<T> x = {T(-1000), T(-100), T(0), T(100), T(1000), -inf, inf, nan, dmin, -dmin, T(88.72283172607421875)};
  const auto n = uvp::index(x.size());
  std::vector<T> y(x.size());
  k::sigmoid(x.data(), y.data(), n);
  CHECK(y[0] == 0);
  CHECK(y[1] == doctest::Approx(std::exp(-100.0)).epsilon(1e-5));  // a denormal or 0 in float, > 0 in double
  CHECK(y[1] >= 0);
  CHECK(y[2] == T(0.5));
  CHECK(y[3] == 1);
  CHECK(y[4] == 1);
  CHECK(y[5] == 0);
  CHECK(y[6] == 1);
  CHECK(std::isnan(y[7]));
  CHECK(y[8] == T(0.5));
  CHECK(y[9] == T(0.5));
  k::tanh(x.data(), y.data(), n);
  CHECK(y[0] == -1);
  CHECK(y[4] == 1);
  CHECK(y[2] == 0);
  CHECK(y[5] == -1);
  CHECK(y[6] == 1);
  CHECK(std::isnan(y[7]));
  CHECK(std::abs(y[8]) <= std::numeric_limits<T>::min());
  k::softplus(x.data(), y.data(), n);
  CHECK(y[0] == 0);
  CHECK(y[1] >= 0);
  CHECK(y[1] <= T(4e-44) + std::numeric_limits<T>::min());  // exp(-100) = 3.7e-44
  CHECK(y[2] == doctest::Approx(std::log(2.0)));
  CHECK(y[3] == 100);
  CHECK(y[4] == 1000);
  CHECK(y[5] == 0);
  CHECK(y[6] == inf);
  CHECK(std::isnan(y[7]));
  k::exp(x.data(), y.data(), n);
  CHECK(y[0] == 0);
  CHECK(y[2] == 1);
  CHECK(y[4] == inf);
  CHECK(y[5] == 0);
  CHECK(y[6] == inf);
  CHECK(std::isnan(y[7]));
  if (std::is_same_v<T, float>) CHECK(std::isfinite(y[10]));  // the largest float with a finite exp
  k::relu(x.data(), y.data(), n);
  CHECK(y[0] == 0);
  CHECK(y[4] == 1000);
  CHECK(y[5] == 0);
  CHECK(y[6] == inf);
  CHECK(std::isnan(y[7]));  // as torch.relu
  CHECK(y[8] == dmin);
  CHECK(y[9] == 0);
}

TEST_CASE_TEMPLATE("in place (x == y) gives the same result; results do not depend on n or position", T, float,
                   double) {
  uvp::Rng rng(3);
  std::vector<T> x(67);
  for (auto& v : x) v = T(rng.normal(0, 10));
  using Kernel = void (*)(const T*, T*, uvp::index);
  const Kernel kernels[] = {k::sigmoid<T>, k::tanh<T>, k::exp<T>, k::relu<T>, k::softplus<T>};
  for (Kernel kern : kernels) {
    std::vector<T> out(x.size()), inplace = x;
    kern(x.data(), out.data(), uvp::index(x.size()));
    kern(inplace.data(), inplace.data(), uvp::index(inplace.size()));
    CHECK(inplace == out);
    // Every prefix length and start offset gives the same values (bit for bit unless the compiler
    // fuses a multiply-add differently in the SIMD main loop and tail: then within 2 ulp).
    double worst = 0;
    for (uvp::index start : {0, 1, 3}) {
      for (uvp::index len = 1; len <= 40; ++len) {
        std::vector<T> part(static_cast<std::size_t>(len));
        kern(x.data() + start, part.data(), len);
        for (uvp::index i = 0; i < len; ++i)
          worst = std::max(worst, ulp_error<T>(part[std::size_t(i)], wide_t<T>(out[std::size_t(start + i)])));
      }
    }
    CHECK(worst <= 2.0);
  }
  std::vector<T> dy(x.size(), T(2)), dx = dy;
  k::relu_backward(x.data(), dx.data(), dx.data(), uvp::index(x.size()));  // dx aliases dy
  for (std::size_t i = 0; i < x.size(); ++i) CHECK(dx[i] == (x[i] > 0 ? T(2) : T(0)));
}

TEST_CASE_TEMPLATE("dot, sum, squared_norm: blocked sums within a few eps of the exact value", T, float, double) {
  uvp::Rng rng(11);
  double worst = 0;
  for (uvp::index n : {0, 1, 3, 17, 1000, 1025, 4099, 100003}) {
    std::vector<T> x(static_cast<std::size_t>(n)), y(static_cast<std::size_t>(n));
    for (auto& v : x) v = T(rng.normal(1, 3));
    for (auto& v : y) v = T(rng.normal(-0.5, 2));
    long double d = 0, s = 0, q = 0, ad = 0, as = 0;
    for (uvp::index i = 0; i < n; ++i) {
      const long double a = x[std::size_t(i)], b = y[std::size_t(i)];
      d += a * b;
      ad += std::abs(a * b);
      s += a;
      as += std::abs(a);
      q += a * a;
    }
    const double eps = std::numeric_limits<T>::epsilon();
    auto rel = [](long double got, long double exact, long double scale) {
      return scale == 0 ? double(std::abs(got)) : double(std::abs(got - exact) / scale);
    };
    const double ed = rel(k::dot(x.data(), y.data(), n), d, ad) / eps;
    const double es = rel(k::sum(x.data(), n), s, as) / eps;
    const double eq = rel(k::squared_norm(x.data(), n), q, q) / eps;
    worst = std::max({worst, ed, es, eq});
    CAPTURE(n);
    CHECK(ed <= 2.0);
    CHECK(es <= 2.0);
    CHECK(eq <= 2.0);
    // The scalar reference is a running sum in double (n eps_double at worst), rounded to T once.
    CHECK(rel(k::scalar::dot(x.data(), y.data(), n), d, ad) <= double(n) * std::numeric_limits<double>::epsilon() + eps);
  }
  MESSAGE("dot / sum / squared_norm: max error " << worst << " eps * sum |terms|");
  CHECK(k::sum(static_cast<const T*>(nullptr), 0) == 0);
}

TEST_CASE_TEMPLATE("axpy, scale, all_finite by hand", T, float, double) {
  std::vector<T> x = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11}, y(11, T(1));
  k::axpy(T(2), x.data(), y.data(), 11);
  CHECK(y == std::vector<T>{3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23});
  k::scale(T(0.5), y.data(), 11);
  CHECK(y[10] == T(11.5));
  CHECK(k::all_finite(x.data(), 11));
  CHECK(k::all_finite(x.data(), 0));
  for (std::size_t pos : {std::size_t(0), std::size_t(7), std::size_t(10)}) {
    for (T bad : {std::numeric_limits<T>::quiet_NaN(), std::numeric_limits<T>::infinity(),
                  -std::numeric_limits<T>::infinity()}) {
      std::vector<T> z = x;
      z[pos] = bad;
      CHECK_FALSE(k::all_finite(z.data(), 11));
      CHECK_FALSE(k::scalar::all_finite(z.data(), 11));
    }
  }
  const T biggest = std::numeric_limits<T>::max();
  CHECK(k::all_finite(&biggest, 1));
}

TEST_CASE_TEMPLATE("kernels never allocate", T, float, double) {
  std::vector<T> x(1001, T(0.5)), y(1001), d(1001, T(1));
  const auto n = uvp::index(x.size());
  const long before = uvp_test::allocations.load();
  k::sigmoid(x.data(), y.data(), n);
  k::tanh(x.data(), y.data(), n);
  k::exp(x.data(), y.data(), n);
  k::relu(x.data(), y.data(), n);
  k::softplus(x.data(), y.data(), n);
  k::relu_backward(x.data(), d.data(), y.data(), n);
  k::sigmoid_backward(x.data(), d.data(), y.data(), n);
  k::tanh_backward(x.data(), d.data(), y.data(), n);
  k::axpy(T(1), x.data(), y.data(), n);
  k::scale(T(2), y.data(), n);
  volatile T r = k::dot(x.data(), y.data(), n) + k::sum(x.data(), n) + k::squared_norm(x.data(), n);
  (void)r;
  volatile bool f = k::all_finite(y.data(), n);
  (void)f;
  CHECK(uvp_test::allocations.load() == before);
}
