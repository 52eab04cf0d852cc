// SPDX-License-Identifier: Apache-2.0
// What every fuzz target asserts: bad input ends in a uvp::error; anything else (another exception
// type, a crash, a sanitizer report, a silent NaN) is a finding and aborts the run.
#pragma once

#include <cstdio>
#include <cstdlib>

#include "uvp/core/error.hpp"

namespace uvp_fuzz {

/// Stops the run with a message; libFuzzer saves the input that got here as a crash.
[[noreturn]] inline void finding(const char* what) {
  std::fprintf(stderr, "uvp fuzz finding: %s\n", what);
  std::abort();
}

/// Runs f(); a uvp::error is the expected outcome of bad input, any other exception is a finding.
template <class F>
void expect_uvp_errors_only(F&& f) {
  try {
    f();
  } catch (const uvp::error&) {
  } catch (const std::exception& e) {
    std::fprintf(stderr, "uvp fuzz finding: %s\n", e.what());
    finding("an exception that is not a uvp::error");
  } catch (...) {
    finding("a non-standard exception");
  }
}

}  // namespace uvp_fuzz
