// SPDX-License-Identifier: Apache-2.0
// Tests of uvp::read_csv: RFC 4180 quoting, line endings, missing values, numeric columns, and the
// exact file:line:col of every parse error.
#include <doctest/doctest.h>

#include <cmath>
#include <string>
#include <vector>

#include "support/test_support.hpp"
#include "uvp/data/csv.hpp"

using uvp::read_csv;
using uvp::read_csv_string;

TEST_CASE("a plain file: header, rows, columns by name") {
  const auto t = read_csv_string("id,name,score\n1,ann,2.5\n2,bob,-1e3\n3,cy,+4\n", "t.csv");
  CHECK(t.name() == "t.csv");
  CHECK(t.rows() == 3);
  CHECK(t.cols() == 3);
  CHECK(t.column_names() == std::vector<std::string>{"id", "name", "score"});
  CHECK(t.has_column("name"));
  CHECK_FALSE(t.has_column("Name"));
  CHECK(t.column_index("score") == 2);
  CHECK(t.column("name") == std::vector<std::string>{"ann", "bob", "cy"});
  CHECK(t.field(1, 1) == "bob");
  const uvp::Vector<double> s = t.numeric_column<double>("score");
  CHECK(s[0] == 2.5);
  CHECK(s[1] == -1000.0);
  CHECK(s[2] == 4.0);
  const uvp::Matrix<float> m = t.numeric_matrix<float>({"score", "id"});
  CHECK(m.rows() == 3);
  CHECK(m.cols() == 2);
  CHECK(m(2, 0) == 4.0f);
  CHECK(m(2, 1) == 3.0f);
  CHECK(t.location(2, 2) == "t.csv:4:6");
}

TEST_CASE("quoted fields: delimiters, doubled quotes, line breaks") {
  const std::string text =
      "k,v\n"
      "1,\"a,b\"\n"
      "2,\"say \"\"hi\"\"\"\n"
      "3,\"two\nlines\"\n"
      "4,\"\"\"\"\n"
      "5,plain \"quote\" kept\n";
  const auto t = read_csv_string(text, "q.csv");
  REQUIRE(t.rows() == 5);
  CHECK(t.field(0, 1) == "a,b");
  CHECK(t.field(1, 1) == "say \"hi\"");
  CHECK(t.field(2, 1) == "two\nlines");
  CHECK(t.field(3, 1) == "\"");
  CHECK(t.field(4, 1) == "plain \"quote\" kept");
  CHECK(t.numeric_column<double>("k")[4] == 5.0);
  // Positions after a quoted line break count lines in the file, not records.
  CHECK(t.location(3, 0) == "q.csv:6:1");
  CHECK(t.location(2, 1) == "q.csv:4:3");
}

TEST_CASE("CRLF, LF, a missing final line end, blank lines and a BOM all read the same") {
  const std::vector<std::string> rows{"x", "y", "z"};
  for (const std::string text : {"h1,h2\n1,x\n2,y\n3,z\n", "h1,h2\r\n1,x\r\n2,y\r\n3,z\r\n",
                                 "h1,h2\r\n1,x\r\n2,y\r\n3,z", "h1,h2\n1,x\n\n2,y\r\n\r\n3,z\n\n",
                                 "\xEF\xBB\xBFh1,h2\n1,x\n2,y\n3,z\r", "h1,h2\n1,\"x\"\r\n2,y\n3,\"z\""}) {
    CAPTURE(text);
    const auto t = read_csv_string(text, "e.csv");
    CHECK(t.column_names() == std::vector<std::string>{"h1", "h2"});
    CHECK(t.column("h2") == rows);
    CHECK(t.numeric_column<float>("h1")[2] == 3.0f);
  }
  // A lone CR inside a line is data.
  CHECK(read_csv_string("a,b\n1\r2,3\n").field(0, 0) == "1\r2");
  // A blank line moves the line count on.
  const auto t = read_csv_string("a\n1\n\n\nx\n", "b.csv");
  UVP_CHECK_THROWS_WITH_SUBSTR(t.numeric_column<double>("a"), uvp::parse_error,
                               "b.csv:5:1: column 'a': cannot parse \"x\" as a number");
}

