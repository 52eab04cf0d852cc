// SPDX-License-Identifier: Apache-2.0
// Tests of uvp's own GEMM kernel behind uvp::gemm: the same bits for a row at any batch size,
// position and thread count, the documented operation order, transposes, odd shapes, strides.
#include <doctest/doctest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "support/test_support.hpp"
#include "uvp/core/gemm.hpp"
#include "uvp/core/parallel.hpp"
#include "uvp/core/random.hpp"

namespace {

using idx = uvp::index;
using uvp::Trans;

template <class T>
uvp::Matrix<T> random_matrix(idx rows, idx cols, std::uint64_t seed) {
  uvp::Rng rng(seed);
  uvp::Matrix<T> m(rows, cols);
  for (idx i = 0; i < m.size(); ++i) m.data()[i] = T(rng.uniform(-1, 1));
  return m;
}

// op(X)(r, c) for a stored X.
template <class T>
T op_at(const uvp::Matrix<T>& X, bool t, idx r, idx c) {
  return t ? X(c, r) : X(r, c);
}

// alpha op(A) op(B) + beta C0 in double, by the definition.
template <class T>
uvp::Matrix<double> reference(bool ta, bool tb, const uvp::Matrix<T>& A, const uvp::Matrix<T>& B,
                              const uvp::Matrix<T>& C0, double alpha, double beta) {
  const idx m = ta ? A.cols() : A.rows(), k = ta ? A.rows() : A.cols(), n = tb ? B.rows() : B.cols();
  uvp::Matrix<double> R(m, n);
  for (idx i = 0; i < m; ++i)
    for (idx j = 0; j < n; ++j) {
      double s = 0;
      for (idx p = 0; p < k; ++p) s += double(op_at(A, ta, i, p)) * double(op_at(B, tb, p, j));
      R(i, j) = alpha * s + (beta == 0 ? 0.0 : beta * double(C0(i, j)));
    }
  return R;
}

// Largest |C - R| over the size of the terms summed (at most k + |beta| for entries in [-1, 1]).
template <class T>
double max_scaled_error(const uvp::Matrix<T>& C, const uvp::Matrix<double>& R, idx k) {
  double e = 0;
  for (idx i = 0; i < C.size(); ++i) e = std::max(e, std::abs(double(C.data()[i]) - R.data()[i]));
  return e / double(k + 2);
}

template <class T>
double gemm_tol() {
  return 8 * double(std::numeric_limits<T>::epsilon());
}

template <class T>
bool same_bits(const T* a, const T* b, idx n) {
  return std::memcmp(a, b, std::size_t(n) * sizeof(T)) == 0;
}

// Is xsimd::fma fused on this build's SIMD target (AVX-512, FMA3, AArch64), or a multiply then
// an add (SSE, AVX without FMA3, 32-bit NEON)?
constexpr bool fused_fma =
#if defined(__FMA__) || defined(__AVX512F__) || defined(__aarch64__)
    true;
#else
    false;
#endif

template <class T>
T fma_like(T a, T b, T c) {
  if constexpr (fused_fma) {
    return std::fma(a, b, c);
  } else {
    volatile T prod = a * b;  // rounded on its own, never contracted
    return prod + c;
  }
}

// C[i][j] by the operation sequence uvp::gemm documents (K blocks of ceil(K / ceil(K / 512))).
template <class T>
T documented_element(const uvp::Matrix<T>& A, const uvp::Matrix<T>& B, idx i, idx j, T alpha, T beta,
                     T c_old) {
  const idx k = A.cols();
  const idx nb = (k + 511) / 512, kc = (k + nb - 1) / nb;
  T c = c_old;
  for (idx p0 = 0; p0 < k; p0 += kc) {
    T s = 0;
    for (idx p = p0; p < std::min(k, p0 + kc); ++p) s = fma_like(A(i, p), B(p, j), s);
    if (p0 > 0)
      c = fma_like(alpha, s, c);
    else if (beta == T(0))
      c = alpha * s;
    else
      c = fma_like(alpha, s, beta * c);
  }
  return c;
}

// Every row of A times op(B), one row at a time (a batch of one).
template <class T>
uvp::Matrix<T> rows_alone(const uvp::Matrix<T>& A, const uvp::Matrix<T>& B, Trans tb) {
  const idx n = tb == Trans::transpose ? B.rows() : B.cols();
  uvp::Matrix<T> R(A.rows(), n);
  for (idx i = 0; i < A.rows(); ++i) uvp::gemm<T>(Trans::none, tb, A.row(i), B, R.row(i));
  return R;
}

// A op(B) by uvp::gemm, or (forced) by the kernel's parallel path whatever the product's size.
template <class T>
void product(const Eigen::Ref<const uvp::Matrix<T>>& A, const uvp::Matrix<T>& B, Trans tb, uvp::Matrix<T>& C,
             bool force_parallel) {
  if (!force_parallel) {
    uvp::gemm<T>(Trans::none, tb, A, B, C);
    return;
  }
  const bool t = tb == Trans::transpose;
  const idx n = t ? B.rows() : B.cols();
  const uvp::detail::packed_gemm::operand<T> a{A.data(), A.outerStride(), 1};
  const uvp::detail::packed_gemm::operand<T> b{B.data(), t ? 1 : B.cols(), t ? B.cols() : 1};
  uvp::detail::packed_gemm::gemm<T>(A.rows(), n, A.cols(), T(1), a, b, T(0), C.data(), C.outerStride(), 0.0);
}

// Checks that each row of A op(B), computed in batches of `batch` rows (tiling the rows, then
// one batch off the tiling), has the bits of the same row computed alone.
template <class T>
void check_batches(const uvp::Matrix<T>& A, const uvp::Matrix<T>& B, Trans tb, const uvp::Matrix<T>& alone,
                   idx batch, bool force_parallel = false) {
  CAPTURE(batch);
  CAPTURE(force_parallel);
  const idx n = alone.cols();
  uvp::Matrix<T> C(batch, n);
  idx mismatches = 0;
  std::vector<idx> starts;
  for (idx s = 0; s + batch <= A.rows(); s += batch) starts.push_back(s);
  if (batch < A.rows()) starts.push_back((A.rows() - batch) / 3 + 1);
  for (idx s : starts) {
    product<T>(A.middleRows(s, batch), B, tb, C, force_parallel);
    for (idx r = 0; r < batch; ++r)
      if (!same_bits(C.row(r).data(), alone.row(s + r).data(), n)) ++mismatches;
  }
  CHECK(mismatches == 0);
}

}  // namespace

