// SPDX-License-Identifier: Apache-2.0
// Basic types and the few macros uvp needs (host/device annotation, debug assertions).
#pragma once

#include <cstddef>
#include <cstdio>
#include <cstdlib>

namespace uvp {
/// Signed index type, the same as Eigen's.
using index = std::ptrdiff_t;
}  // namespace uvp

// Functions shared by the CPU and CUDA backends carry this; it means something only under nvcc.
#if defined(__CUDACC__)
#define UVP_HOST_DEVICE __host__ __device__
#else
#define UVP_HOST_DEVICE
#endif

// Internal invariants in hot loops; active unless NDEBUG. Bad user input never reaches these:
// it is rejected with a uvp::error at the API boundary.
#if defined(NDEBUG)
#define UVP_ASSERT(cond) ((void)0)
#else
#define UVP_ASSERT(cond) \
  ((cond) ? (void)0 : ::uvp::detail::assert_fail(#cond, __FILE__, __LINE__))
namespace uvp::detail {
[[noreturn]] inline void assert_fail(const char* cond, const char* file, int line) {
  std::fprintf(stderr, "uvp: internal assertion failed: %s (%s:%d)\n", cond, file, line);
  std::abort();
}
}  // namespace uvp::detail
#endif
