// SPDX-License-Identifier: Apache-2.0
// Categorical encoders with scikit-learn's semantics: OneHotEncoder and LabelEncoder.
#pragma once

#include <algorithm>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "uvp/core/check.hpp"
#include "uvp/core/error.hpp"
#include "uvp/core/tensor.hpp"

namespace uvp {

namespace detail {

/// Sorted distinct values, in the order of np.unique on a str array (byte-wise, which for UTF-8
/// is code-point order, as Python compares str).
inline std::vector<std::string> sorted_unique(const std::vector<std::string>& values) {
  std::vector<std::string> u(values);
  std::sort(u.begin(), u.end());
  u.erase(std::unique(u.begin(), u.end()), u.end());
  return u;
}

/// Position of `value` in the sorted `categories`, or -1.
inline index category_code(const std::vector<std::string>& categories, std::string_view value) {
  const auto it = std::lower_bound(categories.begin(), categories.end(), value,
                                   [](const std::string& a, std::string_view b) { return a < b; });
  if (it == categories.end() || *it != value) return -1;
  return static_cast<index>(it - categories.begin());
}

/// "'a', 'b', 'c'" (at most `limit` items, then "... (k more)").
inline std::string quoted_list(const std::vector<std::string>& items, std::size_t limit = 20) {
  std::string s;
  for (std::size_t i = 0; i < items.size() && i < limit; ++i) {
    if (i) s += ", ";
    s += '\'' + items[i] + '\'';
  }
  if (items.size() > limit) s += str(", ... (", items.size() - limit, " more)");
  return s;
}

}  // namespace detail

/// What OneHotEncoder::transform does with a category not seen by fit.
enum class HandleUnknown {
  error,   ///< throw uvp::invalid_argument naming the column, the value and the row (default)
  ignore,  ///< encode it as all zeros in that column's block
};

/// Which category of each column gets no output column (sklearn's drop).
enum class Drop {
  none,       ///< keep every category (default)
  first,      ///< drop the first (smallest) category of every column
  if_binary,  ///< drop the first category of columns that have exactly two
};

struct OneHotEncoderOptions {
  HandleUnknown handle_unknown = HandleUnknown::error;
  Drop drop = Drop::none;
};

/// One-hot encoding of string columns, as sklearn.preprocessing.OneHotEncoder(sparse_output=False).
///
/// Input: `columns[j][i]` is the value of feature j for sample i (each column as a CSV reader
/// returns it), d columns of n strings each. categories()[j] is the sorted distinct values of
/// column j (sklearn's categories_ for str data). The output is n x n_features_out(), a block per
/// column in input order, one output column per kept category, in category order;
/// feature_names() are "<input name>_<category>" (get_feature_names_out), the input names
/// defaulting to "x0", "x1", ... Every string is a category, the empty string included (a
/// missing CSV field is the category of its text).
class OneHotEncoder {
 public:
  using Columns = std::vector<std::vector<std::string>>;

  explicit OneHotEncoder(OneHotEncoderOptions options = {}) : options_(options) {}

  /// `input_names`: one per column, or empty for "x0", "x1", ...
  OneHotEncoder& fit(const Columns& columns, std::vector<std::string> input_names = {}) {
    constexpr const char* where = "uvp::OneHotEncoder::fit";
    check_columns(where, columns, -1);
    if (!input_names.empty())
      detail::check_size(where, "input_names", static_cast<index>(input_names.size()),
                         static_cast<index>(columns.size()));
    const std::size_t d = columns.size();
    categories_.clear();
    dropped_.assign(d, -1);
    offsets_.assign(d + 1, 0);
    for (std::size_t j = 0; j < d; ++j) {
      categories_.push_back(detail::sorted_unique(columns[j]));
      const index k = static_cast<index>(categories_[j].size());
      if (options_.drop == Drop::first || (options_.drop == Drop::if_binary && k == 2)) dropped_[j] = 0;
      offsets_[j + 1] = offsets_[j] + k - (dropped_[j] >= 0 ? 1 : 0);
    }
    if (input_names.empty())
      for (std::size_t j = 0; j < d; ++j) input_names.push_back("x" + std::to_string(j));
    input_names_ = std::move(input_names);
    return *this;
  }

