// SPDX-License-Identifier: Apache-2.0
// read_csv against hostile input: very wide headers (duplicate check in O(n log n)), a wide header
// over many short lines (no huge reservation), paths that are not regular files, and names with
// control bytes or megabytes of text in messages.
#include <doctest/doctest.h>

#include <filesystem>
#include <string>
#include <vector>

#include <sys/stat.h>
#include <unistd.h>

#include "support/test_support.hpp"
#include "uvp/data/csv.hpp"
#include "uvp/io/file.hpp"

namespace fs = std::filesystem;
using uvp::read_csv;
using uvp::read_csv_string;

namespace {
std::string wide_header(int columns, int duplicate_of = -1, int duplicate_at = -1) {
  std::string h;
  for (int c = 0; c < columns; ++c) {
    if (c) h += ',';
    h += "c" + std::to_string(c == duplicate_at ? duplicate_of : c);
  }
  return h + "\n";
}
}  // namespace

TEST_CASE("a header of 200 000 columns: read at once, duplicates still reported with both columns") {
  // (A pairwise check took minutes here: 2 * 10^10 name comparisons.)
  const auto t = read_csv_string(wide_header(200000) + std::string(199999, ',') + "\n", "wide.csv");
  CHECK(t.cols() == 200000);
  CHECK(t.rows() == 1);
  CHECK(t.column_index("c199999") == 199999);
  CHECK(t.is_missing(0, 123456));

  UVP_CHECK_THROWS_WITH_SUBSTR(read_csv_string(wide_header(200000, 77, 150001), "wide.csv"), uvp::parse_error,
                               "uvp::read_csv_string: wide.csv:1:1: duplicate column name 'c77' "
                               "(columns 78 and 150002)");
  // Several duplicated names: the first column that repeats an earlier one is reported.
  UVP_CHECK_THROWS_WITH_SUBSTR(read_csv_string("b,a,c,a,b,c\n", "t.csv"), uvp::parse_error,
                               "duplicate column name 'a' (columns 2 and 4)");
  UVP_CHECK_THROWS_WITH_SUBSTR(read_csv_string("x,x,x\n", "t.csv"), uvp::parse_error,
                               "duplicate column name 'x' (columns 1 and 2)");
  UVP_CHECK_THROWS_WITH_SUBSTR(read_csv_string("q,r,,s,\n", "t.csv"), uvp::parse_error,
                               "duplicate column name '' (columns 3 and 5)");
}

TEST_CASE("a wide header over many short lines: a parse_error, not a reservation of terabytes") {
  // 20,000 columns x 400,000 lines: reserving lines x width cells asked for 128 GB (bad_alloc).
  std::string text = wide_header(20000);
  for (int i = 0; i < 400000; ++i) text += "1\n";
  UVP_CHECK_THROWS_WITH_SUBSTR(read_csv_string(text, "crafted.csv"), uvp::parse_error,
                               "crafted.csv:2:2: row has 1 field, expected 20000");

  // Without a header the first record sets the width; the same rule holds.
  std::string headless = std::string(19999, ',') + "\n";
  for (int i = 0; i < 400000; ++i) headless += "1\n";
  uvp::CsvOptions no_header;
  no_header.header = false;
  UVP_CHECK_THROWS_WITH_SUBSTR(read_csv_string(headless, "crafted.csv", no_header), uvp::parse_error,
                               "crafted.csv:2:2: row has 1 field, expected 20000");

  // And from a file (the 0.9 MB of the first case).
  const fs::path dir = fs::temp_directory_path() / ("uvp_csv_hostile_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  const std::string path = (dir / "crafted.csv").string();
  uvp::write_file_atomic(path, text);
  UVP_CHECK_THROWS_WITH_SUBSTR(read_csv(path), uvp::parse_error, "row has 1 field, expected 20000");
  fs::remove_all(dir);
}

TEST_CASE("read_csv of a path that is not a regular file: io_error naming it") {
  const fs::path dir = fs::temp_directory_path() / ("uvp_csv_paths_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  UVP_CHECK_THROWS_WITH_SUBSTR(read_csv(dir.string()), uvp::io_error,
                               "uvp::read_csv: '" + dir.string() + "' is a directory, expected a regular file");
  const std::string fifo = (dir / "pipe.csv").string();
  REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
  UVP_CHECK_THROWS_WITH_SUBSTR(read_csv(fifo), uvp::io_error,
                               "uvp::read_csv: '" + fifo + "' is a FIFO, expected a regular file");
  UVP_CHECK_THROWS_WITH_SUBSTR(read_csv("/dev/zero"), uvp::io_error,
                               "uvp::read_csv: '/dev/zero' is a character device, expected a regular file");
  fs::remove_all(dir);
}

TEST_CASE("names and fields from the file are escaped and cut in messages") {
  UVP_CHECK_THROWS_WITH_SUBSTR(read_csv_string(std::string("a\x01\x1b[2J,a\x01\x1b[2J\n", 14), "t.csv"),
                               uvp::parse_error, "duplicate column name 'a\\x01\\x1b[2J' (columns 1 and 2)");
  const std::string huge(1000000, 'h');
  try {
    (void)read_csv_string(huge + "," + huge + "\n", "t.csv");
    FAIL("no exception");
  } catch (const uvp::parse_error& e) {
    const std::string msg = e.what();
    CHECK(msg.size() < 400);
    CHECK(msg.find("... (1000000 bytes)' (columns 1 and 2)") != std::string::npos);
  }
  const auto t = read_csv_string(std::string("x\n1\0\n", 5) + huge + "\n", "t.csv");
  UVP_CHECK_THROWS_WITH_SUBSTR(t.numeric_column<double>("x"), uvp::parse_error,
                               "t.csv:2:1: column 'x': cannot parse \"1\\x00\" as a number");
  try {
    (void)read_csv_string("x\n" + huge + "\n", "t.csv").numeric_column<double>("x");
    FAIL("no exception");
  } catch (const uvp::parse_error& e) {
    CHECK(std::string(e.what()).size() < 400);
  }
  UVP_CHECK_THROWS_WITH_SUBSTR(t.column_index(std::string("y\0", 2)), uvp::out_of_range_error,
                               "no column named 'y\\x00' in t.csv; columns are: 'x'");
}
