// SPDX-License-Identifier: Apache-2.0
// The matrix product of the nn blocks' forward passes, Y = X B (+ bias, or + Y), computed so that
// each output row depends on its input row alone: the same answer at any batch size.
//
// Every Y[i][j] is the same sequence of floating-point operations whatever the number of rows,
// the row's position (and address) and the thread count:
//
//   acc = bias[j] (or Y[i][j] when accumulating, or 0);  acc = fma(X[i][k], B[k][j], acc), k = 0, 1, ...
//
// one multiply-add per k in increasing order (xsimd::fma: one rounding where the target has FMA,
// a product and a sum elsewhere; the scalar build uses std::fma where it is fast, a * b + c
// where the target has no FMA to contract it into). Eigen's products do not promise this: for
// one row they run a GEMV, for tiny sizes a coefficient-wise product and else a GEMM whose edge
// rows take other kernels, and each sums in another order.
//
// B is packed once into panels of nr columns (k x nr each, zero-padded, contiguous) from either
// a weight W (n x k, PyTorch's layout: B = W^T) or a row-major (k x n) matrix; a micro-kernel
// then keeps a block of Y in registers while it runs over k: mr rows of one panel, or fewer rows
// of up to four panels (one row: four, so that a single row still has eight independent
// accumulators). Rows past the last full mr block take the micro-kernel with fewer rows, columns
// past the last full panel the same panel width on the zero padding: a lane does the same
// operations in every case. Threads (only for large products, and only outside a parallel
// region) split the rows, never k.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstring>
#include <type_traits>

#if defined(_OPENMP)
#include <omp.h>
#endif

#include "uvp/core/tensor.hpp"
#include "uvp/detail/nn_rows.hpp"
#include "uvp/detail/simd_compat.hpp"
#include "uvp/detail/simd_math.hpp"

namespace uvp::detail {

/// Panel width (nr columns) and rows per micro-kernel call (mr) of row_product for T.
template <class T>
struct row_product_shape {
  static constexpr index lanes = simd::enabled<T> ? static_cast<index>(simd::width<T>) : 1;
  static constexpr index nr = simd::enabled<T> ? 2 * lanes : 4;
  // 2 * mr accumulators: 8 of 16 registers (SSE, AVX2), 16 of 32 (AVX-512).
  static constexpr index mr = simd::enabled<T> && sizeof(simd::batch<T>) >= 64 ? 8 : 4;
};

/// a * b + c with one rounding where the target has a fast FMA, two elsewhere: either way the
/// same at every call site (the compiler cannot contract it differently in different places).
template <class T>
inline T row_product_fma(T a, T b, T c) noexcept {
#if defined(FP_FAST_FMA) && defined(FP_FAST_FMAF)
  return std::fma(a, b, c);
#else
  return a * b + c;
#endif
}

/// The right operand B (k x n) of row_product, packed into column panels. Grows only: packing
/// the same or a smaller shape again allocates nothing.
template <class T>
class PackedRhs {
 public:
  using value_type = T;
  static constexpr index nr = row_product_shape<T>::nr;

  /// B = scale W^T for W (n x k) with row stride ldw (a PyTorch weight: n outputs of k inputs).
  void pack_transposed(const T* W, index ldw, index n, index k, T scale = T(1)) {
    T* p = reserve(n, k);
    for (index j0 = 0; j0 < n; j0 += nr) {
      T* panel = p + (j0 / nr) * k * nr;
      const index w = std::min(nr, n - j0);
      const T* src = W + j0 * ldw;
      if (w == nr) {
        // A full panel (a transpose). Narrow panels: one row of the panel at a time; wide ones
        // (AVX-512): 8 consecutive values of each row of W at a time. Each order is the faster
        // one for its width (measured on a 256 x 64 float W: about 2 us against 6 us for 8-wide
        // panels, 5 us against 8-10 us for 32-wide ones).
        if constexpr (nr <= 8) {
          for (index kk = 0; kk < k; ++kk)
            for (index jj = 0; jj < nr; ++jj) panel[kk * nr + jj] = scale * src[jj * ldw + kk];
        } else {
          for (index k0 = 0; k0 < k; k0 += 8) {
            const index kb = std::min<index>(8, k - k0);
            for (index jj = 0; jj < nr; ++jj) {
              const T* in = src + jj * ldw + k0;
              T* out = panel + k0 * nr + jj;
              for (index u = 0; u < kb; ++u) out[u * nr] = scale * in[u];
            }
          }
        }
        continue;
      }
      for (index kk = 0; kk < k; ++kk) {
        T* dst = panel + kk * nr;
        for (index jj = 0; jj < w; ++jj) dst[jj] = scale * src[jj * ldw + kk];
        for (index jj = w; jj < nr; ++jj) dst[jj] = T(0);
      }
    }
  }

