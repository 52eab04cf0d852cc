// SPDX-License-Identifier: Apache-2.0
// The affine map z = X w + b shared by the linear models: parameters, forward, backward, and the
// layer contract's forms through which uvp::fit (the one minibatch loop) trains them.
#pragma once

#include <algorithm>
#include <cmath>
#include <vector>

#include "uvp/backend/tags.hpp"
#include "uvp/core/check.hpp"
#include "uvp/core/parameters.hpp"
#include "uvp/core/random.hpp"
#include "uvp/core/tensor.hpp"
#include "uvp/nn/layer.hpp"
#include "uvp/nn/module.hpp"
#include "uvp/training/fit.hpp"

namespace uvp::detail {

/// Parameters: w (d values) then b (1 value), in one flat buffer.
template <class T>
class AffineCore {
 public:
  AffineCore() = default;
  AffineCore(const char* name, index n_features, bool fit_intercept)
      : name_(name), d_(n_features), fit_intercept_(fit_intercept) {
    if (n_features < 1)
      raise<invalid_argument>(name, ": n_features must be >= 1, got ", n_features);
    ParameterLayout<T> layout;
    w_ = layout.add(d_);
    b_ = layout.add(1);
    params_.resize(layout.size());
  }

  index n_features() const noexcept { return d_; }
  bool fit_intercept() const noexcept { return fit_intercept_; }
  Parameters<T>& parameters() noexcept { return params_; }
  const Parameters<T>& parameters() const noexcept { return params_; }
  ConstVectorView<T> weights() const noexcept { return {params_.values(w_).data(), d_}; }
  VectorView<T> weights() noexcept { return {params_.values(w_).data(), d_}; }
  T bias() const noexcept { return params_.values(b_)[0]; }
  void set_bias(T b) noexcept { params_.values(b_)[0] = b; }
  const char* name() const noexcept { return name_; }

  void check_shape(const char* where, ConstMatrixRef<T> X) const {
    check_cols(where, "X", X.cols(), d_);
    check_not_empty(where, "X", X.rows());
  }
  void check_input(const char* where, ConstMatrixRef<T> X) const {
    check_shape(where, X);
    check_finite(where, "X", X);
  }

  /// z = X w + b. X: (n, d); z: n. Splits rows across threads for large n.
  void forward(ConstMatrixRef<T> X, VectorRef<T> z) const noexcept {
    const auto w = weights();
    const T b = bias();
#if defined(_OPENMP)
    const index n = X.rows();
    if (n >= 16384) {
#pragma omp parallel for schedule(static)
      for (index s = 0; s < n; s += 4096) {
        const index m = std::min<index>(4096, n - s);
        z.segment(s, m).noalias() = X.middleRows(s, m) * w;
        z.segment(s, m).array() += b;
      }
      return;
    }
#endif
    z.noalias() = X * w;
    z.array() += b;
  }

  /// Accumulates dL/dw = X^T g and dL/db = sum(g) into the gradient buffer. X: (n, d); g: n.
  void backward(ConstMatrixRef<T> X, ConstVectorRef<T> g) noexcept {
    VectorView<T> gw(params_.grads(w_).data(), d_);
    gw.noalias() += X.transpose() * g;
    if (fit_intercept_) params_.grads(b_)[0] += g.sum();
  }

  /// Adds the L2 penalty's gradient l2 * w (never on the bias); returns its value l2/2 |w|^2.
  double add_l2(double l2) noexcept {
    if (l2 == 0) return 0;
    VectorView<T> gw(params_.grads(w_).data(), d_);
    gw += T(l2) * weights();
    return 0.5 * l2 * double(weights().squaredNorm());
  }

 private:
  const char* name_ = "";
  index d_ = 0;
  bool fit_intercept_ = true;
  ParamSlot w_, b_;
  Parameters<T> params_;
};

/// What the linear models share: the affine core and its accessors, the checked forward pass
/// behind predict / decision_function, and the layer contract's forms (forward(X, ctx) /
/// backward(ctx, d_output), see uvp/nn/layer.hpp) through which uvp::fit trains them.
template <class T>
class LinearModelBase {
 public:
  using value_type = T;
  using input_type = ConstMatrixView<T>;
  using output_type = ConstMatrixView<T>;

  /// Per-call state of forward / backward: a view of X and the buffers of z and d_input (they
  /// only grow). One per thread.
  class Context : public NnContextBase {
   private:
    friend class LinearModelBase;
    SavedRows<T> x_;
    Vector<T> z_, g_;
    std::vector<T> dx_;
  };

