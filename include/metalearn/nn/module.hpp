#pragma once
/// @file
/// Module<T>: named parameters, buffers and submodules; forward with the module's
/// own parameters or with any ParamDict of fast weights.
// SPDX-License-Identifier: MIT

#include <algorithm>
#include <functional>
#include <memory>
#include <ostream>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "metalearn/autograd/grad_mode.hpp"
#include "metalearn/core/error.hpp"
#include "metalearn/core/export.hpp"
#include "metalearn/nn/param_dict.hpp"
#include "metalearn/tensor/tensor.hpp"

namespace metalearn::nn {

namespace detail {
/// Throws ValueError unless `name` is a valid local name (non-empty, no '.', no
/// whitespace). `what` is "parameter", "buffer" or "submodule".
METALEARN_API void check_local_name(std::string_view name, const char* function, const char* what);
/// Indents every line after the first by two spaces (for nested printing).
METALEARN_API std::string indent_lines(const std::string& text);
}  // namespace detail

/// How a load treats names: kStrict (the default) requires every target to be
/// given and every given name to be known; kNonStrict loads the names present in
/// both and leaves the rest untouched.
enum class LoadMode { kStrict, kNonStrict };

namespace detail {

/// At most the first 200 characters of the names of `values`, comma separated.
template <class T>
std::string list_names(const ParamDict<T>& values) {
  std::string out;
  for (const auto& [n, t] : values) {
    if (!out.empty()) out += ", ";
    out += n;
    if (out.size() > 200) return out + ", ...";
  }
  return out.empty() ? "nothing" : out;
}

/// Checks a load of `values` into `targets` without changing anything and returns
/// the (target, value) pairs to copy. `function` starts every message; `what`
/// names the kind of target ("parameter", "buffer", "meta-parameter"); names of
/// `also_known` are not unknown in strict mode. Throws ValueError for a missing or
/// unknown name or an undefined value (strict mode), ShapeError for a shape that
/// differs from the target's.
template <class T>
std::vector<std::pair<Tensor<T>, Tensor<T>>> plan_load(const ParamDict<T>& targets,
                                                       const ParamDict<T>& values, LoadMode mode,
                                                       const std::string& function,
                                                       const char* what,
                                                       const ParamDict<T>& also_known = {}) {
  const bool strict = mode == LoadMode::kStrict;
  std::vector<std::pair<Tensor<T>, Tensor<T>>> plan;
  for (const auto& [name, target] : targets) {
    const Tensor<T>* v = values.find(name);
    if (v == nullptr) {
      METALEARN_CHECK(!strict, ValueError, function, ": ", what, " '", name,
                      "' is missing from the ParamDict (it has: ", list_names(values),
                      "); nothing was loaded. Pass LoadMode::kNonStrict to load only the names "
                      "present");
      continue;
    }
    METALEARN_CHECK(v->defined(), ValueError, function, ": the value of ", what, " '", name,
                    "' is an undefined tensor; nothing was loaded");
    METALEARN_CHECK(v->shape() == target.shape(), ShapeError, function, ": ", what, " '", name,
                    "' has shape ", v->shape(), " but the module expects ", target.shape(),
                    "; nothing was loaded");
    plan.emplace_back(target, *v);
  }
  if (strict) {
    for (const auto& [name, v] : values) {
      METALEARN_CHECK(targets.find(name) != nullptr || also_known.find(name) != nullptr, ValueError,
                      function, ": '", name, "' is not a ", what,
                      " of this module (a checkpoint of another model?); nothing was loaded. "
                      "Pass LoadMode::kNonStrict to ignore names the module does not have");
    }
  }
  return plan;
}

}  // namespace detail

template <class T>
class Module;

/// A registered submodule, as Module::register_module returns it: the submodule's
/// place in its parent's registry, with its type. It holds no pointer: it resolves
/// through the module it is used with (`child(handle)`, `forward_child(handle, ...)`),
/// so a handle kept as a member of a module refers, in a clone of that module, to
/// the clone's own copy of the submodule. Keep these, not pointers, in modules.
///
/// @code
/// class Net : public nn::Cloneable<Net, float> {
///  public:
///   using nn::Module<float>::forward;  // forward(x) with the module's own parameters
///   explicit Net(Generator& gen)
///       : fc_(register_module("fc", std::make_shared<nn::Linear<float>>(4, 2, gen))) {}
///   Tensor<float> forward(const Tensor<float>& x, const nn::ParamDict<float>& p) const override {
///     return forward_child(fc_, x, p);
///   }
///   std::string type_name() const override { return "Net"; }
///
///  private:
///   nn::Child<nn::Linear<float>> fc_;
/// };
/// @endcode
template <class M>
class Child {
 public:
  Child() = default;
  /// The submodule's position among its parent's submodules.
  [[nodiscard]] std::size_t index() const noexcept { return index_; }
  [[nodiscard]] bool valid() const noexcept { return index_ != kNone; }