  /// As pack_transposed(W, k, n, k) for a contiguous W, skipped when W holds the same bits as
  /// at the last call (kept in a copy): a forward on unchanged weights then reads them once
  /// (a comparison) instead of transposing them. In W4a (an Lstm(32, 64), float) packing W_ih
  /// and W_hh was 13 % of a 61 us call under perf, the comparison 3 % of a 49 us one. Grows
  /// only, like the packing.
  void pack_transposed_cached(const T* W, index n, index k) {
    const std::size_t count = static_cast<std::size_t>(n) * static_cast<std::size_t>(k);
    if (n == n_ && k == k_ && source_valid_ && std::memcmp(source_.data(), W, count * sizeof(T)) == 0) return;
    source_valid_ = false;  // until both the packing and the copy are done
    pack_transposed(W, k, n, k);
    std::memcpy(grow(source_, static_cast<index>(count)), W, count * sizeof(T));
    source_valid_ = true;
  }

  /// B (k x n) with row stride ldb.
  void pack(const T* Bm, index ldb, index k, index n) {
    T* p = reserve(n, k);
    for (index j0 = 0; j0 < n; j0 += nr) {
      T* panel = p + (j0 / nr) * k * nr;
      const index w = std::min(nr, n - j0);
      for (index kk = 0; kk < k; ++kk) {
        std::copy_n(Bm + kk * ldb + j0, w, panel + kk * nr);
        std::fill(panel + kk * nr + w, panel + (kk + 1) * nr, T(0));
      }
    }
  }

  /// Grows the buffer to hold any B of up to k x n (packing one then allocates nothing).
  void reserve_for(index k, index n) { grow(data_, ((n + nr - 1) / nr) * nr * k); }

  index rows() const noexcept { return k_; }
  index cols() const noexcept { return n_; }
  /// Columns [p nr, (p + 1) nr) as k rows of nr values.
  const T* panel(index p) const noexcept { return data_.data() + p * k_ * nr; }

