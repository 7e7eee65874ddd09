#pragma once
/// @file
/// Error hierarchy and the METALEARN_CHECK / METALEARN_ASSERT macros.
///
/// Every user mistake throws a subclass of metalearn::Error whose message starts
/// with the name of the function that detected it, followed by the shapes, values
/// or file involved.

#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>

#include "metalearn/core/export.hpp"

namespace metalearn {

/// Base of every exception thrown by metalearn.
class METALEARN_API Error : public std::runtime_error {
 public:
  explicit Error(const std::string& what) : std::runtime_error(what) {}
};

/// Shapes that do not fit the operation (broadcasting, matmul, reshape, ...).
class METALEARN_API ShapeError : public Error {
 public:
  using Error::Error;
};

/// A value outside the accepted range (negative size, bad option, ...).
class METALEARN_API ValueError : public Error {
 public:
  using Error::Error;
};

/// A size, count, byte count or offset that does not fit its integer type, or a
/// value that cannot be converted to one (see core/checked.hpp).
class METALEARN_API OverflowError : public ValueError {
 public:
  using ValueError::ValueError;
};

/// A NaN or infinite value where only finite ones make sense (a saved checkpoint,
/// a meta-gradient, updated parameters).
class METALEARN_API NonFiniteError : public ValueError {
 public:
  using ValueError::ValueError;
};

/// A file that is missing, unreadable or corrupt.
class METALEARN_API IoError : public Error {
 public:
  using Error::Error;
};

/// The system refused a resource metalearn asked for (a thread, for instance); the
/// message names what was being created and the system's reason.
class METALEARN_API ResourceError : public Error {
 public:
  using Error::Error;
};

/// Misuse of the autodiff engine (freed graph, unused input, ...).
class METALEARN_API AutogradError : public Error {
 public:
  using Error::Error;
};

/// An internal invariant does not hold: a bug in metalearn, never a user error.
class METALEARN_API AssertionFailure : public Error {
 public:
  using Error::Error;
};

namespace detail {

/// Concatenates the streamed representation of every part into one string.
template <class... Parts>
std::string str_cat(const Parts&... parts) {
  std::ostringstream os;
  (os << ... << parts);
  return os.str();
}

template <class E, class... Parts>
[[noreturn]] void throw_error(const Parts&... parts) {
  throw E(str_cat(parts...));
}

}  // namespace detail
}  // namespace metalearn

/// Throws `ErrorType` with the concatenated message parts when `cond` is false.
/// Usage: METALEARN_CHECK(a.dim() == 2, ShapeError, "matmul: expected 2-D, got ", a.shape());
#define METALEARN_CHECK(cond, ErrorType, ...)                                \
  do {                                                                       \
    if (!(cond)) [[unlikely]] {                                              \
      ::metalearn::detail::throw_error<::metalearn::ErrorType>(__VA_ARGS__); \
    }                                                                        \
  } while (false)

/// Internal invariant. Active unless NDEBUG is defined; throws AssertionFailure.
#ifdef NDEBUG
#define METALEARN_ASSERT(cond, ...) \
  do {                              \
  } while (false)
#else
#define METALEARN_ASSERT(cond, ...)                                    \
  do {                                                                 \
    if (!(cond)) [[unlikely]] {                                        \
      ::metalearn::detail::throw_error<::metalearn::AssertionFailure>( \
          "internal error: ", #cond, " failed at ", __FILE__, ":",     \
          __LINE__ __VA_OPT__(, " ", ) __VA_ARGS__);                   \
    }                                                                  \
  } while (false)
#endif
