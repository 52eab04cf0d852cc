// SPDX-License-Identifier: Apache-2.0
// The one lane operation the optimizers' element updates need beyond + - * / and sqrt: a
// comparison-based max, written once for a scalar (here: host and device) and specialised for
// xsimd batches in detail/optimizer_base.hpp, so that one update formula serves the scalar loop,
// the SIMD loop and the CUDA kernel. No xsimd here: nvcc compiles this header for the device.
#pragma once

#include "uvp/core/config.hpp"

namespace uvp::detail {

/// Lane operations on V (float or double; batches of them via the specialisation).
template <class V>
struct LaneOps {
  /// a < b ? b : a, as std::max(a, b): a NaN b keeps a, a NaN a stays.
  UVP_HOST_DEVICE static V max(V a, V b) noexcept { return a < b ? b : a; }
};

}  // namespace uvp::detail
