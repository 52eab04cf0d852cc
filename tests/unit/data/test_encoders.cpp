// SPDX-License-Identifier: Apache-2.0
// Tests of OneHotEncoder and LabelEncoder against scikit-learn's category order, feature names and
// encodings (tests/fixtures/make_data_fixtures.py).
#include <doctest/doctest.h>

#include <fstream>
#include <string>
#include <vector>

#include "support/test_support.hpp"
#include "uvp/data/csv.hpp"
#include "uvp/data/encoders.hpp"

namespace {

std::vector<std::string> read_lines(const std::string& name) {
  std::ifstream in(uvp_test::fixture_path("data/" + name), std::ios::binary);
  REQUIRE_MESSAGE(in.good(), "cannot open fixture " << name);
  std::vector<std::string> lines;
  std::string line;
  while (std::getline(in, line))
    if (line.empty() || line[0] != '#') lines.push_back(line);
  return lines;
}

template <class T>
uvp::Matrix<T> load(const std::string& name) {
  const auto v = uvp_test::read_numbers(uvp_test::fixture_path("data/" + name));
  const auto r = static_cast<uvp::index>(v[0]), c = static_cast<uvp::index>(v[1]);
  REQUIRE(v.size() == std::size_t(2 + r * c));
  uvp::Matrix<T> m(r, c);
  for (uvp::index i = 0; i < r * c; ++i) m.data()[i] = static_cast<T>(v[std::size_t(2 + i)]);
  return m;
}

struct Input {
  uvp::OneHotEncoder::Columns columns;
  std::vector<std::string> names;
};

Input input() {
  const auto t = uvp::read_csv(uvp_test::fixture_path("data/onehot_input.csv"));
  Input in;
  in.names = t.column_names();
  for (const auto& n : in.names) in.columns.push_back(t.column(n));
  return in;
}

}  // namespace

TEST_CASE("OneHotEncoder: categories in sklearn's order (byte-wise, '' first, '10' < '9', 'Z' < 'a' < 'é')") {
  const Input in = input();
  uvp::OneHotEncoder enc;
  enc.fit(in.columns, in.names);
  CHECK(enc.n_features_in() == 3);
  std::vector<std::string> got;
  for (std::size_t j = 0; j < enc.categories().size(); ++j)
    for (const auto& c : enc.categories()[j]) got.push_back(std::to_string(j) + "\t" + c);
  CHECK(got == read_lines("onehot_categories.txt"));
  CHECK(enc.categories()[1] == std::vector<std::string>{"-1", "1.5", "10", "9"});
  CHECK(enc.drop_index() == std::vector<uvp::index>{-1, -1, -1});
}

TEST_CASE_TEMPLATE("OneHotEncoder matches sklearn for drop = none, first, if_binary", T, float, double) {
  const Input in = input();
  const std::pair<uvp::Drop, std::string> cases[] = {
      {uvp::Drop::none, "none"}, {uvp::Drop::first, "first"}, {uvp::Drop::if_binary, "if_binary"}};
  for (const auto& c : cases) {
    const std::string& tag = c.second;  // not a structured binding: clang 14 cannot capture one
    CAPTURE(tag);
    uvp::OneHotEncoderOptions o;
    o.drop = c.first;
    uvp::OneHotEncoder enc(o);
    const uvp::Matrix<T> Z = enc.fit_transform<T>(in.columns, in.names);
    CHECK(enc.feature_names() == read_lines("onehot_" + tag + "_names.txt"));
    const uvp::Matrix<T> ref = load<T>("onehot_" + tag + "_transform.txt");
    REQUIRE(Z.rows() == ref.rows());
    REQUIRE(Z.cols() == ref.cols());
    CHECK(Z == ref);
    CHECK(enc.n_features_out() == Z.cols());
  }
}

TEST_CASE("OneHotEncoder: default input names x0, x1, ... and a two-category column under if_binary") {
  const Input in = input();
  uvp::OneHotEncoder enc;
  enc.fit(in.columns);
  CHECK(enc.feature_names() == read_lines("onehot_unnamed_names.txt"));

  uvp::OneHotEncoderOptions o;
  o.drop = uvp::Drop::if_binary;
  uvp::OneHotEncoder b(o);
  const uvp::Matrix<double> Z = b.fit_transform<double>({{"TRUE", "FALSE", "TRUE"}, {"x", "y", "z"}});
  CHECK(b.drop_index() == std::vector<uvp::index>{0, -1});
  CHECK(b.feature_names() == std::vector<std::string>{"x0_TRUE", "x1_x", "x1_y", "x1_z"});
  uvp::Matrix<double> expect(3, 4);
  expect << 1, 1, 0, 0, 0, 0, 1, 0, 1, 0, 0, 1;
  CHECK(Z == expect);
}

