// SPDX-License-Identifier: Apache-2.0
// uvp's own GEMM: BLIS-style packing and blocking around an xsimd register-blocked micro-kernel,
// with a per-element operation order that depends on K only (not on M, the row, or the threads).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <type_traits>
#include <vector>

#if defined(_OPENMP)
#include <omp.h>
#endif

#include "uvp/core/config.hpp"
#include "uvp/detail/aligned_allocator.hpp"
#include "uvp/detail/simd_compat.hpp"

#if defined(__AVX512F__) || defined(__FMA__)
#include <immintrin.h>
#endif
#if defined(__aarch64__)
#include <arm_neon.h>
#endif

// nvcc's front end defines __GNUC__ but rejects "GCC unroll" (a .cu file may include the CPU blocks).
#if (defined(__GNUC__) || defined(__clang__)) && !defined(__CUDACC__)
#define UVP_GEMM_UNROLL _Pragma("GCC unroll 16")
#define UVP_GEMM_PREFETCH(p) __builtin_prefetch(p)
#else
#define UVP_GEMM_UNROLL
#define UVP_GEMM_PREFETCH(p) ((void)0)
#endif

namespace uvp::detail::packed_gemm {

// How each element of C is computed (the batch-invariance contract of uvp::gemm):
//
//   K is cut into nb = ceil(K / kc_max) blocks of kc = ceil(K / nb) (the last one shorter); both
//   depend on K only. For block b, s_b = 0, then s_b = fma(A[i][p], B[p][j], s_b) for p in the
//   block in increasing order. Then C[i][j] = alpha s_0 (beta = 0) or fma(alpha, s_0, beta C[i][j]),
//   and C[i][j] = fma(alpha, s_b, C[i][j]) for b = 1, 2, ...
//
// Each accumulator register holds one row of A times W consecutive columns of B, one lane per
// column, and every kernel below runs that same loop: for R rows and any number of columns, with
// B packed or read in place. So the sequence is the same in whichever slot of a register block a
// row lands, in a full MR-row block or in the R-row kernel of the M edge, and on whichever thread;
// few_rows_times_transposed runs it one lane at a time (fmadd_scalar rounds as fmadd does).
// Packing only moves data; the blocking over M (mc), N (nc), the kernel widths and the split
// among threads choose which elements a kernel call computes, never how. fma is fused on targets
// that have it (AVX-512, FMA3, AArch64) and a multiply then an add elsewhere (SSE, AVX without
// FMA3): the order is fixed either way, and the same for every -ffp-contract (see fmadd).

using arch = xsimd::default_arch;

/// The instruction-set family of `arch` this kernel is built for; none: uvp::gemm uses Eigen.
enum class family { none, avx512, avx2, avx, sse, neon };

inline constexpr family arch_family = std::is_base_of_v<xsimd::avx512f, arch> ? family::avx512
                                      : std::is_base_of_v<xsimd::avx2, arch>  ? family::avx2
                                      : std::is_base_of_v<xsimd::avx, arch>   ? family::avx
                                      : std::is_base_of_v<xsimd::sse2, arch>  ? family::sse
                                      : std::is_base_of_v<xsimd::neon, arch>  ? family::neon
                                                                              : family::none;

/// True when uvp::gemm<T> runs this kernel in this build (float and double on a SIMD target).
template <class T>
inline constexpr bool supported =
    arch_family != family::none &&
    (std::is_same_v<T, float> ||
     (std::is_same_v<T, double> && (arch_family != family::neon || std::is_base_of_v<xsimd::neon64, arch>)));

/// Name reported by uvp::gemm_backend_name().
inline constexpr const char* backend_name() noexcept {
  switch (arch_family) {
    case family::avx512: return "uvp-avx512";
    case family::avx2: return "uvp-avx2";
    case family::avx: return "uvp-avx";
    case family::sse: return "uvp-sse";
    case family::neon: return "uvp-neon";
    default: return "eigen";
  }
}

/// Register and cache blocking for T on `arch`.
template <class T>
struct blocking {
  static constexpr int lanes = int(simd::width<T>);
  /// Vector registers: 32 with AVX-512 and AArch64, 16 otherwise.
  static constexpr int regs =
      (arch_family == family::avx512 || std::is_base_of_v<xsimd::neon64, arch>) ? 32 : 16;
  /// The main micro-tile: MR rows x NV vectors; MR * NV accumulators, NV loads of B and one
  /// broadcast of A fill the register file.
  static constexpr int nv = 2;
  static constexpr int mr = regs == 32 ? 14 : 6;
  static constexpr int nr = nv * lanes;
  /// Vectors across for an R-row kernel: narrow row blocks (the M edge, a batch of one) take
  /// several NR panels at once so that enough independent accumulators hide the FMA latency.
  static constexpr int width(int rows) noexcept {
    int w = nv;
    while (w + nv <= 4 * nv && rows * (w + nv) + (w + nv) + 1 <= regs) w += nv;
    return rows >= mr ? nv : w;
  }
  /// Longest K block (measured on Zen 4: 384-512 beat 256 by 5-8 %, 128 loses 25 %).
  static constexpr index kc_max = 512;
  /// Rows of A packed at a time (an mc x kc block of ~128 KiB stays in L2), a multiple of MR.
  static constexpr index mc_max = ((index(1) << 17) / (kc_max * index(sizeof(T))) + mr - 1) / mr * mr;
  /// Columns of B packed at a time (a kc x nc block of ~4 MiB stays in L3), a multiple of NR.
  static constexpr index nc_max = (index(1) << 22) / (kc_max * index(sizeof(T))) / nr * nr;
  /// Below this many rows B is read in place (packing it would cost more than it saves).
  static constexpr index pack_b_min_rows = 4 * index(mr);
};

/// a * b + c, rounded once on targets with a fused multiply-add (AVX-512, FMA3, AArch64), else
/// a multiply and an add. Called through the intrinsics because xsimd 8's AVX-512 fma is a
/// multiply and an add that the compiler fuses or not (-ffp-contract): the order must not depend
/// on the optimiser.
template <class T>
inline simd::batch<T> fmadd(const simd::batch<T>& a, const simd::batch<T>& b, const simd::batch<T>& c) noexcept {
  using batch = simd::batch<T>;
  constexpr bool f32 = std::is_same_v<T, float>;
  (void)f32;
#if defined(__AVX512F__)
  if constexpr (sizeof(batch) == 64) {
    if constexpr (f32)
      return batch(_mm512_fmadd_ps(a, b, c));
    else
      return batch(_mm512_fmadd_pd(a, b, c));
  } else
#endif
#if defined(__FMA__)
  if constexpr (sizeof(batch) == 32) {
    if constexpr (f32)
      return batch(_mm256_fmadd_ps(a, b, c));
    else
      return batch(_mm256_fmadd_pd(a, b, c));
  } else if constexpr (sizeof(batch) == 16) {
    if constexpr (f32)
      return batch(_mm_fmadd_ps(a, b, c));
    else
      return batch(_mm_fmadd_pd(a, b, c));
  } else
#endif
#if defined(__aarch64__)
  if constexpr (sizeof(batch) == 16) {
    if constexpr (f32)
      return batch(vfmaq_f32(c, a, b));
    else
      return batch(vfmaq_f64(c, a, b));
  } else
#endif
  {
    return batch(xsimd::fma(a, b, c));
  }
}

/// fmadd on one lane: the same rounding (std::fma where fmadd fuses, a product and a sum where
/// it does not, and the target then has no FMA instruction to contract them into).
template <class T>
inline T fmadd_scalar(T a, T b, T c) noexcept {
#if defined(__AVX512F__) || defined(__FMA__) || defined(__aarch64__)
  return std::fma(a, b, c);
#else
  return a * b + c;
#endif
}

/// K blocking: depends on K only (the contract above).
template <class T>
inline index k_block(index k) noexcept {
  const index nb = (k + blocking<T>::kc_max - 1) / blocking<T>::kc_max;
  return (k + nb - 1) / nb;
}

/// A strided matrix operand: element (r, c) of op(X) is data[r * rs + c * cs].
template <class T>
struct operand {
  const T* data;
  index rs, cs;
  const T& operator()(index r, index c) const noexcept { return data[r * rs + c * cs]; }
};

/// The R x (NW vectors) micro-kernel: s = A-panel x B over kc, then the epilogue of the contract
/// into C, of which the first n_valid <= NW * lanes columns are stored.
///   a: packed A, element (i, p) at a[p * MR + i];
///   b: element (p, v * lanes + l) at b[p * b_step + (v / NV) * panel_stride + (v % NV) * lanes + l].
template <class T, int R, int NW>
inline void micro_kernel(index kc, const T* a, const T* b, index b_step, index panel_stride, T* c,
                         index ldc, index n_valid, T alpha, T beta, bool first) noexcept {
  using batch = simd::batch<T>;
  constexpr int W = blocking<T>::lanes, NV = blocking<T>::nv, MR = blocking<T>::mr;
  batch acc[R][NW];
  UVP_GEMM_UNROLL
  for (int i = 0; i < R; ++i) {
    // The C tile is read and written after the loop: fetch its lines now (it is often cold).
    UVP_GEMM_UNROLL
    for (int l = 0; l < NW * W; l += int(64 / sizeof(T)))
      if (l < n_valid) UVP_GEMM_PREFETCH(c + i * ldc + l);
    UVP_GEMM_UNROLL
    for (int v = 0; v < NW; ++v) acc[i][v] = batch(T(0));
  }
  for (index p = 0; p < kc; ++p) {
    if constexpr (R < MR) {
      // Few rows: too little arithmetic per B element to hide a miss; request B a few k ahead.
      if (p + 4 < kc) {
        UVP_GEMM_UNROLL
        for (int v = 0; v < NW; v += std::max(1, int(64 / sizeof(T)) / W))
          UVP_GEMM_PREFETCH(b + 4 * b_step + (v / NV) * panel_stride + (v % NV) * W);
      }
    }
    batch bv[NW];
    UVP_GEMM_UNROLL
    for (int v = 0; v < NW; ++v) bv[v] = batch::load_unaligned(b + (v / NV) * panel_stride + (v % NV) * W);
    UVP_GEMM_UNROLL
    for (int i = 0; i < R; ++i) {
      const batch ai(a[i]);
      UVP_GEMM_UNROLL
      for (int v = 0; v < NW; ++v) acc[i][v] = fmadd<T>(ai, bv[v], acc[i][v]);
    }
    a += MR;
    b += b_step;
  }
  const batch va(alpha), vb(beta);
  if (n_valid == index(NW * W)) {
    UVP_GEMM_UNROLL
    for (int i = 0; i < R; ++i) {
      T* ci = c + i * ldc;
      UVP_GEMM_UNROLL
      for (int v = 0; v < NW; ++v) {
        batch r;
        if (!first)
          r = fmadd<T>(va, acc[i][v], batch::load_unaligned(ci + v * W));
        else if (beta == T(0))
          r = va * acc[i][v];
        else
          r = fmadd<T>(va, acc[i][v], vb * batch::load_unaligned(ci + v * W));
        r.store_unaligned(ci + v * W);
      }
    }
    return;
  }
  // A partial tile (the last columns of C): the same lane arithmetic through a staging row.
  alignas(64) T row[NW * W];
  const bool read_c = !first || beta != T(0);
  UVP_GEMM_UNROLL
  for (int i = 0; i < R; ++i) {
    T* ci = c + i * ldc;
    for (index j = 0; j < NW * W; ++j) row[j] = (read_c && j < n_valid) ? ci[j] : T(0);
    UVP_GEMM_UNROLL
    for (int v = 0; v < NW; ++v) {
      const batch old = batch::load_aligned(row + v * W);
      batch r;
      if (!first)
        r = fmadd<T>(va, acc[i][v], old);
      else if (beta == T(0))
        r = va * acc[i][v];
      else
        r = fmadd<T>(va, acc[i][v], vb * old);
      r.store_aligned(row + v * W);
    }
    for (index j = 0; j < n_valid; ++j) ci[j] = row[j];
  }
}

/// The NR-column panels of one K block of op(B) as the kernels read them: panel q (0-based in
/// the column block) starts at base + q * panel_stride and advances by b_step per k. Panels
/// [0, n_full) are complete; the last one may be partial (tail_cols columns), and is then read
/// from `tail`, packed and zero-padded, with b_step NR.
template <class T>
struct b_panels {
  const T* base;
  index b_step, panel_stride, n_full;
  const T* tail;
  index tail_cols;
};

/// Computes rows [0, R) of packed A panel `a` times panels [q_lo, q_hi) of B into C (c: row 0,
/// column 0 of the column block), R-row kernels several panels wide first.
template <class T, int R>
inline void row_panel(index kc, const T* a, const b_panels<T>& bp, index q_lo, index q_hi, T* c,
                      index ldc, T alpha, T beta, bool first) noexcept {
  constexpr int NV = blocking<T>::nv, NR = blocking<T>::nr, NW = blocking<T>::width(R);
  constexpr int P = NW / NV;  // panels per wide call
  const index q_full = std::min(q_hi, bp.n_full);
  index q = q_lo;
  if constexpr (P > 1) {
    for (; q + P <= q_full; q += P)
      micro_kernel<T, R, NW>(kc, a, bp.base + q * bp.panel_stride, bp.b_step, bp.panel_stride,
                             c + q * NR, ldc, NW * NR / NV, alpha, beta, first);
  }
  for (; q < q_full; ++q)
    micro_kernel<T, R, NV>(kc, a, bp.base + q * bp.panel_stride, bp.b_step, bp.panel_stride, c + q * NR,
                           ldc, NR, alpha, beta, first);
  if (q < q_hi)
    micro_kernel<T, R, NV>(kc, a, bp.tail, NR, 0, c + q * NR, ldc, bp.tail_cols, alpha, beta, first);
}

/// row_panel for a run-time R in [1, MR].
template <class T, int R = blocking<T>::mr>
inline void row_panel_rows(int rows, index kc, const T* a, const b_panels<T>& bp, index q_lo, index q_hi,
                           T* c, index ldc, T alpha, T beta, bool first) noexcept {
  if constexpr (R >= 1) {
    if (rows == R)
      row_panel<T, R>(kc, a, bp, q_lo, q_hi, c, ldc, alpha, beta, first);
    else
      row_panel_rows<T, R - 1>(rows, kc, a, bp, q_lo, q_hi, c, ldc, alpha, beta, first);
  }
}

/// Packs rows [i0, i0 + rows) x columns [p0, p0 + kc) of op(A) into MR-row panels:
/// panel q, element (i, p) at out[q * MR * kc + p * MR + i].
template <class T>
inline void pack_a(const operand<T>& A, index i0, index rows, index p0, index kc, T* out) noexcept {
  constexpr int MR = blocking<T>::mr;
  constexpr index line = 64 / sizeof(T);
  for (index r0 = 0; r0 < rows; r0 += MR, out += MR * kc) {
    const int R = int(std::min<index>(MR, rows - r0));
    if (A.cs == 1) {
      // R rows side by side, walked together along k: R streams in flight instead of one, and
      // contiguous writes. Lines a few steps ahead are requested early (A is often cold).
      const T* src[MR];
      for (int i = 0; i < R; ++i) src[i] = &A(i0 + r0 + i, p0);
      for (index p = 0; p < kc; ++p) {
        if (p % line == 0 && p + 4 * line < kc)
          for (int i = 0; i < R; ++i) UVP_GEMM_PREFETCH(src[i] + p + 4 * line);
        for (int i = 0; i < R; ++i) out[p * MR + i] = src[i][p];
      }
    } else {  // A transposed: a column of op(A) is contiguous
      for (index p = 0; p < kc; ++p) {
        const T* src = &A(i0 + r0, p0 + p);
        for (int i = 0; i < R; ++i) out[p * MR + i] = src[i * A.rs];
      }
    }
  }
}

/// Packs the NR-column panels q_lo..q_hi of columns [j0, j0 + nb) (the last one zero-padded) and
/// rows [p0, p0 + kc) of op(B): panel q, element (p, jj) at out[q * kc * NR + p * NR + jj].
template <class T>
inline void pack_b_panels(const operand<T>& B, index p0, index kc, index j0, index nb, index q_lo,
                          index q_hi, T* out) noexcept {
  constexpr index NR = blocking<T>::nr;
  if (B.cs == 1) {  // row by row of B: one sequential read, NR-wide writes
    for (index p = 0; p < kc; ++p) {
      const T* src = &B(p0 + p, j0);
      for (index q = q_lo; q < q_hi; ++q) {
        const index nv = std::min(NR, nb - q * NR);
        T* dst = out + q * kc * NR + p * NR;
        const T* s = src + q * NR;
        if (nv == NR) {
          for (index jj = 0; jj < NR; ++jj) dst[jj] = s[jj];
        } else {
          index jj = 0;
          for (; jj < nv; ++jj) dst[jj] = s[jj];
          for (; jj < NR; ++jj) dst[jj] = T(0);
        }
      }
    }
  } else {  // B transposed: a column of op(B) is contiguous along k
    for (index q = q_lo; q < q_hi; ++q) {
      const index nv = std::min(NR, nb - q * NR);
      T* dst = out + q * kc * NR;
      for (index jj = 0; jj < nv; ++jj) {
        const T* src = &B(p0, j0 + q * NR + jj);
        for (index p = 0; p < kc; ++p) dst[p * NR + jj] = src[p * B.rs];
      }
      for (index p = 0; p < kc; ++p)
        for (index jj = nv; jj < NR; ++jj) dst[p * NR + jj] = T(0);
    }
  }
}

/// C = alpha op(A) op(B) + beta C for a few rows and op(B) stored transposed (a weight W, n x k,
/// read along its rows): the contract's sequence one lane at a time, 8 columns side by side.
/// Transposing W into panels would cost more than this product of one row.
template <class T>
inline void few_rows_times_transposed(index m, index n, index k, T alpha, const operand<T>& A,
                                      const operand<T>& B, T beta, T* c, index ldc) noexcept {
  constexpr int J = 8;
  const index kc = k_block<T>(k);
  for (index i = 0; i < m; ++i) {
    T* ci = c + i * ldc;
    for (index j0 = 0; j0 < n; j0 += J) {
      const int nj = int(std::min<index>(J, n - j0));
      for (index p0 = 0; p0 < k; p0 += kc) {
        const index pe = std::min(k, p0 + kc);
        T s[J] = {};
        if (nj == J) {
          for (index p = p0; p < pe; ++p) {
            const T a = A(i, p);
            UVP_GEMM_UNROLL
            for (int jj = 0; jj < J; ++jj) s[jj] = fmadd_scalar(a, B(p, j0 + jj), s[jj]);
          }
        } else {
          for (index p = p0; p < pe; ++p) {
            const T a = A(i, p);
            for (int jj = 0; jj < nj; ++jj) s[jj] = fmadd_scalar(a, B(p, j0 + jj), s[jj]);
          }
        }
        for (int jj = 0; jj < nj; ++jj) {
          T& cij = ci[j0 + jj];
          if (p0 > 0)
            cij = fmadd_scalar(alpha, s[jj], cij);
          else if (beta == T(0))
            cij = alpha * s[jj];
          else
            cij = fmadd_scalar(alpha, s[jj], beta * cij);
        }
      }
    }
  }
}

/// A grow-only, cache-line-aligned buffer per thread and purpose (no allocation once warm).
template <class T, int Which>
inline T* workspace(index size) {
  thread_local std::vector<T, aligned_allocator<T, 64>> buf;
  if (index(buf.size()) < size) buf.resize(std::size_t(size));
  return buf.data();
}

/// Rows up to which a product by a transposed B runs few_rows_times_transposed (measured on Zen 4,
/// K = 64, N = 256: 1.5x faster than transposing B into panels for one row, slower from two).
inline constexpr index few_rows_transposed = 1;

/// Multiply-adds above which the product is split among uvp::num_threads() threads.
inline constexpr double parallel_work = double(1 << 21);

/// C = alpha op(A) op(B) + beta C for row-major C (m x n, row stride ldc); op(A) is m x k and
/// op(B) is k x n, given as strided operands. m, n, k > 0. Products of at least parallel_from
/// multiply-adds run on uvp::num_threads() threads (the tests lower it to reach the parallel
/// paths with small matrices); the result is the same either way.
template <class T>
void gemm(index m, index n, index k, T alpha, const operand<T>& A, const operand<T>& B, T beta, T* c,
          index ldc, double parallel_from = parallel_work) {
  using bk = blocking<T>;
  constexpr index MR = bk::mr, NR = bk::nr;
  if (B.cs != 1 && m <= few_rows_transposed) {
    few_rows_times_transposed(m, n, k, alpha, A, B, beta, c, ldc);
    return;
  }
  const index kc = k_block<T>(k);
  const index nk = (k + kc - 1) / kc;
  const bool pack_b = B.cs != 1 || m >= bk::pack_b_min_rows;
  const index nc = std::min<index>(bk::nc_max, (n + NR - 1) / NR * NR);
  const index m_panels = (m + MR - 1) / MR;

  int threads = 1;
#if !defined(_OPENMP)
  (void)parallel_from;
#else
  if (double(m) * double(n) * double(k) >= parallel_from && !omp_in_parallel())
    threads = std::max(1, omp_get_max_threads());
#endif
  // Split among threads over M (whole MR panels) when there are enough rows, else over N panels.
  // Either way each element is computed by one thread, in the order of the contract.
  const bool split_m = m_panels >= 4 * index(threads);

  // The share of thread `me` in a team of `team`. Each thread packs the B panels it reads into
  // its own buffer: the threads never wait for each other (a barrier per K block costs little on
  // a quiet machine but stalls the team whenever one of its threads is descheduled).
  auto part = [&](int team, int me) {
    T* packed = pack_b ? workspace<T, 0>(kc * nc) : nullptr;
    T* ap = workspace<T, 1>(bk::mc_max * kc);
    T* tail = pack_b ? nullptr : workspace<T, 2>(kc * NR);
    for (index jc = 0; jc < n; jc += nc) {
      const index nb = std::min(nc, n - jc);
      const index n_panels = (nb + NR - 1) / NR;
      // This thread's rows and B panels of the block.
      index r_lo = 0, r_hi = m, q_lo = 0, q_hi = n_panels;
      if (split_m) {
        r_lo = std::min(m, m_panels * me / team * MR);
        r_hi = std::min(m, m_panels * (me + 1) / team * MR);
      } else {
        q_lo = n_panels * me / team;
        q_hi = n_panels * (me + 1) / team;
      }
      if (r_lo >= r_hi || q_lo >= q_hi) continue;  // more threads than work
      for (index kb = 0; kb < nk; ++kb) {
        const index p0 = kb * kc, kcb = std::min(kc, k - p0);
        const bool first = kb == 0;
        b_panels<T> bp;
        bp.n_full = nb / NR;
        bp.tail_cols = nb - bp.n_full * NR;
        if (pack_b) {
          pack_b_panels(B, p0, kcb, jc, nb, q_lo, q_hi, packed);
          bp.base = packed;
          bp.b_step = NR;
          bp.panel_stride = kcb * NR;
          bp.tail = packed + bp.n_full * kcb * NR;
        } else {
          bp.base = &B(p0, jc);
          bp.b_step = B.rs;
          bp.panel_stride = NR;
          bp.tail = tail;
          if (bp.tail_cols > 0 && q_hi > bp.n_full)
            pack_b_panels(B, p0, kcb, jc + bp.n_full * NR, bp.tail_cols, 0, 1, tail);
        }
        for (index ic = r_lo; ic < r_hi; ic += bk::mc_max) {
          const index mb = std::min(bk::mc_max, r_hi - ic);
          const index full = mb / MR * MR;
          pack_a(A, ic, mb, p0, kcb, ap);
          T* c0 = c + ic * ldc + jc;
          // Whole MR-row panels: a B panel stays in L1 while the A panels of the block pass by.
          for (index q = q_lo; q < q_hi; ++q)
            for (index ir = 0; ir < full; ir += MR)
              row_panel<T, int(MR)>(kcb, ap + ir * kcb, bp, q, q + 1, c0 + ir * ldc, ldc, alpha, beta, first);
          if (full < mb)
            row_panel_rows<T>(int(mb - full), kcb, ap + full * kcb, bp, q_lo, q_hi, c0 + full * ldc, ldc,
                              alpha, beta, first);
        }
      }
    }
  };
  if (threads == 1) {  // no parallel region at all: a batch of one costs a few hundred ns
    part(1, 0);
    return;
  }
#if defined(_OPENMP)
#pragma omp parallel num_threads(threads)
  part(omp_get_num_threads(), omp_get_thread_num());
#endif
}

}  // namespace uvp::detail::packed_gemm

#undef UVP_GEMM_UNROLL
#undef UVP_GEMM_PREFETCH
