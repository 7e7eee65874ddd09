#pragma once
// FieldTable<S>: the one description of an options struct's fields from which the
// `metalearn` command builds its flags (--inner-lr) and reads and writes the same
// fields in a run's config.json ("inner_lr"). A field is named once, with its help,
// and converted through JSON either way, so a flag and a config entry cannot disagree.

#include <CLI/CLI.hpp>
#include <array>
#include <charconv>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <functional>
#include <limits>
#include <map>
#include <metalearn/core/error.hpp>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

namespace metalearn::cli {

using Json = nlohmann::json;

namespace detail {

/// Converts to any type: counts an aggregate's fields (field_count).
struct AnyField {
  template <class U>
  operator U() const;  // NOLINT(google-explicit-constructor): declared only
};

template <class T>
struct IsVector : std::false_type {};
template <class T>
struct IsVector<std::vector<T>> : std::true_type {};

template <class T>
struct IsOptional : std::false_type {};
template <class T>
struct IsOptional<std::optional<T>> : std::true_type {};

/// "inner_lr" -> "--inner-lr"; "embedding.hidden" -> "--embedding-hidden".
inline std::string flag_of(const std::string& key) {
  std::string f = "--" + key;
  for (char& c : f) {
    if (c == '_' || c == '.') c = '-';
  }
  return f;
}

}  // namespace detail

/// Number of fields of the aggregate S (a nested aggregate counts as one).
template <class S, class... A>
constexpr std::size_t field_count() {
  if constexpr (requires { S{A{}..., detail::AnyField{}}; }) {
    return field_count<S, A..., detail::AnyField>();
  } else {
    return sizeof...(A);
  }
}

/// Names of an enum's values, as flags and config files spell them.
template <class E>
using EnumNames = std::vector<std::pair<std::string, E>>;

/// A value given on the command line, as JSON: a number, true/false, a list [a, b],
/// "none" (an unset optional) or else the text as a string.
inline Json json_of_flag(const std::string& text) {
  if (text == "none") return nullptr;
  try {
    Json j = Json::parse(text);
    if (j.is_number() || j.is_boolean() || j.is_array()) return j;
  } catch (const Json::parse_error&) {
    // not a number or a boolean: a name (an enum value) or a path
  }
  return text;
}

/// The fields of options struct S: each with its key (snake case, as in the struct),
/// its help, and how to read it from and write it to JSON.
template <class S>
class FieldTable {
 public:
  using Struct = S;

  struct Field {
    std::string key;
    std::string help;
    std::function<Json(const S&)> get;
    std::function<void(S&, const Json&)> set;
  };

  /// `name` names the options in errors ("MamlOptions").
  explicit FieldTable(std::string name) : name_(std::move(name)) {}

  /// A field reached through `access` (a member, or a member of a member):
  /// arithmetic, bool, std::string, std::optional of those, or a vector of them.
  template <class Access>
  FieldTable& add(std::string key, Access access, std::string help) {
    using M = std::remove_reference_t<decltype(access(std::declval<S&>()))>;
    const std::string where = name_ + "." + key;
    if constexpr (detail::IsVector<M>::value) help += " (a list: [a, b, ...], or one value)";
    fields_.push_back(
        Field{key, std::move(help),
              [access](const S& s) {
                return to_json<M>(access(const_cast<S&>(s)));  // NOLINT: read only
              },
              [access, where](S& s, const Json& j) { access(s) = from_json<M>(j, where); }});
    cover(key);
    return *this;
  }

  /// A field S::*member.
  template <class M>
  FieldTable& add(std::string key, M S::*member, std::string help) {
    return add(
        std::move(key), [member](S& s) -> M& { return s.*member; }, std::move(help));
  }

  /// An enum field S::*member, spelled by `names`.
  template <class E>
  FieldTable& add_enum(std::string key, E S::*member, EnumNames<E> names, std::string help) {
    std::string choices;
    for (const auto& [n, e] : names) choices += (choices.empty() ? "" : ", ") + n;
    const std::string where = name_ + "." + key;
    fields_.push_back(Field{key, help + " (" + choices + ")",
                            [member, names](const S& s) {
                              for (const auto& [n, e] : names) {
                                if (e == s.*member) return Json(n);
                              }
                              return Json(nullptr);
                            },
                            [member, names, where, choices](S& s, const Json& j) {
                              METALEARN_CHECK(j.is_string(), ValueError, where,
                                              ": expected one of ", choices, ", got ", j.dump());
                              for (const auto& [n, e] : names) {
                                if (n == j.get<std::string>()) {
                                  s.*member = e;
                                  return;
                                }
                              }
                              throw ValueError(where + ": '" + j.get<std::string>() +
                                               "' is not one of " + choices);
                            }});
    cover(key);
    return *this;
  }

  /// A field the table leaves out on purpose (a callable, say), with the reason.
  FieldTable& exclude(std::string key, std::string reason) {
    excluded_.emplace_back(std::move(key), std::move(reason));
    return *this;
  }

  [[nodiscard]] const std::string& name() const { return name_; }
  [[nodiscard]] const std::vector<Field>& fields() const { return fields_; }
  [[nodiscard]] const std::vector<std::pair<std::string, std::string>>& excluded() const {
    return excluded_;
  }
  /// The struct's top-level fields the table describes or excludes.
  [[nodiscard]] std::size_t covered() const { return top_level_.size() + excluded_.size(); }