TEST_CASE("OneHotEncoder: unknown categories are an error by default, zeros with ignore") {
  const uvp::OneHotEncoder::Columns train{{"Feb", "Mar", "Nov"}, {"New", "Returning", "New"}};
  const uvp::OneHotEncoder::Columns test{{"Mar", "Dec"}, {"Returning", "New"}};
  uvp::OneHotEncoder strict;
  strict.fit(train, {"Month", "VisitorType"});
  UVP_CHECK_THROWS_WITH_SUBSTR(strict.transform<float>(test), uvp::invalid_argument,
                               "uvp::OneHotEncoder::transform: column 'Month' (index 0) has unknown category "
                               "'Dec' at row 1 (known: 'Feb', 'Mar', 'Nov'; use HandleUnknown::ignore");

  uvp::OneHotEncoderOptions o;
  o.handle_unknown = uvp::HandleUnknown::ignore;
  uvp::OneHotEncoder lax(o);
  lax.fit(train, {"Month", "VisitorType"});
  const uvp::Matrix<float> Z = lax.transform<float>(test);
  uvp::Matrix<float> expect(2, 5);
  expect << 0, 1, 0, 0, 1,  //
      0, 0, 0, 1, 0;        // Dec -> all zeros in the Month block
  CHECK(Z == expect);

  // transform_into writes into a block of a larger matrix.
  uvp::Matrix<float> big = uvp::Matrix<float>::Constant(2, 7, 9.0f);
  lax.transform_into(test, big.middleCols(1, 5));
  CHECK(big.middleCols(1, 5) == expect);
  CHECK(big.col(0).cwiseEqual(9.0f).all());
  CHECK(big.col(6).cwiseEqual(9.0f).all());
  UVP_CHECK_THROWS_WITH_SUBSTR(lax.transform_into(test, big), uvp::shape_error,
                               "uvp::OneHotEncoder::transform_into: out has shape (2, 7), expected (2, 5)");
}

TEST_CASE("OneHotEncoder: bad inputs and use before fit") {
  uvp::OneHotEncoder enc;
  UVP_CHECK_THROWS_WITH_SUBSTR(enc.transform<double>({{"a"}}), uvp::not_fitted_error,
                               "uvp::OneHotEncoder::transform: the encoder is not fitted");
  UVP_CHECK_THROWS_WITH_SUBSTR(enc.feature_names(), uvp::not_fitted_error, "uvp::OneHotEncoder::feature_names");
  UVP_CHECK_THROWS_WITH_SUBSTR(enc.fit({}), uvp::invalid_argument, "uvp::OneHotEncoder::fit: columns is empty");
  UVP_CHECK_THROWS_WITH_SUBSTR(enc.fit({{}, {}}), uvp::invalid_argument,
                               "uvp::OneHotEncoder::fit: columns[0] is empty (no samples)");
  UVP_CHECK_THROWS_WITH_SUBSTR(enc.fit({{"a", "b"}, {"c"}}), uvp::shape_error,
                               "uvp::OneHotEncoder::fit: columns[1] has size 1, expected 2");
  UVP_CHECK_THROWS_WITH_SUBSTR(enc.fit({{"a", "b"}}, {"p", "q"}), uvp::shape_error,
                               "uvp::OneHotEncoder::fit: input_names has size 2, expected 1");
  enc.fit({{"a", "b"}});
  UVP_CHECK_THROWS_WITH_SUBSTR(enc.transform<double>({{"a"}, {"b"}}), uvp::shape_error,
                               "uvp::OneHotEncoder::transform: columns has size 2, expected 1");
}

TEST_CASE("LabelEncoder matches sklearn: sorted classes, codes, inverse") {
  const std::vector<std::string> labels{"TRUE", "FALSE", "True", "false", "FALSE", "10", "9", "TRUE"};
  uvp::LabelEncoder le;
  const std::vector<uvp::index> codes = le.fit_transform(labels);
  CHECK(le.classes() == read_lines("label_classes.txt"));
  const auto ref = uvp_test::read_numbers(uvp_test::fixture_path("data/label_codes.txt"));
  REQUIRE(codes.size() + 2 == ref.size());
  for (std::size_t i = 0; i < codes.size(); ++i) CHECK(double(codes[i]) == ref[i + 2]);
  CHECK(le.inverse_transform(codes) == labels);
  const uvp::Vector<float> y = le.transform_as<float>({"FALSE", "TRUE"});
  CHECK(y[0] == 2.0f);
  CHECK(y[1] == 3.0f);
  CHECK(le.n_classes() == 6);

  UVP_CHECK_THROWS_WITH_SUBSTR(le.transform({"TRUE", "maybe"}), uvp::invalid_argument,
                               "uvp::LabelEncoder::transform: y[1] = 'maybe' is not a known class (classes: '10', '9', 'FALSE'");
  UVP_CHECK_THROWS_WITH_SUBSTR(le.inverse_transform({0, 6}), uvp::out_of_range_error,
                               "uvp::LabelEncoder::inverse_transform: codes[1] = 6 out of range [0, 6)");
  uvp::LabelEncoder empty;
  UVP_CHECK_THROWS_WITH_SUBSTR(empty.transform({"a"}), uvp::not_fitted_error,
                               "uvp::LabelEncoder::transform: the encoder is not fitted");
  UVP_CHECK_THROWS_WITH_SUBSTR(empty.fit({}), uvp::invalid_argument, "uvp::LabelEncoder::fit: y is empty");
}
