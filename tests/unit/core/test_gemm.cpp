// SPDX-License-Identifier: Apache-2.0
// Tests of uvp::gemm against a double-precision triple loop: alpha/beta, blocks, threads, errors.
#include <doctest/doctest.h>

#include <cmath>
#include <limits>

#include "support/test_support.hpp"
#include "uvp/core/gemm.hpp"
#include "uvp/core/parallel.hpp"
#include "uvp/core/random.hpp"

namespace {

template <class T>
uvp::Matrix<T> random_matrix(uvp::index rows, uvp::index cols, std::uint64_t seed) {
  uvp::Rng rng(seed);
  uvp::Matrix<T> m(rows, cols);
  for (uvp::index i = 0; i < m.size(); ++i) m.data()[i] = T(rng.uniform(-1, 1));
  return m;
}

// alpha A B + beta C0 in double, by the definition.
template <class T>
uvp::Matrix<double> reference(const uvp::Matrix<T>& A, const uvp::Matrix<T>& B, const uvp::Matrix<T>& C0,
                              double alpha, double beta) {
  uvp::Matrix<double> R(A.rows(), B.cols());
  for (uvp::index i = 0; i < A.rows(); ++i)
    for (uvp::index j = 0; j < B.cols(); ++j) {
      double s = 0;
      for (uvp::index p = 0; p < A.cols(); ++p) s += double(A(i, p)) * double(B(p, j));
      R(i, j) = alpha * s + (beta == 0 ? 0.0 : beta * double(C0(i, j)));
    }
  return R;
}

// Largest |C - R| relative to the size of the terms summed (sum_p |a_ip b_pj| is at most k).
template <class T>
double max_scaled_error(const uvp::Matrix<T>& C, const uvp::Matrix<double>& R, uvp::index k) {
  double e = 0;
  for (uvp::index i = 0; i < C.size(); ++i) e = std::max(e, std::abs(double(C.data()[i]) - R.data()[i]));
  return e / double(std::max<uvp::index>(k, 1));
}

template <class T>
double gemm_tol() {
  return 8 * double(std::numeric_limits<T>::epsilon());
}

}  // namespace

TEST_CASE_TEMPLATE("uvp::gemm matches the definition on small, odd and blocked shapes", T, float, double) {
  // Odd sizes (no multiple of any SIMD width or register block), and k beyond the 256-deep
  // blocks of Eigen's and OpenBLAS's kernels.
  const uvp::index shapes[][3] = {{1, 1, 1},   {3, 5, 7},    {17, 33, 9},  {64, 64, 64},
                                  {97, 300, 61}, {131, 257, 70}, {200, 40, 513}, {15, 600, 33}};
  std::uint64_t seed = 1;
  for (const auto& s : shapes) {
    const uvp::index m = s[0], k = s[1], n = s[2];
    CAPTURE(m);
    CAPTURE(k);
    CAPTURE(n);
    const auto A = random_matrix<T>(m, k, seed++);
    const auto B = random_matrix<T>(k, n, seed++);
    const auto C0 = random_matrix<T>(m, n, seed++);
    for (const auto& ab : {std::pair<double, double>{1, 0}, {0.5, -2}, {-1.5, 1}}) {
      uvp::Matrix<T> C = C0;
      uvp::gemm<T>(A, B, C, T(ab.first), T(ab.second));
      CHECK(max_scaled_error(C, reference(A, B, C0, ab.first, ab.second), k) < gemm_tol<T>());
    }
  }
}

TEST_CASE("uvp::gemm is right on 1 and on 2 threads") {
  const auto A = random_matrix<float>(300, 400, 11);
  const auto B = random_matrix<float>(400, 200, 12);
  const auto R = reference(A, B, uvp::Matrix<float>(), 1, 0);
  uvp::Matrix<float> C(300, 200);
  {
    uvp::ThreadCountGuard one(1);
    uvp::gemm<float>(A, B, C);
    CHECK(max_scaled_error(C, R, 400) < gemm_tol<float>());
  }
  if (uvp::has_openmp) {
    uvp::ThreadCountGuard two(2);
    C.setZero();
    uvp::gemm<float>(A, B, C, 1.0f, 0.0f);
    CHECK(max_scaled_error(C, R, 400) < gemm_tol<float>());
  }
}

