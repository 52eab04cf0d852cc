// SPDX-License-Identifier: Apache-2.0
// The one optimizer driver: everything uvp's CPU optimizers share (options, lr, steps, state,
// reset, resize, step over the whole vector or a slice, begin_step / update, argument checks),
// written once, with the update rule a small policy (in the spirit of ensmallen's update
// policies). Adam, Sgd, RmsProp and Adagrad derive from OptimizerBase<T, TheirRule> and add only
// named views of their state.
//
// A rule is a struct with static members only:
//
//   using options_type = XOptions;      plain numbers, including `double lr` and `bool check_finite`
//   static constexpr OptimizerNames names{"uvp::X", "uvp::X::step", ...};   for error messages
//   static constexpr int max_states;    state vectors ("slots") of n elements, at most
//   template <class T> using coefficients_type = XCoefficients<T>;
//   static void validate(const XOptions&);                 raises uvp::invalid_argument
//   static double initial_state(const XOptions&, int slot); what each state element starts at
//   template <class T> static XCoefficients<T> coefficients(const XOptions&, double lr, index t);
//       the per-step scalars of step t >= 1, computed in double and rounded to T once per step;
//       XCoefficients<T> has `template <class U> XCoefficients<U> as() const` (broadcast to a batch)
//   template <class Visit> static void dispatch(const XOptions&, Visit&& visit);
//       calls visit(Kernel{}) once, with the kernel the options select (e.g. amsgrad or not)
//
// and each kernel:
//
//   using slots = slots_where<used0, used1, ...>;   the state slots it reads and writes
//   template <class V> static void apply(const XCoefficients<V>& c, V& p, V g, V* const* s);
//       one element (V = T) or one batch of elements (V = xsimd batch of T): updates p and *s[k]
//       for k in slots (s[k] is null for an unused slot), in PyTorch's order of operations.
//
// The driver runs apply through a scalar loop (targets without SIMD, UVP_NO_SIMD) or through
// simd::for_each_batch (full batches, then the tail on a padded copy through the same batch code).
// The state is allocated by the first full step or resize() (one 64-byte aligned vector per used
// slot) and never again until reset(): steps allocate nothing.
#pragma once

#include <array>
#include <cstddef>
#include <type_traits>
#include <utility>
#include <vector>

#include "uvp/backend/tags.hpp"
#include "uvp/core/error.hpp"
#include "uvp/core/tensor.hpp"
#include "uvp/detail/aligned_allocator.hpp"
#include "uvp/detail/lane_ops.hpp"
#include "uvp/detail/simd_compat.hpp"
#include "uvp/detail/simd_math.hpp"
#include "uvp/optim/optimizer.hpp"

namespace uvp::detail {

/// The names an optimizer's error messages start with ("uvp::Adam::step: grads has size 5, ...").
struct OptimizerNames {
  const char* type;    ///< "uvp::Adam": option checks
  const char* step;    ///< "uvp::Adam::step"
  const char* update;  ///< "uvp::Adam::update"
  const char* set_lr;  ///< "uvp::Adam::set_lr"
  const char* resize;  ///< "uvp::Adam::resize"
};

/// xsimd batches: max lane by lane, one instruction. Operands swapped because x86's maxps / maxpd
/// return their second operand when either is NaN, which makes this exactly a < b ? b : a there
/// (other ISAs' max may treat NaN lanes their own way).
template <class T, class A>
struct LaneOps<xsimd::batch<T, A>> {
  static xsimd::batch<T, A> max(const xsimd::batch<T, A>& a, const xsimd::batch<T, A>& b) noexcept {
    return xsimd::max(b, a);
  }
};

namespace optimizer_detail {

template <int Pos, class Seq, bool... Use>
struct select_slots {
  using type = Seq;
};
template <int Pos, int... S, bool First, bool... Rest>
struct select_slots<Pos, std::integer_sequence<int, S...>, First, Rest...> {
  using type = typename select_slots<
      Pos + 1, std::conditional_t<First, std::integer_sequence<int, S..., Pos>, std::integer_sequence<int, S...>>,
      Rest...>::type;
};

template <int... S>
constexpr bool in(int slot, std::integer_sequence<int, S...>) noexcept {
  return ((S == slot) || ... || false);
}

}  // namespace optimizer_detail

/// The slot numbers k whose Use_k is true: slots_where<true, false, true> = <0, 2>.
template <bool... Use>
using slots_where = typename optimizer_detail::select_slots<0, std::integer_sequence<int>, Use...>::type;

/// The driver; see the top of this file and optim/optimizer.hpp for the member functions.
template <class T, class Rule>
class OptimizerBase {
  static_assert(is_scalar_v<T>, "uvp optimizers: T must be float or double");

 public:
  using value_type = T;
  using options_type = typename Rule::options_type;

  explicit OptimizerBase(const options_type& options) : options_(validated(options)), lr_(options.lr) {}

  const options_type& options() const noexcept { return options_; }
  double lr() const noexcept { return lr_; }
  void set_lr(double lr) {
    check_lr(Rule::names.set_lr, lr);
    lr_ = lr;
  }
  index steps() const noexcept { return steps_; }
  index size() const noexcept { return size_; }

  void reset() noexcept {
    for (auto& s : state_) s.clear();
    size_ = 0;
    steps_ = 0;
    lr_ = options_.lr;
  }

