#pragma once
/// @file
/// ParamDict<T>: an ordered name -> Tensor map, the currency of fast weights.
// SPDX-License-Identifier: MIT

#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <iterator>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "metalearn/core/error.hpp"
#include "metalearn/core/export.hpp"
#include "metalearn/tensor/tensor.hpp"

namespace metalearn::nn {

namespace detail {

/// The ordered key set of a ParamDict with an open-addressing hash index.
///
/// Lookups take the name in two pieces (a prefix and a local name) and hash and
/// compare them without building the concatenation, so a submodule can find
/// `features.0.weight` from the view prefix `features.0.` and its own `weight`
/// without allocating. Key sets are immutable once shared: ParamDicts derived from
/// one another (fast weights after an update) share one key set.
class METALEARN_API ParamKeys {
 public:
  static constexpr std::size_t npos = static_cast<std::size_t>(-1);

  [[nodiscard]] std::size_t size() const noexcept { return names_.size(); }
  [[nodiscard]] const std::string& name(std::size_t i) const { return names_[i]; }
  [[nodiscard]] const std::vector<std::string>& names() const noexcept { return names_; }

  /// Position of the key `prefix + name`, or npos.
  [[nodiscard]] std::size_t find(std::string_view prefix, std::string_view name) const noexcept;

  /// Appends a key; the caller has checked that it is new.
  void push_back(std::string name);

 private:
  void rehash(std::size_t slots);

  std::vector<std::string> names_;
  std::vector<std::uint64_t> hashes_;
  std::vector<std::uint32_t> slots_;  // key index + 1; 0 marks an empty slot
};

/// FNV-1a hash of the concatenation `prefix + name`.
[[nodiscard]] METALEARN_API std::uint64_t hash_key(std::string_view prefix,
                                                   std::string_view name) noexcept;

/// A short list of the keys under `prefix` for error messages ("a, b, c, ... (12 in all)").
[[nodiscard]] METALEARN_API std::string describe_keys(const ParamKeys& keys,
                                                      std::string_view prefix,
                                                      std::size_t max_listed = 6);

/// Throws ValueError unless `name` is a valid dotted key (non-empty parts, no spaces).
METALEARN_API void check_key(std::string_view name, const char* function);

}  // namespace detail

/// An ordered map from dotted names (`features.0.weight`) to tensors.
///
/// Insertion order is preserved and is the order of iteration, names() and
/// values(). Copies are cheap: keys and values are shared and copied on write.
///
/// A ParamDict can be a *view* of the entries under a prefix (see sub()): lookups,
/// iteration and size() then see only names starting with the prefix, with the
/// prefix removed. Modules use views to hand each child its own parameters.
///
/// @code
/// nn::ParamDict<float> p;
/// p.insert("fc.weight", w);
/// p.insert("fc.bias", b);
/// auto fc = p.sub("fc.");        // a view: fc.at("weight") is w
/// @endcode
template <class T = float>
class METALEARN_API ParamDict {
 public:
  using value_type = std::pair<std::string_view, const Tensor<T>&>;

  ParamDict() = default;
  ParamDict(std::initializer_list<std::pair<std::string, Tensor<T>>> entries) {
    for (const auto& [name, tensor] : entries) insert(name, tensor);
  }

  // ---- mutation --------------------------------------------------------------

  /// Appends `name -> tensor`; throws ValueError when the name exists or is invalid.
  void insert(std::string_view name, Tensor<T> tensor) {
    detail::check_key(name, "ParamDict::insert");
    METALEARN_CHECK(tensor.defined(), ValueError, "ParamDict::insert: tensor for '", name,
                    "' is undefined");
    METALEARN_CHECK(find_index(name) == detail::ParamKeys::npos, ValueError,
                    "ParamDict::insert: duplicate name '", prefix_, name, "'");
    unshare();
    keys_->push_back(prefix_ + std::string(name));
    values_->push_back(std::move(tensor));
  }

  /// Replaces the tensor of an existing name, or appends a new entry.
  void set(std::string_view name, Tensor<T> tensor) {
    const std::size_t i = find_index(name);
    if (i == detail::ParamKeys::npos) {
      insert(name, std::move(tensor));
      return;
    }
    METALEARN_CHECK(tensor.defined(), ValueError, "ParamDict::set: tensor for '", name,
                    "' is undefined");
    unshare_values();
    (*values_)[i] = std::move(tensor);
  }

  // ---- lookup ----------------------------------------------------------------

  /// The tensor named `name`; throws ValueError naming the key and some available ones.
  [[nodiscard]] const Tensor<T>& at(std::string_view name) const {
    const Tensor<T>* t = find(name);
    if (t == nullptr) [[unlikely]] {
      throw ValueError(metalearn::detail::str_cat(
          "ParamDict::at: no entry named '", prefix_, name, "' (available: ",
          keys_ ? detail::describe_keys(*keys_, prefix_) : std::string("none"), ")"));
    }
    return *t;
  }
  /// Pointer to the tensor named `name`, or nullptr.
  [[nodiscard]] const Tensor<T>* find(std::string_view name) const noexcept {
    const std::size_t i = find_index(name);
    return i == detail::ParamKeys::npos ? nullptr : &(*values_)[i];
  }
  [[nodiscard]] bool contains(std::string_view name) const noexcept {
    return find_index(name) != detail::ParamKeys::npos;
  }

  /// Number of entries (under the prefix, for a view).
  [[nodiscard]] std::size_t size() const noexcept {
    if (!keys_) return 0;
    if (prefix_.empty()) return keys_->size();
    std::size_t n = 0;
    for (const auto& k : keys_->names()) n += in_view(k) ? 1 : 0;
    return n;
  }
  [[nodiscard]] bool empty() const noexcept { return size() == 0; }

