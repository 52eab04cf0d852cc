// SPDX-License-Identifier: Apache-2.0
// The RFM logistic-regression baseline of the purchase examples: P(repeat purchase) from the five
// calibration features (frequency, recency, age, mean and total spend), what a sequence model has
// to beat to show that the order of the purchases carries information the summary does not.
#pragma once

#include <cmath>
#include <vector>

#include "cdnow_sequences.hpp"
#include "uvp/data/scalers.hpp"
#include "uvp/models/logistic_regression.hpp"

namespace uvp_examples {

/// ds.features with log1p applied to the count and money columns (frequency, mean_spend,
/// total_spend: heavy right tails), for the given customers.
inline uvp::Matrix<double> rfm_features(const CdnowDataset& ds, const std::vector<index>& customers) {
  uvp::Matrix<double> X(index(customers.size()), ds.features.cols());
  for (std::size_t k = 0; k < customers.size(); ++k) {
    X.row(index(k)) = ds.features.row(customers[k]);
    for (index j : {index(0), index(3), index(4)}) X(index(k), j) = std::log1p(std::max(0.0, X(index(k), j)));
  }
  return X;
}

struct RfmLogreg {
  uvp::StandardScaler<double> scaler;
  uvp::LogisticRegression<double> model{5};
  uvp::Vector<double> p_repeat;  ///< P(purchase in the holdout) for every customer of the data set
};

/// Standardised rfm_features -> uvp::LogisticRegression<double> with scikit-learn's default
/// regularisation (C = 1: l2 = 1 / N), fitted on the train + validation customers (as the BG/NBD
/// baseline: the test customers are never seen; nothing is tuned, so validation is not needed).
inline RfmLogreg fit_rfm_logreg(const CdnowDataset& ds, std::uint64_t seed = 42) {
  std::vector<index> fit_customers = ds.train;
  fit_customers.insert(fit_customers.end(), ds.validation.begin(), ds.validation.end());
  const uvp::Matrix<double> X_raw = rfm_features(ds, fit_customers);
  RfmLogreg out;
  out.scaler.fit(X_raw);
  const uvp::Matrix<double> X = out.scaler.transform(X_raw);
  const uvp::Vector<double> y = uvp::take(ds.label, uvp::as_span(fit_customers));
  uvp::LogisticRegressionOptions lo;
  lo.l2 = 1.0 / double(X.rows());
  out.model = uvp::LogisticRegression<double>(X.cols(), lo);
  uvp::FitOptions fo;
  fo.epochs = 40, fo.batch_size = 256, fo.lr = 1e-2, fo.seed = seed;
  out.model.fit(X, y, fo);
  std::vector<index> all(std::size_t(ds.size()));
  for (index i = 0; i < ds.size(); ++i) all[std::size_t(i)] = i;
  out.p_repeat = out.model.predict_proba(out.scaler.transform(rfm_features(ds, all)));
  return out;
}

}  // namespace uvp_examples