  /// n x n_features_out() matrix of 0 / 1 (T = float or double).
  template <class T>
  Matrix<T> transform(const Columns& columns) const {
    static_assert(std::is_floating_point_v<T>, "uvp::OneHotEncoder::transform<T>: T must be float or double");
    check_fitted("uvp::OneHotEncoder::transform");
    check_columns("uvp::OneHotEncoder::transform", columns, n_features_in());
    Matrix<T> out(static_cast<index>(columns[0].size()), n_features_out());
    encode(columns, out);
    return out;
  }

  /// Writes the encoding into `out` (n x n_features_out(), a Matrix, Map or block of float or
  /// double), allocating nothing for the output.
  template <class Derived>
  void transform_into(const Columns& columns, const Eigen::MatrixBase<Derived>& out) const {
    static_assert(std::is_floating_point_v<typename Derived::Scalar>,
                  "uvp::OneHotEncoder::transform_into: out must hold float or double");
    check_fitted("uvp::OneHotEncoder::transform_into");
    check_columns("uvp::OneHotEncoder::transform_into", columns, n_features_in());
    detail::check_shape("uvp::OneHotEncoder::transform_into", "out", out.rows(), out.cols(),
                        static_cast<index>(columns[0].size()), n_features_out());
    // Eigen's idiom for writable expression arguments (blocks are temporaries).
    encode(columns, const_cast<Eigen::MatrixBase<Derived>&>(out).derived());
  }

  template <class T>
  Matrix<T> fit_transform(const Columns& columns, std::vector<std::string> input_names = {}) {
    fit(columns, std::move(input_names));
    return transform<T>(columns);
  }

  bool fitted() const noexcept { return !categories_.empty(); }
  index n_features_in() const noexcept { return static_cast<index>(categories_.size()); }
  index n_features_out() const noexcept { return offsets_.empty() ? 0 : offsets_.back(); }

  /// Sorted categories of each input column (sklearn's categories_).
  const std::vector<std::vector<std::string>>& categories() const {
    check_fitted("uvp::OneHotEncoder::categories");
    return categories_;
  }
  /// Index of the dropped category of each column, -1 where none (sklearn's drop_idx_).
  const std::vector<index>& drop_index() const {
    check_fitted("uvp::OneHotEncoder::drop_index");
    return dropped_;
  }
  const std::vector<std::string>& input_names() const {
    check_fitted("uvp::OneHotEncoder::input_names");
    return input_names_;
  }
  /// Names of the output columns, "<input name>_<category>" (sklearn's get_feature_names_out()).
  std::vector<std::string> feature_names() const {
    check_fitted("uvp::OneHotEncoder::feature_names");
    std::vector<std::string> names;
    names.reserve(std::size_t(n_features_out()));
    for (std::size_t j = 0; j < categories_.size(); ++j)
      for (std::size_t k = 0; k < categories_[j].size(); ++k)
        if (index(k) != dropped_[j]) names.push_back(input_names_[j] + "_" + categories_[j][k]);
    return names;
  }
  const OneHotEncoderOptions& options() const noexcept { return options_; }

 private:
  void check_fitted(const char* where) const {
    if (!fitted())
      detail::raise<not_fitted_error>(where, ": the encoder is not fitted; call fit() first");
  }

  static void check_columns(const char* where, const Columns& columns, index expected) {
    if (columns.empty()) detail::raise<invalid_argument>(where, ": columns is empty (no features)");
    if (expected >= 0) detail::check_size(where, "columns", static_cast<index>(columns.size()), expected);
    const index n = static_cast<index>(columns[0].size());
    if (n == 0) detail::raise<invalid_argument>(where, ": columns[0] is empty (no samples)");
    for (std::size_t j = 1; j < columns.size(); ++j)
      if (static_cast<index>(columns[j].size()) != n)
        detail::raise<shape_error>(where, ": columns[", j, "] has size ", columns[j].size(),
                                   ", expected ", n, " (the size of columns[0])");
  }

