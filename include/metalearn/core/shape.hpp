#pragma once
// Shape: the extents of a row-major tensor, and the broadcasting rules.

#include <cstdint>
#include <initializer_list>
#include <ostream>
#include <string>
#include <vector>

#include "metalearn/core/error.hpp"

namespace metalearn {

using Index = std::int64_t;

/// Extents of a tensor, outermost first. A 0-dim shape is a scalar.
class Shape {
 public:
  Shape() = default;
  Shape(std::initializer_list<Index> dims) : dims_(dims) { validate(); }
  explicit Shape(std::vector<Index> dims) : dims_(std::move(dims)) { validate(); }

  [[nodiscard]] Index dim() const { return static_cast<Index>(dims_.size()); }
  [[nodiscard]] Index operator[](Index i) const { return dims_[static_cast<std::size_t>(i)]; }
  [[nodiscard]] Index& operator[](Index i) { return dims_[static_cast<std::size_t>(i)]; }
  [[nodiscard]] Index numel() const {
    Index n = 1;
    for (Index d : dims_) n *= d;
    return n;
  }
  [[nodiscard]] const std::vector<Index>& dims() const { return dims_; }
  [[nodiscard]] auto begin() const { return dims_.begin(); }
  [[nodiscard]] auto end() const { return dims_.end(); }

  /// Row-major strides in elements.
  [[nodiscard]] std::vector<Index> strides() const {
    std::vector<Index> s(dims_.size(), 1);
    for (Index i = dim() - 2; i >= 0; --i) {
      s[static_cast<std::size_t>(i)] =
          s[static_cast<std::size_t>(i + 1)] * dims_[static_cast<std::size_t>(i + 1)];
    }
    return s;
  }

  /// Normalises a possibly negative dimension index; throws ShapeError when out of range.
  [[nodiscard]] Index wrap_dim(Index d, const char* op) const {
    const Index n = dim();
    const Index w = d < 0 ? d + n : d;
    METALEARN_CHECK(w >= 0 && w < n, ShapeError, op, ": dimension ", d,
                    " is out of range for a tensor of shape ", to_string());
    return w;
  }

  [[nodiscard]] std::string to_string() const {
    std::string s = "[";
    for (std::size_t i = 0; i < dims_.size(); ++i) {
      if (i) s += ", ";
      s += std::to_string(dims_[i]);
    }
    return s + "]";
  }

  friend bool operator==(const Shape&, const Shape&) = default;
  friend std::ostream& operator<<(std::ostream& os, const Shape& s) { return os << s.to_string(); }

 private:
  void validate() const {
    for (Index d : dims_) {
      METALEARN_CHECK(d >= 0, ValueError, "Shape: negative extent ", d);
    }
  }
  std::vector<Index> dims_;
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
