// SPDX-License-Identifier: Apache-2.0
// Names the BLAS library this process actually loaded (read from /proc/self/maps) and OpenBLAS's core.
#pragma once

#include <dlfcn.h>

#include <fstream>
#include <string>

namespace uvp_bench {

/// Path of the first mapped shared object whose file name contains "blas" (libopenblas*,
/// libblas.so.3, libmkl_rt, ...), or "none" when no BLAS is loaded. Linux only; "unknown"
/// elsewhere. A ratio against netlib's reference BLAS is meaningless, so peers print this.
inline std::string loaded_blas() {
  std::ifstream maps("/proc/self/maps");
  if (!maps) return "unknown";
  std::string line, found;
  while (std::getline(maps, line)) {
    const auto slash = line.rfind('/');
    if (slash == std::string::npos) continue;
    const std::string file = line.substr(slash + 1);
    const bool blas = file.find("blas") != std::string::npos || file.find("mkl_rt") != std::string::npos;
    if (!blas) continue;
    const std::string path = line.substr(line.find('/'));
    // Prefer the library that does the work (libopenblasp-r0.3.21.so) over a forwarding libblas.so.3.
    if (found.empty() || path.find("openblas") != std::string::npos) found = path;
    if (path.find("libopenblas") != std::string::npos) break;
  }
  return found.empty() ? "none" : found;
}

/// OpenBLAS's kernel family for this CPU ("SkylakeX", "Haswell", "Zen", ...), or "" when the
/// loaded BLAS is not OpenBLAS. OpenBLAS 0.3.21 does not know Sapphire/Emerald Rapids and falls
/// back to "Prescott" (SSE3 kernels, ~5x slower); OPENBLAS_CORETYPE=SkylakeX overrides it.
inline std::string openblas_core() {
  using fn = char* (*)();
  void* self = dlopen(nullptr, RTLD_NOW);
  if (!self) return "";
  const auto f = reinterpret_cast<fn>(dlsym(self, "openblas_get_corename"));
  return f ? std::string(f()) : std::string();
}

}  // namespace uvp_bench
