// SPDX-License-Identifier: Apache-2.0
// Adam, AdamW and AMSGrad over a flat parameter vector, with PyTorch's update rule, in one SIMD pass.
//
// References: Kingma & Ba, "Adam: A Method for Stochastic Optimization", ICLR 2015;
// Loshchilov & Hutter, "Decoupled Weight Decay Regularization", ICLR 2019 (AdamW);
// Reddi, Kale & Kumar, "On the Convergence of Adam and Beyond", ICLR 2018 (AMSGrad).
// The update is exactly torch.optim.Adam / torch.optim.AdamW (PyTorch 1.13, non-capturable path):
// at step t = steps() (1 on the first step), with g the gradient and p the parameter,
//
//   g <- g + weight_decay * p                      (Adam: L2 penalty, if !decoupled_weight_decay)
//   p <- p * (1 - lr * weight_decay)               (AdamW, if decoupled_weight_decay)
//   m <- beta1 * m + (1 - beta1) * g
//   v <- beta2 * v + (1 - beta2) * g * g
//   vmax <- max(vmax, v)                           (if amsgrad; v_hat = vmax, else v_hat = v)
//   p <- p - lr / (1 - beta1^t) * m / (sqrt(v_hat) / sqrt(1 - beta2^t) + eps)
//
// with m, v, vmax zero before the first step. The scalar coefficients are computed in double and
// rounded to T once per step; the element-wise work is done in T. See optim/optimizer.hpp for the
// member functions every optimizer shares (step over a slice, begin_step / update, reset, ...).
#pragma once

#include <algorithm>
#include <cmath>
#include <type_traits>
#include <vector>

#include "uvp/backend/tags.hpp"
#include "uvp/core/error.hpp"
#include "uvp/core/tensor.hpp"
#include "uvp/detail/aligned_allocator.hpp"
#include "uvp/detail/simd_compat.hpp"
#include "uvp/detail/simd_math.hpp"
#include "uvp/detail/adam_math.hpp"
#include "uvp/optim/optimizer.hpp"

namespace uvp {

// AdamOptions (shared with the CUDA backend) is defined in uvp/detail/adam_math.hpp.

/// Adam / AdamW / AMSGrad state for one flat parameter vector of T (float or double).
/// State: m, v (and vmax with amsgrad), each size() elements, 64-byte aligned, allocated on
/// the first step (or by resize) and never again until reset().
template <class T, class Backend = cpu>
class Adam {
  static_assert(is_scalar_v<T>, "uvp::Adam<T>: T must be float or double");
  static_assert(std::is_same_v<Backend, cpu>,
                "uvp::Adam: only the uvp::cpu backend is implemented; use Adam<T, uvp::cpu>");

 public:
  using value_type = T;
  using backend_type = Backend;
  using options_type = AdamOptions;

  explicit Adam(AdamOptions options = {}) : options_(validated(options)), lr_(options.lr) {}

  const AdamOptions& options() const noexcept { return options_; }
  double lr() const noexcept { return lr_; }
  void set_lr(double lr) {
    detail::check_lr("uvp::Adam::set_lr", lr);
    lr_ = lr;
  }
  index steps() const noexcept { return steps_; }
  index size() const noexcept { return size_; }

  /// First moment m, second moment v and (with amsgrad, else empty) the running max of v.
  Span<const T> exp_avg() const noexcept { return as_span(m_); }
  Span<const T> exp_avg_sq() const noexcept { return as_span(v_); }
  Span<const T> max_exp_avg_sq() const noexcept { return as_span(vmax_); }

  void reset() noexcept {
    m_.clear();
    v_.clear();
    vmax_.clear();
    size_ = 0;
    steps_ = 0;
    lr_ = options_.lr;
  }

  void resize(index n) {
    if (n <= 0) detail::raise<invalid_argument>("uvp::Adam::resize: n must be > 0, got ", n);
    allocate(n);
  }

  /// One step over the whole vector. params: n values (updated in place); grads: n gradients.
  void step(Span<T> params, Span<const T> grads) {
    constexpr const char* where = "uvp::Adam::step";
    if (size_ != 0) detail::check_size(where, "params", params.size(), size_);
    detail::check_step(where, params, grads, 0, size_ == 0 ? params.size() : size_, options_.check_finite);
    if (size_ == 0) allocate(params.size());
    begin_step();
    run(params, grads, 0);
  }

  /// One step over elements [offset, offset + n) of the vector (params, grads: that slice).
  void step(Span<T> params, Span<const T> grads, index offset) {
    detail::check_step("uvp::Adam::step", params, grads, offset, size_, options_.check_finite);
    begin_step();
    run(params, grads, offset);
  }

  /// Counts one step (t <- t + 1) for the update() calls that follow.
  void begin_step() noexcept {
    ++steps_;
    const double t = static_cast<double>(steps_);
    bias_correction1_ = 1 - std::pow(options_.beta1, t);
    bias_correction2_sqrt_ = std::sqrt(1 - std::pow(options_.beta2, t));
  }

