// SPDX-License-Identifier: Apache-2.0
// The data module end to end on the real UCI Online Shoppers file: CSV -> encoders -> stratified
// split -> scaler fitted on the train part -> minibatches.
#include <doctest/doctest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "support/test_support.hpp"
#include "uvp/data/batching.hpp"
#include "uvp/data/csv.hpp"
#include "uvp/data/encoders.hpp"
#include "uvp/data/scalers.hpp"
#include "uvp/data/split.hpp"

TEST_CASE_TEMPLATE("Online Shoppers: features, labels, stratified split, scaling, batches", T, float, double) {
  const auto table =
      uvp::read_csv(uvp_test::data_path("online_shoppers_intention/online_shoppers_intention.csv"));
  REQUIRE(table.rows() == 12330);
  REQUIRE(table.cols() == 18);

  const std::vector<std::string> numeric{
      "Administrative", "Administrative_Duration", "Informational", "Informational_Duration",
      "ProductRelated", "ProductRelated_Duration", "BounceRates",   "ExitRates",
      "PageValues",     "SpecialDay"};
  const uvp::Matrix<T> X_num = table.numeric_matrix<T>(numeric);
  CHECK(X_num.rows() == 12330);
  CHECK(X_num.cols() == 10);

  const std::vector<std::string> categorical{"Month", "VisitorType", "Weekend", "OperatingSystems"};
  uvp::OneHotEncoder::Columns cat_columns;
  for (const auto& c : categorical) cat_columns.push_back(table.column(c));
  uvp::OneHotEncoder enc;
  const uvp::Matrix<T> X_cat = enc.fit_transform<T>(cat_columns, categorical);
  CHECK(enc.categories()[0] == std::vector<std::string>{"Aug", "Dec", "Feb", "Jul", "June", "Mar",
                                                        "May", "Nov", "Oct", "Sep"});
  CHECK(enc.categories()[1] == std::vector<std::string>{"New_Visitor", "Other", "Returning_Visitor"});
  CHECK(enc.categories()[2] == std::vector<std::string>{"FALSE", "TRUE"});
  CHECK(enc.categories()[3] == std::vector<std::string>{"1", "2", "3", "4", "5", "6", "7", "8"});
  CHECK(enc.n_features_out() == 23);
  CHECK(enc.feature_names()[4] == "Month_June");
  // One 1 per categorical column in every row.
  CHECK((X_cat.rowwise().sum().array() == T(4)).all());
  CHECK(X_cat.col(enc.n_features_out() - 8 - 1).sum() == T(2868));  // Weekend_TRUE

  uvp::LabelEncoder le;
  const std::vector<std::string> revenue = table.column("Revenue");
  const uvp::Vector<T> y = le.fit(revenue).transform_as<T>(revenue);
  CHECK(le.classes() == std::vector<std::string>{"FALSE", "TRUE"});
  CHECK(y.sum() == T(1908));

  const auto split = uvp::stratified_train_test_split(revenue, 0.2, 7);
  CHECK(split.train.size() == 9864);
  CHECK(split.test.size() == 2466);
  const uvp::Vector<T> y_test = uvp::take(y, split.test);
  CHECK(y_test.sum() == T(382));

  uvp::StandardScaler<T> scaler;
  const uvp::Matrix<T> Z_train = scaler.fit_transform(uvp::take_rows(X_num, split.train));
  const uvp::Matrix<T> Z_test = scaler.transform(uvp::take_rows(X_num, split.test));
  for (uvp::index j = 0; j < Z_train.cols(); ++j) {
    CAPTURE(j);
    CHECK(std::abs(double(Z_train.col(j).mean())) < 1e-4);
    CHECK(double(Z_train.col(j).squaredNorm()) / double(Z_train.rows()) == doctest::Approx(1.0).epsilon(1e-4));
  }
  CHECK(Z_test.rows() == 2466);

  uvp::MinibatchOptions o;
  o.batch_size = 256;
  uvp::MinibatchIterator batches(Z_train.rows(), o);
  CHECK(batches.batches_per_epoch() == 39);  // ceil(9864 / 256)
  uvp::Matrix<T> xb(o.batch_size, Z_train.cols());
  double total = 0;
  for (uvp::Span<const uvp::index> rows; batches.next(rows);)
    total += double(uvp::gather_rows(Z_train, rows, xb).sum());
  CHECK(total == doctest::Approx(double(Z_train.sum())).epsilon(1e-3).scale(100.0));
}
