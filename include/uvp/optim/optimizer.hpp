// SPDX-License-Identifier: Apache-2.0
// The contract every uvp optimizer (Sgd, Adam, AdamW, RmsProp, Adagrad) fulfils, and the argument
// checks they share.
//
// An optimizer is an Options struct (plain numbers with documented defaults) plus a class
// template `X<T, Backend = cpu>` holding the per-run state for ONE flat parameter vector
// (a model's `uvp::Parameters<T>`, see docs/optim.md). On the CPU every one of them is the one
// driver detail::OptimizerBase<T, XRule> (uvp/detail/optimizer_base.hpp) with its update rule as
// a policy; the CUDA specialisations (backend/cuda/) follow the same contract. It provides:
//
//   using value_type = T;  using options_type = XOptions;
//   explicit X(XOptions o = {});        validates o: uvp::invalid_argument naming option and value
//   const XOptions& options() const;    as constructed
//   double lr() const;                  the learning rate of the next step (starts at options().lr)
//   void set_lr(double lr);             what schedules call; lr >= 0 and finite
//   index steps() const;                steps begun since construction / reset()
//   index size() const;                 parameters the state is sized for (0 until sized)
//   void reset();                       forgets the state: size 0, steps 0, lr = options().lr
//   void resize(index n);               zeroed state for n parameters, steps() = 0, lr() kept
//   void step(Span<T> params, Span<const T> grads);
//       one step over the whole vector; the first sizes the state (the only allocation),
//       later ones must have the same size (else uvp::shape_error)
//   void step(Span<T> params, Span<const T> grads, index offset);
//       one step that updates params (= elements [offset, offset + n) of the whole vector) and
//       only that slice of the state; the rest of the state is left as it is ("lazy" updates,
//       as torch.optim.SparseAdam does for embedding rows). The state must be sized first.
//   void begin_step();  void update(Span<T> params, Span<const T> grads, index offset);
//       step(...) split in two, for several disjoint slices in one step: begin_step() counts
//       the step once, then update() each slice.
//
// params and grads must not overlap. Options with check_finite = true scan grads before
// touching anything and throw uvp::numeric_error on a NaN / infinity (one extra read of grads);
// by default non-finite gradients propagate into params, as in PyTorch.
#pragma once

#include <cmath>

#include "uvp/backend/cpu/elementwise.hpp"
#include "uvp/core/check.hpp"
#include "uvp/core/error.hpp"
#include "uvp/core/tensor.hpp"

namespace uvp::detail {

/// value must be finite and > 0.
inline void check_option_positive(const char* where, const char* what, double value) {
  if (!(value > 0) || !std::isfinite(value))
    raise<invalid_argument>(where, ": ", what, " must be finite and > 0, got ", value);
}

/// value must be finite and >= 0.
inline void check_option_non_negative(const char* where, const char* what, double value) {
  if (!(value >= 0) || !std::isfinite(value))
    raise<invalid_argument>(where, ": ", what, " must be finite and >= 0, got ", value);
}

/// value must lie in [0, 1) (betas).
inline void check_option_unit_open(const char* where, const char* what, double value) {
  if (!(value >= 0 && value < 1))
    raise<invalid_argument>(where, ": ", what, " must be in [0, 1), got ", value);
}

/// value must lie in [0, 1] (momentum, dampening).
inline void check_option_unit_closed(const char* where, const char* what, double value) {
  if (!(value >= 0 && value <= 1))
    raise<invalid_argument>(where, ": ", what, " must be in [0, 1], got ", value);
}

/// The learning rate a schedule sets: finite and >= 0 (0 is reached by e.g. cosine annealing).
inline void check_lr(const char* where, double lr) {
  if (!(lr >= 0) || !std::isfinite(lr))
    raise<invalid_argument>(where, ": lr must be finite and >= 0, got ", lr);
}

/// Checks one step's arguments against a state of `state_size` elements before anything is
/// modified, so that a throwing step leaves params and state as they were.
template <class T>
void check_step(const char* where, Span<T> params, Span<const T> grads, index offset,
                index state_size, bool check_finite_grads) {
  check_not_empty(where, "params", params.size());
  check_size(where, "grads", grads.size(), params.size());
  if (state_size == 0)
    raise<invalid_argument>(where, ": the state is not sized; call resize(n) or take a full step first");
  if (offset < 0 || offset > state_size - params.size())
    raise<out_of_range_error>(where, ": slice [", offset, ", ", offset + params.size(),
                              ") is outside the state of size ", state_size);
  if (check_finite_grads && !kernels::all_finite(grads.data(), grads.size())) {
    for (index i = 0; i < grads.size(); ++i)
      if (!std::isfinite(grads[i]))
        raise<numeric_error>(where, ": grads has a non-finite value (", grads[i], ") at flat index ", i);
  }
}

}  // namespace uvp::detail