  index n_features() const noexcept { return core_.n_features(); }
  Parameters<T>& parameters() noexcept { return core_.parameters(); }
  const Parameters<T>& parameters() const noexcept { return core_.parameters(); }
  /// Weights w (d) and bias b: views into the flat parameter buffer.
  ConstVectorView<T> coef() const noexcept { return core_.weights(); }
  VectorView<T> coef() noexcept { return core_.weights(); }
  T intercept() const noexcept { return core_.bias(); }
  void set_intercept(T b) noexcept { core_.set_bias(b); }

  index input_width() const noexcept { return core_.n_features(); }
  index output_width(index) const noexcept { return 1; }

  /// z = X w + b (N x 1, a view owned by ctx, valid until its next forward). X: N x n_features;
  /// its values are not scanned (decision_function / predict do that). Const and thread-safe
  /// with one ctx per thread; keeps a view of X for backward.
  ConstMatrixView<T> forward(ConstMatrixRef<T> X, Context& ctx) const {
    nn_begin_forward(ctx, {{"n_features", core_.n_features()}});
    check_cols(forward_name_, "X", X.cols(), core_.n_features());
    const index n = X.rows();
    if (ctx.z_.size() < n) ctx.z_.resize(n);
    ctx.x_.set(X);
    core_.forward(X, ctx.z_.head(n));
    nn_end_forward(ctx);
    return {ctx.z_.data(), n, 1};
  }

  /// Accumulates dL/dw and dL/db for d_output (N x 1, the gradient of ctx's last forward
  /// output) and returns dL/dX = d_output w^T (N x n_features, owned by ctx).
  ConstMatrixView<T> backward(Context& ctx, ConstMatrixRef<T> d_output) {
    accumulate_gradients(ctx, d_output);
    const index n = d_output.rows(), d = core_.n_features();
    if (index(ctx.dx_.size()) < n * d) ctx.dx_.resize(std::size_t(n * d));
    MatrixView<T> dx(ctx.dx_.data(), n, d);
    dx.noalias() = d_output.col(0) * core_.weights().transpose();
    return {ctx.dx_.data(), n, d};
  }

  /// backward without dL/dX (what uvp::fit calls: the input's gradient is never needed there).
  void accumulate_gradients(Context& ctx, ConstMatrixRef<T> d_output) {
    nn_require_forward(backward_name_, ctx, core_.name());
    const auto X = ctx.x_.view();
    check_shape(backward_name_, "d_output", d_output.rows(), d_output.cols(), X.rows(), 1);
    if (d_output.rows() <= 1 || d_output.outerStride() == 1) {
      core_.backward(X, ConstVectorView<T>(d_output.data(), d_output.rows()));
    } else {
      if (ctx.g_.size() < d_output.rows()) ctx.g_.resize(d_output.rows());
      ctx.g_.head(d_output.rows()) = d_output.col(0);
      core_.backward(X, ctx.g_.head(d_output.rows()));
    }
  }

  /// Zeroes the gradient buffer.
  void zero_grad() noexcept { core_.parameters().zero_grad(); }
  /// Adds the L2 penalty's gradient (options.l2 * w, never on the bias) and returns its value
  /// (l2 / 2) |w|^2: the regulariser uvp::fit adds to every minibatch's loss.
  double add_penalty() noexcept { return core_.add_l2(l2_); }

 protected:
  LinearModelBase(const char* name, index n_features, bool fit_intercept, double l2, const char* forward_name,
                  const char* backward_name)
      : core_(name, n_features, fit_intercept), l2_(l2), forward_name_(forward_name), backward_name_(backward_name) {}

  /// X w + b into out (size N), after checking X's shape and values.
  void checked_forward(const char* where, ConstMatrixRef<T> X, VectorRef<T> out) const {
    core_.check_input(where, X);
    check_size(where, "out", out.size(), X.rows());
    core_.forward(X, out);
  }

  /// The models' minibatch fit: uvp::fit's loop (training/fit.hpp) on (X, y, sample_weight).
  /// options: FitOptions, or TrainOptions<RowData<T>> with validation data and a metric (kept,
  /// not sliced away).
  template <class Loss, class Optimizer, class FitOpts, class... Callbacks>
  FitResult fit_minibatch(const char* where, ConstMatrixRef<T> X, ConstVectorRef<T> y, Span<const T> sample_weight,
                          Loss loss, Optimizer& opt, const FitOpts& options, Callbacks&... callbacks) {
    const RowData<T> data(X, y, sample_weight);
    if constexpr (std::is_same_v<FitOpts, TrainOptions<RowData<T>>>)
      return run_fit(where, *this, data, loss, opt, options, callbacks...);
    else
      return run_fit(where, *this, data, loss, opt, TrainOptions<RowData<T>>(options), callbacks...);
  }

  AffineCore<T> core_;
  double l2_ = 0;
  const char* forward_name_;
  const char* backward_name_;
};

}  // namespace uvp::detail