  /// The fields' values as a JSON object.
  [[nodiscard]] Json to_json(const S& s) const {
    Json j = Json::object();
    for (const Field& f : fields_) j[f.key] = f.get(s);
    return j;
  }

  /// Sets the fields that `j` names. @throws ValueError naming `file` and the key when a
  /// key is not a field or its value does not fit.
  void from_json(const Json& j, S& s, const std::string& file) const {
    METALEARN_CHECK(j.is_object(), ValueError, file, ": the ", name_,
                    " entry is not a JSON object");
    for (const auto& [key, value] : j.items()) {
      const Field* f = find(key);
      METALEARN_CHECK(f != nullptr, ValueError, file, ": '", key, "' is not a field of ", name_);
      try {
        f->set(s, value);
      } catch (const Error& e) {
        throw ValueError(file + ": " + e.what());
      }
    }
  }

  /// One flag per field on `app`, under `group`; the values given are collected in
  /// `given` (key -> JSON) for apply(). The help shows the value of `defaults`.
  void add_flags(CLI::App& app, const S& defaults, std::map<std::string, Json>& given,
                 const std::string& group) const {
    for (const Field& f : fields_) {
      const Json shown = f.get(defaults);
      const std::string key = f.key;
      if (shown.is_boolean()) {
        const std::string flag = detail::flag_of(key);
        app.add_flag_function(
               flag + ",!--no-" + flag.substr(2),
               [&given, key](std::int64_t count) { given[key] = count > 0; }, f.help)
            ->group(group);
      } else {
        app.add_option_function<std::string>(
               detail::flag_of(key),
               [&given, key](const std::string& v) { given[key] = json_of_flag(v); }, f.help)
            ->default_str(shown.is_null()     ? "none"
                          : shown.is_string() ? shown.get<std::string>()
                                              : shown.dump())
            ->group(group);
      }
    }
  }

  /// Sets the fields in `given` (from add_flags). @throws ValueError naming the flag.
  void apply(const std::map<std::string, Json>& given, S& s) const {
    for (const Field& f : fields_) {
      const auto it = given.find(f.key);
      if (it == given.end()) continue;
      try {
        f.set(s, it->second);
      } catch (const Error& e) {
        throw ValueError(detail::flag_of(f.key) + ": " + e.what());
      }
    }
  }

 private:
  template <class M>
  static Json to_json(const M& v) {
    if constexpr (detail::IsOptional<M>::value) {
      return v.has_value() ? to_json(*v) : Json(nullptr);
    } else if constexpr (std::is_same_v<M, float>) {
      // The shortest decimal that reads back as this float (0.01, not 0.0099999998).
      std::array<char, 32> text{};
      const auto end = std::to_chars(text.data(), text.data() + text.size(), v).ptr;
      return Json(std::strtod(std::string(text.data(), end).c_str(), nullptr));
    } else {
      return Json(v);
    }
  }

  template <class M>
  static M from_json(const Json& j, const std::string& where) {
    if constexpr (detail::IsOptional<M>::value) {
      if (j.is_null()) return std::nullopt;
      return from_json<typename M::value_type>(j, where);
    } else if constexpr (std::is_same_v<M, bool>) {
      METALEARN_CHECK(j.is_boolean(), ValueError, where, ": expected true or false, got ",
                      j.dump());
      return j.get<bool>();
    } else if constexpr (std::is_integral_v<M>) {
      METALEARN_CHECK(
          j.is_number_integer() || (j.is_number_float() &&
                                    j.get<double>() == static_cast<double>(j.get<std::int64_t>())),
          ValueError, where, ": expected an integer, got ", j.dump());
      const auto v = j.get<long double>();
      METALEARN_CHECK(v >= static_cast<long double>(std::numeric_limits<M>::min()) &&
                          v <= static_cast<long double>(std::numeric_limits<M>::max()),
                      ValueError, where, ": ", j.dump(), " is out of range");
      return static_cast<M>(v);
    } else if constexpr (std::is_floating_point_v<M>) {
      METALEARN_CHECK(j.is_number(), ValueError, where, ": expected a number, got ", j.dump());
      return j.get<M>();
    } else if constexpr (std::is_same_v<M, std::string>) {
      METALEARN_CHECK(j.is_string(), ValueError, where, ": expected a string, got ", j.dump());
      return j.get<std::string>();
    } else {
      // A vector: a JSON array, or one value given as a flag.
      M out;
      if (j.is_array()) {
        for (const Json& e : j) out.push_back(from_json<typename M::value_type>(e, where));
      } else if (!(j.is_string() && j.get<std::string>().empty())) {
        out.push_back(from_json<typename M::value_type>(j, where));
      }
      return out;
    }
  }

  const Field* find(const std::string& key) const {
    for (const Field& f : fields_) {
      if (f.key == key) return &f;
    }
    return nullptr;
  }

  void cover(const std::string& key) { top_level_.insert(key.substr(0, key.find('.'))); }

  std::string name_;
  std::vector<Field> fields_;
  std::vector<std::pair<std::string, std::string>> excluded_;
  std::set<std::string> top_level_;
};

}  // namespace metalearn::cli
