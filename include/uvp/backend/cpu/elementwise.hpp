// SPDX-License-Identifier: Apache-2.0
// Element-wise CPU kernels over raw arrays (activations and their backward, BLAS-1), xsimd-vectorised.
//
// Every kernel takes T = float or double, arrays of n >= 0 elements (unaligned is fine), and
// never allocates. Outputs may alias inputs element for element (x == y), not with an offset.
// uvp::kernels::scalar holds plain-loop references with the same names: the SIMD versions fall
// back to them on targets without SIMD (or with UVP_NO_SIMD defined), and the tests compare
// against them. The last n % W elements of the SIMD versions go through the same batch code on a
// zero-padded stack copy, so y[i] depends on x[i] only, not on n or i (bit for bit, unless the
// compiler fuses a multiply-add differently in the two places; see detail::simd::for_each_batch).
//
// Accuracy, measured by tests/unit/backend/test_elementwise.cpp on 229,400 inputs per type
// (log-uniform magnitudes in [1e-45, 1e4] of both signs, uniform on [-800, 800] and [-100, 100],
// dense around ±[87, 89.5] and ±[707, 710], plus 0, denormals, ±1, ±20, ±100, ±709, ±1000,
// ±max()): float against the double std:: reference, double against long double. Max error in
// ulps of the exact result, SSE2 build / AVX-512 build (-march=native), and the bound the test asserts:
//
//              float          double         tested bound
//   exp        1.80 / 1.71    1.52 / 1.52    2
//   sigmoid    1.91 / 2.01    1.93 / 1.88    3
//   tanh       1.21 / 1.21    1.13 / 0.99    2
//   softplus   1.47 / 1.65    1.47 / 1.40    2
//
// (For comparison, the glibc-based scalar references measured up to 2.1 ulp, tanh in double, in a
// separate run over similar inputs.) Results whose exact value is below the smallest normal
// number (exp(x) for x < -87.3 in float / -708.4 in double, and the left tails of sigmoid and
// softplus) come back as 0 or a denormal, with an absolute error below
// std::numeric_limits<T>::min(). relu, relu_backward and scale are exact; axpy,
// sigmoid_backward and tanh_backward round once per operation. dot / sum / squared_norm sum in
// blocks of 1024 elements (4 batch accumulators in T, block sums in double): measured error at
// most 1.1 eps_T times the sum of |terms| (n up to 100,003), tested bound 2.
// NaN inputs give NaN outputs (relu included, as in PyTorch); sigmoid(±inf) = 1 / 0,
// tanh(±inf) = ±1, softplus(-inf) = 0, exp(-inf) = 0.
#pragma once

#include <algorithm>
#include <cmath>
#include <type_traits>

#include "uvp/backend/tags.hpp"
#include "uvp/core/config.hpp"
#include "uvp/detail/simd_compat.hpp"
#include "uvp/detail/simd_math.hpp"