TEST_CASE("uvp::gemm's backend and its batch-invariance flag agree with the build") {
  const std::string name = uvp::gemm_backend_name();
#if defined(UVP_USE_BLAS)
  CHECK(name == "blas");
  CHECK_FALSE(uvp::gemm_is_batch_invariant<float>);
#else
  CHECK((name == "eigen" || name.rfind("uvp-", 0) == 0));
  CHECK(uvp::gemm_is_batch_invariant<float> == (name != "eigen"));
  CHECK(uvp::gemm_is_batch_invariant<double> == (name != "eigen"));
#if defined(__AVX512F__)
  CHECK(name == "uvp-avx512");
#elif defined(__AVX2__) && defined(__FMA__)
  CHECK(name == "uvp-avx2");
#endif
#endif
  CHECK_FALSE(uvp::gemm_is_batch_invariant<int>);
  CHECK_FALSE(uvp::gemm_is_batch_invariant<long double>);
}

TEST_CASE_TEMPLATE("uvp::gemm gives a row the same bits alone and at every position of a batch of any size", T,
                   float, double) {
  if constexpr (uvp::gemm_is_batch_invariant<T>) {
    // K = 40: one K block; K = 600: two (of 300). N = 40 and 33 leave a partial column panel, 96
    // does not. Batches of 2 and 7 read B in place, larger ones pack it. On 2 threads the kernel's
    // parallel path is forced (it splits over M for the larger batches, over N for the smaller).
    struct shape {
      idx rows, k, n;
      std::vector<idx> batches, transposed, parallel;
    };
    const shape shapes[] = {{200, 40, 40, {2, 7, 64, 200}, {7, 200}, {64, 200}},
                            {40, 64, 96, {2, 7, 40}, {7}, {7, 40}},
                            {24, 600, 33, {2, 7, 24}, {7}, {24}},
                            {30, 5, 5, {2, 7, 30}, {2, 30}, {30}}};
    std::uint64_t seed = 100;
    for (const auto& s : shapes) {
      CAPTURE(s.rows);
      CAPTURE(s.k);
      CAPTURE(s.n);
      const auto A = random_matrix<T>(s.rows, s.k, seed++);
      const auto B = random_matrix<T>(s.k, s.n, seed++);
      const uvp::Matrix<T> Bt = B.transpose();  // as a PyTorch Linear weight is stored: (out, in)
      uvp::ThreadCountGuard one(1);
      const uvp::Matrix<T> alone = rows_alone(A, B, Trans::none);
      // The transposed operand is read through the packing: the very same bits.
      CHECK(rows_alone(A, Bt, Trans::transpose) == alone);
      for (idx batch : s.batches) check_batches(A, B, Trans::none, alone, batch);
      for (idx batch : s.transposed) check_batches(A, Bt, Trans::transpose, alone, batch);
      if (uvp::has_openmp) {
        uvp::ThreadCountGuard two(2);
        for (idx batch : s.parallel) {
          check_batches(A, B, Trans::none, alone, batch, true);
          check_batches(A, Bt, Trans::transpose, alone, batch, true);
        }
      }
    }
  }
}