 private:
  template <class T>
  friend class Module;
  static constexpr std::size_t kNone = static_cast<std::size_t>(-1);
  explicit Child(std::size_t index) noexcept : index_(index) {}
  std::size_t index_ = kNone;
};

/// Base of every layer and model.
///
/// A module owns *parameters* (leaf tensors that require grad), *buffers* (state
/// such as batch-norm running statistics, no grad) and *submodules*, each under a
/// local name. named_parameters() lists all parameters of the tree depth-first in
/// registration order with dotted names (`features.0.weight`).
///
/// The forward pass is functional: `forward(x, params)` reads every parameter from
/// `params` (the fast weights of MAML's inner loop) and never from the module, so
/// the same module serves any number of adapted parameter sets, also concurrently
/// on several threads. `forward(x)` is `forward(x, named_parameters())`.
///
/// Batch normalisation is explicit: see BatchNormMode. The per-step mode reads the
/// inner-loop step from the forward context (nn::ForwardScope).
///
/// Concrete modules derive from Cloneable<Derived, T> and keep their state only in
/// the registered parameters, buffers and submodules (plus plain configuration
/// values and Child handles), so that clone() can deep-copy them generically.
/// register_module() takes the only reference to a submodule and returns a Child
/// handle, so no module can hold a pointer that a clone would share.
///
/// @tparam T float or double.
template <class T = float>
class METALEARN_API Module {
 public:
  using scalar_type = T;

  virtual ~Module() = default;

  /// The forward pass with parameters taken from `params` (a dict or a view whose
  /// names are this module's dotted parameter names). Throws ValueError when a
  /// parameter is missing and ShapeError when its shape differs from the module's.
  virtual Tensor<T> forward(const Tensor<T>& x, const ParamDict<T>& params) const = 0;

  /// The forward pass with the module's own parameters.
  Tensor<T> forward(const Tensor<T>& x) const { return forward(x, named_parameters()); }
  Tensor<T> operator()(const Tensor<T>& x) const { return forward(x); }
  Tensor<T> operator()(const Tensor<T>& x, const ParamDict<T>& params) const {
    return forward(x, params);
  }

  /// A deep copy: new parameter and buffer storage, cloned submodules, no grads.
  [[nodiscard]] virtual std::unique_ptr<Module<T>> clone() const = 0;

  /// Short type name used by the printer and in error messages ("Linear").
  [[nodiscard]] virtual std::string type_name() const = 0;
  /// Configuration printed after the type name ("in=1, out=40, bias=true").
  [[nodiscard]] virtual std::string extra_repr() const { return {}; }

  // ---- registration ----------------------------------------------------------

  /// Registers a parameter under a local name and marks it as requiring grad
  /// (unless `requires_grad` is false). Returns the stored handle.
  /// @throws ValueError on an empty, dotted or duplicate name or undefined tensor.
  const Tensor<T>& register_parameter(std::string name, Tensor<T> tensor,
                                      bool requires_grad = true) {
    check_new_name(name, "register_parameter", "parameter");
    METALEARN_CHECK(tensor.defined(), ValueError, type_name(), "::register_parameter: tensor '",
                    name, "' is undefined");
    METALEARN_CHECK(tensor.is_leaf(), ValueError, type_name(), "::register_parameter: tensor '",
                    name, "' is not a leaf; pass a detached tensor");
    tensor.set_requires_grad(requires_grad);
    params_.push_back({std::move(name), std::move(tensor)});
    return params_.back().tensor;
  }

  /// Registers a buffer (state that is not a parameter, e.g. running statistics).
  const Tensor<T>& register_buffer(std::string name, Tensor<T> tensor) {
    check_new_name(name, "register_buffer", "buffer");
    METALEARN_CHECK(tensor.defined(), ValueError, type_name(), "::register_buffer: tensor '", name,
                    "' is undefined");
    buffers_.push_back({std::move(name), tensor.detach()});
    return buffers_.back().tensor;
  }

