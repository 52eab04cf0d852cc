// SPDX-License-Identifier: Apache-2.0
// Atomic file writes: a reader (or a crash) never sees a half-written file.
#pragma once

#include <cstdio>
#include <fstream>
#include <string>

#include "uvp/core/error.hpp"

namespace uvp {

/// Writes `content` to `path` atomically: into `path + ".tmp"` first, then renamed over `path`, so a
/// reader never sees a half-written file. Throws uvp::io_error naming `where` and the path.
inline void write_file_atomic(const std::string& path, const std::string& content,
                              const char* where = "uvp::write_file_atomic") {
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out) detail::raise<io_error>(where, ": cannot open '", tmp, "' for writing");
    out.write(content.data(), static_cast<std::streamsize>(content.size()));
    out.flush();
    if (!out) {
      out.close();
      std::remove(tmp.c_str());
      detail::raise<io_error>(where, ": cannot write '", tmp, "'");
    }
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    std::remove(tmp.c_str());
    detail::raise<io_error>(where, ": cannot rename '", tmp, "' to '", path, "'");
  }
}

}  // namespace uvp
