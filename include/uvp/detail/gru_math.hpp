// SPDX-License-Identifier: Apache-2.0
// The row kernels of nn::Gru (one step of one sequence, forward and backward, xsimd-vectorised
// with a scalar reference) and its split of a batch into chunks of sequences.
//
// PyTorch's gate layout [r | z | n] (nn/gru.hpp). Per row, with a = x W_ih^T (no bias) and
// p = h W_hh^T (no bias), 3H each, and bias = [b_ir + b_hr | b_iz + b_hz | b_in | b_hn] (4H):
//
//   forward   r = sigmoid(a_r + p_r + b_r)   z = sigmoid(a_z + p_z + b_z)
//             q = p_n + b_hn                 n = tanh(a_n + b_in + r q)
//             h' = n + z (h - n)             (PyTorch's CPU kernel: (h - n) * z + n)
//   backward  dn = dh' (1 - z)  dq_n = dn (1 - n^2)  dq_z = dh' (h - n) z (1 - z)
//             dq_r = dq_n q r (1 - r)        dh (direct part) = dh' z
//   gradient of a (input side):  [dq_r | dq_z | dq_n]
//   gradient of p (hidden side): [dq_r | dq_z | dq_n r]
#pragma once

#include <algorithm>
#include <cmath>

#include "uvp/core/tensor.hpp"
#include "uvp/detail/elementwise_math.hpp"
#include "uvp/detail/simd_compat.hpp"
#include "uvp/detail/simd_math.hpp"