  /// Registers a submodule; its parameter `p` appears as `name.p`. The
  /// module takes the only reference to it (pass `std::make_shared<...>(...)` or
  /// std::move a pointer): a copy kept elsewhere would not follow clone(). Returns
  /// the handle through which the module reaches it (see Child).
  /// @throws ValueError on an empty, dotted or duplicate name, a null submodule, or
  /// a submodule referenced from elsewhere.
  template <class M>
  Child<M> register_module(std::string name, std::shared_ptr<M> module) {
    static_assert(std::is_base_of_v<Module<T>, M>,
                  "register_module: the submodule type must derive from nn::Module<T> of the "
                  "same T (a custom module derives from nn::Cloneable<Derived, T>)");
    check_new_name(name, "register_module", "submodule");
    METALEARN_CHECK(module != nullptr, ValueError, type_name(), "::register_module: submodule '",
                    name, "' is null");
    METALEARN_CHECK(static_cast<const Module<T>*>(module.get()) != this, ValueError, type_name(),
                    "::register_module: a module cannot contain itself");
    METALEARN_CHECK(module.use_count() == 1, ValueError, type_name(),
                    "::register_module: submodule '", name, "' (", module->type_name(),
                    ") is also referenced from elsewhere (", module.use_count() - 1,
                    " other references); pass the only reference, e.g. std::make_shared<...>(...) "
                    "or std::move(pointer), and reach the submodule through the returned "
                    "nn::Child handle: a pointer kept outside the registry would still point "
                    "to the original after clone()");
    std::string prefix = name + ".";
    children_.push_back({std::move(name), std::move(prefix), std::move(module)});
    return Child<M>(children_.size() - 1);
  }

  /// The submodule a handle of this module refers to.
  template <class M>
  [[nodiscard]] M& child(Child<M> handle) {
    return static_cast<M&>(*children_.at(checked_index(handle.index(), "child")).module);
  }
  template <class M>
  [[nodiscard]] const M& child(Child<M> handle) const {
    return static_cast<const M&>(*children_.at(checked_index(handle.index(), "child")).module);
  }
  /// forward() of the submodule `handle` with its view of `params`.
  template <class M>
  [[nodiscard]] Tensor<T> forward_child(Child<M> handle, const Tensor<T>& x,
                                        const ParamDict<T>& params) const {
    return forward_child(checked_index(handle.index(), "forward_child"), x, params);
  }
  /// The view of `params` holding the parameters of the submodule `handle`.
  template <class M>
  [[nodiscard]] ParamDict<T> child_params(const ParamDict<T>& params, Child<M> handle) const {
    return child_params(params, checked_index(handle.index(), "child_params"));
  }

  // ---- inspection ------------------------------------------------------------

