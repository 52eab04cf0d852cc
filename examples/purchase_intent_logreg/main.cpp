// SPDX-License-Identifier: Apache-2.0
// Purchase intent from session features: logistic regression on the UCI Online Shoppers data.
//
//   purchase_intent_logreg [--data PATH] [--out DIR] [--epochs N] [--seed S] [--c C]
//
// Encodes the categorical columns (one-hot), standardises the numeric ones, splits 80/20
// stratified with a fixed seed, trains with uvp::fit (Adam, cosine learning-rate decay, early
// stopping on the ROC-AUC of a validation slice of the training rows), and prints test-split
// metrics one `name: value` per line. Progress goes to
// stderr; predictions, the split and the ROC curve (SVG) go to --out.
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include "uvp/data/csv.hpp"
#include "uvp/data/encoders.hpp"
#include "uvp/data/scalers.hpp"
#include "uvp/data/split.hpp"
#include "uvp/io/svg.hpp"
#include "uvp/metrics/classification.hpp"
#include "uvp/metrics/ranking.hpp"
#include "uvp/models/logistic_regression.hpp"
#include "uvp/optim/adam.hpp"
#include "uvp/optim/schedule.hpp"
#include "uvp/training/fit.hpp"

namespace {

struct Args {
  std::string data = UVP_EXAMPLE_DATA;
  std::string out = "out/purchase_intent_logreg";
  uvp::index epochs = 40;
  std::uint64_t seed = 42;
  double c = 1.0;  // scikit-learn's default inverse regularisation strength
};

// A whole-string number, or an error naming the option and the text.
template <class N>
N parse_number(const std::string& option, const std::string& text) {
  std::istringstream in(text);
  N value{};
  if (!(in >> value) || !in.eof())
    throw uvp::invalid_argument("option " + option + ": '" + text + "' is not a valid number");
  return value;
}

Args parse_args(int argc, char** argv) {
  Args a;
  for (int i = 1; i < argc; ++i) {
    const std::string k = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) throw uvp::invalid_argument("option " + k + " needs a value");
      return argv[++i];
    };
    if (k == "--data") a.data = value();
    else if (k == "--out") a.out = value();
    else if (k == "--epochs") a.epochs = parse_number<uvp::index>(k, value());
    else if (k == "--seed") a.seed = parse_number<std::uint64_t>(k, value());
    else if (k == "--c") a.c = parse_number<double>(k, value());
    else if (k == "--help" || k == "-h") {
      std::cout << "usage: purchase_intent_logreg [--data PATH] [--out DIR] [--epochs N] [--seed S] [--c C]\n";
      std::exit(0);
    } else {
      throw uvp::invalid_argument("unknown option " + k + " (see --help)");
    }
  }
  if (!(a.c > 0)) throw uvp::invalid_argument("option --c: the inverse regularisation strength must be > 0, got " + std::to_string(a.c));
  return a;
}

const std::vector<std::string> numeric_columns = {
    "Administrative", "Administrative_Duration", "Informational", "Informational_Duration",
    "ProductRelated", "ProductRelated_Duration", "BounceRates", "ExitRates", "PageValues", "SpecialDay"};
const std::vector<std::string> categorical_columns = {
    "Month", "OperatingSystems", "Browser", "Region", "TrafficType", "VisitorType", "Weekend"};

// Session features of the given rows: standardised numeric columns, then one-hot categories.
struct Features {
  uvp::StandardScaler<double> scaler;
  uvp::OneHotEncoder encoder{uvp::OneHotEncoderOptions{uvp::HandleUnknown::ignore, uvp::Drop::none}};

