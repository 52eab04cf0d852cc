// SPDX-License-Identifier: Apache-2.0
// How a loss combines per-element terms (PyTorch's `reduction` argument).
#pragma once

namespace uvp {

/// mean: sum of (weighted) terms / number of terms (PyTorch's convention, also with weights);
/// sum: the plain sum.
enum class Reduction { mean, sum };

}  // namespace uvp
