// SPDX-License-Identifier: Apache-2.0
// Thread-count control that works with and without OpenMP.
#pragma once

#if defined(_OPENMP)
#include <omp.h>
#endif

#include "uvp/core/check.hpp"

namespace uvp {

/// True when uvp was compiled with OpenMP (the UVP_WITH_OPENMP CMake option).
inline constexpr bool has_openmp =
#if defined(_OPENMP)
    true;
#else
    false;
#endif

/// Threads uvp's parallel loops use (1 without OpenMP).
inline int num_threads() noexcept {
#if defined(_OPENMP)
  return omp_get_max_threads();
#else
  return 1;
#endif
}

/// Sets the threads uvp's parallel loops use; without OpenMP only 1 is accepted.
inline void set_num_threads(int n) {
  detail::check_positive("uvp::set_num_threads", "n", n);
#if defined(_OPENMP)
  omp_set_num_threads(n);
#else
  if (n != 1)
    detail::raise<invalid_argument>("uvp::set_num_threads: n = ", n,
                                    " but uvp was built without OpenMP (only 1 thread)");
#endif
}

/// Restores the previous thread count when it goes out of scope.
class ThreadCountGuard {
 public:
  explicit ThreadCountGuard(int n) : previous_(num_threads()) { set_num_threads(n); }
  ~ThreadCountGuard() {
#if defined(_OPENMP)
    omp_set_num_threads(previous_);
#endif
  }
  ThreadCountGuard(const ThreadCountGuard&) = delete;
  ThreadCountGuard& operator=(const ThreadCountGuard&) = delete;

 private:
  int previous_;
};

}  // namespace uvp