TEST_CASE_TEMPLATE("uvp::gemm on 2 threads gives the rows of a batch of 1000 the bits of each row alone", T, float,
                   double) {
  if constexpr (uvp::gemm_is_batch_invariant<T>) {
    // 1000 x 48 x 48 is above the size at which uvp::gemm itself splits the product among threads.
    const auto A = random_matrix<T>(1000, 48, 150);
    const auto W = random_matrix<T>(48, 48, 151);
    uvp::Matrix<T> alone, batch1(1000, 48), batch2(1000, 48);
    {
      uvp::ThreadCountGuard one(1);
      alone = rows_alone(A, W, Trans::transpose);
      uvp::gemm<T>(Trans::none, Trans::transpose, A, W, batch1);
    }
    CHECK(batch1 == alone);
    if (uvp::has_openmp) {
      uvp::ThreadCountGuard two(2);
      uvp::gemm<T>(Trans::none, Trans::transpose, A, W, batch2);
      CHECK(batch2 == alone);
    }
  }
}

TEST_CASE_TEMPLATE("uvp::gemm computes each element by the documented operation sequence", T, float, double) {
  if (!uvp::gemm_is_batch_invariant<T>) return;
  // K = 1100: three blocks of 367, 367 and 366.
  const idx shapes[][3] = {{3, 1, 5}, {17, 31, 35}, {20, 513, 9}, {5, 1100, 40}};
  std::uint64_t seed = 200;
  for (const auto& s : shapes) {
    const idx m = s[0], k = s[1], n = s[2];
    CAPTURE(m);
    CAPTURE(k);
    CAPTURE(n);
    const auto A = random_matrix<T>(m, k, seed++);
    const auto B = random_matrix<T>(k, n, seed++);
    const auto C0 = random_matrix<T>(m, n, seed++);
    for (const auto& ab : {std::pair<T, T>{T(1), T(0)}, {T(0.75), T(-1.5)}, {T(-2), T(1)}}) {
      uvp::Matrix<T> C = C0;
      uvp::gemm<T>(A, B, C, ab.first, ab.second);
      idx mismatches = 0;
      for (idx i = 0; i < m; ++i)
        for (idx j = 0; j < n; ++j) {
          const T want = documented_element(A, B, i, j, ab.first, ab.second, C0(i, j));
          if (std::memcmp(&want, &C(i, j), sizeof(T)) != 0) ++mismatches;
        }
      CHECK(mismatches == 0);
    }
  }
}

