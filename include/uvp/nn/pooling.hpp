// SPDX-License-Identifier: Apache-2.0
// Global max and mean pooling over time of batch-first, channels-last sequences with lengths.
//
//   X  (batch * L) x C, row b * L + t; sequence b has n_b = lengths[b] valid steps (all L if none)
//   Y  batch x C
//
//   max:   Y(b, c) = max_{t < n_b} X(b L + t, c),  argmax[b C + c] = the row of X holding it
//          (the first one on ties); dX(argmax[b C + c], c) = dY(b, c), 0 elsewhere.
//   mean:  Y(b, c) = (1 / n_b) sum_{t < n_b} X(b L + t, c);  dX(b L + t, c) = dY(b, c) / n_b for
//          t < n_b, 0 at padding steps.
//
// PyTorch: X.masked_fill(~mask, -inf).amax(dim=1) and (X * mask).sum(dim=1) / lengths on the
// (batch, L, C) tensor (torch.nn.AdaptiveMaxPool1d(1) / AdaptiveAvgPool1d(1) without padding).
// Padding steps are never read, so they may hold anything. Neither pool has parameters; both are
// stateless, and the max pool keeps what backward needs in the caller's argmax array, so forward
// is const and thread-safe.
#pragma once

#include <type_traits>
#include <vector>

#include "uvp/backend/tags.hpp"
#include "uvp/core/check.hpp"
#include "uvp/core/tensor.hpp"
#include "uvp/detail/sequence_batch.hpp"

namespace uvp::detail {

/// batch = dY.rows(), dX (batch * L) x C with L >= 1: the backward shapes of a global pool.
/// Returns L, or 0 for an empty batch (dY and dX with 0 rows: nothing to write).
inline index check_pool_backward_1d(const char* where, index dy_rows, index dy_cols, index dx_rows,
                                    index dx_cols) {
  check_cols(where, "dX", dx_cols, dy_cols);
  if (dy_rows == 0) {
    if (dx_rows != 0)
      raise<shape_error>(where, ": dX has ", dx_rows, " rows, expected 0 (dY has 0 rows: an empty batch)");
    return 0;
  }
  if (dx_rows < dy_rows || dx_rows % dy_rows != 0)
    raise<shape_error>(where, ": dX has ", dx_rows, " rows, not batch * seq_len for batch = dY's ", dy_rows,
                       " rows");
  return dx_rows / dy_rows;
}

}  // namespace uvp::detail

namespace uvp::nn {

/// Max over the valid steps of each sequence and channel (see the top of this file).
template <class T, class Backend = cpu>
class GlobalMaxPool1d {
  static_assert(is_scalar_v<T>, "uvp::nn::GlobalMaxPool1d: T must be float or double");
  static_assert(std::is_same_v<Backend, cpu>,
                "uvp::nn::GlobalMaxPool1d: only the uvp::cpu backend is implemented; use "
                "GlobalMaxPool1d<T, uvp::cpu>");

 public:
  /// X: (batch * seq_len) x C, finite at valid steps; Y: batch x C; argmax: batch * C entries,
  /// receives the row of X each maximum came from (what backward needs).
  void forward(ConstMatrixRef<T> X, index batch, index seq_len, Span<const index> lengths, MatrixRef<T> Y,
               Span<index> argmax) const {
    constexpr const char* where = "uvp::nn::GlobalMaxPool1d::forward";
    const index C = X.cols();
    uvp::detail::check_sequence_batch<T>(where, X, C, batch, seq_len, lengths);
    uvp::detail::check_shape(where, "Y", Y.rows(), Y.cols(), batch, C);
    uvp::detail::check_size(where, "argmax", argmax.size(), batch * C);
    uvp::detail::check_finite_steps<T>(where, "X", X, batch, seq_len, lengths);
    for (index b = 0; b < batch; ++b) {
      const index n = lengths.empty() ? seq_len : lengths[b], r0 = b * seq_len;
      T* y = Y.row(b).data();
      index* arg = argmax.data() + b * C;
      const T* x0 = X.row(r0).data();
      for (index c = 0; c < C; ++c) {
        y[c] = x0[c];
        arg[c] = r0;
      }
      for (index r = r0 + 1; r < r0 + n; ++r) {
        const T* x = X.row(r).data();
        for (index c = 0; c < C; ++c)
          if (x[c] > y[c]) {
            y[c] = x[c];
            arg[c] = r;
          }
      }
    }
  }

