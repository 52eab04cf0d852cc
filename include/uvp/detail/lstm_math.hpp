// SPDX-License-Identifier: Apache-2.0
// One LSTM gate unit (one row, one hidden index j), forward and backward, shared by host code
// and CUDA kernels (no Eigen, no xsimd). PyTorch's gate order [i | f | g | o] (nn/lstm.hpp):
//
//   forward   i = sigmoid(a_i)  f = sigmoid(a_f)  g = tanh(a_g)  o = sigmoid(a_o)
//             c' = f c + i g    t = tanh(c')      h' = o t
//   backward  d = dc' + dh' o (1 - t^2)
//             da_i = d g i (1 - i)   da_f = d c f (1 - f)   da_g = d i (1 - g^2)
//             da_o = dh' t o (1 - o) dc = d f
//
// a_* are the pre-activations x W_ih^T + h W_hh^T + (b_ih + b_hh). The operations and their
// order are nn/lstm.hpp's scalar path (lstm_forward_row / lstm_backward_row).
#pragma once

#include <cmath>

#include "uvp/core/config.hpp"
#include "uvp/detail/elementwise_math.hpp"

namespace uvp::detail {

/// The activations of one unit: gate values i, f, g, o, and c', tanh(c'), h'.
template <class T>
struct LstmUnit {
  T i, f, g, o, c, t, h;
};

template <class T>
UVP_HOST_DEVICE inline LstmUnit<T> lstm_unit_forward(T a_i, T a_f, T a_g, T a_o, T c_prev) noexcept {
  using std::tanh;
  LstmUnit<T> u;
  u.i = sigmoid_scalar(a_i);
  u.f = sigmoid_scalar(a_f);
  u.g = tanh(a_g);
  u.o = sigmoid_scalar(a_o);
  u.c = u.f * c_prev + u.i * u.g;
  u.t = tanh(u.c);
  u.h = u.o * u.t;
  return u;
}

/// The gradients of one unit's pre-activations (da_i, da_f, da_g, da_o) and of c_prev (dc).
template <class T>
struct LstmUnitGrad {
  T di, df, dg, dout, dc;
};

/// From the forward's i, f, g, o, t = tanh(c'), the old c_prev, and the incoming dh', dc'.
template <class T>
UVP_HOST_DEVICE inline LstmUnitGrad<T> lstm_unit_backward(T i, T f, T g, T o, T t, T c_prev, T dh,
                                                          T dc) noexcept {
  const T d = dc + dh * o * (T(1) - t * t);
  return {d * g * i * (T(1) - i), d * c_prev * f * (T(1) - f), d * i * (T(1) - g * g),
          dh * t * o * (T(1) - o), d * f};
}

}  // namespace uvp::detail