  /// All parameters of the tree, depth-first in registration order (own parameters
  /// first, then each submodule's), with dotted names. The tensors are the
  /// module's leaves (shared storage), so an optimizer step is visible through them.
  [[nodiscard]] ParamDict<T> named_parameters() const {
    ParamDict<T> out;
    collect(out, std::string(), true);
    return out;
  }
  /// The leaves of named_parameters(), in the same order.
  [[nodiscard]] std::vector<Tensor<T>> parameters() const { return named_parameters().values(); }
  /// All buffers of the tree with dotted names.
  [[nodiscard]] ParamDict<T> named_buffers() const {
    ParamDict<T> out;
    collect(out, std::string(), false);
    return out;
  }
  /// Total number of parameter elements.
  [[nodiscard]] Index num_parameters() const {
    Index n = 0;
    for (const auto& t : parameters()) n += t.numel();
    return n;
  }
  /// Direct submodules with their local names. The pointers are valid while this
  /// module lives; do not keep them in a module (see Child).
  [[nodiscard]] std::vector<std::pair<std::string, Module<T>*>> named_children() const {
    std::vector<std::pair<std::string, Module<T>*>> out;
    for (const auto& c : children_) out.emplace_back(c.name, c.module.get());
    return out;
  }
  /// This module (named "") and every submodule of the tree, depth-first in
  /// registration order, with dotted names ("features", "features.0", ...).
  [[nodiscard]] std::vector<std::pair<std::string, Module<T>*>> named_modules() {
    std::vector<std::pair<std::string, Module<T>*>> out;
    collect_modules(out, std::string());
    return out;
  }
  [[nodiscard]] std::vector<std::pair<std::string, const Module<T>*>> named_modules() const {
    std::vector<std::pair<std::string, Module<T>*>> all;
    const_cast<Module&>(*this).collect_modules(all, std::string());
    return {all.begin(), all.end()};
  }
  /// The submodule at a dotted path ("features.0"), or nullptr.
  [[nodiscard]] Module<T>* find_module(std::string_view path) {
    return const_cast<Module<T>*>(std::as_const(*this).find_module(path));
  }
  [[nodiscard]] const Module<T>* find_module(std::string_view path) const {
    const Module<T>* m = this;
    while (m != nullptr && !path.empty()) {
      const std::size_t dot = path.find('.');
      const std::string_view head = path.substr(0, dot);
      const Module<T>* next = nullptr;
      for (const auto& c : m->children_) {
        if (c.name == head) next = c.module.get();
      }
      m = next;
      path = dot == std::string_view::npos ? std::string_view() : path.substr(dot + 1);
    }
    return m;
  }
  /// The submodule at a dotted path, as an M.
  /// @throws ValueError naming the path and the submodules there are when it is
  /// absent, or its type when it is not an M.
  template <class M = Module<T>>
  [[nodiscard]] M& submodule(std::string_view path) {
    return const_cast<M&>(std::as_const(*this).template submodule<M>(path));
  }
  template <class M = Module<T>>
  [[nodiscard]] const M& submodule(std::string_view path) const {
    const Module<T>* m = path.empty() ? nullptr : find_module(path);
    if (m == nullptr) [[unlikely]] {
      std::string names;
      for (const auto& [n, sub] : named_modules()) {
        if (!n.empty()) names += (names.empty() ? "" : ", ") + n;
      }
      metalearn::detail::throw_error<ValueError>(type_name(), "::submodule: no submodule '", path,
                                                 "' (there are: ", names.empty() ? "none" : names,
                                                 ")");
    }
    const auto* typed = dynamic_cast<const M*>(m);
    METALEARN_CHECK(typed != nullptr, ValueError, type_name(), "::submodule: '", path, "' is a ",
                    m->type_name(), ", not the type asked for");
    return *typed;
  }

  /// Parameters and buffers of the tree under their dotted names: the module's
  /// whole state (the tensors are the module's own, so later changes show).
  [[nodiscard]] ParamDict<T> state_dict() const {
    ParamDict<T> out;
    collect(out, std::string(), true);
    collect(out, std::string(), false);
    return out;
  }

  /// Maps a name of a state dict being loaded to the module's name for it (for
  /// weights saved under other names: another library's, an older layout).
  using KeyMap = std::function<std::string(std::string_view)>;

  /// Loads parameters and buffers at once, all or nothing: every name (after
  /// `key_map`, when given) and shape is checked before anything changes. In
  /// LoadMode::kStrict (the default) every parameter and buffer must be given and
  /// every given name must be one; kNonStrict loads the names present in both.
  /// @throws ValueError for a missing or unknown name (strict), or two names that
  /// map to one; ShapeError for a shape that differs from the module's.
  void load_state_dict(const ParamDict<T>& values, LoadMode mode = LoadMode::kStrict,
                       const KeyMap& key_map = {}) {
    const std::string function = type_name() + "::load_state_dict";
    ParamDict<T> renamed;
    const ParamDict<T>* given = &values;
    if (key_map) {
      for (const auto& [name, t] : values) {
        const std::string to = key_map(name);
        METALEARN_CHECK(renamed.find(to) == nullptr, ValueError, function, ": '", name,
                        "' maps to '", to,
                        "', which another name maps to already; nothing was "
                        "loaded");
        renamed.insert(to, t);
      }
      given = &renamed;
    }
    const auto plan = detail::plan_load(state_dict(), *given, mode, function, "state entry");
    autograd::NoGradGuard no_grad;
    for (const auto& [to, from] : plan) {
      std::copy_n(from.data(), from.numel(), to.data());
      to.bump_version();
    }
  }

  /// Clears the .grad() of every parameter.
  void zero_grad() {
    for (auto& p : params_) p.tensor.zero_grad();
    for (auto& c : children_) c.module->zero_grad();
  }

  /// Sets the training flag of the whole tree. It matters only for batch norm in
  /// the running and per-step modes (batch statistics and updates vs. running
  /// statistics); see BatchNormMode.
  void train(bool on = true) {
    training_ = on;
    for (auto& c : children_) c.module->train(on);
  }
  void eval() { train(false); }
  [[nodiscard]] bool is_training() const noexcept { return training_; }

