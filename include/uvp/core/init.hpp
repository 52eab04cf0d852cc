// SPDX-License-Identifier: Apache-2.0
// Weight initializers: zeros, constant, uniform, normal, Glorot/Xavier (Glorot & Bengio 2010),
// He/Kaiming (He et al. 2015).
#pragma once

#include <cmath>

#include "uvp/core/check.hpp"
#include "uvp/core/random.hpp"
#include "uvp/core/tensor.hpp"

namespace uvp::init {

template <class T>
void zeros(Span<T> w) noexcept {
  for (auto& x : w) x = T(0);
}

template <class T>
void constant(Span<T> w, T value) noexcept {
  for (auto& x : w) x = value;
}

template <class T>
void uniform(Span<T> w, double lo, double hi, Rng& rng) {
  if (!(lo <= hi)) detail::raise<invalid_argument>("uvp::init::uniform: lo (", lo, ") > hi (", hi, ")");
  for (auto& x : w) x = static_cast<T>(rng.uniform(lo, hi));
}

template <class T>
void normal(Span<T> w, double mean, double stddev, Rng& rng) {
  detail::check_non_negative("uvp::init::normal", "stddev", stddev);
  for (auto& x : w) x = static_cast<T>(rng.normal(mean, stddev));
}

/// U(-a, a) with a = sqrt(6 / (fan_in + fan_out)); PyTorch's xavier_uniform_.
template <class T>
void glorot_uniform(Span<T> w, index fan_in, index fan_out, Rng& rng) {
  detail::check_positive("uvp::init::glorot_uniform", "fan_in + fan_out", fan_in + fan_out);
  const double a = std::sqrt(6.0 / double(fan_in + fan_out));
  uniform(w, -a, a, rng);
}

/// N(0, 2 / (fan_in + fan_out)); PyTorch's xavier_normal_.
template <class T>
void glorot_normal(Span<T> w, index fan_in, index fan_out, Rng& rng) {
  detail::check_positive("uvp::init::glorot_normal", "fan_in + fan_out", fan_in + fan_out);
  normal(w, 0.0, std::sqrt(2.0 / double(fan_in + fan_out)), rng);
}

/// U(-a, a) with a = sqrt(6 / fan_in), for ReLU layers; PyTorch's kaiming_uniform_ (gain sqrt 2).
template <class T>
void he_uniform(Span<T> w, index fan_in, Rng& rng) {
  detail::check_positive("uvp::init::he_uniform", "fan_in", fan_in);
  const double a = std::sqrt(6.0 / double(fan_in));
  uniform(w, -a, a, rng);
}

/// N(0, 2 / fan_in); PyTorch's kaiming_normal_.
template <class T>
void he_normal(Span<T> w, index fan_in, Rng& rng) {
  detail::check_positive("uvp::init::he_normal", "fan_in", fan_in);
  normal(w, 0.0, std::sqrt(2.0 / double(fan_in)), rng);
}

}  // namespace uvp::init