  void resize(index n) {
    if (n <= 0) raise<invalid_argument>(Rule::names.resize, ": n must be > 0, got ", n);
    allocate(n);
  }

  /// One step over the whole vector. params: n values (updated in place); grads: n gradients.
  void step(Span<T> params, Span<const T> grads) {
    const char* where = Rule::names.step;
    if (size_ != 0) check_size(where, "params", params.size(), size_);
    check_step(where, params, grads, 0, size_ == 0 ? params.size() : size_, options_.check_finite);
    if (size_ == 0) allocate(params.size());
    begin_step();
    run(params, grads, 0);
  }

  /// One step over elements [offset, offset + n) of the vector (params, grads: that slice).
  void step(Span<T> params, Span<const T> grads, index offset) {
    check_step(Rule::names.step, params, grads, offset, size_, options_.check_finite);
    begin_step();
    run(params, grads, offset);
  }

  /// Counts one step (t <- t + 1) and computes its coefficients for the update() calls that follow.
  void begin_step() noexcept {
    ++steps_;
    refresh();
  }

  /// Updates elements [offset, offset + n) with the current step's coefficients.
  void update(Span<T> params, Span<const T> grads, index offset) {
    const char* where = Rule::names.update;
    if (steps_ == 0) raise<invalid_argument>(where, ": no step begun; call begin_step() first");
    check_step(where, params, grads, offset, size_, options_.check_finite);
    run(params, grads, offset);
  }

 protected:
  ~OptimizerBase() = default;
  OptimizerBase(const OptimizerBase&) = default;
  OptimizerBase(OptimizerBase&&) noexcept = default;
  OptimizerBase& operator=(const OptimizerBase&) = default;
  OptimizerBase& operator=(OptimizerBase&&) noexcept = default;

  /// State slot k (empty when the options do not use it, or before the state is sized).
  Span<const T> state(int slot) const noexcept { return as_span(state_[static_cast<std::size_t>(slot)]); }

 private:
  using storage = std::vector<T, aligned_allocator<T>>;
  using coefficients = typename Rule::template coefficients_type<T>;
  using batch = simd::batch<T>;
  template <int>
  using pointer = T*;
  static constexpr std::size_t kSlots = Rule::max_states > 0 ? static_cast<std::size_t>(Rule::max_states) : 1;

  static options_type validated(const options_type& o) {
    check_option_positive(Rule::names.type, "lr", o.lr);
    Rule::validate(o);
    return o;
  }

  // The state the options' kernel uses, each element at the rule's initial value; steps() = 0,
  // lr() kept (a schedule may have set it).
  void allocate(index n) {
    Rule::dispatch(options_, [&](auto kernel) {
      using Slots = typename decltype(kernel)::slots;
      for (int k = 0; k < Rule::max_states; ++k) {
        auto& s = state_[static_cast<std::size_t>(k)];
        if (optimizer_detail::in(k, Slots{}))
          s.assign(static_cast<std::size_t>(n), T(Rule::initial_state(options_, k)));
        else
          s.clear();
      }
    });
    size_ = n;
    steps_ = 0;
  }

  void refresh() noexcept {
    coefficients_ = Rule::template coefficients<T>(options_, lr_, steps_);
    coefficients_lr_ = lr_;
  }

  void run(Span<T> params, Span<const T> grads, index offset) noexcept {
    if (coefficients_lr_ != lr_) refresh();  // set_lr between begin_step() and update()
    Rule::dispatch(options_, [&](auto kernel) {
      using Kernel = decltype(kernel);
      loop<Kernel>(params.data(), grads.data(), params.size(), offset, typename Kernel::slots{});
    });
  }

  // One read of p, g and the used state, one write of p and the used state, per element.
  template <class Kernel, int... S>
  void loop(T* p, const T* g, index n, index offset, std::integer_sequence<int, S...>) noexcept {
    T* base[kSlots] = {};
    ((base[S] = state_[S].data() + offset), ...);
    (void)offset;  // a kernel without state
    if constexpr (!simd::enabled<T>) {
      const coefficients& c = coefficients_;
      for (index i = 0; i < n; ++i) {
        T* s[kSlots] = {};
        ((s[S] = base[S] + i), ...);
        Kernel::apply(c, p[i], g[i], s);
      }
    } else {
      const auto c = coefficients_.template as<batch>();
      simd::for_each_batch<T>(
          n, [&](T* pp, const T* gp, pointer<S>... sp) { batch_body<Kernel, S...>(c, pp, gp, sp...); }, p, g,
          base[S]...);
    }
  }

  // Loads, update, stores; the state is stored before p, which GCC 12 schedules best (a measured
  // 7% on a 2^20-element float SGD step against the other order).
  template <class Kernel, int... S, class C>
  static void batch_body(const C& c, T* pp, const T* gp, pointer<S>... sp) noexcept {
    batch sv[kSlots];
    batch* s[kSlots] = {};
    ((sv[S] = batch::load_unaligned(sp), s[S] = &sv[S]), ...);
    batch pv = batch::load_unaligned(pp);
    Kernel::apply(c, pv, batch::load_unaligned(gp), s);
    (sv[S].store_unaligned(sp), ...);
    pv.store_unaligned(pp);
  }

  options_type options_;
  double lr_;
  index steps_ = 0;
  index size_ = 0;
  coefficients coefficients_{};
  double coefficients_lr_ = -1;
  std::array<storage, static_cast<std::size_t>(Rule::max_states)> state_;
};

}  // namespace uvp::detail
