// Key sets of ParamDict: ordered names with an open-addressing hash index.
// SPDX-License-Identifier: MIT

#include "metalearn/nn/param_dict.hpp"

#include <cctype>

namespace metalearn::nn {

namespace detail {

namespace {
constexpr std::uint64_t kFnvOffset = 0xcbf29ce484222325ULL;
constexpr std::uint64_t kFnvPrime = 0x100000001b3ULL;

std::uint64_t fnv_extend(std::uint64_t h, std::string_view s) noexcept {
  for (char c : s) {
    h ^= static_cast<unsigned char>(c);
    h *= kFnvPrime;
  }
  return h;
}

bool equals_concat(const std::string& key, std::string_view prefix,
                   std::string_view name) noexcept {
  return key.size() == prefix.size() + name.size() &&
         std::string_view(key).substr(0, prefix.size()) == prefix &&
         std::string_view(key).substr(prefix.size()) == name;
}
}  // namespace

std::uint64_t hash_key(std::string_view prefix, std::string_view name) noexcept {
  return fnv_extend(fnv_extend(kFnvOffset, prefix), name);
}

std::size_t ParamKeys::find(std::string_view prefix, std::string_view name) const noexcept {
  if (slots_.empty()) return npos;
  const std::uint64_t h = hash_key(prefix, name);
  const std::size_t mask = slots_.size() - 1;
  for (std::size_t s = static_cast<std::size_t>(h) & mask;; s = (s + 1) & mask) {
    const std::uint32_t v = slots_[s];
    if (v == 0) return npos;
    const std::size_t i = v - 1;
    if (hashes_[i] == h && equals_concat(names_[i], prefix, name)) return i;
  }
}

void ParamKeys::push_back(std::string name) {
  hashes_.push_back(hash_key({}, name));
  names_.push_back(std::move(name));
  if (slots_.size() < 2 * names_.size()) {
    std::size_t n = 16;
    while (n < 2 * names_.size()) n *= 2;
    rehash(n);
    return;
  }
  const std::size_t mask = slots_.size() - 1;
  std::size_t s = static_cast<std::size_t>(hashes_.back()) & mask;
  while (slots_[s] != 0) s = (s + 1) & mask;
  slots_[s] = static_cast<std::uint32_t>(names_.size());
}

void ParamKeys::rehash(std::size_t slots) {
  slots_.assign(slots, 0);
  const std::size_t mask = slots - 1;
  for (std::size_t i = 0; i < names_.size(); ++i) {
    std::size_t s = static_cast<std::size_t>(hashes_[i]) & mask;
    while (slots_[s] != 0) s = (s + 1) & mask;
    slots_[s] = static_cast<std::uint32_t>(i + 1);
  }
}

std::string describe_keys(const ParamKeys& keys, std::string_view prefix, std::size_t max_listed) {
  std::string out;
  std::size_t listed = 0;
  std::size_t total = 0;
  for (const auto& k : keys.names()) {
    if (!std::string_view(k).starts_with(prefix) || k.size() == prefix.size()) continue;
    ++total;
    if (listed < max_listed) {
      if (listed) out += ", ";
      out += k;
      ++listed;
    }
  }
  if (total == 0) return "none";
  if (total > listed) out += ", ... (" + std::to_string(total) + " in all)";
  return out;
}

void check_key(std::string_view name, const char* function) {
  METALEARN_CHECK(!name.empty(), ValueError, function, ": empty name");
  METALEARN_CHECK(
      name.front() != '.' && name.back() != '.' && name.find("..") == std::string_view::npos,
      ValueError, function, ": name '", name, "' has an empty dotted part");
  for (char c : name) {
    METALEARN_CHECK(std::isgraph(static_cast<unsigned char>(c)), ValueError, function, ": name '",
                    name, "' contains whitespace or a control character");
  }
}

}  // namespace detail

template class ParamDict<float>;
template class ParamDict<double>;

}  // namespace metalearn::nn
