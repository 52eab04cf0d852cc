// SPDX-License-Identifier: Apache-2.0
// Learning-rate schedules as small value types (closed forms of PyTorch's schedulers) and apply().
//
// A schedule is an aggregate holding its base learning rate and parameters, with
// `double lr(index step) const`: the learning rate of step `step` (0 = the first step), i.e. what
// PyTorch's scheduler gives after `step` calls of scheduler.step(). Parameters are checked on every
// lr() call (a few comparisons) and bad ones throw uvp::invalid_argument naming them.
//
//   ConstantLr{base_lr}                              base_lr
//   StepLr{base_lr, step_size, gamma}                base_lr * gamma^floor(step / step_size)   (StepLR)
//   CosineLr{base_lr, t_max, eta_min}                eta_min + (base_lr - eta_min) (1 + cos(pi step / t_max)) / 2
//                                                    (CosineAnnealingLR's closed form, Loshchilov &
//                                                    Hutter, "SGDR", ICLR 2017; periodic past t_max)
//   LinearWarmup<Inner>{inner, warmup_steps, start_factor}
//       step < warmup_steps: inner.lr(0) * (start_factor + (1 - start_factor) * step / warmup_steps)
//       afterwards:          inner.lr(step - warmup_steps)
//       (SequentialLR([LinearLR(start_factor, 1, warmup_steps), inner], milestones=[warmup_steps]);
//       Goyal et al., "Accurate, Large Minibatch SGD", 2017)
//
// Usage, once per step before optimizer.step():  uvp::apply(schedule, optimizer, step);
#pragma once

#include <cmath>

#include "uvp/core/config.hpp"
#include "uvp/core/error.hpp"
#include "uvp/optim/optimizer.hpp"

namespace uvp {

namespace detail {
inline void check_schedule_step(const char* where, index step) {
  if (step < 0) raise<invalid_argument>(where, ": step must be >= 0, got ", step);
}
inline void check_schedule_count(const char* where, const char* what, index value) {
  if (value <= 0) raise<invalid_argument>(where, ": ", what, " must be > 0, got ", value);
}
}  // namespace detail

/// The same learning rate at every step.
struct ConstantLr {
  double base_lr = 1e-3;  ///< finite, > 0

  double lr(index step) const {
    detail::check_schedule_step("uvp::ConstantLr::lr", step);
    detail::check_option_positive("uvp::ConstantLr", "base_lr", base_lr);
    return base_lr;
  }
};

/// Multiplies the learning rate by gamma every step_size steps (torch.optim.lr_scheduler.StepLR).
struct StepLr {
  double base_lr = 1e-3;  ///< finite, > 0
  index step_size = 1;    ///< > 0
  double gamma = 0.1;     ///< finite, > 0 (PyTorch's default)

  double lr(index step) const {
    constexpr const char* where = "uvp::StepLr";
    detail::check_schedule_step("uvp::StepLr::lr", step);
    detail::check_option_positive(where, "base_lr", base_lr);
    detail::check_schedule_count(where, "step_size", step_size);
    detail::check_option_positive(where, "gamma", gamma);
    return base_lr * std::pow(gamma, static_cast<double>(step / step_size));
  }
};

/// Cosine annealing from base_lr to eta_min over t_max steps (CosineAnnealingLR's closed form).
struct CosineLr {
  double base_lr = 1e-3;  ///< finite, > 0
  index t_max = 1;        ///< half period in steps, > 0
  double eta_min = 0;     ///< finite, in [0, base_lr]

  double lr(index step) const {
    constexpr const char* where = "uvp::CosineLr";
    detail::check_schedule_step("uvp::CosineLr::lr", step);
    detail::check_option_positive(where, "base_lr", base_lr);
    detail::check_schedule_count(where, "t_max", t_max);
    if (!(eta_min >= 0 && eta_min <= base_lr))
      detail::raise<invalid_argument>(where, ": eta_min must be in [0, base_lr = ", base_lr, "], got ", eta_min);
    const double pi = 3.14159265358979323846;
    return eta_min + (base_lr - eta_min) * (1 + std::cos(pi * static_cast<double>(step) / static_cast<double>(t_max))) / 2;
  }
};

/// Linear warm-up from start_factor * inner.lr(0) to inner.lr(0) over warmup_steps steps, then
/// the inner schedule restarted at step warmup_steps.
template <class Inner>
struct LinearWarmup {
  Inner inner{};
  index warmup_steps = 0;         ///< >= 0 (0: just the inner schedule)
  double start_factor = 1.0 / 3;  ///< in (0, 1] (PyTorch LinearLR's default)

  double lr(index step) const {
    constexpr const char* where = "uvp::LinearWarmup";
    detail::check_schedule_step("uvp::LinearWarmup::lr", step);
    if (warmup_steps < 0)
      detail::raise<invalid_argument>(where, ": warmup_steps must be >= 0, got ", warmup_steps);
    if (!(start_factor > 0 && start_factor <= 1))
      detail::raise<invalid_argument>(where, ": start_factor must be in (0, 1], got ", start_factor);
    if (step >= warmup_steps) return inner.lr(step - warmup_steps);
    const double f = start_factor + (1 - start_factor) * static_cast<double>(step) / static_cast<double>(warmup_steps);
    return inner.lr(0) * f;
  }
};

template <class Inner>
LinearWarmup(Inner, index, double) -> LinearWarmup<Inner>;
template <class Inner>
LinearWarmup(Inner, index) -> LinearWarmup<Inner>;

/// Sets optimizer's learning rate to schedule.lr(step) and returns it.
template <class Schedule, class Optimizer>
double apply(const Schedule& schedule, Optimizer& optimizer, index step) {
  const double lr = schedule.lr(step);
  optimizer.set_lr(lr);
  return lr;
}

}  // namespace uvp