TEST_CASE("other delimiters and quote characters") {
  uvp::CsvOptions o;
  o.delimiter = ';';
  const auto t = read_csv_string("a;b\n\"1;2\";3,5\n", "s.csv", o);
  CHECK(t.field(0, 0) == "1;2");
  CHECK(t.field(0, 1) == "3,5");
  o.delimiter = '\t';
  o.quote = '\'';
  const auto u = read_csv_string("a\tb\n'x\ty'\t'it''s'\n", "t.tsv", o);
  CHECK(u.field(0, 0) == "x\ty");
  CHECK(u.field(0, 1) == "it's");
}

TEST_CASE("no header: columns are named 0, 1, ...") {
  uvp::CsvOptions o;
  o.header = false;
  const auto t = read_csv_string("1,2\n3,4\n", "n.csv", o);
  CHECK(t.rows() == 2);
  CHECK(t.column_names() == std::vector<std::string>{"0", "1"});
  CHECK(t.numeric_column<double>("1")[1] == 4.0);
  UVP_CHECK_THROWS_WITH_SUBSTR(read_csv_string("1,2\n3\n", "n.csv", o), uvp::parse_error,
                               "n.csv:2:2: row has 1 field, expected 2");
}

TEST_CASE("missing values: empty fields and configured tokens") {
  uvp::CsvOptions o;
  o.missing_values = {"NA", "?"};
  const auto t = read_csv_string("a,b,c\n1,,x\nNA,2,\"\"\n3,\"NA\",?\n4,5,N/A\n", "m.csv", o);
  REQUIRE(t.rows() == 4);
  CHECK(t.is_missing(0, 1));
  CHECK(t.is_missing(1, 0));
  CHECK(t.is_missing(1, 2));  // a quoted empty field is missing too (as pandas)
  CHECK(t.is_missing(2, 1));
  CHECK(t.is_missing(2, 2));
  CHECK_FALSE(t.is_missing(3, 2));  // "N/A" is not one of the tokens
  CHECK_FALSE(t.is_missing(0, 0));
  CHECK(t.missing_count("a") == 1);
  CHECK(t.missing_count("b") == 2);
  CHECK(t.missing_count("c") == 2);
  CHECK(t.field(1, 0) == "NA");  // text of a missing field is kept
  CHECK(t.column("c") == std::vector<std::string>{"x", "", "?", "N/A"});

  const uvp::Vector<double> a = t.numeric_column<double>("a", uvp::Missing::nan);
  CHECK(a[0] == 1.0);
  CHECK(std::isnan(a[1]));
  CHECK(a[3] == 4.0);
  UVP_CHECK_THROWS_WITH_SUBSTR(t.numeric_column<double>("a"), uvp::parse_error,
                               "m.csv:3:1: column 'a': missing value (pass uvp::Missing::nan");
  UVP_CHECK_THROWS_WITH_SUBSTR(t.numeric_column<float>("b"), uvp::parse_error,
                               "m.csv:2:3: column 'b': missing value");
  const uvp::Matrix<float> ab = t.numeric_matrix<float>({"a", "b"}, uvp::Missing::nan);
  CHECK(ab(3, 1) == 5.0f);
  CHECK(std::isnan(ab(2, 1)));
  UVP_CHECK_THROWS_WITH_SUBSTR(t.numeric_matrix<float>({"a", "c"}, uvp::Missing::nan), uvp::parse_error,
                               "uvp::CsvTable::numeric_matrix: m.csv:2:4: column 'c': cannot parse \"x\" as a number");
}

