#pragma once
/// @file
/// Graph nodes: the backward rule of one recorded op, and the edges to the nodes
/// of its inputs. Nodes are owned by the tensors that need them (reference
/// counted); there is no tape.

#include <array>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "metalearn/core/error.hpp"
#include "metalearn/autograd/grad_mode.hpp"
#include "metalearn/tensor/tensor.hpp"

namespace metalearn {

/// One recorded op. `apply(grad)` maps the gradient of the op's (single) output to
/// one gradient per input, using differentiable ops, so that with grad mode on the
/// backward pass is itself recorded (create_graph).
template <class T>
class Node : public std::enable_shared_from_this<Node<T>> {
 public:
  using Edge = std::shared_ptr<Node<T>>;

  /// Edges of a node: up to two inline (most ops), more on the heap (concat).
  class EdgeList {
   public:
    EdgeList() = default;
    explicit EdgeList(std::size_t n) : n_(n) {
      if (n > kInline) heap_.resize(n);
    }
    [[nodiscard]] std::size_t size() const { return n_; }
    [[nodiscard]] Edge* begin() { return n_ > kInline ? heap_.data() : inline_.data(); }
    [[nodiscard]] Edge* end() { return begin() + n_; }
    [[nodiscard]] const Edge* begin() const { return n_ > kInline ? heap_.data() : inline_.data(); }
    [[nodiscard]] const Edge* end() const { return begin() + n_; }
    Edge& operator[](std::size_t i) { return begin()[i]; }
    const Edge& operator[](std::size_t i) const { return begin()[i]; }
    void clear() {
      for (auto& e : *this) e.reset();
      heap_.clear();
      n_ = 0;
    }

   private:
    static constexpr std::size_t kInline = 2;
    std::array<Edge, kInline> inline_{};
    std::vector<Edge> heap_;
    std::size_t n_ = 0;
  };

  Node(const char* name, EdgeList next) : name_(name), next_(std::move(next)) {}

  /// Releases the edges iteratively, so that destroying a very long graph (a
  /// 100,000-op chain) does not recurse once per node.
  virtual ~Node() {
    if (next_.size() == 0) return;
    std::vector<Edge> stack;
    for (auto& e : next_) {
      if (e) stack.push_back(std::move(e));
    }
    while (!stack.empty()) {
      Edge e = std::move(stack.back());
      stack.pop_back();
      if (e && e.use_count() == 1) {
        for (auto& n : e->next_) stack.push_back(std::move(n));
        e->next_.clear();
      }
    }
  }
  Node(const Node&) = delete;
  Node& operator=(const Node&) = delete;

  [[nodiscard]] const char* name() const { return name_; }
  /// One edge per input of the op; null for inputs that need no gradient.
  [[nodiscard]] const EdgeList& next() const { return next_; }
  [[nodiscard]] bool needs_input_grad(std::size_t i) const {
    return i < next_.size() && next_[i] != nullptr;
  }
  [[nodiscard]] virtual bool is_leaf() const { return false; }

  /// Gradients with respect to the op's inputs given the gradient of its output.
  virtual std::vector<Tensor<T>> apply(const Tensor<T>& grad) = 0;

  /// Frees the saved tensors; a later apply() throws AutogradError.
  virtual void release() { saved_output_.reset(); }
  [[nodiscard]] virtual bool released() const { return false; }

  /// The op's output, rebuilt from saved storage with this node as producer. Only
  /// for ops recorded with save_output; keeps no reference cycle.
  [[nodiscard]] Tensor<T> output() {
    METALEARN_ASSERT(saved_output_ != nullptr, "node ", name_, " saved no output");
    auto impl = detail::make_cached<detail::TensorImpl<T>>();
    impl->data = saved_output_;
    impl->shape = output_shape_;
    impl->numel = output_shape_.numel();
    impl->requires_grad = true;
    impl->is_leaf = false;
    impl->node = this->shared_from_this();
    return Tensor<T>(std::move(impl));
  }

  void save_output(const Tensor<T>& out) {
    saved_output_ = out.storage();
    output_shape_ = out.shape();
  }