TEST_CASE_TEMPLATE("uvp::gemm matches a double-precision reference for every size 1..33 and transpose", T,
                   float, double) {
  std::uint64_t seed = 300;
  const std::pair<double, double> scales[] = {{1, 0}, {0.5, -2}, {-1.5, 1}};
  idx checked = 0;
  for (idx d = 1; d <= 33; ++d) {
    // Each dimension in turn runs through 1..33 while the others are odd and prime.
    const idx dims[][3] = {{d, 17, 19}, {13, d, 21}, {11, 23, d}};
    for (const auto& dim : dims) {
      const idx m = dim[0], k = dim[1], n = dim[2];
      const int variant = int(d % 4);  // every transpose combination, spread over the sizes
      const bool ta = variant & 1, tb = variant & 2;
      CAPTURE(m);
      CAPTURE(k);
      CAPTURE(n);
      CAPTURE(ta);
      CAPTURE(tb);
      const auto A = ta ? random_matrix<T>(k, m, seed++) : random_matrix<T>(m, k, seed++);
      const auto B = tb ? random_matrix<T>(n, k, seed++) : random_matrix<T>(k, n, seed++);
      const auto C0 = random_matrix<T>(m, n, seed++);
      const auto& ab = scales[std::size_t(d % 3)];
      uvp::Matrix<T> C = C0;
      uvp::gemm<T>(ta ? Trans::transpose : Trans::none, tb ? Trans::transpose : Trans::none, A, B, C,
                   T(ab.first), T(ab.second));
      CHECK(max_scaled_error(C, reference(ta, tb, A, B, C0, ab.first, ab.second), k) < gemm_tol<T>());
      ++checked;
    }
  }
  CHECK(checked == 99);
}

TEST_CASE_TEMPLATE("uvp::gemm with transposes equals the product of the materialised transposes", T, float,
                   double) {
  const auto A = random_matrix<T>(45, 70, 401);  // op(A) = Aᵀ: 70 x 45
  const auto B = random_matrix<T>(38, 45, 402);  // op(B) = Bᵀ: 45 x 38
  const uvp::Matrix<T> At = A.transpose(), Bt = B.transpose();
  const auto C0 = random_matrix<T>(70, 38, 403);
  uvp::Matrix<T> want = C0, got = C0;
  uvp::gemm<T>(At, Bt, want, T(0.5), T(2));
  uvp::gemm<T>(Trans::transpose, Trans::transpose, A, B, got, T(0.5), T(2));
  if (uvp::gemm_is_batch_invariant<T>)
    CHECK(got == want);  // packing only moves data
  else
    CHECK(max_scaled_error(got, reference(false, false, At, Bt, C0, 0.5, 2), 45) < gemm_tol<T>());
  uvp::Matrix<T> got_a = C0, got_b = C0;
  uvp::gemm<T>(Trans::transpose, Trans::none, A, Bt, got_a, T(0.5), T(2));
  uvp::gemm<T>(Trans::none, Trans::transpose, At, B, got_b, T(0.5), T(2));
  CHECK(max_scaled_error(got_a, reference(false, false, At, Bt, C0, 0.5, 2), 45) < gemm_tol<T>());
  CHECK(max_scaled_error(got_b, reference(false, false, At, Bt, C0, 0.5, 2), 45) < gemm_tol<T>());
}