  /// Updates elements [offset, offset + n) with the current step's coefficients.
  void update(Span<T> params, Span<const T> grads, index offset) {
    constexpr const char* where = "uvp::Adam::update";
    if (steps_ == 0) detail::raise<invalid_argument>(where, ": no step begun; call begin_step() first");
    detail::check_step(where, params, grads, offset, size_, options_.check_finite);
    run(params, grads, offset);
  }

 private:
  using storage = std::vector<T, detail::aligned_allocator<T>>;

  struct Coefficients {
    T l2, shrink, beta1, one_minus_beta1, beta2, one_minus_beta2, bias_correction2_sqrt, eps,
        neg_step_size;
  };

  // Zeroed state for n parameters, steps() = 0; lr() is kept (a schedule may have set it).
  void allocate(index n) {
    const auto count = static_cast<std::size_t>(n);
    m_.assign(count, T(0));
    v_.assign(count, T(0));
    if (options_.amsgrad) vmax_.assign(count, T(0));
    size_ = n;
    steps_ = 0;
  }

  static AdamOptions validated(const AdamOptions& o) {
    constexpr const char* where = "uvp::Adam";
    detail::check_option_positive(where, "lr", o.lr);
    detail::check_option_unit_open(where, "beta1", o.beta1);
    detail::check_option_unit_open(where, "beta2", o.beta2);
    detail::check_option_positive(where, "eps", o.eps);
    detail::check_option_non_negative(where, "weight_decay", o.weight_decay);
    return o;
  }

  void run(Span<T> params, Span<const T> grads, index offset) noexcept {
    const AdamOptions& o = options_;
    const bool decoupled = o.decoupled_weight_decay;
    const Coefficients c{T(decoupled ? 0.0 : o.weight_decay),
                         T(decoupled ? 1 - lr_ * o.weight_decay : 1.0),
                         T(o.beta1),
                         T(1 - o.beta1),
                         T(o.beta2),
                         T(1 - o.beta2),
                         T(bias_correction2_sqrt_),
                         T(o.eps),
                         T(-(lr_ / bias_correction1_))};
    T* m = m_.data() + offset;
    T* v = v_.data() + offset;
    if (o.amsgrad)
      kernel<true>(params.data(), grads.data(), m, v, vmax_.data() + offset, params.size(), c);
    else
      kernel<false>(params.data(), grads.data(), m, v, nullptr, params.size(), c);
  }

  // The fused loop: one read of p, g, m, v (, vmax) and one write of p, m, v (, vmax) per element.
  // The order of operations follows PyTorch's kernels (add, mul_, add_, addcmul_, addcdiv_).
  template <bool Amsgrad>
  static void kernel(T* p, const T* g, T* m, T* v, T* vmax, index n, const Coefficients& c) noexcept {
    namespace s = detail::simd;
    if constexpr (!s::enabled<T>) {
      for (index i = 0; i < n; ++i) {
        const T gi = g[i] + c.l2 * p[i];
        const T pi = p[i] * c.shrink;
        m[i] = m[i] * c.beta1 + c.one_minus_beta1 * gi;
        v[i] = v[i] * c.beta2 + c.one_minus_beta2 * gi * gi;
        T vh = v[i];
        if constexpr (Amsgrad) vh = vmax[i] = std::max(vmax[i], v[i]);
        const T denom = std::sqrt(vh) / c.bias_correction2_sqrt + c.eps;
        p[i] = pi + c.neg_step_size * (m[i] / denom);
      }
    } else {
      using B = s::batch<T>;
      const B l2(c.l2), shrink(c.shrink), b1(c.beta1), omb1(c.one_minus_beta1), b2(c.beta2),
          omb2(c.one_minus_beta2), bc2(c.bias_correction2_sqrt), eps(c.eps), nss(c.neg_step_size);
      auto body = [&](T* pp, const T* gp, T* mp, T* vp, T* vmaxp) {
        const B p0 = B::load_unaligned(pp);
        const B gi = B::load_unaligned(gp) + l2 * p0;
        const B pi = p0 * shrink;
        const B mi = B::load_unaligned(mp) * b1 + omb1 * gi;
        const B vi = B::load_unaligned(vp) * b2 + omb2 * gi * gi;
        mi.store_unaligned(mp);
        vi.store_unaligned(vp);
        B vh = vi;
        if constexpr (Amsgrad) {
          vh = xsimd::max(B::load_unaligned(vmaxp), vi);
          vh.store_unaligned(vmaxp);
        }
        const B denom = xsimd::sqrt(vh) / bc2 + eps;
        (pi + nss * (mi / denom)).store_unaligned(pp);
      };
      if constexpr (Amsgrad)
        s::for_each_batch<T>(n, body, p, g, m, v, vmax);
      else
        s::for_each_batch<T>(
            n, [&](T* pp, const T* gp, T* mp, T* vp) { body(pp, gp, mp, vp, nullptr); }, p, g, m, v);
    }
  }

  AdamOptions options_;
  double lr_;
  index steps_ = 0;
  index size_ = 0;
  double bias_correction1_ = 1;
  double bias_correction2_sqrt_ = 1;
  storage m_, v_, vmax_;
};

}  // namespace uvp
