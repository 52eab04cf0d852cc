// SPDX-License-Identifier: Apache-2.0
// write_file_atomic: writes and replaces whole files, leaves no temporary behind, and fails with
// a uvp::io_error that names the path while the old file stays intact.
#include <doctest/doctest.h>

#include <cstdio>
#include <iterator>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <unistd.h>

#include "support/test_support.hpp"
#include "uvp/io/file.hpp"

namespace fs = std::filesystem;

namespace {
std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}
}  // namespace

TEST_CASE("write_file_atomic writes, replaces, and cleans up") {
  const fs::path dir = fs::temp_directory_path() / ("uvp_test_file_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  const fs::path p = dir / "out.csv";
  uvp::write_file_atomic(p.string(), "a,b\n1,2\n");
  CHECK(slurp(p) == "a,b\n1,2\n");
  uvp::write_file_atomic(p.string(), "replaced");
  CHECK(slurp(p) == "replaced");
  CHECK(std::distance(fs::directory_iterator(dir), fs::directory_iterator()) == 1);  // no temporary left

  // A target whose directory does not exist: io_error naming the path; nothing else touched.
  const std::string bad = (dir / "missing" / "x.csv").string();
  UVP_CHECK_THROWS_WITH_SUBSTR(uvp::write_file_atomic(bad, "x"), uvp::io_error, "cannot create a temporary file next to '" + bad + "'");

  // Renaming onto a directory fails: the directory and the old content survive, no temp is left.
  fs::create_directories(dir / "adir");
  UVP_CHECK_THROWS_WITH_SUBSTR(uvp::write_file_atomic((dir / "adir").string(), "x", "my_tool"), uvp::io_error,
                               "my_tool: cannot rename");
  CHECK(fs::is_directory(dir / "adir"));
  CHECK(std::distance(fs::directory_iterator(dir), fs::directory_iterator()) == 2);  // out.csv, adir
  fs::remove_all(dir);
}