namespace uvp::kernels {

/// Plain loops over the C++ standard library: the reference the SIMD kernels are tested against,
/// and what they run on targets without SIMD.
namespace scalar {

/// y = 1 / (1 + exp(-x)), computed from exp(-|x|) so that large |x| gives exactly 0 or 1.
template <class T>
void sigmoid(const T* x, T* y, index n) noexcept {
  for (index i = 0; i < n; ++i) {
    const T e = std::exp(-std::abs(x[i]));
    y[i] = x[i] >= T(0) ? T(1) / (T(1) + e) : e / (T(1) + e);
  }
}

template <class T>
void tanh(const T* x, T* y, index n) noexcept {
  for (index i = 0; i < n; ++i) y[i] = std::tanh(x[i]);
}

template <class T>
void exp(const T* x, T* y, index n) noexcept {
  for (index i = 0; i < n; ++i) y[i] = std::exp(x[i]);
}

/// y = max(x, 0); NaN stays NaN.
template <class T>
void relu(const T* x, T* y, index n) noexcept {
  for (index i = 0; i < n; ++i) y[i] = x[i] < T(0) ? T(0) : x[i];
}

/// y = log(1 + exp(x)) = max(x, 0) + log1p(exp(-|x|)).
template <class T>
void softplus(const T* x, T* y, index n) noexcept {
  for (index i = 0; i < n; ++i) y[i] = std::max(x[i], T(0)) + std::log1p(std::exp(-std::abs(x[i])));
}

/// dx = dy where x > 0, else 0 (x: the relu's input).
template <class T>
void relu_backward(const T* x, const T* dy, T* dx, index n) noexcept {
  for (index i = 0; i < n; ++i) dx[i] = x[i] > T(0) ? dy[i] : T(0);
}

/// dx = dy * y * (1 - y) (y: the sigmoid's output).
template <class T>
void sigmoid_backward(const T* y, const T* dy, T* dx, index n) noexcept {
  for (index i = 0; i < n; ++i) dx[i] = dy[i] * (y[i] * (T(1) - y[i]));
}

/// dx = dy * (1 - y^2) (y: the tanh's output).
template <class T>
void tanh_backward(const T* y, const T* dy, T* dx, index n) noexcept {
  for (index i = 0; i < n; ++i) dx[i] = dy[i] * (T(1) - y[i] * y[i]);
}

/// y += a * x.
template <class T>
void axpy(T a, const T* x, T* y, index n) noexcept {
  for (index i = 0; i < n; ++i) y[i] += a * x[i];
}

/// x *= a.
template <class T>
void scale(T a, T* x, index n) noexcept {
  for (index i = 0; i < n; ++i) x[i] *= a;
}

/// sum x[i] y[i], accumulated in double.
template <class T>
T dot(const T* x, const T* y, index n) noexcept {
  double s = 0;
  for (index i = 0; i < n; ++i) s += double(x[i]) * double(y[i]);
  return T(s);
}

template <class T>
T sum(const T* x, index n) noexcept {
  double s = 0;
  for (index i = 0; i < n; ++i) s += double(x[i]);
  return T(s);
}

/// sum x[i]^2, accumulated in double.
template <class T>
T squared_norm(const T* x, index n) noexcept {
  double s = 0;
  for (index i = 0; i < n; ++i) s += double(x[i]) * double(x[i]);
  return T(s);
}

/// True when no element is NaN or infinite.
template <class T>
bool all_finite(const T* x, index n) noexcept {
  for (index i = 0; i < n; ++i)
    if (!std::isfinite(x[i])) return false;
  return true;
}

}  // namespace scalar

/// y = 1 / (1 + exp(-x)), stable for any x (exactly 0 / 1 in the limits).
template <class T>
void sigmoid(const T* x, T* y, index n) noexcept {
  static_assert(is_scalar_v<T>, "uvp::kernels: the element type must be float or double");
  namespace s = uvp::detail::simd;
  if constexpr (!s::enabled<T>) {
    scalar::sigmoid(x, y, n);
  } else {
    using B = s::batch<T>;
    s::for_each_batch<T>(
        n, [](const T* xi, T* yi) { s::sigmoid(B::load_unaligned(xi)).store_unaligned(yi); }, x, y);
  }
}

template <class T>
void tanh(const T* x, T* y, index n) noexcept {
  static_assert(is_scalar_v<T>, "uvp::kernels: the element type must be float or double");
  namespace s = uvp::detail::simd;
  if constexpr (!s::enabled<T>) {
    scalar::tanh(x, y, n);
  } else {
    using B = s::batch<T>;
    s::for_each_batch<T>(
        n, [](const T* xi, T* yi) { s::tanh(B::load_unaligned(xi)).store_unaligned(yi); }, x, y);
  }
}

/// y = exp(x); +inf above log(max()), 0 for results below the smallest normal number.
template <class T>
void exp(const T* x, T* y, index n) noexcept {
  static_assert(is_scalar_v<T>, "uvp::kernels: the element type must be float or double");
  namespace s = uvp::detail::simd;
  if constexpr (!s::enabled<T>) {
    scalar::exp(x, y, n);
  } else {
    using B = s::batch<T>;
    s::for_each_batch<T>(
        n, [](const T* xi, T* yi) { s::exp(B::load_unaligned(xi)).store_unaligned(yi); }, x, y);
  }
}

/// y = max(x, 0); NaN stays NaN.
template <class T>
void relu(const T* x, T* y, index n) noexcept {
  static_assert(is_scalar_v<T>, "uvp::kernels: the element type must be float or double");
  namespace s = uvp::detail::simd;
  if constexpr (!s::enabled<T>) {
    scalar::relu(x, y, n);
  } else {
    using B = s::batch<T>;
    s::for_each_batch<T>(
        n,
        [](const T* xi, T* yi) {
          const B v = B::load_unaligned(xi);
          xsimd::select(v < B(T(0)), B(T(0)), v).store_unaligned(yi);
        },
        x, y);
  }
}

/// y = log(1 + exp(x)), stable for any x: y = x for x >= 100, y = exp(x) for x <= -100.
template <class T>
void softplus(const T* x, T* y, index n) noexcept {
  static_assert(is_scalar_v<T>, "uvp::kernels: the element type must be float or double");
  namespace s = uvp::detail::simd;
  if constexpr (!s::enabled<T>) {
    scalar::softplus(x, y, n);
  } else {
    using B = s::batch<T>;
    s::for_each_batch<T>(
        n, [](const T* xi, T* yi) { s::softplus(B::load_unaligned(xi)).store_unaligned(yi); }, x, y);
  }
}

/// dx = dy where x > 0, else 0 (x: the relu's input). dx may alias dy or x.
template <class T>
void relu_backward(const T* x, const T* dy, T* dx, index n) noexcept {
  static_assert(is_scalar_v<T>, "uvp::kernels: the element type must be float or double");
  namespace s = uvp::detail::simd;
  if constexpr (!s::enabled<T>) {
    scalar::relu_backward(x, dy, dx, n);
  } else {
    using B = s::batch<T>;
    s::for_each_batch<T>(
        n,
        [](const T* xi, const T* dyi, T* dxi) {
          xsimd::select(B::load_unaligned(xi) > B(T(0)), B::load_unaligned(dyi), B(T(0)))
              .store_unaligned(dxi);
        },
        x, dy, dx);
  }
}

/// dx = dy * y * (1 - y), from the sigmoid's output y. dx may alias dy or y.
template <class T>
void sigmoid_backward(const T* y, const T* dy, T* dx, index n) noexcept {
  static_assert(is_scalar_v<T>, "uvp::kernels: the element type must be float or double");
  namespace s = uvp::detail::simd;
  if constexpr (!s::enabled<T>) {
    scalar::sigmoid_backward(y, dy, dx, n);
  } else {
    using B = s::batch<T>;
    s::for_each_batch<T>(
        n,
        [](const T* yi, const T* dyi, T* dxi) {
          const B v = B::load_unaligned(yi);
          (B::load_unaligned(dyi) * (v * (B(T(1)) - v))).store_unaligned(dxi);
        },
        y, dy, dx);
  }
}

/// dx = dy * (1 - y^2), from the tanh's output y. dx may alias dy or y.
template <class T>
void tanh_backward(const T* y, const T* dy, T* dx, index n) noexcept {
  static_assert(is_scalar_v<T>, "uvp::kernels: the element type must be float or double");
  namespace s = uvp::detail::simd;
  if constexpr (!s::enabled<T>) {
    scalar::tanh_backward(y, dy, dx, n);
  } else {
    using B = s::batch<T>;
    s::for_each_batch<T>(
        n,
        [](const T* yi, const T* dyi, T* dxi) {
          const B v = B::load_unaligned(yi);
          (B::load_unaligned(dyi) * (B(T(1)) - v * v)).store_unaligned(dxi);
        },
        y, dy, dx);
  }
}

/// y += a * x.
template <class T>
void axpy(T a, const T* x, T* y, index n) noexcept {
  static_assert(is_scalar_v<T>, "uvp::kernels: the element type must be float or double");
  namespace s = uvp::detail::simd;
  if constexpr (!s::enabled<T>) {
    scalar::axpy(a, x, y, n);
  } else {
    using B = s::batch<T>;
    const B va(a);
    s::for_each_batch<T>(
        n,
        [va](const T* xi, T* yi) { (B::load_unaligned(yi) + va * B::load_unaligned(xi)).store_unaligned(yi); },
        x, y);
  }
}

/// x *= a.
template <class T>
void scale(T a, T* x, index n) noexcept {
  static_assert(is_scalar_v<T>, "uvp::kernels: the element type must be float or double");
  namespace s = uvp::detail::simd;
  if constexpr (!s::enabled<T>) {
    scalar::scale(a, x, n);
  } else {
    using B = s::batch<T>;
    const B va(a);
    s::for_each_batch<T>(
        n, [va](T* xi) { (B::load_unaligned(xi) * va).store_unaligned(xi); }, x);
  }
}

/// sum x[i] y[i] (blocked: see the accuracy note at the top).
template <class T>
T dot(const T* x, const T* y, index n) noexcept {
  static_assert(is_scalar_v<T>, "uvp::kernels: the element type must be float or double");
  namespace s = uvp::detail::simd;
  if constexpr (!s::enabled<T>) {
    return scalar::dot(x, y, n);
  } else {
    using B = s::batch<T>;
    return T(s::blocked_sum<T>(
        n, [](const T* xi, const T* yi) { return B::load_unaligned(xi) * B::load_unaligned(yi); }, x, y));
  }
}

template <class T>
T sum(const T* x, index n) noexcept {
  static_assert(is_scalar_v<T>, "uvp::kernels: the element type must be float or double");
  namespace s = uvp::detail::simd;
  if constexpr (!s::enabled<T>) {
    return scalar::sum(x, n);
  } else {
    using B = s::batch<T>;
    return T(s::blocked_sum<T>(n, [](const T* xi) { return B::load_unaligned(xi); }, x));
  }
}

/// sum x[i]^2 (blocked: see the accuracy note at the top).
template <class T>
T squared_norm(const T* x, index n) noexcept {
  static_assert(is_scalar_v<T>, "uvp::kernels: the element type must be float or double");
  namespace s = uvp::detail::simd;
  if constexpr (!s::enabled<T>) {
    return scalar::squared_norm(x, n);
  } else {
    using B = s::batch<T>;
    return T(s::blocked_sum<T>(
        n,
        [](const T* xi) {
          const B v = B::load_unaligned(xi);
          return v * v;
        },
        x));
  }
}

/// True when no element is NaN or infinite (one SIMD pass: x - x is 0 exactly when x is finite).
template <class T>
bool all_finite(const T* x, index n) noexcept {
  static_assert(is_scalar_v<T>, "uvp::kernels: the element type must be float or double");
  namespace s = uvp::detail::simd;
  if constexpr (!s::enabled<T>) {
    return scalar::all_finite(x, n);
  } else {
    using B = s::batch<T>;
    B acc(T(0));
    s::for_each_batch<T>(
        n,
        [&acc](const T* xi) {
          const B v = B::load_unaligned(xi);
          acc += v - v;
        },
        x);
    // Not `acc != acc`: xsimd 8's != on AVX / AVX-512 is an ordered compare, false for NaN.
    return !xsimd::any(xsimd::isnan(acc));
  }
}

}  // namespace uvp::kernels