  template <class M>
  void encode(const Columns& columns, M& out) const {
    using T = typename M::Scalar;
    // Check every value before writing, so a throw leaves `out` untouched.
    const index n = static_cast<index>(columns[0].size());
    std::vector<index> codes(columns.size() * std::size_t(n));
    for (std::size_t j = 0; j < columns.size(); ++j)
      for (index i = 0; i < n; ++i) {
        const index c = detail::category_code(categories_[j], columns[j][std::size_t(i)]);
        if (c < 0 && options_.handle_unknown == HandleUnknown::error)
          detail::raise<invalid_argument>(
              "uvp::OneHotEncoder::transform: column '", input_names_[j], "' (index ", j,
              ") has unknown category '", columns[j][std::size_t(i)], "' at row ", i,
              " (known: ", detail::quoted_list(categories_[j]),
              "; use HandleUnknown::ignore to encode it as zeros)");
        codes[j * std::size_t(n) + std::size_t(i)] = c;
      }
    out.setZero();
    for (std::size_t j = 0; j < columns.size(); ++j)
      for (index i = 0; i < n; ++i) {
        index c = codes[j * std::size_t(n) + std::size_t(i)];
        if (c < 0 || c == dropped_[j]) continue;
        if (dropped_[j] >= 0 && c > dropped_[j]) --c;
        out(i, offsets_[j] + c) = T(1);
      }
  }

  OneHotEncoderOptions options_;
  std::vector<std::vector<std::string>> categories_;
  std::vector<index> dropped_;
  std::vector<index> offsets_;
  std::vector<std::string> input_names_;
};

/// Strings <-> integer codes 0..k-1 in sorted order, as sklearn.preprocessing.LabelEncoder
/// (classes() is sklearn's classes_). Unknown values throw uvp::invalid_argument naming the value.
class LabelEncoder {
 public:
  LabelEncoder& fit(const std::vector<std::string>& y) {
    detail::check_not_empty("uvp::LabelEncoder::fit", "y", static_cast<index>(y.size()));
    classes_ = detail::sorted_unique(y);
    return *this;
  }

  std::vector<index> transform(const std::vector<std::string>& y) const {
    std::vector<index> out(y.size());
    encode("uvp::LabelEncoder::transform", y, out.data());
    return out;
  }

  /// The codes as a vector of T (e.g. 0 / 1 labels for a binary classifier).
  template <class T>
  Vector<T> transform_as(const std::vector<std::string>& y) const {
    static_assert(std::is_arithmetic_v<T>, "uvp::LabelEncoder::transform_as<T>: T must be a number type");
    std::vector<index> codes(y.size());
    encode("uvp::LabelEncoder::transform_as", y, codes.data());
    Vector<T> out(static_cast<index>(y.size()));
    for (std::size_t i = 0; i < codes.size(); ++i) out[index(i)] = static_cast<T>(codes[i]);
    return out;
  }

  std::vector<index> fit_transform(const std::vector<std::string>& y) {
    fit(y);
    return transform(y);
  }

  /// Codes back to strings; a code outside [0, n_classes()) throws uvp::out_of_range_error.
  std::vector<std::string> inverse_transform(const std::vector<index>& codes) const {
    check_fitted("uvp::LabelEncoder::inverse_transform");
    std::vector<std::string> out;
    out.reserve(codes.size());
    for (std::size_t i = 0; i < codes.size(); ++i) {
      if (codes[i] < 0 || codes[i] >= n_classes())
        detail::raise<out_of_range_error>("uvp::LabelEncoder::inverse_transform: codes[", i,
                                          "] = ", codes[i], " out of range [0, ", n_classes(), ")");
      out.push_back(classes_[std::size_t(codes[i])]);
    }
    return out;
  }

  bool fitted() const noexcept { return !classes_.empty(); }
  index n_classes() const noexcept { return static_cast<index>(classes_.size()); }
  const std::vector<std::string>& classes() const {
    check_fitted("uvp::LabelEncoder::classes");
    return classes_;
  }

 private:
  void check_fitted(const char* where) const {
    if (!fitted())
      detail::raise<not_fitted_error>(where, ": the encoder is not fitted; call fit() first");
  }

  void encode(const char* where, const std::vector<std::string>& y, index* out) const {
    check_fitted(where);
    for (std::size_t i = 0; i < y.size(); ++i) {
      out[i] = detail::category_code(classes_, y[i]);
      if (out[i] < 0)
        detail::raise<invalid_argument>(where, ": y[", i, "] = '", y[i],
                                        "' is not a known class (classes: ",
                                        detail::quoted_list(classes_), ")");
    }
  }

  std::vector<std::string> classes_;
};

}  // namespace uvp
