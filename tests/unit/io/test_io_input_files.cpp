// SPDX-License-Identifier: Apache-2.0
// Reading files: detail::read_whole_file (regular files only, size limit) used by every reader
// (read_cdnow_transactions here; read_csv and nn::load in their own tests), open_input_stream for
// readers that stream, and detail::printable, which escapes and cuts names from files in messages.
#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>
#include <string>

#include <sys/stat.h>
#include <unistd.h>

#include "support/temp_dir.hpp"
#include "support/test_support.hpp"
#include "uvp/clv/transactions.hpp"
#include "uvp/io/file.hpp"

namespace fs = std::filesystem;

using uvp_test::TempDir;

TEST_CASE("read_whole_file: regular files only, named in the message") {
  TempDir dir("read_whole");
  const std::string file = (dir.path / "data.txt").string();
  uvp::write_file_atomic(file, std::string("a\0b", 3));
  CHECK(uvp::detail::read_whole_file("r", file) == std::string("a\0b", 3));
  uvp::write_file_atomic(file, "");
  CHECK(uvp::detail::read_whole_file("r", file).empty());

  UVP_CHECK_THROWS_WITH_SUBSTR(uvp::detail::read_whole_file("my_reader", dir.path.string()), uvp::io_error,
                               "my_reader: '" + dir.path.string() + "' is a directory, expected a regular file");
  const std::string fifo = (dir.path / "pipe").string();
  REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
  // Refused without opening it: opening a FIFO with no writer would block forever.
  UVP_CHECK_THROWS_WITH_SUBSTR(uvp::detail::read_whole_file("my_reader", fifo), uvp::io_error,
                               "' is a FIFO, expected a regular file");
  UVP_CHECK_THROWS_WITH_SUBSTR(uvp::detail::read_whole_file("my_reader", "/dev/null"), uvp::io_error,
                               "my_reader: '/dev/null' is a character device");
  UVP_CHECK_THROWS_WITH_SUBSTR(uvp::detail::read_whole_file("my_reader", file + ".missing"), uvp::io_error,
                               "my_reader: cannot open '" + file + ".missing': No such file or directory");

  uvp::write_file_atomic(file, std::string(5000, 'z'));
  UVP_CHECK_THROWS_WITH_SUBSTR(uvp::detail::read_whole_file("my_reader", file, 4096), uvp::io_error,
                               "' has 5000 bytes, more than the limit of 4096 bytes");
  CHECK(uvp::detail::read_whole_file("my_reader", file, 5000).size() == 5000);
}

TEST_CASE("open_input_stream: the same rule for readers that stream") {
  TempDir dir("open_stream");
  const std::string file = (dir.path / "lines.txt").string();
  uvp::write_file_atomic(file, "one\ntwo\n");
  std::ifstream in = uvp::detail::open_input_stream("my_reader", file);
  std::string line;
  REQUIRE(std::getline(in, line));
  CHECK(line == "one");
  UVP_CHECK_THROWS_WITH_SUBSTR(uvp::detail::open_input_stream("my_reader", dir.path.string()), uvp::io_error,
                               "my_reader: '" + dir.path.string() + "' is a directory, expected a regular file");
  const std::string fifo = (dir.path / "pipe").string();
  REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
  UVP_CHECK_THROWS_WITH_SUBSTR(uvp::detail::open_input_stream("my_reader", fifo), uvp::io_error,
                               "' is a FIFO, expected a regular file");
  UVP_CHECK_THROWS_WITH_SUBSTR(uvp::detail::open_input_stream("my_reader", file + ".missing"), uvp::io_error,
                               "my_reader: cannot open '" + file + ".missing': No such file or directory");
}

TEST_CASE("printable: names from files are escaped and cut in messages") {
  using uvp::detail::printable;
  CHECK(printable("dense.weight") == "dense.weight");
  CHECK(printable(std::string("a\0b\n\x7f\\", 6)) == "a\\x00b\\x0a\\x7f\\\\");
  CHECK(printable("caf\xc3\xa9 \xe2\x82\xac") == "caf\xc3\xa9 \xe2\x82\xac");  // valid UTF-8 kept
  CHECK(printable("\xc3(\xed\xa0\x80\xff") == "\\xc3(\\xed\\xa0\\x80\\xff");  // invalid, surrogate, 0xff
  CHECK(printable(std::string(1000000, 'n'), 10) == "nnnnnnnnnn... (1000000 bytes)");
  CHECK(printable("ab\xc3\xa9", 3) == "ab\\xc3... (4 bytes)");  // a sequence cut in two is escaped
}

TEST_CASE("read_cdnow_transactions: a directory or FIFO is an io_error, not an empty log") {
  TempDir dir("read_cdnow");
  UVP_CHECK_THROWS_WITH_SUBSTR(uvp::read_cdnow_transactions(dir.path.string()), uvp::io_error,
                               "uvp::read_cdnow_transactions: '" + dir.path.string() +
                                   "' is a directory, expected a regular file");
  const std::string fifo = (dir.path / "pipe.txt").string();
  REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
  UVP_CHECK_THROWS_WITH_SUBSTR(uvp::read_cdnow_transactions(fifo), uvp::io_error, "' is a FIFO, expected a regular file");
  UVP_CHECK_THROWS_WITH_SUBSTR(uvp::read_cdnow_transactions((dir.path / "none.txt").string()), uvp::io_error,
                               "uvp::read_cdnow_transactions: cannot open '" + (dir.path / "none.txt").string() +
                                   "': No such file or directory");
  // A regular file still reads, through the same helper.
  const std::string file = (dir.path / "log.txt").string();
  uvp::write_file_atomic(file, "00001 19970101 1 29.33\n00002 19970112 2 11.77\n");
  const uvp::TransactionLog log = uvp::read_cdnow_transactions(file);
  REQUIRE(log.size() == 2);
  CHECK(log.customer_id[1] == "00002");
  CHECK(log.amount[0] == 29.33);
}
