// SPDX-License-Identifier: Apache-2.0
// uvp's exception types: one catchable base (uvp::error) and standard-derived subtypes.
#pragma once

#include <charconv>
#include <sstream>
#include <type_traits>
#include <stdexcept>
#include <string>
#include <utility>

namespace uvp {

/// Stable identifier of an error's kind; tests and callers may switch on it.
enum class errc {
  invalid_argument,  ///< a value outside its domain (NaN, negative count, label not in {0,1}, ...)
  shape_mismatch,    ///< tensor sizes that do not agree
  out_of_range,      ///< an index or id outside its valid range
  empty_input,       ///< no rows / no data where some are required
  parse_error,       ///< malformed text input (CSV row, date, number)
  io_error,          ///< a file that cannot be opened, read or written
  format_error,      ///< a model file that is truncated, corrupted, or of another version / architecture
  numeric_error,     ///< a computation that diverged (non-finite loss)
  not_fitted,        ///< a model used before fit()
  backend_error,     ///< a CUDA runtime / cuBLAS failure
};

/// Base of every exception uvp throws. Catch `const uvp::error&` for all of them, or the
/// standard base (std::invalid_argument / std::runtime_error) each subtype also derives from.
class error {
 public:
  virtual ~error() = default;
  virtual const char* what() const noexcept = 0;
  errc code() const noexcept { return code_; }

 protected:
  explicit error(errc c) noexcept : code_(c) {}
  error(const error&) = default;
  error& operator=(const error&) = default;

 private:
  errc code_;
};

/// A bad argument at an API boundary: a value, a shape, an id.
class invalid_argument : public std::invalid_argument, public error {
 public:
  explicit invalid_argument(const std::string& msg, errc c = errc::invalid_argument)
      : std::invalid_argument(msg), error(c) {}
  const char* what() const noexcept override { return std::invalid_argument::what(); }
};

/// Sizes that do not agree (`X has 10 rows but y has 9`).
class shape_error : public invalid_argument {
 public:
  explicit shape_error(const std::string& msg) : invalid_argument(msg, errc::shape_mismatch) {}
};

/// An index or id outside its range.
class out_of_range_error : public invalid_argument {
 public:
  explicit out_of_range_error(const std::string& msg) : invalid_argument(msg, errc::out_of_range) {}
};

/// A failure that depends on the environment or on the data's content at run time
/// (files, parsing, divergence, device errors).
class runtime_error : public std::runtime_error, public error {
 public:
  explicit runtime_error(const std::string& msg, errc c) : std::runtime_error(msg), error(c) {}
  const char* what() const noexcept override { return std::runtime_error::what(); }
};

/// Malformed text input; the message names the file, line and column where known.
class parse_error : public runtime_error {
 public:
  explicit parse_error(const std::string& msg) : runtime_error(msg, errc::parse_error) {}
};

/// A file that cannot be opened, read or written.
class io_error : public runtime_error {
 public:
  explicit io_error(const std::string& msg) : runtime_error(msg, errc::io_error) {}
};

/// A model file that is truncated, corrupted, or of another version or architecture.
class format_error : public runtime_error {
 public:
  explicit format_error(const std::string& msg) : runtime_error(msg, errc::format_error) {}
};

/// A computation that produced non-finite values (a diverging fit).
class numeric_error : public runtime_error {
 public:
  explicit numeric_error(const std::string& msg) : runtime_error(msg, errc::numeric_error) {}
};

/// A model used before it was fitted or loaded.
class not_fitted_error : public runtime_error {
 public:
  explicit not_fitted_error(const std::string& msg) : runtime_error(msg, errc::not_fitted) {}
};

/// A CUDA runtime or cuBLAS call that failed; the message names the call and status.
class backend_error : public runtime_error {
 public:
  explicit backend_error(const std::string& msg) : runtime_error(msg, errc::backend_error) {}
};

namespace detail {

/// Writes one message part; floating-point values in their shortest round-trip form (0.05, not
/// 0.050000000000000003), so messages show exactly the value the caller passed.
template <class A>
void append_part(std::ostringstream& os, const A& a) {
  if constexpr (std::is_floating_point_v<A>) {
    char buf[64];
    const auto r = std::to_chars(buf, buf + sizeof buf, a);
    os.write(buf, r.ptr - buf);
  } else {
    os << a;
  }
}

/// Concatenates its arguments with operator<< (used to build error messages).
template <class... Args>
std::string str(const Args&... args) {
  std::ostringstream os;
  (append_part(os, args), ...);
  return os.str();
}

/// Every throw in uvp goes through here: one place to set a breakpoint.
template <class E, class... Args>
[[noreturn]] void raise(const Args&... args) {
  throw E(str(args...));
}

}  // namespace detail
}  // namespace uvp
