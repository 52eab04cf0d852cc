// SPDX-License-Identifier: Apache-2.0
// The kernels' scalar fallback (what targets without SIMD run), forced with UVP_NO_SIMD.
#define UVP_NO_SIMD 1

#include <doctest/doctest.h>

#include <cmath>
#include <vector>

#include "support/test_support.hpp"
#include "uvp/backend/cpu/elementwise.hpp"

TEST_CASE_TEMPLATE("with UVP_NO_SIMD the kernels are exactly the scalar reference", T, float, double) {
  static_assert(!uvp::detail::simd::enabled<T>);
  namespace k = uvp::kernels;
  std::vector<T> x(37), a(37), b(37), dy(37, T(0.25));
  for (std::size_t i = 0; i < x.size(); ++i) x[i] = T(std::sin(double(i)) * 30);
  const auto n = uvp::index(x.size());
  using Kernel = void (*)(const T*, T*, uvp::index);
  const std::pair<Kernel, Kernel> pairs[] = {{k::sigmoid<T>, k::scalar::sigmoid<T>},
                                             {k::tanh<T>, k::scalar::tanh<T>},
                                             {k::exp<T>, k::scalar::exp<T>},
                                             {k::relu<T>, k::scalar::relu<T>},
                                             {k::softplus<T>, k::scalar::softplus<T>}};
  for (const auto& [simd, ref] : pairs) {
    simd(x.data(), a.data(), n);
    ref(x.data(), b.data(), n);
    CHECK(a == b);
  }
  k::sigmoid_backward(x.data(), dy.data(), a.data(), n);
  k::scalar::sigmoid_backward(x.data(), dy.data(), b.data(), n);
  CHECK(a == b);
  CHECK(k::dot(x.data(), dy.data(), n) == k::scalar::dot(x.data(), dy.data(), n));
  CHECK(k::squared_norm(x.data(), n) == k::scalar::squared_norm(x.data(), n));
  CHECK(k::sum(x.data(), n) == doctest::Approx(double(k::scalar::sum(x.data(), n))));
  // The scalar sigmoid is the stable form too.
  const T big[] = {T(-1000), T(1000)};
  T out[2];
  k::sigmoid(big, out, 2);
  CHECK(out[0] == 0);
  CHECK(out[1] == 1);
}