  /// Allocating form: returns Y (batch x C) and resizes argmax to batch * C.
  Matrix<T> forward(ConstMatrixRef<T> X, index batch, index seq_len, Span<const index> lengths,
                    std::vector<index>& argmax) const {
    Matrix<T> Y(batch > 0 ? batch : 0, X.cols());
    argmax.resize(static_cast<std::size_t>(Y.size()));
    forward(X, batch, seq_len, lengths, Y, as_span(argmax));
    return Y;
  }

  /// dX = 0 except dX(argmax[b C + c], c) = dY(b, c). dY: batch x C; argmax: from forward;
  /// dX: (batch * seq_len) x C (written).
  void backward(ConstMatrixRef<T> dY, Span<const index> argmax, MatrixRef<T> dX) const {
    constexpr const char* where = "uvp::nn::GlobalMaxPool1d::backward";
    const index batch = dY.rows(), C = dY.cols();
    const index L = uvp::detail::check_pool_backward_1d(where, batch, C, dX.rows(), dX.cols());
    uvp::detail::check_size(where, "argmax", argmax.size(), batch * C);
    for (index b = 0; b < batch; ++b)
      for (index c = 0; c < C; ++c) {
        const index r = argmax[b * C + c];
        if (r < b * L || r >= (b + 1) * L)
          uvp::detail::raise<out_of_range_error>(where, ": argmax[", b * C + c, "] = ", r,
                                                 " is not a row of sequence ", b, " [", b * L, ", ",
                                                 (b + 1) * L, ")");
      }
    dX.setZero();
    for (index b = 0; b < batch; ++b)
      for (index c = 0; c < C; ++c) dX(argmax[b * C + c], c) = dY(b, c);
  }
};

/// Mean over the valid steps of each sequence and channel (see the top of this file).
template <class T, class Backend = cpu>
class GlobalMeanPool1d {
  static_assert(is_scalar_v<T>, "uvp::nn::GlobalMeanPool1d: T must be float or double");
  static_assert(std::is_same_v<Backend, cpu>,
                "uvp::nn::GlobalMeanPool1d: only the uvp::cpu backend is implemented; use "
                "GlobalMeanPool1d<T, uvp::cpu>");

 public:
  /// X: (batch * seq_len) x C, finite at valid steps; Y: batch x C.
  void forward(ConstMatrixRef<T> X, index batch, index seq_len, Span<const index> lengths, MatrixRef<T> Y) const {
    constexpr const char* where = "uvp::nn::GlobalMeanPool1d::forward";
    const index C = X.cols();
    uvp::detail::check_sequence_batch<T>(where, X, C, batch, seq_len, lengths);
    uvp::detail::check_shape(where, "Y", Y.rows(), Y.cols(), batch, C);
    uvp::detail::check_finite_steps<T>(where, "X", X, batch, seq_len, lengths);
    for (index b = 0; b < batch; ++b) {
      const index n = lengths.empty() ? seq_len : lengths[b];
      auto y = Y.row(b);
      y = X.row(b * seq_len);
      for (index r = b * seq_len + 1; r < b * seq_len + n; ++r) y += X.row(r);
      y *= T(1) / T(n);
    }
  }

  /// Allocating form: returns Y (batch x C).
  Matrix<T> forward(ConstMatrixRef<T> X, index batch, index seq_len, Span<const index> lengths = {}) const {
    Matrix<T> Y(batch > 0 ? batch : 0, X.cols());
    forward(X, batch, seq_len, lengths, Y);
    return Y;
  }

  /// dX(b L + t, c) = dY(b, c) / n_b for t < n_b, 0 at padding steps. dY: batch x C; lengths:
  /// those of forward; dX: (batch * L) x C (written).
  void backward(ConstMatrixRef<T> dY, Span<const index> lengths, MatrixRef<T> dX) const {
    constexpr const char* where = "uvp::nn::GlobalMeanPool1d::backward";
    const index batch = dY.rows();
    const index L = uvp::detail::check_pool_backward_1d(where, batch, dY.cols(), dX.rows(), dX.cols());
    if (batch == 0) {
      uvp::detail::check_size(where, "lengths", lengths.size(), lengths.empty() ? 0 : batch);
      return;
    }
    uvp::detail::check_sequence_batch<T>(where, dX, dX.cols(), batch, L, lengths);
    for (index b = 0; b < batch; ++b) {
      const index n = lengths.empty() ? L : lengths[b];
      const T inv = T(1) / T(n);
      for (index t = 0; t < n; ++t) dX.row(b * L + t) = dY.row(b) * inv;
      dX.middleRows(b * L + n, L - n).setZero();
    }
  }
};

}  // namespace uvp::nn
