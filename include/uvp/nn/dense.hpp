// SPDX-License-Identifier: Apache-2.0
// Fully connected layer (torch.nn.Linear): Y = X W^T + b.
//
//   X  (n, in)      input, one sample per row
//   W  (out, in)    tensor "weight"       b  (out)  tensor "bias" (optional)
//   Y  (n, out)     Y = X W^T + 1 b^T
//
// Backward, from dY (n, out):  dW += dY^T X,  db += colsum(dY)  (accumulated, as PyTorch's
// .grad), and dX = dY W (written). Initialisation is PyTorch's default for nn.Linear:
// kaiming_uniform_(a = sqrt(5)) for W, which is U(-1/sqrt(in), 1/sqrt(in)), and the same
// U(-1/sqrt(in), 1/sqrt(in)) for b.
//
// The layer contract (uvp/nn/layer.hpp) is the API: Y = forward(X, ctx) returns a view of Y
// owned by ctx (which keeps a view of X), and dX = backward(ctx, dY) accumulates dW, db and
// returns a view of dX owned by ctx; ctx's buffers only grow. spec() / from_spec() give and take
// {in_features, out_features, bias}. The low-level forms below them take explicit buffers (and X
// again in backward); both run the same code.
#pragma once

#include <cmath>
#include <type_traits>

#include "uvp/backend/tags.hpp"
#include "uvp/core/check.hpp"
#include "uvp/core/gemm.hpp"
#include "uvp/core/init.hpp"
#include "uvp/core/random.hpp"
#include "uvp/core/tensor.hpp"
#include "uvp/detail/nn_matrix_io.hpp"
#include "uvp/detail/nn_rows.hpp"
#include "uvp/detail/row_product_math.hpp"
#include "uvp/nn/layer.hpp"
#include "uvp/nn/module.hpp"

namespace uvp::nn {

template <class T, class Backend = cpu>
class Dense : public Block<T> {
  static_assert(std::is_same_v<Backend, cpu>,
                "uvp::nn::Dense: only the uvp::cpu backend is implemented; use Dense<T, uvp::cpu>");

 public:
  using backend_type = Backend;
  using input_type = ConstMatrixView<T>;
  using output_type = ConstMatrixView<T>;
  static constexpr const char* kind = "Dense";

  /// What forward leaves for backward: a view of X, the Y and dX buffers (they only grow).
  class Context : public uvp::detail::NnContextBase {
    friend class Dense;
    uvp::detail::NnMatrixIo<T> io_;
  };

  /// in_features, out_features > 0. bias = false: no "bias" tensor (torch's bias=False).
  Dense(index in_features, index out_features, Rng& rng, bool bias = true)
      : in_(in_features), out_(out_features), has_bias_(bias) {
    uvp::detail::check_positive("uvp::nn::Dense", "in_features", in_features);
    uvp::detail::check_positive("uvp::nn::Dense", "out_features", out_features);
    weight_ = this->add_tensor("weight", {out_features, in_features});
    if (bias) bias_ = this->add_tensor("bias", {out_features});
    this->allocate_parameters();
    const double bound = 1.0 / std::sqrt(double(in_features));
    init::uniform(this->values(this->tensors()[weight_]), -bound, bound, rng);
    if (bias) init::uniform(this->values(this->tensors()[bias_]), -bound, bound, rng);
  }

  // ---- The layer contract -----------------------------------------------------------------

  index input_width() const noexcept { return in_; }
  /// out_features; uvp::shape_error if in (-1: not known) is not in_features.
  index output_width(index in) const {
    if (in != -1 && in != in_) uvp::detail::nn_width_mismatch("uvp::nn::Dense::output_width", "Dense", in, in_);
    return out_;
  }

  /// Y = X W^T + b for X (n, in), finite. Returns Y (n, out), owned by ctx and valid until its
  /// next forward; ctx keeps a view of X, which must stay alive and unchanged until backward.
  ConstMatrixView<T> forward(ConstMatrixRef<T> X, Context& ctx) const {
    return ctx.io_.forward(ctx, shape(), "uvp::nn::Dense::forward", X, out_, [&](MatrixRef<T> Y) { forward(X, Y); });
  }

  /// From dY (n, out), the gradient of ctx's last forward's output: dW += dY^T X, db +=
  /// colsum(dY); returns dX = dY W (n, in), owned by ctx.
  ConstMatrixView<T> backward(Context& ctx, ConstMatrixRef<T> dY) {
    const auto s = shape();
    auto& io = ctx.io_;
    return io.backward(ctx, &s, "uvp::nn::Dense::backward", "Dense", dY,
                       [&](MatrixRef<T> dX) { backward(io.x.view(), dY, dX); });
  }

  /// {in_features, out_features, bias}.
  BlockSpec spec() const {
    return BlockSpec(kind)
        .set("in_features", double(in_))
        .set("out_features", double(out_))
        .set("bias", has_bias_ ? 1 : 0);
  }
  /// The Dense of spec s (weights from a fixed seed: load them after). uvp::format_error for a
  /// spec of another kind or a missing argument, the constructor's error for a bad one.
  static Dense from_spec(const BlockSpec& s) {
    constexpr const char* where = "uvp::nn::Dense::from_spec";
    uvp::detail::nn_check_spec_kind(where, s, kind);
    Rng rng(0);
    constexpr index lo = -uvp::detail::nn_spec_max_size, hi = uvp::detail::nn_spec_max_size;
    // One argument at a time: a missing one is reported in the spec's order.
    const index in = s.get_index("in_features", lo, hi), out = s.get_index("out_features", lo, hi);
    return Dense(in, out, rng, s.get_bool("bias"));
  }