  void fit(const uvp::CsvTable& t, const std::vector<uvp::index>& rows) {
    scaler.fit(numeric(t, rows));
    encoder.fit(categories(t, rows), categorical_columns);
  }
  uvp::Matrix<double> transform(const uvp::CsvTable& t, const std::vector<uvp::index>& rows) const {
    const uvp::Matrix<double> num = scaler.transform(numeric(t, rows));
    const uvp::Matrix<double> cat = encoder.transform<double>(categories(t, rows));
    uvp::Matrix<double> X(num.rows(), num.cols() + cat.cols());
    X << num, cat;
    return X;
  }
  static uvp::Matrix<double> numeric(const uvp::CsvTable& t, const std::vector<uvp::index>& rows) {
    return uvp::take_rows(t.numeric_matrix<double>(numeric_columns), uvp::as_span(rows));
  }
  static uvp::OneHotEncoder::Columns categories(const uvp::CsvTable& t, const std::vector<uvp::index>& rows) {
    uvp::OneHotEncoder::Columns cols;
    for (const auto& name : categorical_columns) cols.push_back(uvp::take(t.column(name), uvp::as_span(rows)));
    return cols;
  }
};

uvp::Vector<double> labels(const uvp::CsvTable& t) {
  const auto revenue = t.column("Revenue");
  uvp::Vector<double> y(uvp::index(revenue.size()));
  for (std::size_t i = 0; i < revenue.size(); ++i) {
    if (revenue[i] != "TRUE" && revenue[i] != "FALSE")
      throw uvp::parse_error(t.location(uvp::index(i), t.column_index("Revenue")) +
                             ": Revenue must be TRUE or FALSE, got '" + revenue[i] + "'");
    y[uvp::index(i)] = revenue[i] == "TRUE" ? 1.0 : 0.0;
  }
  return y;
}

void write_outputs(const Args& args, const std::vector<uvp::index>& fit, const std::vector<uvp::index>& val,
                   const std::vector<uvp::index>& test,
                   const uvp::Vector<double>& y_test, const uvp::Vector<double>& p_test,
                   const uvp::RocCurve<double>& roc, double auc) {
  std::filesystem::create_directories(args.out);
  std::ostringstream pred;
  pred << "row,revenue,p_purchase\n";
  pred.precision(9);
  for (std::size_t i = 0; i < test.size(); ++i)
    pred << test[i] << ',' << y_test[uvp::index(i)] << ',' << p_test[uvp::index(i)] << '\n';
  uvp::write_file_atomic(args.out + "/predictions.csv", pred.str());

  std::ostringstream split;
  split << "row,set\n";
  for (auto r : fit) split << r << ",fit\n";
  for (auto r : val) split << r << ",validation\n";
  for (auto r : test) split << r << ",test\n";
  uvp::write_file_atomic(args.out + "/split.csv", split.str());

  std::ostringstream label;
  label.precision(4);
  label << "logistic regression (AUC " << auc << ")";
  uvp::SvgPlot("Purchase intent: ROC curve on the test split", "false positive rate", "true positive rate")
      .x_range(0, 1)
      .y_range(0, 1)
      .add_line(uvp::Span<const double>(roc.fpr.data(), roc.fpr.size()),
                uvp::Span<const double>(roc.tpr.data(), roc.tpr.size()), label.str())
      .add_diagonal("chance")
      .save(args.out + "/roc.svg");
}

