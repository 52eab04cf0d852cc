// SPDX-License-Identifier: Apache-2.0
// The affine map z = X w + b shared by the linear models: parameters, forward, backward and the
// minibatch training loop.
#pragma once

#include <algorithm>
#include <cmath>
#include <numeric>
#include <vector>

#include "uvp/backend/tags.hpp"
#include "uvp/core/check.hpp"
#include "uvp/core/parameters.hpp"
#include "uvp/core/random.hpp"
#include "uvp/core/tensor.hpp"
#include "uvp/training/fit_options.hpp"

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

/// What the linear models share: the affine core and its accessors, and the checked forward pass
/// behind predict / decision_function.
template <class T>
class LinearModelBase {
 public:
  index n_features() const noexcept { return core_.n_features(); }
  Parameters<T>& parameters() noexcept { return core_.parameters(); }
  const Parameters<T>& parameters() const noexcept { return core_.parameters(); }
  /// Weights w (d) and bias b: views into the flat parameter buffer.
  ConstVectorView<T> coef() const noexcept { return core_.weights(); }
  VectorView<T> coef() noexcept { return core_.weights(); }
  T intercept() const noexcept { return core_.bias(); }
  void set_intercept(T b) noexcept { core_.set_bias(b); }

 protected:
  LinearModelBase(const char* name, index n_features, bool fit_intercept)
      : core_(name, n_features, fit_intercept) {}

  /// X w + b into out (size N), after checking X's shape and values.
  void checked_forward(const char* where, ConstMatrixRef<T> X, VectorRef<T> out) const {
    core_.check_input(where, X);
    check_size(where, "out", out.size(), X.rows());
    core_.forward(X, out);
  }

  AffineCore<T> core_;
};

/// Preallocated buffers of one training run: no allocation per step.
template <class T>
struct MinibatchBuffers {
  Matrix<T> x;   // gathered rows (shuffled runs)
  Vector<T> y, w, z, g;
  std::vector<index> order;

  void reserve(index batch, index d, index n, bool shuffle) {
    z.resize(batch);
    g.resize(batch);
    if (!shuffle) return;  // batches are then views of the caller's rows: nothing to gather
    x.resize(batch, d);
    y.resize(batch);
    w.resize(batch);
    order.resize(std::size_t(n));
    std::iota(order.begin(), order.end(), index(0));
  }
};

/// The minibatch loop shared by the linear models. `step(Xb, yb, wb_or_empty, z, g) -> loss`
/// computes forward, loss and backward into the core's gradient buffer; this loop zeroes grads,
/// adds the L2 term, calls the optimizer and reports each epoch to the callbacks.
template <class T, class Step, class Optimizer, class... Callbacks>
FitResult run_minibatch_fit(const char* where, AffineCore<T>& core, ConstMatrixRef<T> X,
                            ConstVectorRef<T> y, const T* sample_weight, double l2,
                            Optimizer& opt, const FitOptions& options, Step&& step,
                            Callbacks&... callbacks) {
  check_fit_options(where, options);
  check_fit_optimizer(where, opt);
  const index n = X.rows(), d = X.cols();
  const index bs = std::min(options.batch_size, n);
  MinibatchBuffers<T> buf;
  buf.reserve(bs, d, n, options.shuffle);
  Rng rng(options.seed);
  Parameters<T>& p = core.parameters();
  std::vector<T> last_good(p.values().begin(), p.values().end());
  FitResult result;
  auto diverged = [&](index epoch, double loss) {
    std::copy(last_good.begin(), last_good.end(), p.values().begin());
    result.diverged = true;
    result.epochs_run = epoch;
    result.message = str(where, ": training diverged in epoch ", epoch, " (loss ", loss,
                         ", or non-finite parameters); parameters restored to those after the last"
                         " complete epoch (lower the learning rate)");
    return result;
  };

  for (index epoch = 1; epoch <= options.epochs; ++epoch) {
    if (options.shuffle) rng.shuffle(buf.order.begin(), buf.order.end());
    double loss_sum = 0;
    index batches = 0;
    for (index s = 0; s < n; s += bs) {
      const index m = std::min(bs, n - s);
      auto z = buf.z.head(m);
      auto g = buf.g.head(m);
      p.zero_grad();
      double loss;
      if (options.shuffle) {
        for (index r = 0; r < m; ++r) {
          const index src = buf.order[std::size_t(s + r)];
          buf.x.row(r) = X.row(src);
          buf.y[r] = y[src];
          if (sample_weight) buf.w[r] = sample_weight[src];
        }
        loss = step(ConstMatrixRef<T>(buf.x.topRows(m)), ConstVectorRef<T>(buf.y.head(m)),
                    sample_weight ? buf.w.data() : nullptr, z, g);
      } else {
        loss = step(ConstMatrixRef<T>(X.middleRows(s, m)), ConstVectorRef<T>(y.segment(s, m)),
                    sample_weight ? sample_weight + s : nullptr, z, g);
      }
      loss += core.add_l2(l2);
      if (!std::isfinite(loss)) {
        // Any NaN or inf in X makes its batch's loss non-finite, so X is checked here, only when
        // needed, instead of in a separate pass over all of it before training.
        for (index r = 0; r < m; ++r) {
          const index src = options.shuffle ? buf.order[std::size_t(s + r)] : s + r;
          for (index c = 0; c < d; ++c)
            if (!std::isfinite(X(src, c))) {
              std::copy(last_good.begin(), last_good.end(), p.values().begin());
              raise<invalid_argument>(where, ": X has a non-finite value (", X(src, c), ") at row ", src,
                                      ", column ", c);
            }
        }
        return diverged(epoch, loss);
      }
      opt.step(p.values(), Span<const T>(p.grads()));
      loss_sum += loss;
      ++batches;
    }
    if (!p.values().as_vector().allFinite()) return diverged(epoch, loss_sum / double(batches));
    std::copy(p.values().begin(), p.values().end(), last_good.begin());
    result.epochs_run = epoch;
    result.final_train_loss = loss_sum / double(batches);
    EpochReport report{epoch, options.epochs, result.final_train_loss};
    if (!notify_epoch(report, callbacks...)) {
      result.stopped_early = true;
      result.message = str("stopped by a callback after epoch ", epoch);
      return result;
    }
  }
  result.message = str("completed ", options.epochs, " epochs");
  return result;
}

}  // namespace uvp::detail