  /// Remembers the version of `t`'s storage (an input, or the saved output), which
  /// check_versions() compares with the version at backward time. Storage without a
  /// counter (see Tensor::version()) is not tracked.
  void stamp_version(const Tensor<T>& t, int input) {
    if (!t.defined()) return;
    const std::atomic<std::uint64_t>* counter = detail::storage_version(t.storage());
    if (counter == nullptr) return;
    Stamp stamp{std::weak_ptr<T[]>(t.storage()), counter, counter->load(std::memory_order_acquire),
                input};
    if (inline_stamps_ < kInlineStamps) {
      stamps_[inline_stamps_++] = std::move(stamp);
    } else {
      more_stamps_.push_back(std::move(stamp));
    }
  }

  /// Throws AutogradError when a tensor this op read (an input, or its saved
  /// output) was written in place after the op was recorded.
  void check_versions() const {
    const auto check = [this](const Stamp& s) {
      // The weak reference keeps the control block, and with it the counter, alive;
      // storage that died cannot have been written since.
      if (s.storage.expired()) return;
      const std::uint64_t now = s.counter->load(std::memory_order_acquire);
      if (now == s.version) [[likely]] {
        return;
      }
      metalearn::detail::throw_error<AutogradError>(
          "backward of ", name_, ": ",
          s.input < 0 ? std::string("its saved output") : "its input " + std::to_string(s.input),
          " was written in place after the op was recorded (version ", s.version, ", now ", now,
          "), so its gradient would be computed from the new values. Run the forward pass "
          "again after the in-place change, or clone() the tensor before changing it");
    };
    for (std::size_t i = 0; i < inline_stamps_; ++i) check(stamps_[i]);
    for (const Stamp& s : more_stamps_) check(s);
  }

  /// Shape of the recorded op's output (for checks in the engine).
  [[nodiscard]] const Shape& output_shape() const { return output_shape_; }
  void set_output_shape(const Shape& s) { output_shape_ = s; }

 private:
  struct Stamp {
    std::weak_ptr<T[]> storage;
    const std::atomic<std::uint64_t>* counter = nullptr;
    std::uint64_t version = 0;
    int input = -1;  // -1: the saved output
  };
  static constexpr std::size_t kInlineStamps = 3;

  const char* name_;
  EdgeList next_;
  std::array<Stamp, kInlineStamps> stamps_{};
  std::size_t inline_stamps_ = 0;
  std::vector<Stamp> more_stamps_;
  std::shared_ptr<T[]> saved_output_;
  Shape output_shape_;
};

/// Gradient accumulator of a leaf tensor: the node that edges into leaves point to.
/// Graphs built on different threads share the accumulator of a leaf they all use
/// (a module's parameter); backward passes take its mutex to add into .grad(), so
/// passes running at once sum every contribution.
template <class T>
class LeafNode final : public Node<T> {
 public:
  explicit LeafNode(std::weak_ptr<detail::TensorImpl<T>> leaf)
      : Node<T>("leaf", typename Node<T>::EdgeList()), leaf_(std::move(leaf)) {}
  [[nodiscard]] bool is_leaf() const override { return true; }
  std::vector<Tensor<T>> apply(const Tensor<T>&) override { return {}; }
  /// The leaf this node accumulates into, if still alive.
  [[nodiscard]] std::shared_ptr<detail::TensorImpl<T>> leaf() const { return leaf_.lock(); }
  /// Held while a backward pass adds into the leaf's .grad().
  [[nodiscard]] std::mutex& accumulate_mutex() const { return accumulate_; }

 private:
  std::weak_ptr<detail::TensorImpl<T>> leaf_;
  mutable std::mutex accumulate_;
};

/// A node whose backward rule is a callable `F(Node<T>& self, const Tensor<T>& g)`
/// returning one gradient per input. One allocation holds node and captures.
template <class T, class F>
class FunctionNode final : public Node<T> {
 public:
  FunctionNode(const char* name, typename Node<T>::EdgeList next, F fn)
      : Node<T>(name, std::move(next)), fn_(std::move(fn)) {}

  std::vector<Tensor<T>> apply(const Tensor<T>& grad) override {
    METALEARN_CHECK(fn_.has_value(), AutogradError, "backward of ", this->name(),
                    ": its saved tensors were already freed by an earlier backward pass; pass "
                    "retain_graph = true to the first backward()/grad() call to differentiate "
                    "the same graph twice");
    if (!autograd::is_anomaly_enabled()) return (*fn_)(*this, grad);
    try {
      return (*fn_)(*this, grad);
    } catch (const ValueError& e) {
      // An op inside this backward rule produced NaN/Inf: name the rule, not only the op.
      throw ValueError(detail::str_cat("anomaly: backward of ", this->name(), ": ", e.what()));
    }
  }
  void release() override {
    fn_.reset();
    Node<T>::release();
  }
  [[nodiscard]] bool released() const override { return !fn_.has_value(); }

