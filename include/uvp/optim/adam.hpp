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
//
// AdamW<T> is Adam<T> with torch.optim.AdamW's defaults (decoupled_weight_decay, weight_decay 0.01).
// The rule (detail::AdamRule) is a policy of the shared driver detail::OptimizerBase; its
// per-element update is detail::adam_update_element (detail/adam_math.hpp), the one the CUDA
// backend runs too.
#pragma once

#include <type_traits>

#include "uvp/backend/tags.hpp"
#include "uvp/core/error.hpp"
#include "uvp/core/tensor.hpp"
#include "uvp/detail/adam_math.hpp"
#include "uvp/detail/optimizer_base.hpp"
#include "uvp/optim/optimizer.hpp"

namespace uvp {

// AdamOptions (shared with the CUDA backend) is defined in uvp/detail/adam_math.hpp.

namespace detail {

/// Adam's update rule for OptimizerBase. Slots: 0 = m, 1 = v, 2 = vmax (amsgrad only).
struct AdamRule {
  using options_type = AdamOptions;
  static constexpr OptimizerNames names{"uvp::Adam", "uvp::Adam::step", "uvp::Adam::update",
                                        "uvp::Adam::set_lr", "uvp::Adam::resize"};
  static constexpr int max_states = 3;
  template <class T>
  using coefficients_type = AdamCoefficients<T>;

  static void validate(const AdamOptions& o) {
    check_option_unit_open(names.type, "beta1", o.beta1);
    check_option_unit_open(names.type, "beta2", o.beta2);
    check_option_positive(names.type, "eps", o.eps);
    check_option_non_negative(names.type, "weight_decay", o.weight_decay);
  }
  static double initial_state(const AdamOptions&, int) noexcept { return 0; }
  template <class T>
  static AdamCoefficients<T> coefficients(const AdamOptions& o, double lr, index t) noexcept {
    return adam_coefficients<T>(o, lr, t);
  }

  template <bool Amsgrad>
  struct Kernel {
    using slots = slots_where<true, true, Amsgrad>;
    template <class V>
    static void apply(const AdamCoefficients<V>& c, V& p, V g, V* const* s) noexcept {
      adam_update_element<Amsgrad>(p, g, *s[0], *s[1], s[2], c);
    }
  };
  template <class Visit>
  static void dispatch(const AdamOptions& o, Visit&& visit) {
    if (o.amsgrad)
      visit(Kernel<true>{});
    else
      visit(Kernel<false>{});
  }
};

}  // namespace detail

/// AdamOptions with torch.optim.AdamW's defaults: lr 1e-3, betas (0.9, 0.999), eps 1e-8,
/// weight_decay 0.01, decoupled_weight_decay = true.
inline AdamOptions adamw_options() noexcept {
  AdamOptions o;
  o.weight_decay = 0.01;
  o.decoupled_weight_decay = true;
  return o;
}

/// Adam / AdamW / AMSGrad state for one flat parameter vector of T (float or double).
/// State: m, v (and vmax with amsgrad), each size() elements, 64-byte aligned, allocated on
/// the first step (or by resize) and never again until reset(). The member functions are the
/// driver's (detail::OptimizerBase, contract in optim/optimizer.hpp).
template <class T, class Backend = cpu>
class Adam : public detail::OptimizerBase<T, detail::AdamRule> {
  static_assert(is_scalar_v<T>, "uvp::Adam<T>: T must be float or double");
  static_assert(std::is_same_v<Backend, cpu>,
                "uvp::Adam: only the uvp::cpu backend is implemented; use Adam<T, uvp::cpu>");
  using Base = detail::OptimizerBase<T, detail::AdamRule>;

 public:
  using backend_type = Backend;

  explicit Adam(AdamOptions options = {}) : Base(options) {}

  /// First moment m, second moment v and (with amsgrad, else empty) the running max of v.
  Span<const T> exp_avg() const noexcept { return this->state(0); }
  Span<const T> exp_avg_sq() const noexcept { return this->state(1); }
  Span<const T> max_exp_avg_sq() const noexcept { return this->state(2); }
};

/// AdamW (Loshchilov & Hutter 2019) with torch.optim.AdamW's defaults: an Adam whose options
/// default to adamw_options(). The options must keep decoupled_weight_decay = true (else
/// uvp::invalid_argument: an L2-coupled "AdamW" is Adam).
template <class T, class Backend = cpu>
class AdamW : public Adam<T, Backend> {
 public:
  explicit AdamW(AdamOptions options = adamw_options()) : Adam<T, Backend>(decoupled(options)) {}

 private:
  static AdamOptions decoupled(const AdamOptions& o) {
    if (!o.decoupled_weight_decay)
      detail::raise<invalid_argument>("uvp::AdamW: decoupled_weight_decay must be true, got false "
                                      "(use uvp::Adam for an L2 penalty)");
    return o;
  }
};

}  // namespace uvp
