#pragma once
/// @file
/// Shape: the extents of a row-major tensor, and the broadcasting rules.

#include <array>
#include <cstdint>
#include <initializer_list>
#include <iterator>
#include <ostream>
#include <span>
#include <string>
#include <vector>

#include "metalearn/core/checked.hpp"
#include "metalearn/core/error.hpp"

namespace metalearn {

using Index = std::int64_t;

/// Class labels of a classification set: one index in [0, classes) per example, in the
/// examples' order.
using Labels = std::vector<Index>;

/// Extents of a tensor, outermost first. A 0-dim shape is a scalar. Stored inline
/// (at most kMaxDims dimensions), so copying a Shape never allocates. Construction
/// checks that the extents are non-negative and that their product fits Index
/// (OverflowError otherwise), so numel() needs no check of its own; a shape
/// changed through the mutable operator[] is checked again by checked_numel(),
/// which every tensor allocation calls.
class Shape {
 public:
  static constexpr Index kMaxDims = 8;

  Shape() = default;
  Shape(std::initializer_list<Index> dims) { assign(dims.begin(), dims.end()); }
  explicit Shape(const std::vector<Index>& dims) { assign(dims.begin(), dims.end()); }

  [[nodiscard]] Index dim() const { return n_; }
  [[nodiscard]] Index operator[](Index i) const { return dims_[static_cast<std::size_t>(i)]; }
  [[nodiscard]] Index& operator[](Index i) { return dims_[static_cast<std::size_t>(i)]; }
  [[nodiscard]] Index numel() const {
    Index n = 1;
    for (Index i = 0; i < n_; ++i) n *= dims_[static_cast<std::size_t>(i)];
    return n;
  }
  /// numel(), checked: OverflowError naming `op` when an extent is negative or the
  /// product does not fit Index.
  [[nodiscard]] Index checked_numel(const char* op) const {
    Index n = 1;
    for (Index i = 0; i < n_; ++i) {
      const Index d = dims_[static_cast<std::size_t>(i)];
      METALEARN_CHECK(d >= 0, ValueError, op, ": negative extent ", d, " in shape ", to_string());
      n = checked_mul(n, d, op);
    }
    return n;
  }
  /// The extents, a view into this Shape (begin() and end() of one range). Not
  /// available on a temporary Shape, whose storage would be gone before the view is
  /// used: name the Shape, or take to_vector().
  [[nodiscard]] std::span<const Index> dims() const& {
    return {dims_.data(), static_cast<std::size_t>(n_)};
  }
  std::span<const Index> dims() const&& = delete;
  /// The extents as a vector (a copy, to edit or to keep).
  [[nodiscard]] std::vector<Index> to_vector() const { return std::vector<Index>(begin(), end()); }
  [[nodiscard]] const Index* begin() const { return dims_.data(); }
  [[nodiscard]] const Index* end() const { return dims_.data() + n_; }

  /// Row-major strides in elements.
  [[nodiscard]] std::vector<Index> strides() const {
    std::vector<Index> s(static_cast<std::size_t>(n_), 1);
    for (Index i = n_ - 2; i >= 0; --i) {
      s[static_cast<std::size_t>(i)] =
          s[static_cast<std::size_t>(i + 1)] * dims_[static_cast<std::size_t>(i + 1)];
    }
    return s;
  }

  /// Normalises a possibly negative dimension index; throws ShapeError when out of range.
  [[nodiscard]] Index wrap_dim(Index d, const char* op) const {
    const Index w = d < 0 ? d + n_ : d;
    METALEARN_CHECK(w >= 0 && w < n_, ShapeError, op, ": dimension ", d,
                    " is out of range for a tensor of shape ", to_string());
    return w;
  }

  [[nodiscard]] std::string to_string() const {
    std::string s = "[";
    for (Index i = 0; i < n_; ++i) {
      if (i) s += ", ";
      s += std::to_string(dims_[static_cast<std::size_t>(i)]);
    }
    return s + "]";
  }

  friend bool operator==(const Shape& a, const Shape& b) {
    if (a.n_ != b.n_) return false;
    for (Index i = 0; i < a.n_; ++i) {
      if (a.dims_[static_cast<std::size_t>(i)] != b.dims_[static_cast<std::size_t>(i)])
        return false;
    }
    return true;
  }
  friend std::ostream& operator<<(std::ostream& os, const Shape& s) { return os << s.to_string(); }

 private:
  template <class It>
  void assign(It first, It last) {
    const auto n = static_cast<Index>(std::distance(first, last));
    METALEARN_CHECK(n <= kMaxDims, ShapeError, "Shape: ", n, " dimensions exceed the maximum of ",
                    kMaxDims);
    n_ = n;
    std::size_t i = 0;
    for (It it = first; it != last; ++it) {
      METALEARN_CHECK(*it >= 0, ValueError, "Shape: negative extent ", *it);
      dims_[i++] = *it;
    }
    (void)checked_numel("Shape");
  }
  std::array<Index, kMaxDims> dims_{};
  Index n_ = 0;
};

/// Numpy broadcasting of two shapes; throws ShapeError naming `op` and both shapes.
inline Shape broadcast_shapes(const Shape& a, const Shape& b, const char* op) {
  const Index n = a.dim() > b.dim() ? a.dim() : b.dim();
  std::vector<Index> out(static_cast<std::size_t>(n));
  for (Index i = 0; i < n; ++i) {
    const Index ai = i - (n - a.dim());
    const Index bi = i - (n - b.dim());
    const Index da = ai >= 0 ? a[ai] : 1;
    const Index db = bi >= 0 ? b[bi] : 1;
    METALEARN_CHECK(da == db || da == 1 || db == 1, ShapeError, op, ": shapes ", a, " and ", b,
                    " cannot be broadcast together (dimension ", i, ": ", da, " vs ", db, ")");
    out[static_cast<std::size_t>(i)] = da == 1 ? db : da;
  }
  return Shape(std::move(out));
}

}  // namespace metalearn