TEST_CASE_TEMPLATE("uvp::gemm reads and writes strided blocks, K over one block, beta = 0 ignores NaN", T, float,
                   double) {
  const auto big_a = random_matrix<T>(30, 1200, 501);
  const auto big_b = random_matrix<T>(1100, 50, 502);
  uvp::Matrix<T> big_c = uvp::Matrix<T>::Constant(30, 50, std::numeric_limits<T>::quiet_NaN());
  // K = 1030: three blocks; op(B) taken transposed from a block of Bᵀ.
  const uvp::Matrix<T> big_bt = big_b.transpose();
  const uvp::Matrix<T> A = big_a.block(5, 9, 20, 1030);
  const uvp::Matrix<T> B = big_b.block(3, 7, 1030, 37);
  uvp::gemm<T>(Trans::none, Trans::transpose, big_a.block(5, 9, 20, 1030), big_bt.block(7, 3, 37, 1030),
               big_c.block(4, 2, 20, 37), T(-0.5));
  const uvp::Matrix<T> got = big_c.block(4, 2, 20, 37);
  CHECK(got.allFinite());
  CHECK(max_scaled_error(got, reference(false, false, A, B, got, -0.5, 0), 1030) < gemm_tol<T>());
  // Nothing written outside the block.
  idx touched = 0;
  for (idx i = 0; i < big_c.rows(); ++i)
    for (idx j = 0; j < big_c.cols(); ++j)
      if (!(i >= 4 && i < 24 && j >= 2 && j < 39) && !std::isnan(big_c(i, j))) ++touched;
  CHECK(touched == 0);
}

TEST_CASE("uvp::gemm with Trans rejects shapes that do not agree and outputs that alias an input") {
  uvp::Matrix<float> A = uvp::Matrix<float>::Ones(5, 4), B = uvp::Matrix<float>::Ones(3, 6), C(4, 3);
  // op(A) = Aᵀ is 4 x 5, op(B) = Bᵀ is 6 x 3: k disagrees.
  UVP_CHECK_THROWS_WITH_SUBSTR(uvp::gemm<float>(Trans::transpose, Trans::transpose, A, B, C), uvp::shape_error,
                               "uvp::gemm: B (transposed) has 6 columns, expected 5");
  UVP_CHECK_THROWS_WITH_SUBSTR(uvp::gemm<float>(Trans::transpose, Trans::none, A, B, C), uvp::shape_error,
                               "uvp::gemm: B has 3 rows, expected 5");
  uvp::Matrix<float> B5 = uvp::Matrix<float>::Ones(3, 5), C_bad(4, 4);
  UVP_CHECK_THROWS_WITH_SUBSTR(uvp::gemm<float>(Trans::transpose, Trans::transpose, A, B5, C_bad),
                               uvp::shape_error, "uvp::gemm: C has shape (4, 4), expected (4, 3)");
  uvp::Matrix<float> S = uvp::Matrix<float>::Ones(4, 4);
  UVP_CHECK_THROWS_WITH_SUBSTR(uvp::gemm<float>(Trans::transpose, Trans::none, S, S.block(0, 0, 4, 4), S),
                               uvp::invalid_argument, "uvp::gemm: C overlaps A");
  uvp::Matrix<float> T4 = uvp::Matrix<float>::Ones(4, 4);
  UVP_CHECK_THROWS_WITH_SUBSTR(uvp::gemm<float>(Trans::none, Trans::transpose, T4, S, S), uvp::invalid_argument,
                               "uvp::gemm: C overlaps B");
  // A partial overlap through a block: C's rows run into B's.
  uvp::Matrix<float> big = uvp::Matrix<float>::Ones(8, 4);
  UVP_CHECK_THROWS_WITH_SUBSTR(
      uvp::gemm<float>(Trans::none, Trans::none, T4, big.block(0, 0, 4, 4), big.block(3, 0, 4, 4)),
      uvp::invalid_argument, "uvp::gemm: C overlaps B");
}

TEST_CASE("uvp::gemm falls back to Eigen for other element types, transposes included") {
  uvp::Matrix<int> A(2, 3), B(2, 3), C(3, 3);
  A << 1, 2, 3, 4, 5, 6;
  B << 1, 0, -1, 2, 1, 0;
  C.setConstant(1);
  uvp::gemm<int>(Trans::transpose, Trans::none, A, B, C, 2, 3);  // 2 Aᵀ B + 3
  uvp::Matrix<int> want(3, 3);
  want << 2 * 9 + 3, 2 * 4 + 3, 2 * -1 + 3, 2 * 12 + 3, 2 * 5 + 3, 2 * -2 + 3, 2 * 15 + 3, 2 * 6 + 3, 2 * -3 + 3;
  CHECK(C == want);
}