int run(const Args& args) {
  const uvp::CsvTable table = uvp::read_csv(args.data);
  const uvp::Vector<double> y = labels(table);

  // 80/20 stratified split of all sessions; then 10% of the training rows for early stopping.
  const auto outer = uvp::stratified_train_test_split(y, 0.2, args.seed);
  const uvp::Vector<double> y_train_all = uvp::take(y, uvp::as_span(outer.train));
  const auto inner = uvp::stratified_train_test_split(y_train_all, 0.1, args.seed + 1);
  std::vector<uvp::index> fit_rows, val_rows;
  for (auto i : inner.train) fit_rows.push_back(outer.train[std::size_t(i)]);
  for (auto i : inner.test) val_rows.push_back(outer.train[std::size_t(i)]);

  Features features;
  features.fit(table, fit_rows);
  const uvp::Matrix<double> X_fit = features.transform(table, fit_rows);
  const uvp::Matrix<double> X_val = features.transform(table, val_rows);
  const uvp::Matrix<double> X_test = features.transform(table, outer.test);
  const uvp::Vector<double> y_fit = uvp::take(y, uvp::as_span(fit_rows));
  const uvp::Vector<double> y_val = uvp::take(y, uvp::as_span(val_rows));
  const uvp::Vector<double> y_test = uvp::take(y, uvp::as_span(outer.test));

  // scikit-learn's LogisticRegression(C) objective on N rows: l2 = 1 / (C N). Adam with a cosine
  // decay of the learning rate over the epochs (it lets Adam settle at the optimum); uvp::fit
  // keeps the weights of the epoch with the best validation ROC-AUC (patience 10). The model
  // follows the layer contract, so uvp::fit trains it directly with validation data, which
  // LogisticRegression::fit (plain FitOptions) does not take.
  uvp::LogisticRegressionOptions lo;
  lo.l2 = 1.0 / (args.c * double(X_fit.rows()));
  uvp::LogisticRegression<double> model(X_fit.cols(), lo);
  uvp::AdamOptions ao;
  ao.lr = 0.01;
  uvp::Adam<double> adam(ao);
  uvp::TrainOptions<uvp::RowData<double>> to;
  to.epochs = args.epochs, to.batch_size = 128, to.seed = args.seed;
  to.schedule = uvp::CosineLr{ao.lr, args.epochs};
  to.validation = uvp::RowData<double>(X_val, y_val);
  // On the logits: the ranking, hence the AUC, is that of the probabilities.
  to.metric = [](auto y, auto z) { return uvp::roc_auc<double>({y.data(), y.size()}, {z.data(), z.size()}); };
  to.metric_name = "roc_auc", to.patience = 10, to.min_delta = 1e-5, to.progress = stderr;
  const uvp::FitResult result =
      uvp::fit(model, uvp::RowData<double>(X_fit, y_fit), uvp::BceWithLogitsLoss<double>(), adam, to);
  if (result.diverged) throw uvp::numeric_error(result.message);

  const uvp::Vector<double> p_test = model.predict_proba(X_test);
  const uvp::Vector<double> yhat = model.predict(X_test);
  const auto yt = uvp::as_span(y_test), pt = uvp::as_span(p_test), yh = uvp::as_span(yhat);
  const double auc = uvp::roc_auc<double>(yt, pt);

  std::cout.precision(4);
  std::cout << std::fixed;
  std::cout << "rows: " << table.rows() << "\n"
            << "features: " << X_fit.cols() << "\n"
            << "train_rows: " << X_fit.rows() << "\n"
            << "validation_rows: " << X_val.rows() << "\n"
            << "test_rows: " << X_test.rows() << "\n"
            << "epochs_run: " << result.epochs_run << "\n"
            << "best_epoch: " << result.best_epoch << "\n"
            << "accuracy: " << uvp::accuracy<double>(yt, yh) << "\n"
            << "precision: " << uvp::precision<double>(yt, yh) << "\n"
            << "recall: " << uvp::recall<double>(yt, yh) << "\n"
            << "f1: " << uvp::f1_score<double>(yt, yh) << "\n"
            << "roc_auc: " << auc << "\n"
            << "pr_auc: " << uvp::pr_auc<double>(yt, pt) << "\n"
            << "log_loss: " << uvp::log_loss<double>(yt, pt) << "\n";

  write_outputs(args, fit_rows, val_rows, outer.test, y_test, p_test, uvp::roc_curve<double>(yt, pt), auc);
  std::cerr << "wrote " << args.out << "/predictions.csv, split.csv, roc.svg\n";
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run(parse_args(argc, argv));
  } catch (const uvp::error& e) {
    std::cerr << "purchase_intent_logreg: " << e.what() << "\n";
    return 2;
  } catch (const std::exception& e) {
    std::cerr << "purchase_intent_logreg: " << e.what() << "\n";
    return 2;
  }
}
