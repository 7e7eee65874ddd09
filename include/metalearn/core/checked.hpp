#pragma once
/// @file
/// Checked size arithmetic: every size, element count, byte count or offset that
/// is computed from input (shapes, files, options) goes through these helpers, so
/// an overflow throws OverflowError naming the operation and the values instead of
/// wrapping around into a small allocation.

#include <cmath>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <type_traits>
#include <utility>

#include "metalearn/core/error.hpp"

namespace metalearn {

/// a * b, or OverflowError naming `op` and both values when the product does not
/// fit I.
template <std::integral I>
[[nodiscard]] I checked_mul(I a, I b, const char* op) {
  I out{};
  if (__builtin_mul_overflow(a, b, &out)) [[unlikely]] {
    detail::throw_error<OverflowError>(op, ": ", +a, " * ", +b, " overflows (sizes above ",
                                       +std::numeric_limits<I>::max(),
                                       " cannot be represented); check the shape or size");
  }
  return out;
}

/// a + b, or OverflowError naming `op` and both values when the sum does not fit I.
template <std::integral I>
[[nodiscard]] I checked_add(I a, I b, const char* op) {
  I out{};
  if (__builtin_add_overflow(a, b, &out)) [[unlikely]] {
    detail::throw_error<OverflowError>(op, ": ", +a, " + ", +b, " overflows (sizes above ",
                                       +std::numeric_limits<I>::max(),
                                       " cannot be represented); check the shape or size");
  }
  return out;
}

/// `v` converted to the integer type To, or OverflowError naming `op` and the value
/// when it is out of To's range (or, for a floating-point value, NaN or infinite).
/// A floating-point value is truncated toward zero, as static_cast does.
template <std::integral To, class From>
requires std::is_arithmetic_v<From>
[[nodiscard]] To checked_cast(From v, const char* op) {
  if constexpr (std::is_floating_point_v<From>) {
    // The range test is done in long double, where both bounds of To are exact
    // or rounded outward, so no value that passes overflows the conversion.
    const auto x = static_cast<long double>(v);
    const bool ok = std::isfinite(x) &&
                    x > static_cast<long double>(std::numeric_limits<To>::min()) - 1.0L &&
                    x < static_cast<long double>(std::numeric_limits<To>::max()) + 1.0L;
    if (!ok) [[unlikely]] {
      detail::throw_error<OverflowError>(op, ": ", v, " cannot be represented as an integer in [",
                                         +std::numeric_limits<To>::min(), ", ",
                                         +std::numeric_limits<To>::max(), "]");
    }
    return static_cast<To>(x);
  } else {
    if (!std::in_range<To>(v)) [[unlikely]] {
      detail::throw_error<OverflowError>(op, ": ", +v, " is outside [",
                                         +std::numeric_limits<To>::min(), ", ",
                                         +std::numeric_limits<To>::max(), "]");
    }
    return static_cast<To>(v);
  }
}

/// The largest number of bytes one tensor's storage may take. Far beyond any real
/// allocation, and small enough that rounding up to the storage alignment and the
/// allocator's bookkeeping can never wrap.
inline constexpr std::size_t kMaxStorageBytes = std::size_t{1} << 60;

/// `count` elements of `element_size` bytes each, checked against overflow and
/// kMaxStorageBytes; OverflowError naming `op` otherwise.
[[nodiscard]] inline std::size_t checked_bytes(std::int64_t count, std::size_t element_size,
                                               const char* op) {
  METALEARN_CHECK(count >= 0, OverflowError, op, ": negative element count ", count);
  const std::size_t bytes = checked_mul(static_cast<std::size_t>(count), element_size, op);
  METALEARN_CHECK(bytes <= kMaxStorageBytes, OverflowError, op, ": ", count, " elements of ",
                  element_size, " bytes (", bytes, " bytes) exceed the maximum of ",
                  kMaxStorageBytes, " bytes per tensor; check the shape");
  return bytes;
}

}  // namespace metalearn
