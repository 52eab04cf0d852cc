// SPDX-License-Identifier: Apache-2.0
// Adagrad over a flat parameter vector, as torch.optim.Adagrad.
//
// Reference: Duchi, Hazan & Singer, "Adaptive Subgradient Methods for Online Learning and
// Stochastic Optimization", JMLR 12, 2011. The update is exactly torch.optim.Adagrad (PyTorch
// 1.13, dense gradients, foreach=False): at step t = steps() (1 on the first step), with g the
// gradient, p the parameter and s the running sum of g^2,
//
//   clr = lr / (1 + (t - 1) * lr_decay)            (in double, once per step)
//   g <- g + weight_decay * p
//   s <- s + g * g
//   p <- p - clr * g / (sqrt(s) + eps)
//
// with s = initial_accumulator_value before the first step. With step(params, grads, offset),
// clr uses the global step count t, as for every slice of one step; the slice's s alone changes.
// See optim/optimizer.hpp for the member functions every optimizer shares.
#pragma once

#include <cmath>
#include <type_traits>

#include "uvp/backend/tags.hpp"
#include "uvp/core/error.hpp"
#include "uvp/core/tensor.hpp"
#include "uvp/detail/optimizer_base.hpp"
#include "uvp/detail/rounding_math.hpp"
#include "uvp/optim/optimizer.hpp"

namespace uvp {

/// Options of uvp::Adagrad; the defaults are PyTorch's.
struct AdagradOptions {
  double lr = 1e-2;                      ///< learning rate, > 0
  double lr_decay = 0;                   ///< step t uses lr / (1 + (t - 1) lr_decay); >= 0
  double weight_decay = 0;               ///< L2 penalty added to the gradient, >= 0
  double initial_accumulator_value = 0;  ///< the sum of squares before the first step, >= 0
  double eps = 1e-10;                    ///< added to the denominator, > 0
  bool check_finite = false;             ///< true: throw uvp::numeric_error on NaN / inf gradients
};

namespace detail {

/// The per-step scalars of one Adagrad step, rounded to T (or broadcast to a batch of T).
template <class T>
struct AdagradCoefficients {
  T weight_decay, eps, neg_clr;

  template <class U>
  AdagradCoefficients<U> as() const noexcept {
    return {U(weight_decay), U(eps), U(neg_clr)};
  }
};

/// One element (or batch) of one Adagrad step: updates p and s in place, in PyTorch's order of
/// operations (add, addcmul_, sqrt, add_, addcdiv_).
template <class T>
inline void adagrad_update_element(T& p, T g, T& s, const AdagradCoefficients<T>& c) noexcept {
  using std::sqrt;
  const T gi = rn_add(g, rn_mul(c.weight_decay, p));
  s = rn_add(s, rn_mul(gi, gi));
  p = rn_add(p, rn_mul(c.neg_clr, gi / rn_add(sqrt(s), c.eps)));
}

/// Adagrad's update rule for OptimizerBase. Slot 0 = s (sum).
struct AdagradRule {
  using options_type = AdagradOptions;
  static constexpr OptimizerNames names{"uvp::Adagrad", "uvp::Adagrad::step", "uvp::Adagrad::update",
                                        "uvp::Adagrad::set_lr", "uvp::Adagrad::resize"};
  static constexpr int max_states = 1;
  template <class T>
  using coefficients_type = AdagradCoefficients<T>;

  static void validate(const AdagradOptions& o) {
    check_option_non_negative(names.type, "lr_decay", o.lr_decay);
    check_option_non_negative(names.type, "weight_decay", o.weight_decay);
    check_option_non_negative(names.type, "initial_accumulator_value", o.initial_accumulator_value);
    check_option_positive(names.type, "eps", o.eps);
  }
  static double initial_state(const AdagradOptions& o, int) noexcept { return o.initial_accumulator_value; }
  template <class T>
  static AdagradCoefficients<T> coefficients(const AdagradOptions& o, double lr, index t) noexcept {
    const double clr = lr / (1 + static_cast<double>(t - 1) * o.lr_decay);
    return {T(o.weight_decay), T(o.eps), T(-clr)};
  }

  struct Kernel {
    using slots = slots_where<true>;
    template <class V>
    static void apply(const AdagradCoefficients<V>& c, V& p, V g, V* const* s) noexcept {
      adagrad_update_element(p, g, *s[0], c);
    }
  };
  template <class Visit>
  static void dispatch(const AdagradOptions&, Visit&& visit) {
    visit(Kernel{});
  }
};

}  // namespace detail

/// Adagrad state for one flat parameter vector of T (float or double). State: the sum of squared
/// gradients, size() elements, 64-byte aligned, initial_accumulator_value before the first step,
/// allocated on the first step (or by resize) and never again until reset(). The member
/// functions are the driver's (detail::OptimizerBase, contract in optim/optimizer.hpp).
template <class T, class Backend = cpu>
class Adagrad : public detail::OptimizerBase<T, detail::AdagradRule> {
  static_assert(is_scalar_v<T>, "uvp::Adagrad<T>: T must be float or double");
  static_assert(std::is_same_v<Backend, cpu>,
                "uvp::Adagrad: only the uvp::cpu backend is implemented; use Adagrad<T, uvp::cpu>");
  using Base = detail::OptimizerBase<T, detail::AdagradRule>;

 public:
  using backend_type = Backend;

  explicit Adagrad(AdagradOptions options = {}) : Base(options) {}

  /// The running sum of squared gradients (PyTorch's state['sum']).
  Span<const T> sum() const noexcept { return this->state(0); }
};

}  // namespace uvp