  /// Names in insertion order (without the view prefix).
  [[nodiscard]] std::vector<std::string> names() const {
    std::vector<std::string> out;
    for (const auto& [name, t] : *this) out.emplace_back(name);
    return out;
  }
  /// Tensors in insertion order (handles: they share storage and graph).
  [[nodiscard]] std::vector<Tensor<T>> values() const {
    if (prefix_.empty()) return values_ ? *values_ : std::vector<Tensor<T>>{};
    std::vector<Tensor<T>> out;
    for (const auto& [name, t] : *this) out.push_back(t);
    return out;
  }

  // ---- views and derived dicts ---------------------------------------------

  /// A view of the entries whose names start with `prefix` (e.g.\ "features.0."),
  /// with the prefix removed. Shares keys and values; O(1) plus a short string copy.
  [[nodiscard]] ParamDict sub(std::string_view prefix) const {
    ParamDict out = *this;
    out.prefix_.append(prefix);
    return out;
  }
  /// The prefix of this view ("" for a whole dict).
  [[nodiscard]] const std::string& prefix() const noexcept { return prefix_; }

  /// The same entries with different tensors, `values` in the order of values().
  /// Shares the key set (no rehashing) unless this is a view.
  [[nodiscard]] ParamDict with_values(std::vector<Tensor<T>> values) const {
    METALEARN_CHECK(values.size() == size(), ValueError, "ParamDict::with_values: ", values.size(),
                    " tensors for ", size(), " entries");
    if (!prefix_.empty()) {
      ParamDict out;
      std::size_t i = 0;
      for (const auto& [name, t] : *this) out.insert(name, std::move(values[i++]));
      return out;
    }
    ParamDict out;
    out.keys_ = keys_;
    out.values_ = std::make_shared<std::vector<Tensor<T>>>(std::move(values));
    return out;
  }

  /// A dict of f(tensor) for every entry, with the same names.
  template <class F>
  [[nodiscard]] ParamDict map(F&& f) const {
    std::vector<Tensor<T>> out;
    out.reserve(size());
    for (const auto& [name, t] : *this) out.push_back(f(t));
    return with_values(std::move(out));
  }
  /// Tensors cut from the graph (sharing storage).
  [[nodiscard]] ParamDict detach() const {
    return map([](const Tensor<T>& t) { return t.detach(); });
  }
  /// Deep copies of the values, cut from the graph.
  [[nodiscard]] ParamDict clone() const {
    return map([](const Tensor<T>& t) { return t.clone(); });
  }

  /// True when both dicts share one key set (e.g. parameters and their update).
  [[nodiscard]] bool shares_keys_with(const ParamDict& other) const noexcept {
    return keys_ == other.keys_ && prefix_ == other.prefix_;
  }

  // ---- iteration -------------------------------------------------------------

  class const_iterator {
   public:
    using iterator_category = std::forward_iterator_tag;
    using value_type = ParamDict::value_type;
    using difference_type = std::ptrdiff_t;
    using reference = value_type;
    using pointer = void;

    const_iterator() = default;
    const_iterator(const ParamDict* dict, std::size_t i) : dict_(dict), i_(i) { skip(); }
    value_type operator*() const {
      const std::string& k = dict_->keys_->name(i_);
      return {std::string_view(k).substr(dict_->prefix_.size()), (*dict_->values_)[i_]};
    }
    const_iterator& operator++() {
      ++i_;
      skip();
      return *this;
    }
    const_iterator operator++(int) {
      const_iterator old = *this;
      ++*this;
      return old;
    }
    friend bool operator==(const const_iterator& a, const const_iterator& b) {
      return a.i_ == b.i_;
    }

   private:
    void skip() {
      if (dict_ == nullptr || dict_->prefix_.empty()) return;
      const std::size_t n = dict_->keys_ ? dict_->keys_->size() : 0;
      while (i_ < n && !dict_->in_view(dict_->keys_->name(i_))) ++i_;
    }
    const ParamDict* dict_ = nullptr;
    std::size_t i_ = 0;
  };

  [[nodiscard]] const_iterator begin() const { return const_iterator(this, 0); }
  [[nodiscard]] const_iterator end() const {
    return const_iterator(this, keys_ ? keys_->size() : 0);
  }

 private:
  [[nodiscard]] bool in_view(const std::string& key) const noexcept {
    return key.size() > prefix_.size() && std::string_view(key).starts_with(prefix_);
  }
  [[nodiscard]] std::size_t find_index(std::string_view name) const noexcept {
    return keys_ ? keys_->find(prefix_, name) : detail::ParamKeys::npos;
  }
  void unshare() {
    if (!keys_) {
      keys_ = std::make_shared<detail::ParamKeys>();
    } else if (keys_.use_count() > 1) {
      keys_ = std::make_shared<detail::ParamKeys>(*keys_);
    }
    unshare_values();
  }
  void unshare_values() {
    if (!values_) {
      values_ = std::make_shared<std::vector<Tensor<T>>>();
    } else if (values_.use_count() > 1) {
      values_ = std::make_shared<std::vector<Tensor<T>>>(*values_);
    }
  }

  std::shared_ptr<detail::ParamKeys> keys_;
  std::shared_ptr<std::vector<Tensor<T>>> values_;
  std::string prefix_;
};

/// Prints `{name: shape, ...}`.
template <class T>
std::ostream& operator<<(std::ostream& os, const ParamDict<T>& d) {
  os << "ParamDict{";
  bool first = true;
  for (const auto& [name, t] : d) {
    os << (first ? "" : ", ") << name << ": " << t.shape();
    first = false;
  }
  return os << "}";
}

extern template class ParamDict<float>;
extern template class ParamDict<double>;

}  // namespace metalearn::nn