TEST_CASE("uvp::gemm with beta = 0 ignores C's old content, NaN included") {
  const auto A = random_matrix<double>(70, 80, 21);
  const auto B = random_matrix<double>(80, 90, 22);
  uvp::Matrix<double> C = uvp::Matrix<double>::Constant(70, 90, std::nan(""));
  uvp::gemm<double>(A, B, C);
  CHECK(C.allFinite());
  CHECK(max_scaled_error(C, reference(A, B, C, 1, 0), 80) < gemm_tol<double>());
  uvp::Matrix<double> small = uvp::Matrix<double>::Constant(2, 2, std::nan(""));
  const uvp::Matrix<double> I = uvp::Matrix<double>::Identity(2, 2);
  uvp::gemm<double>(I, I, small);
  CHECK(small == I);
}

TEST_CASE("uvp::gemm works on blocks and maps with an outer stride, and with k = 0") {
  const auto big_a = random_matrix<float>(120, 200, 31);
  const auto big_b = random_matrix<float>(210, 150, 32);
  uvp::Matrix<float> big_c = uvp::Matrix<float>::Zero(130, 160);
  const uvp::Matrix<float> A = big_a.block(10, 20, 100, 90);
  const uvp::Matrix<float> B = big_b.block(5, 7, 90, 110);
  uvp::gemm<float>(big_a.block(10, 20, 100, 90), big_b.block(5, 7, 90, 110), big_c.block(3, 4, 100, 110));
  const uvp::Matrix<float> got = big_c.block(3, 4, 100, 110);
  CHECK(max_scaled_error(got, reference(A, B, got, 1, 0), 90) < gemm_tol<float>());
  CHECK(big_c.block(0, 0, 3, 160).isZero());  // nothing written outside the block
  CHECK(big_c.block(3, 0, 100, 4).isZero());
  CHECK(big_c.block(3, 114, 100, 46).isZero());

  uvp::Matrix<float> a0(4, 0), b0(0, 3), c0 = uvp::Matrix<float>::Constant(4, 3, 2);
  uvp::gemm<float>(a0, b0, c0, 1.0f, 0.5f);
  CHECK(c0 == uvp::Matrix<float>::Constant(4, 3, 1));
  uvp::gemm<float>(a0, b0, c0);
  CHECK(c0.isZero());
}

TEST_CASE("uvp::gemm rejects shapes that do not agree and outputs that alias an input") {
  uvp::Matrix<float> A(4, 5), B(6, 3), C(4, 3);
  A.setOnes();
  B.setOnes();
  UVP_CHECK_THROWS_WITH_SUBSTR(uvp::gemm<float>(A, B, C), uvp::shape_error,
                               "uvp::gemm: B has 6 rows, expected 5");
  uvp::Matrix<float> B5(5, 3), C_bad(4, 2);
  B5.setOnes();
  UVP_CHECK_THROWS_WITH_SUBSTR(uvp::gemm<float>(A, B5, C_bad), uvp::shape_error,
                               "uvp::gemm: C has shape (4, 2), expected (4, 3)");
  uvp::Matrix<float> S = uvp::Matrix<float>::Ones(4, 4);
  UVP_CHECK_THROWS_WITH_SUBSTR(uvp::gemm<float>(S, S.block(0, 0, 4, 4), S), uvp::invalid_argument,
                               "uvp::gemm: C overlaps A");
  uvp::Matrix<float> T4 = uvp::Matrix<float>::Ones(4, 4);
  UVP_CHECK_THROWS_WITH_SUBSTR(uvp::gemm<float>(T4, S, S), uvp::invalid_argument,
                               "uvp::gemm: C overlaps B");
}

TEST_CASE("uvp::gemm_backend_name names this build's backend") {
#if defined(UVP_USE_BLAS)
  CHECK(std::string(uvp::gemm_backend_name()) == "blas");
#else
  // uvp's own kernel on a SIMD target ("uvp-avx512", "uvp-sse", ...), Eigen elsewhere.
  const std::string name = uvp::gemm_backend_name();
  CHECK((name == "eigen" || name.rfind("uvp-", 0) == 0));
#endif
}