TEST_CASE("numeric columns: accepted forms and parse errors at the field's position") {
  const auto t = read_csv_string("v\n 1.5 \n+2\n1e3\n-0\ninf\n", "n.csv");
  const uvp::Vector<double> v = t.numeric_column<double>("v");
  CHECK(v[0] == 1.5);
  CHECK(v[1] == 2.0);
  CHECK(v[2] == 1000.0);
  CHECK(v[3] == 0.0);
  CHECK(std::isinf(v[4]));

  const auto u = read_csv_string("name,v\n\"a\nb\",oops\n\"c\",1.5x\n", "u.csv");
  UVP_CHECK_THROWS_WITH_SUBSTR(u.numeric_column<double>("v"), uvp::parse_error,
                               "uvp::CsvTable::numeric_column: u.csv:3:4: column 'v': cannot parse \"oops\" as a number");
  UVP_CHECK_THROWS_WITH_SUBSTR(u.numeric_column<double>("name"), uvp::parse_error,
                               "u.csv:2:1: column 'name': cannot parse \"a\\x0ab\"");  // (escaped in messages)

  const auto big = read_csv_string("v\n1e39\n", "big.csv");
  CHECK(big.numeric_column<double>("v")[0] == 1e39);
  UVP_CHECK_THROWS_WITH_SUBSTR(big.numeric_column<float>("v"), uvp::parse_error,
                               "big.csv:2:1: column 'v': cannot parse \"1e39\" as a number (out of float range)");
}

TEST_CASE("malformed input: each error names file:line:col") {
  UVP_CHECK_THROWS_WITH_SUBSTR(read_csv_string("a,b\n1,2\n3,\"abc\n4,5\n", "t.csv"), uvp::parse_error,
                               "uvp::read_csv_string: t.csv:3:3: unterminated quoted field");
  UVP_CHECK_THROWS_WITH_SUBSTR(read_csv_string("a,b\n\"x\"y,2\n", "t.csv"), uvp::parse_error,
                               "t.csv:2:4: unexpected character 'y' after the closing quote");
  UVP_CHECK_THROWS_WITH_SUBSTR(read_csv_string("a,b\n1,2\n3,4,5\n", "t.csv"), uvp::parse_error,
                               "t.csv:3:5: row has 3 fields, expected 2");
  UVP_CHECK_THROWS_WITH_SUBSTR(read_csv_string("a,b,c\r\n1,2,3\r\n4,5\r\n", "t.csv"), uvp::parse_error,
                               "t.csv:3:4: row has 2 fields, expected 3");
  UVP_CHECK_THROWS_WITH_SUBSTR(read_csv_string("a,b\n\"x\ny\",2,3\n", "t.csv"), uvp::parse_error,
                               "t.csv:3:6: row has 3 fields, expected 2");
  UVP_CHECK_THROWS_WITH_SUBSTR(read_csv_string("a,b\n1,2,\n", "t.csv"), uvp::parse_error,
                               "t.csv:2:5: row has 3 fields, expected 2");
  UVP_CHECK_THROWS_WITH_SUBSTR(read_csv_string("a,b,a\n1,2,3\n", "t.csv"), uvp::parse_error,
                               "t.csv:1:1: duplicate column name 'a' (columns 1 and 3)");
  UVP_CHECK_THROWS_WITH_SUBSTR(read_csv_string("", "t.csv"), uvp::parse_error,
                               "t.csv:1:1: empty input, expected a header row");
  UVP_CHECK_THROWS_WITH_SUBSTR(read_csv_string("\r\n\n", "t.csv"), uvp::parse_error,
                               "t.csv:3:1: empty input");
}

