// SPDX-License-Identifier: Apache-2.0
// What the layer-contract forms of the matrix -> matrix blocks (Dense, the activations, Dropout,
// LayerNorm) share: the part of their Context that keeps a view of the forward's input and owns
// the output and input-gradient buffers, and the checks of a BlockSpec's kind.
#pragma once

#include "uvp/core/check.hpp"
#include "uvp/core/error.hpp"
#include "uvp/core/gemm.hpp"
#include "uvp/core/tensor.hpp"
#include "uvp/detail/nn_rows.hpp"
#include "uvp/nn/layer.hpp"
#include "uvp/nn/module.hpp"

namespace uvp::detail {

/// True when the strided matrix m lies (partly) in buf's storage.
template <class T>
bool nn_in_buffer(const Eigen::Ref<const Matrix<T>>& m, const NnBuffer<T>& buf) noexcept {
  return buf.capacity() > 0 &&
         ranges_overlap(m.data(), m.rows(), m.outerStride(), m.cols(), buf.data(), index(1), buf.capacity(),
                        buf.capacity());
}

/// A matrix block's forward input (a view) and its output and input-gradient buffers, which only
/// grow: no allocation once the largest batch has been seen.
template <class T>
struct NnMatrixIo {
  SavedRows<T> x;
  NnBuffer<T> y, dx;
  index y_cols = 0;

  /// The output of the last forward (x.rows x y_cols).
  ConstMatrixView<T> output() const noexcept { return {y.data(), x.rows, y_cols}; }

  /// Contract forward: marks ctx invalid, saves x, runs run(Y) on the output buffer sized
  /// (x.rows(), cols), marks ctx complete and returns the output. x must not lie in this
  /// context's own buffers (the buffer may move when it grows, and x would be overwritten).
  template <class F>
  ConstMatrixView<T> forward(NnContextBase& ctx, const NnBlockShape& shape, const char* where,
                             const Eigen::Ref<const Matrix<T>>& in, index cols, F&& run) {
    nn_begin_forward(ctx, shape);  // invalid until this forward completes
    if (nn_in_buffer<T>(in, y) || nn_in_buffer<T>(in, dx))
      raise<invalid_argument>(where, ": x lies in the context's own buffers (the output or gradient of its last "
                              "pass); give this forward another context");
    x.set(in);
    y_cols = 0;
    run(y.matrix(in.rows(), cols));
    y_cols = cols;
    nn_end_forward(ctx);
    return output();
  }

  /// Contract backward: requires ctx's forward (of a block of `shape`, when given), checks
  /// d_output against the output's shape, runs run(dX) on the input-gradient buffer sized as x
  /// and returns dX.
  template <class F>
  ConstMatrixView<T> backward(const NnContextBase& ctx, const NnBlockShape* shape, const char* where,
                              const char* block, const Eigen::Ref<const Matrix<T>>& d_output, F&& run) {
    nn_require_forward(where, ctx, block, shape);
    check_shape(where, "d_output", d_output.rows(), d_output.cols(), x.rows, y_cols);
    if (nn_in_buffer<T>(d_output, dx))
      raise<invalid_argument>(where, ": d_output lies in the context's own input-gradient buffer (the result of "
                              "its last backward); copy it first");
    run(dx.matrix(x.rows, x.cols));
    return {dx.data(), x.rows, x.cols};
  }
};

/// uvp::format_error unless s is a spec of `kind`.
inline void nn_check_spec_kind(const char* where, const nn::BlockSpec& s, const char* kind) {
  if (s.kind != kind) raise<format_error>(where, ": the spec is of kind '", s.kind, "', expected '", kind, "'");
}

/// uvp::shape_error for an output_width(in) of a block that takes `expected` features.
[[noreturn]] inline void nn_width_mismatch(const char* where, const char* block, index in, index expected) {
  raise<shape_error>(where, ": ", block, " takes ", expected, " input features, got ", in);
}

/// uvp::shape_error unless in is a width (>= 0) or -1 (not known).
inline void nn_check_width(const char* where, index in) {
  if (in < -1) raise<shape_error>(where, ": in = ", in, " is not a width (>= 0, or -1: not known)");
}

/// The largest size a BlockSpec may give a block dimension: products of two stay in an index.
inline constexpr index nn_spec_max_size = (index(1) << 31) - 1;

}  // namespace uvp::detail
