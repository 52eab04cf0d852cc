// SPDX-License-Identifier: Apache-2.0
// A scratch directory for one test program: made empty on construction, removed with its contents
// on destruction (errors ignored there: a test must not throw from a destructor).
#pragma once

#include <unistd.h>

#include <filesystem>
#include <string>
#include <system_error>
#include <vector>

namespace uvp_test {

struct TempDir {
  std::filesystem::path path;
  /// <temp>/uvp_<tag>_<pid>, emptied first.
  explicit TempDir(const std::string& tag)
      : path(std::filesystem::temp_directory_path() / ("uvp_" + tag + "_" + std::to_string(::getpid()))) {
    std::filesystem::remove_all(path);
    std::filesystem::create_directories(path);
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  /// The path of name inside the directory, as a string.
  std::string file(const std::string& name) const { return (path / name).string(); }
  /// The names of the directory's entries, in directory order.
  std::vector<std::string> entries() const {
    std::vector<std::string> out;
    for (const auto& e : std::filesystem::directory_iterator(path)) out.push_back(e.path().filename().string());
    return out;
  }
};

}  // namespace uvp_test
