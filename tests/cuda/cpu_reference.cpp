// SPDX-License-Identifier: Apache-2.0
// CPU references for the CUDA tests: Eigen products and uvp's shared scalar sigmoid.
#include "cpu_reference.hpp"

#include <cmath>
#include <limits>

#include "uvp/core/random.hpp"
#include "uvp/core/tensor.hpp"
#include "uvp/detail/elementwise_math.hpp"

namespace uvp_cuda_test {

using uvp::index;

template <class T>
std::vector<T> uniform(index n, std::uint64_t seed, double lo, double hi) {
  uvp::Rng rng(seed);
  std::vector<T> v(static_cast<std::size_t>(n));
  for (auto& x : v) x = static_cast<T>(rng.uniform(lo, hi));
  return v;
}

template <class T>
std::vector<T> gemm(const std::vector<T>& a, const std::vector<T>& b, const std::vector<T>& c0,
                    index m, index n, index k, T alpha, T beta) {
  const auto A = uvp::view(a.data(), m, k);
  const auto B = uvp::view(b.data(), k, n);
  uvp::Matrix<T> C = alpha * (A * B);
  if (beta != T(0)) C += beta * uvp::view(c0.data(), m, n);
  return std::vector<T>(C.data(), C.data() + C.size());
}

template <class T>
std::vector<T> gemm_error_bound(const std::vector<T>& a, const std::vector<T>& b,
                                const std::vector<T>& c0, index m, index n, index k, T alpha,
                                T beta) {
  const T u = std::numeric_limits<T>::epsilon();
  const auto A = uvp::view(a.data(), m, k);
  const auto B = uvp::view(b.data(), k, n);
  uvp::Matrix<T> bound = std::abs(alpha) * (A.cwiseAbs() * B.cwiseAbs());
  if (beta != T(0)) bound += std::abs(beta) * uvp::view(c0.data(), m, n).cwiseAbs();
  bound = (T(2) * T(k + 1) * u) * bound.array() + u;
  return std::vector<T>(bound.data(), bound.data() + bound.size());
}

template <class T>
std::vector<T> sigmoid_of_product(uvp::cpu, const std::vector<T>& a, const std::vector<T>& b,
                                  index m, index n, index k) {
  std::vector<T> c = gemm<T>(a, b, {}, m, n, k, T(1), T(0));
  for (auto& x : c) x = uvp::detail::sigmoid_scalar(x);
  return c;
}

#define UVP_CUDA_TEST_INSTANTIATE(T)                                                             \
  template std::vector<T> uniform<T>(index, std::uint64_t, double, double);                      \
  template std::vector<T> gemm<T>(const std::vector<T>&, const std::vector<T>&,                  \
                                  const std::vector<T>&, index, index, index, T, T);             \
  template std::vector<T> gemm_error_bound<T>(const std::vector<T>&, const std::vector<T>&,      \
                                              const std::vector<T>&, index, index, index, T, T); \
  template std::vector<T> sigmoid_of_product<T>(uvp::cpu, const std::vector<T>&,                 \
                                                const std::vector<T>&, index, index, index);
UVP_CUDA_TEST_INSTANTIATE(float)
UVP_CUDA_TEST_INSTANTIATE(double)

}  // namespace uvp_cuda_test