  // ---- Accessors and the low-level forms ---------------------------------------------------

  index in_features() const noexcept { return in_; }
  index out_features() const noexcept { return out_; }
  bool has_bias() const noexcept { return has_bias_; }
  /// Output columns for an input of `in_cols` columns (what Sequential sizes its buffers with).
  index output_cols(index /*in_cols*/) const noexcept { return out_; }

  /// W as an (out, in) matrix view into the parameter buffer.
  MatrixView<T> weight() noexcept { return {this->values(this->tensors()[weight_]).data(), out_, in_}; }
  ConstMatrixView<T> weight() const noexcept {
    return {this->values(this->tensors()[weight_]).data(), out_, in_};
  }
  /// b (out); empty when constructed without bias.
  Span<T> bias() noexcept { return has_bias_ ? this->values(this->tensors()[bias_]) : Span<T>(); }
  Span<const T> bias() const noexcept {
    return has_bias_ ? this->values(this->tensors()[bias_]) : Span<const T>();
  }
  /// Accumulated gradients of W (out, in) and b (out; empty without bias).
  ConstMatrixView<T> weight_grad() const noexcept {
    return {this->grads(this->tensors()[weight_]).data(), out_, in_};
  }
  Span<const T> bias_grad() const noexcept {
    return has_bias_ ? this->grads(this->tensors()[bias_]) : Span<const T>();
  }

  /// Y = X W^T + b. X: (n, in), finite; Y: (n, out), must not overlap X. Thread-safe. Each row
  /// of Y is bit for bit the same whatever n and the thread count (detail/row_product_math.hpp).
  void forward(ConstMatrixRef<T> X, MatrixRef<T> Y) const {
    constexpr const char* where = "uvp::nn::Dense::forward";
    uvp::detail::check_cols(where, "X", X.cols(), in_);
    uvp::detail::check_shape(where, "Y", Y.rows(), Y.cols(), X.rows(), out_);
    if (uvp::detail::ranges_overlap(Y.data(), Y.rows(), Y.outerStride(), Y.cols(), X.data(), X.rows(),
                                    X.outerStride(), X.cols()))
      uvp::detail::raise<invalid_argument>(where, ": Y overlaps X (the output must not alias the input)");
    uvp::detail::nn_check_finite<T>(where, "X", X);
    if (X.rows() == 0) return;
    // One kernel for any number of rows: a row's result does not depend on the batch around it.
    uvp::detail::row_product_wt<T>(X, weight().data(), out_, has_bias_ ? bias().data() : nullptr, Y);
  }

  /// Allocating form: returns X W^T + b as a new (n, out) matrix.
  Matrix<T> forward(ConstMatrixRef<T> X) const {
    Matrix<T> Y(X.rows(), out_);
    forward(X, Y);
    return Y;
  }

  /// Parameter gradients only: dW += dY^T X, db += colsum(dY). X: the forward input (n, in);
  /// dY: (n, out).
  void backward(ConstMatrixRef<T> X, ConstMatrixRef<T> dY) {
    check_backward("uvp::nn::Dense::backward", X, dY);
    accumulate(X, dY);
  }

  /// As above, and writes dX = dY W (n, in); dX must not overlap X or dY.
  void backward(ConstMatrixRef<T> X, ConstMatrixRef<T> dY, MatrixRef<T> dX) {
    constexpr const char* where = "uvp::nn::Dense::backward";
    check_backward(where, X, dY);
    uvp::detail::check_shape(where, "dX", dX.rows(), dX.cols(), X.rows(), in_);
    accumulate(X, dY);
    if (X.rows() == 0) return;
    const uvp::detail::NnSerialGemm serial(work(X.rows()));
    dX.noalias() = dY * weight();
  }

 private:
  void check_backward(const char* where, const ConstMatrixRef<T>& X, const ConstMatrixRef<T>& dY) const {
    uvp::detail::check_cols(where, "X", X.cols(), in_);
    uvp::detail::check_shape(where, "dY", dY.rows(), dY.cols(), X.rows(), out_);
  }

  void accumulate(const ConstMatrixRef<T>& X, const ConstMatrixRef<T>& dY) {
    if (X.rows() == 0) return;
    MatrixView<T> gW(this->grads(this->tensors()[weight_]).data(), out_, in_);
    {
      const uvp::detail::NnSerialGemm serial(work(X.rows()));
      gW.noalias() += dY.transpose() * X;
    }
    if (has_bias_) {
      // Row by row: a column-wise sum of a row-major matrix would walk it with a stride.
      auto gb = this->grads(this->tensors()[bias_]).as_vector();
      for (index r = 0; r < dY.rows(); ++r) gb += dY.row(r).transpose();
    }
  }

  uvp::detail::NnBlockShape shape() const noexcept { return {{"in_features", in_}, {"out_features", out_}}; }

  double work(index rows) const noexcept { return double(rows) * double(in_) * double(out_); }

  index in_, out_;
  bool has_bias_;
  std::size_t weight_ = 0, bias_ = 0;
};

/// PyTorch's name for the same layer.
template <class T, class Backend = cpu>
using Linear = Dense<T, Backend>;

}  // namespace uvp::nn