 private:
  T* reserve(index n, index k) {
    n_ = n, k_ = k;
    source_valid_ = false;  // any packing but pack_transposed_cached's own forgets the source
    return grow(data_, ((n + nr - 1) / nr) * nr * k);
  }
  AlignedBuffer<T> data_;
  AlignedBuffer<T> source_;  // pack_transposed_cached: the W packed last
  index k_ = 0, n_ = 0;
  bool source_valid_ = false;
};

namespace row_product_detail {

enum class Init { zero, bias, accumulate };

// Panels side by side per micro-kernel call for R rows: enough independent accumulators (8 or
// more) to hide the latency of the multiply-adds when there are few rows (one row: 4 panels).
template <int R>
inline constexpr int panels_per_tile = R >= 4 ? 1 : 4 / R;

// Rows [0, R) of Y's columns [j0, j0 + (P - 1) nr + w): P panels, all full but the last, which
// has w <= nr columns (and zero padding past them).
template <class T, int R, int P>
inline void tile(const T* X, index ldx, const T* panel, index k, const T* bias, Init init, T* Y, index ldy, index j0,
                 index w) noexcept {
  constexpr index nr = row_product_shape<T>::nr;
  if constexpr (simd::enabled<T>) {
    using B = simd::batch<T>;
    constexpr index L = row_product_shape<T>::lanes;
    alignas(simd::tail_alignment) T buf[nr];
    B a0[R][P], a1[R][P];
    for (int r = 0; r < R; ++r)
      for (int p = 0; p < P; ++p) {
        if (init == Init::zero) {
          a0[r][p] = a1[r][p] = B(T(0));
          continue;
        }
        // The initial values: bias (the same for every row) or Y's block, through a padded copy
        // where the panel is cut.
        const T* src = (init == Init::bias ? bias : Y + r * ldy) + j0 + p * nr;
        if (p < P - 1 || w == nr) {
          a0[r][p] = B::load_unaligned(src);
          a1[r][p] = B::load_unaligned(src + L);
        } else {
          std::fill_n(buf, nr, T(0));
          std::copy_n(src, w, buf);
          a0[r][p] = B::load_aligned(buf);
          a1[r][p] = B::load_aligned(buf + L);
        }
      }
    for (index kk = 0; kk < k; ++kk) {
      B x[R];
      for (int r = 0; r < R; ++r) x[r] = B(X[r * ldx + kk]);
      for (int p = 0; p < P; ++p) {
        const T* q = panel + p * k * nr + kk * nr;
        const B b0 = B::load_aligned(q), b1 = B::load_aligned(q + L);
        for (int r = 0; r < R; ++r) {
          a0[r][p] = xsimd::fma(x[r], b0, a0[r][p]);
          a1[r][p] = xsimd::fma(x[r], b1, a1[r][p]);
        }
      }
    }
    for (int r = 0; r < R; ++r)
      for (int p = 0; p < P; ++p) {
        T* dst = Y + r * ldy + j0 + p * nr;
        if (p < P - 1 || w == nr) {
          a0[r][p].store_unaligned(dst);
          a1[r][p].store_unaligned(dst + L);
        } else {
          a0[r][p].store_aligned(buf);
          a1[r][p].store_aligned(buf + L);
          std::copy_n(buf, w, dst);
        }
      }
  } else {
    // One panel at a time (P is the SIMD kernel's concern).
    for (int p = 0; p < P; ++p) {
      const index wp = p < P - 1 ? nr : w, jp = j0 + p * nr;
      const T* pp = panel + p * k * nr;
      T acc[R][nr];
      for (int r = 0; r < R; ++r)
        for (index jj = 0; jj < nr; ++jj)
          acc[r][jj] = jj >= wp || init == Init::zero ? T(0) : init == Init::bias ? bias[jp + jj] : Y[r * ldy + jp + jj];
      for (index kk = 0; kk < k; ++kk)
        for (int r = 0; r < R; ++r) {
          const T x = X[r * ldx + kk];
          for (index jj = 0; jj < nr; ++jj) acc[r][jj] = row_product_fma(x, pp[kk * nr + jj], acc[r][jj]);
        }
      for (int r = 0; r < R; ++r) std::copy_n(acc[r], wp, Y + r * ldy + jp);
    }
  }
}

// Rows [0, R) of Y: groups of panels_per_tile<R> panels, then the remaining panels one by one;
// reversed: the same tiles, last first. The order of the tiles changes no output (each column's
// sum is its own); alternating it lets a tile still in L1 from the previous pass be read first.
template <class T, int R>
inline void row_block(const T* X, index ldx, const PackedRhs<T>& Bp, const T* bias, Init init, T* Y, index ldy,
                      bool reversed = false) noexcept {
  constexpr index nr = row_product_shape<T>::nr;
  constexpr int P = panels_per_tile<R>;
  const index n = Bp.cols(), k = Bp.rows(), panels = (n + nr - 1) / nr, grouped = panels / P * P;
  const auto group = [&](index p) {
    tile<T, R, P>(X, ldx, Bp.panel(p), k, bias, init, Y, ldy, p * nr, std::min(nr, n - (p + P - 1) * nr));
  };
  const auto single = [&](index p) {
    tile<T, R, 1>(X, ldx, Bp.panel(p), k, bias, init, Y, ldy, p * nr, std::min(nr, n - p * nr));
  };
  if (!reversed) {
    for (index p = 0; p < grouped; p += P) group(p);
    for (index p = grouped; p < panels; ++p) single(p);
  } else {
    for (index p = panels - 1; p >= grouped; --p) single(p);
    for (index p = grouped - P; p >= 0; p -= P) group(p);
  }
}

// Rows [0, rows) with rows < mr: the micro-kernel of that many rows.
template <class T, int R = 1>
inline void tail_block(index rows, const T* X, index ldx, const PackedRhs<T>& Bp, const T* bias, Init init, T* Y,
                       index ldy, bool reversed) noexcept {
  if constexpr (R < row_product_shape<T>::mr) {
    if (rows == R) return row_block<T, R>(X, ldx, Bp, bias, init, Y, ldy, reversed);
    tail_block<T, R + 1>(rows, X, ldx, Bp, bias, init, Y, ldy, reversed);
  }
}

}  // namespace row_product_detail

/// Y = X B for X (m x B.rows(), row stride ldx) and Y (m x B.cols(), row stride ldy), plus
/// bias (B.cols() values; may be null) or, with accumulate, plus Y's own values (bias must then
/// be null). Y must not overlap X. Each Y[i][j] is the same sequence of operations whatever m,
/// i and the thread count (see the top of this file). Splits the rows over uvp's threads when
/// m * k * n >= nn_parallel_gemm_work and the caller runs outside a parallel region.
/// Allocates nothing.
///
/// The blocks of rows run through B's panels alternately forwards and backwards, the first in
/// the direction `reversed` says; the return value is the direction the next call on the same
/// B should start in (a recurrent layer's next step) so that its first panels are the ones this
/// call read last, still in L1: a 256 x 64 float W_hh^T is 64 KB, twice a 32 KB L1.
template <class T>
bool row_product(const T* X, index ldx, index m, const PackedRhs<T>& Bp, const typename PackedRhs<T>::value_type* bias,
                 bool accumulate, T* Y, index ldy, bool reversed = false) noexcept {
  using namespace row_product_detail;
  constexpr index mr = row_product_shape<T>::mr;
  const index n = Bp.cols();
  if (m <= 0 || n <= 0) return reversed;
  const Init init = accumulate ? Init::accumulate : bias != nullptr ? Init::bias : Init::zero;
  const index blocks = (m + mr - 1) / mr;
  const auto block = [&](index b) {
    const index r0 = b * mr, rows = std::min(mr, m - r0);
    const bool backwards = reversed != ((b & 1) != 0);
    if (rows == mr)
      row_block<T, static_cast<int>(mr)>(X + r0 * ldx, ldx, Bp, bias, init, Y + r0 * ldy, ldy, backwards);
    else
      tail_block<T>(rows, X + r0 * ldx, ldx, Bp, bias, init, Y + r0 * ldy, ldy, backwards);
  };
#if defined(_OPENMP)
  // Small products never enter an OpenMP construct: an inactive region still calls into the
  // OpenMP runtime, which showed in the profile of one-request forwards (many small products).
  if (blocks > 1 && double(m) * double(n) * double(Bp.rows()) >= nn_parallel_gemm_work && omp_get_max_threads() > 1 &&
      !omp_in_parallel()) {
#pragma omp parallel for schedule(static)
    for (index b = 0; b < blocks; ++b) block(b);
    return reversed;
  }
#endif
  for (index b = 0; b < blocks; ++b) block(b);
  // The last block ran backwards when reversed != (blocks - 1 is odd): start the next the other way.
  return reversed == (((blocks - 1) & 1) != 0);
}

/// Y = X W^T (+ bias, or + Y with accumulate), the product of a layer with weight W (n x k,
/// contiguous rows; k = X's columns): W is packed into this thread's grow-only buffer first
/// (nothing is allocated once it has grown). Y: X.rows() x n.
template <class T>
void row_product_wt(const Eigen::Ref<const Matrix<T>>& X, const T* W, index n, const T* bias, Eigen::Ref<Matrix<T>> Y,
                    bool accumulate = false) {
  thread_local PackedRhs<T> packed;
  packed.pack_transposed(W, X.cols(), n, X.cols());
  row_product(X.data(), X.outerStride(), X.rows(), packed, bias, accumulate, Y.data(), Y.outerStride());
}

}  // namespace uvp::detail
