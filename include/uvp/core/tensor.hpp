// SPDX-License-Identifier: Apache-2.0
// Row-major Eigen aliases, views over caller memory, and a minimal C++17 span.
#pragma once

#include <Eigen/Core>
#include <type_traits>
#include <vector>

#include "uvp/core/config.hpp"

namespace uvp {

/// Row-major dense matrix: rows are samples, columns are features (as in PyTorch and NumPy).
template <class T>
using Matrix = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
/// Dense column vector.
template <class T>
using Vector = Eigen::Matrix<T, Eigen::Dynamic, 1>;

/// A read-only matrix argument: binds to a row-major Matrix, a Map, or a block of one without a
/// copy; other expressions (column-major, products) are evaluated into a temporary.
template <class T>
using ConstMatrixRef = Eigen::Ref<const Matrix<T>>;
/// A writable matrix argument (row-major storage with unit inner stride).
template <class T>
using MatrixRef = Eigen::Ref<Matrix<T>>;
template <class T>
using ConstVectorRef = Eigen::Ref<const Vector<T>>;
template <class T>
using VectorRef = Eigen::Ref<Vector<T>>;

/// Views over memory the caller owns: no copy, no ownership.
template <class T>
using MatrixView = Eigen::Map<Matrix<T>>;
template <class T>
using ConstMatrixView = Eigen::Map<const Matrix<T>>;
template <class T>
using VectorView = Eigen::Map<Vector<T>>;
template <class T>
using ConstVectorView = Eigen::Map<const Vector<T>>;

/// Wraps caller memory (row-major, rows x cols) as a matrix view.
template <class T>
MatrixView<T> view(T* data, index rows, index cols) {
  return MatrixView<T>(data, rows, cols);
}
template <class T>
ConstMatrixView<T> view(const T* data, index rows, index cols) {
  return ConstMatrixView<T>(data, rows, cols);
}

/// A pointer and a length (std::span is C++20; uvp's floor is C++17).
template <class T>
class Span {
 public:
  using element_type = T;
  using value_type = std::remove_cv_t<T>;

  constexpr Span() noexcept = default;
  constexpr Span(T* data, index size) noexcept : data_(data), size_(size) {}
  template <class U, class = std::enable_if_t<std::is_convertible_v<U (*)[], T (*)[]>>>
  constexpr Span(Span<U> other) noexcept : data_(other.data()), size_(other.size()) {}
  template <class A>
  Span(std::vector<value_type, A>& v) noexcept : data_(v.data()), size_(static_cast<index>(v.size())) {}
  template <class A, class U = T, class = std::enable_if_t<std::is_const_v<U>>>
  Span(const std::vector<value_type, A>& v) noexcept
      : data_(v.data()), size_(static_cast<index>(v.size())) {}

  constexpr T* data() const noexcept { return data_; }
  constexpr index size() const noexcept { return size_; }
  constexpr bool empty() const noexcept { return size_ == 0; }
  constexpr T& operator[](index i) const noexcept { return data_[i]; }
  constexpr T* begin() const noexcept { return data_; }
  constexpr T* end() const noexcept { return data_ + size_; }
  constexpr Span subspan(index offset, index count) const noexcept {
    return Span(data_ + offset, count);
  }
  /// The same memory as an Eigen vector view.
  Eigen::Map<std::conditional_t<std::is_const_v<T>, const Vector<value_type>, Vector<value_type>>>
  as_vector() const noexcept {
    return {data_, size_};
  }

 private:
  T* data_ = nullptr;
  index size_ = 0;
};

template <class T>
Span<const T> as_span(const Vector<T>& v) noexcept {
  return {v.data(), v.size()};
}
template <class T>
Span<T> as_span(Vector<T>& v) noexcept {
  return {v.data(), v.size()};
}
template <class T, class A>
Span<const T> as_span(const std::vector<T, A>& v) noexcept {
  return {v.data(), static_cast<index>(v.size())};
}
template <class T, class A>
Span<T> as_span(std::vector<T, A>& v) noexcept {
  return {v.data(), static_cast<index>(v.size())};
}

}  // namespace uvp