 private:
  std::optional<F> fn_;
};

template <class T>
Tensor<T>& Tensor<T>::requires_grad(bool value) & {
  return set_requires_grad(value);
}

template <class T>
Tensor<T>& Tensor<T>::set_requires_grad(bool value) {
  Impl& self = checked();
  if (!self.is_leaf) {
    METALEARN_CHECK(value, AutogradError,
                    "Tensor::requires_grad: cannot turn off gradients of a non-leaf tensor "
                    "(produced by ",
                    self.node->name(), "); use detach() instead");
    return *this;
  }
  self.requires_grad = value;
  if (value && !self.node) {
    self.node = detail::make_cached<LeafNode<T>>(std::weak_ptr<Impl>(impl_));
  } else if (!value) {
    self.node.reset();
  }
  return *this;
}

namespace detail {

/// Throws ValueError naming `op` when anomaly mode is on and `t` holds NaN/Inf.
template <class T>
void check_anomaly(const Tensor<T>& t, const char* op, const char* phase) {
  if (!autograd::is_anomaly_enabled()) return;
  const T* p = t.data();
  for (Index i = 0; i < t.numel(); ++i) {
    METALEARN_CHECK(std::isfinite(p[i]), ValueError, "anomaly: ", phase, " of ", op,
                    " produced a non-finite value (", p[i], ") at flat index ", i, " of shape ",
                    t.shape());
  }
}

/// True when an op with these inputs must be recorded.
template <class T>
bool should_record(std::initializer_list<const Tensor<T>*> inputs) {
  if (!autograd::is_grad_enabled()) return false;
  for (const Tensor<T>* t : inputs) {
    if (t->defined() && t->requires_grad()) return true;
  }
  return false;
}

enum class SaveOutput : bool { kNo = false, kYes = true };

/// `t` when `other` needs a gradient, else an undefined tensor: what a node of a
/// bilinear op (a product, a convolution) keeps of one argument, which only the other
/// argument's gradient reads.
template <class T>
Tensor<T> keep_for(const Tensor<T>& t, const Tensor<T>& other) {
  return other.defined() && other.requires_grad() ? t : Tensor<T>();
}

/// Records `out` as the result of op `name` with the given inputs and backward rule.
template <class T, class F>
void record(Tensor<T>& out, const char* name, std::initializer_list<const Tensor<T>*> inputs,
            F&& fn, SaveOutput save = SaveOutput::kNo) {
  check_anomaly(out, name, "forward");
  if (!should_record<T>(inputs)) return;
  typename Node<T>::EdgeList next(inputs.size());
  std::size_t k = 0;
  for (const Tensor<T>* t : inputs) next[k++] = t->defined() ? t->edge() : nullptr;
  auto node =
      make_cached<FunctionNode<T, std::decay_t<F>>>(name, std::move(next), std::forward<F>(fn));
  node->set_output_shape(out.shape());
  int input = 0;
  for (const Tensor<T>* t : inputs) node->stamp_version(*t, input++);
  if (save == SaveOutput::kYes) {
    node->save_output(out);
    node->stamp_version(out, -1);
  }
  auto& impl = *out.impl_ptr();
  impl.requires_grad = true;
  impl.is_leaf = false;
  impl.node = std::move(node);
}

/// Records an op with any number of inputs (concat, stack).
template <class T, class F>
void record_many(Tensor<T>& out, const char* name, const std::vector<Tensor<T>>& inputs, F&& fn) {
  check_anomaly(out, name, "forward");
  if (!autograd::is_grad_enabled()) return;
  bool any = false;
  for (const auto& t : inputs) any = any || t.requires_grad();
  if (!any) return;
  typename Node<T>::EdgeList next(inputs.size());
  for (std::size_t k = 0; k < inputs.size(); ++k) next[k] = inputs[k].edge();
  auto node =
      make_cached<FunctionNode<T, std::decay_t<F>>>(name, std::move(next), std::forward<F>(fn));
  node->set_output_shape(out.shape());
  for (std::size_t k = 0; k < inputs.size(); ++k)
    node->stamp_version(inputs[k], static_cast<int>(k));
  auto& impl = *out.impl_ptr();
  impl.requires_grad = true;
  impl.is_leaf = false;
  impl.node = std::move(node);
}

}  // namespace detail
}  // namespace metalearn