namespace uvp::detail {

/// One step of one row, keeping what backward needs. gates (3H): a on entry, r z n on exit;
/// p (3H); bias (4H, see above); h: h on entry, h' on exit; q (H): p_n + b_hn; out (H): h' too.
template <class T>
void gru_forward_row(T* gates, const T* p, const T* bias, T* h, T* q, T* out, index H) noexcept {
  namespace s = uvp::detail::simd;
  T *ar = gates, *az = gates + H, *an = gates + 2 * H;
  const T *pr = p, *pz = p + H, *pn = p + 2 * H;
  const T *br = bias, *bz = bias + H, *bn = bias + 2 * H, *bq = bias + 3 * H;
  if constexpr (!s::enabled<T>) {
    for (index j = 0; j < H; ++j) {
      const T r = sigmoid_scalar(ar[j] + pr[j] + br[j]), z = sigmoid_scalar(az[j] + pz[j] + bz[j]);
      const T qj = pn[j] + bq[j], n = std::tanh(an[j] + bn[j] + r * qj);
      const T hn = n + z * (h[j] - n);
      ar[j] = r, az[j] = z, an[j] = n, q[j] = qj, h[j] = hn, out[j] = hn;
    }
  } else {
    using B = s::batch<T>;
    s::for_each_batch<T>(
        H,
        [](T* xr, T* xz, T* xn, const T* yr, const T* yz, const T* yn, const T* cr, const T* cz, const T* cn,
           const T* cq, T* ph, T* pq, T* po) {
          const B r = s::sigmoid(B::load_unaligned(xr) + B::load_unaligned(yr) + B::load_unaligned(cr));
          const B z = s::sigmoid(B::load_unaligned(xz) + B::load_unaligned(yz) + B::load_unaligned(cz));
          const B qv = B::load_unaligned(yn) + B::load_unaligned(cq);
          const B n = s::tanh(B::load_unaligned(xn) + B::load_unaligned(cn) + r * qv);
          const B hn = n + z * (B::load_unaligned(ph) - n);
          r.store_unaligned(xr);
          z.store_unaligned(xz);
          n.store_unaligned(xn);
          qv.store_unaligned(pq);
          hn.store_unaligned(ph);
          hn.store_unaligned(po);
        },
        ar, az, an, pr, pz, pn, br, bz, bn, bq, h, q, out);
  }
}

/// The same step keeping nothing for backward (inference): gates and p read only, h updated in
/// place. The same operations in the same order as gru_forward_row, so both give the same h'.
template <class T>
void gru_forward_row_inplace(const T* gates, const T* p, const T* bias, T* h, index H) noexcept {
  namespace s = uvp::detail::simd;
  const T *ar = gates, *az = gates + H, *an = gates + 2 * H;
  const T *pr = p, *pz = p + H, *pn = p + 2 * H;
  const T *br = bias, *bz = bias + H, *bn = bias + 2 * H, *bq = bias + 3 * H;
  if constexpr (!s::enabled<T>) {
    for (index j = 0; j < H; ++j) {
      const T r = sigmoid_scalar(ar[j] + pr[j] + br[j]), z = sigmoid_scalar(az[j] + pz[j] + bz[j]);
      const T n = std::tanh(an[j] + bn[j] + r * (pn[j] + bq[j]));
      h[j] = n + z * (h[j] - n);
    }
  } else {
    using B = s::batch<T>;
    s::for_each_batch<T>(
        H,
        [](const T* xr, const T* xz, const T* xn, const T* yr, const T* yz, const T* yn, const T* cr,
           const T* cz, const T* cn, const T* cq, T* ph) {
          const B r = s::sigmoid(B::load_unaligned(xr) + B::load_unaligned(yr) + B::load_unaligned(cr));
          const B z = s::sigmoid(B::load_unaligned(xz) + B::load_unaligned(yz) + B::load_unaligned(cz));
          const B qv = B::load_unaligned(yn) + B::load_unaligned(cq);
          const B n = s::tanh(B::load_unaligned(xn) + B::load_unaligned(cn) + r * qv);
          (n + z * (B::load_unaligned(ph) - n)).store_unaligned(ph);
        },
        ar, az, an, pr, pz, pn, br, bz, bn, bq, h);
  }
}

/// Backward of one step of one row. gates: r z n (3H); q (H): p_n + b_hn; h_prev (H); dh: in, the
/// whole gradient of h'; out, its direct part dh' z of the gradient of h_prev. Writes da (3H, the
/// gradient of x W_ih^T) and dp (3H, of h W_hh^T).
template <class T>
void gru_backward_row(const T* gates, const T* q, const T* h_prev, T* dh, T* da, T* dp, index H) noexcept {
  namespace s = uvp::detail::simd;
  const T *gr = gates, *gz = gates + H, *gn = gates + 2 * H;
  if constexpr (!s::enabled<T>) {
    for (index j = 0; j < H; ++j) {
      const T r = gr[j], z = gz[j], n = gn[j], d = dh[j];
      const T dn = d * (T(1) - z) * (T(1) - n * n);
      const T dz = d * (h_prev[j] - n) * z * (T(1) - z);
      const T dr = dn * q[j] * r * (T(1) - r);
      da[j] = dr, da[H + j] = dz, da[2 * H + j] = dn;
      dp[j] = dr, dp[H + j] = dz, dp[2 * H + j] = dn * r;
      dh[j] = d * z;
    }
  } else {
    using B = s::batch<T>;
    s::for_each_batch<T>(
        H,
        [](const T* pr, const T* pz, const T* pn, const T* pq, const T* ph, T* pd, T* ar, T* az, T* an, T* qr,
           T* qz, T* qn) {
          const B one(T(1));
          const B r = B::load_unaligned(pr), z = B::load_unaligned(pz), n = B::load_unaligned(pn);
          const B d = B::load_unaligned(pd);
          const B dn = d * (one - z) * (one - n * n);
          const B dz = d * (B::load_unaligned(ph) - n) * z * (one - z);
          const B dr = dn * B::load_unaligned(pq) * r * (one - r);
          dr.store_unaligned(ar);
          dz.store_unaligned(az);
          dn.store_unaligned(an);
          dr.store_unaligned(qr);
          dz.store_unaligned(qz);
          (dn * r).store_unaligned(qn);
          (d * z).store_unaligned(pd);
        },
        gr, gz, gn, q, h_prev, dh, da, da + H, da + 2 * H, dp, dp + H, dp + 2 * H);
  }
}

/// How many chunks of sequences a batch is split into: at least 8 sequences and about 2^18
/// multiply-adds each, at most 16 chunks. It depends on the sizes only, never on the thread
/// count, so that the results (and the order of every sum) are the same for any thread count.
inline index gru_chunk_count(index batch, index work_per_sequence) noexcept {
  constexpr index max_chunks = 16;
  const index by_rows = batch / 8;
  const index by_work = batch * work_per_sequence / (index(1) << 18);
  return std::max<index>(1, std::min({max_chunks, by_rows, by_work}));
}

/// Runs f(k) for k in [0, chunks), on `threads` OpenMP threads (the calling one alone when 1);
/// which thread runs a chunk does not change its result. f must not throw.
template <class F>
void gru_for_chunks(index chunks, index threads, F&& f) {
  if (threads <= 1) {
    for (index k = 0; k < chunks; ++k) f(k);
    return;
  }
#if defined(_OPENMP)
#pragma omp parallel for schedule(static, 1) num_threads(static_cast<int>(threads))
#endif
  for (index k = 0; k < chunks; ++k) f(k);
}

}  // namespace uvp::detail