  /// Copies values into the parameters (in place, no grad). All or nothing: every
  /// name and shape is checked before any parameter changes, so a failed load
  /// leaves the module as it was. In LoadMode::kStrict (the default) every
  /// parameter must be present (ValueError naming it otherwise) and every name of
  /// `values` must be a parameter or a buffer of this module (ValueError naming it
  /// otherwise; buffers are allowed so that one dict holding both loads with
  /// load_parameters() then load_buffers()). LoadMode::kNonStrict loads the names
  /// present and ignores the others. A shape mismatch is a ShapeError in both modes.
  void load_parameters(const ParamDict<T>& values, LoadMode mode = LoadMode::kStrict) {
    const auto plan =
        detail::plan_load(named_parameters(), values, mode, type_name() + "::load_parameters",
                          "parameter", named_buffers());
    autograd::NoGradGuard no_grad;
    for (const auto& [to, from] : plan) {
      std::copy_n(from.data(), from.numel(), to.data());
      to.bump_version();
    }
  }
  /// Copies values into the buffers (in place), all or nothing, with the rules of
  /// load_parameters() (parameter names are allowed in strict mode).
  void load_buffers(const ParamDict<T>& values, LoadMode mode = LoadMode::kStrict) {
    const auto plan =
        detail::plan_load(named_buffers(), values, mode, type_name() + "::load_buffers", "buffer",
                          named_parameters());
    for (const auto& [to, from] : plan) {
      std::copy_n(from.data(), from.numel(), to.data());
      to.bump_version();
    }
  }

  /// The module tree, one submodule per line, like
  /// `MLP(\n  (0): Linear(in=1, out=40, bias=true)\n  ...)`.
  [[nodiscard]] std::string to_string() const {
    std::string s = type_name() + "(" + extra_repr();
    if (children_.empty()) return s + ")";
    s += "\n";
    for (const auto& c : children_) {
      s += "  (" + c.name + "): " + detail::indent_lines(c.module->to_string()) + "\n";
    }
    return s + ")";
  }

 protected:
  Module() = default;
  Module(const Module&) = default;
  Module& operator=(const Module&) = default;
  Module(Module&&) noexcept = default;
  Module& operator=(Module&&) noexcept = default;

  /// The i-th own parameter as given in `params` (by its local name), checked
  /// against the module's own parameter's shape. This is what forward() uses.
  [[nodiscard]] const Tensor<T>& param(const ParamDict<T>& params, std::size_t i) const {
    const Slot& s = params_[i];
    const Tensor<T>* t = params.find(s.name);
    if (t == nullptr) [[unlikely]] {
      missing(params, s.name, "forward");
    }
    if (t->shape() != s.tensor.shape()) [[unlikely]] {
      wrong_shape(params, s.name, *t, s.tensor.shape(), "forward");
    }
    return *t;
  }
  /// The submodules applied one after the other: the forward pass of chains such as
  /// Sequential.
  [[nodiscard]] Tensor<T> forward_chain(const Tensor<T>& x, const ParamDict<T>& params) const {
    Tensor<T> h = x;
    for (std::size_t i = 0; i < children_.size(); ++i) h = forward_child(i, h, params);
    return h;
  }
  /// The module's own i-th parameter and buffer, and i-th submodule (by position; a
  /// Child handle names a submodule by position and type).
  [[nodiscard]] const Tensor<T>& own_parameter(std::size_t i) const { return params_[i].tensor; }
  [[nodiscard]] const Tensor<T>& buffer(std::size_t i) const { return buffers_[i].tensor; }
  [[nodiscard]] std::size_t num_own_parameters() const noexcept { return params_.size(); }
  [[nodiscard]] std::size_t num_children() const noexcept { return children_.size(); }
  [[nodiscard]] const Module<T>& child(std::size_t i) const { return *children_[i].module; }
  [[nodiscard]] Module<T>& child(std::size_t i) { return *children_[i].module; }
  /// The view of `params` holding the i-th submodule's parameters.
  [[nodiscard]] ParamDict<T> child_params(const ParamDict<T>& params, std::size_t i) const {
    return params.sub(children_[i].prefix);
  }
  /// forward() of the i-th submodule with its view of `params`.
  [[nodiscard]] Tensor<T> forward_child(std::size_t i, const Tensor<T>& x,
                                        const ParamDict<T>& params) const {
    return children_[i].module->forward(x, params.sub(children_[i].prefix));
  }