TEST_CASE("header only: zero rows; lookups of unknown names and cells") {
  const auto t = read_csv_string("a,b\n", "h.csv");
  CHECK(t.rows() == 0);
  CHECK(t.numeric_column<double>("b").size() == 0);
  UVP_CHECK_THROWS_WITH_SUBSTR(t.column_index("c"), uvp::out_of_range_error,
                               "uvp::CsvTable::column_index: no column named 'c' in h.csv; columns are: 'a', 'b'");
  UVP_CHECK_THROWS_WITH_SUBSTR(t.column("c"), uvp::out_of_range_error, "no column named 'c'");
  UVP_CHECK_THROWS_WITH_SUBSTR(t.field(0, 0), uvp::out_of_range_error,
                               "uvp::CsvTable::field: row 0 out of range [0, 0)");
  const auto u = read_csv_string("a,b\n1,2\n", "h.csv");
  UVP_CHECK_THROWS_WITH_SUBSTR(u.is_missing(0, 2), uvp::out_of_range_error,
                               "uvp::CsvTable::is_missing: col 2 out of range [0, 2)");
}

TEST_CASE("bad options are rejected") {
  uvp::CsvOptions o;
  o.delimiter = '"';
  UVP_CHECK_THROWS_WITH_SUBSTR(read_csv_string("a\n", "o.csv", o), uvp::invalid_argument,
                               "uvp::read_csv_string: options.delimiter and options.quote are both '\"'");
  o.delimiter = '\n';
  UVP_CHECK_THROWS_WITH_SUBSTR(read_csv(uvp_test::fixture_path("data/onehot_input.csv"), o),
                               uvp::invalid_argument,
                               "uvp::read_csv: options.delimiter must not be a line break or NUL, got code 10");
}

TEST_CASE("files: reading one, and the io_error of a path that cannot be read") {
  const auto t = read_csv(uvp_test::fixture_path("data/onehot_input.csv"));
  CHECK(t.rows() == 8);
  CHECK(t.column_names() == std::vector<std::string>{"letter", "size", "VisitorType"});
  CHECK(t.field(3, 0) == "\xC3\xA9");  // é, UTF-8
  CHECK(t.is_missing(4, 0));
  UVP_CHECK_THROWS_WITH_SUBSTR(read_csv("/nonexistent/dir/x.csv"), uvp::io_error,
                               "uvp::read_csv: cannot open '/nonexistent/dir/x.csv': No such file or directory");
  UVP_CHECK_THROWS_WITH_SUBSTR(read_csv(uvp_test::fixture_path("data")), uvp::io_error,
                               "uvp::read_csv: '" + uvp_test::fixture_path("data") +
                                   "' is a directory, expected a regular file");
}

TEST_CASE("the UCI Online Shoppers file: 12,330 sessions x 18 columns, 1,908 purchases") {
  const auto t = read_csv(uvp_test::data_path("online_shoppers_intention/online_shoppers_intention.csv"));
  CHECK(t.rows() == 12330);
  REQUIRE(t.cols() == 18);
  CHECK(t.column_names().front() == "Administrative");
  CHECK(t.column_names()[10] == "Month");
  CHECK(t.column_names().back() == "Revenue");
  const auto revenue = t.column("Revenue");
  CHECK(std::count(revenue.begin(), revenue.end(), "TRUE") == 1908);
  CHECK(std::count(revenue.begin(), revenue.end(), "FALSE") == 10422);
  const auto weekend = t.column("Weekend");
  CHECK(std::count(weekend.begin(), weekend.end(), "TRUE") == 2868);
  for (const auto& name : t.column_names()) CHECK(t.missing_count(name) == 0);
  // Sums in file order, compared with pandas' (same order, float64).
  CHECK(t.numeric_column<double>("PageValues").sum() == doctest::Approx(72614.54944701199).epsilon(1e-12));
  CHECK(t.numeric_column<double>("ProductRelated_Duration").sum() ==
        doctest::Approx(14731220.892215634).epsilon(1e-12));
  // The last line, CRLF stripped.
  CHECK(t.field(12329, 7) == "0.066666667");
  CHECK(t.field(12329, 17) == "FALSE");
  CHECK(t.location(12329, 17) == t.name() + ":12331:64");
  UVP_CHECK_THROWS_WITH_SUBSTR(t.numeric_column<float>("Month"), uvp::parse_error,
                               "online_shoppers_intention.csv:2:25: column 'Month': cannot parse \"Feb\" as a number");
}