  /// Replaces parameters, buffers and submodules by independent copies. Called on
  /// a fresh member-wise copy by Cloneable::clone().
  void make_independent() {
    for (auto& p : params_) {
      const bool rg = p.tensor.requires_grad();
      p.tensor = p.tensor.clone();
      p.tensor.set_requires_grad(rg);
    }
    for (auto& b : buffers_) b.tensor = b.tensor.clone();
    for (auto& c : children_) c.module = std::shared_ptr<Module<T>>(c.module->clone());
  }

 private:
  struct Slot {
    std::string name;
    Tensor<T> tensor;
  };
  struct Entry {
    std::string name;
    std::string prefix;  // name + "." computed once at registration
    std::shared_ptr<Module<T>> module;
  };

  void check_new_name(const std::string& name, const char* function, const char* what) const {
    const std::string fn = type_name() + "::" + function;
    detail::check_local_name(name, fn.c_str(), what);
    auto taken = [&name](const auto& v) {
      for (const auto& e : v) {
        if (e.name == name) return true;
      }
      return false;
    };
    METALEARN_CHECK(!taken(params_) && !taken(buffers_) && !taken(children_), ValueError, fn,
                    ": the name '", name, "' is already used by a parameter, buffer or submodule");
  }

  std::size_t checked_index(std::size_t i, const char* function) const {
    METALEARN_CHECK(i < children_.size(), ValueError, type_name(), "::", function,
                    ": the handle does not refer to a submodule of this module (index ",
                    i == static_cast<std::size_t>(-1) ? std::string("none") : std::to_string(i),
                    ", ", children_.size(), " submodules)");
    return i;
  }

  void collect_modules(std::vector<std::pair<std::string, Module<T>*>>& out,
                       const std::string& path) {
    out.emplace_back(path, this);
    for (auto& c : children_) {
      c.module->collect_modules(out, path.empty() ? c.name : path + "." + c.name);
    }
  }

  void collect(ParamDict<T>& out, const std::string& prefix, bool parameters) const {
    for (const auto& s : parameters ? params_ : buffers_) out.insert(prefix + s.name, s.tensor);
    for (const auto& c : children_) c.module->collect(out, prefix + c.prefix, parameters);
  }

  [[noreturn]] void missing(const ParamDict<T>& params, std::string_view name,
                            const char* function) const {
    std::string available;
    for (const auto& [n, t] : params) {
      if (!available.empty()) available += ", ";
      available += n;
      if (available.size() > 200) {
        available += ", ...";
        break;
      }
    }
    throw ValueError(metalearn::detail::str_cat(
        type_name(), "::", function, ": parameter '", params.prefix(), name,
        "' is missing from the ParamDict (it has: ", available.empty() ? "nothing" : available,
        ")"));
  }
  [[noreturn]] void wrong_shape(const ParamDict<T>& params, std::string_view name,
                                const Tensor<T>& given, const Shape& expected,
                                const char* function) const {
    throw ShapeError(metalearn::detail::str_cat(
        type_name(), "::", function, ": parameter '", params.prefix(), name, "' has shape ",
        given.shape(), " but the module expects ", expected));
  }

  std::vector<Slot> params_;
  std::vector<Slot> buffers_;
  std::vector<Entry> children_;
  bool training_ = true;
};

/// CRTP base giving a concrete module its clone(): a member-wise copy followed by
/// deep copies of the registered state.
template <class Derived, class T>
class Cloneable : public Module<T> {
 public:
  [[nodiscard]] std::unique_ptr<Module<T>> clone() const override { return deep_copy(); }

  /// clone() with the concrete type.
  [[nodiscard]] std::unique_ptr<Derived> deep_copy() const {
    static_assert(std::is_base_of_v<Cloneable, Derived>,
                  "nn::Cloneable<Derived, T>: Derived must be the class deriving from it (CRTP)");
    static_assert(std::is_copy_constructible_v<Derived>,
                  "nn::Cloneable<Derived, T>: clone() copy-constructs Derived, so Derived must be "
                  "copy-constructible (hold submodules as the nn::Child handles "
                  "register_module returns, not as std::unique_ptr)");
    auto copy = std::make_unique<Derived>(static_cast<const Derived&>(*this));
    static_cast<Cloneable&>(*copy).make_independent();
    return copy;
  }

 protected:
  Cloneable() = default;
};

template <class T>
std::ostream& operator<<(std::ostream& os, const Module<T>& m) {
  return os << m.to_string();
}

extern template class Module<float>;
extern template class Module<double>;

}  // namespace metalearn::nn
