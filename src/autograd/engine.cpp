// The backward engine: an iterative topological pass over the graph reachable from
// the outputs. No recursion (very deep graphs are fine), and each node is applied
// exactly once, after every gradient flowing into it has been summed.

#include <cstdint>
#include <mutex>
#include <utility>
#include <vector>

#include "metalearn/autograd/grad.hpp"
#include "metalearn/autograd/node.hpp"
#include "metalearn/tensor/factory.hpp"
#include "metalearn/tensor/ops/elementwise.hpp"
#include "metalearn/tensor/tensor.hpp"

namespace metalearn::autograd::detail {
namespace {

template <class T>
struct NodeState {
  Node<T>* node = nullptr;
  int pending = 0;     // number of edges into this node not yet processed
  bool needed = true;  // some requested input is reachable from here
  int target = -1;     // index into inputs when this node is requested
  Tensor<T> grad;      // sum of the incoming gradients
};

/// Open-addressing map from node address to its index in the pass (the graph of
/// one backward pass has no deletions, so linear probing stays simple).
class NodeIndex {
 public:
  static constexpr std::size_t kNone = static_cast<std::size_t>(-1);

  /// The index stored for `key`, inserting `next` when absent; second is true on insert.
  std::pair<std::size_t, bool> try_emplace(const void* key, std::size_t next) {
    if (2 * (size_ + 1) > slots_.size()) grow();
    std::size_t i = slot(key);
    while (slots_[i].key != nullptr) {
      if (slots_[i].key == key) return {slots_[i].value, false};
      i = (i + 1) & (slots_.size() - 1);
    }
    slots_[i] = {key, next};
    ++size_;
    return {next, true};
  }

  [[nodiscard]] std::size_t find(const void* key) const {
    if (slots_.empty()) return kNone;
    std::size_t i = slot(key);
    while (slots_[i].key != nullptr) {
      if (slots_[i].key == key) return slots_[i].value;
      i = (i + 1) & (slots_.size() - 1);
    }
    return kNone;
  }

 private:
  struct Slot {
    const void* key = nullptr;
    std::size_t value = 0;
  };
  [[nodiscard]] std::size_t slot(const void* key) const {
    auto h = reinterpret_cast<std::uintptr_t>(key);
    h ^= h >> 17;
    h *= 0x9E3779B97F4A7C15ULL;
    return static_cast<std::size_t>(h >> 20) & (slots_.size() - 1);
  }
  void grow() {
    std::vector<Slot> old = std::move(slots_);
    slots_.assign(old.empty() ? 64 : 2 * old.size(), Slot{});
    size_ = 0;
    for (const Slot& e : old) {
      if (e.key != nullptr) try_emplace(e.key, e.value);
    }
  }
  std::vector<Slot> slots_;
  std::size_t size_ = 0;
};

}  // namespace

template <class T>
std::vector<Tensor<T>> run_backward(const std::vector<Tensor<T>>& outputs,
                                    const std::vector<Tensor<T>>& grad_outputs,
                                    const std::vector<Tensor<T>>& inputs, bool capture,
                                    GradOptions options) {
  const char* api = capture ? "autograd::grad" : "backward";
  METALEARN_CHECK(!outputs.empty(), AutogradError, api, ": no outputs given");
  METALEARN_CHECK(grad_outputs.empty() || grad_outputs.size() == outputs.size(), AutogradError, api,
                  ": ", grad_outputs.size(), " grad_outputs for ", outputs.size(), " outputs");
  const bool retain = options.retain_graph || options.create_graph;

  // Seed gradients.
  std::vector<Tensor<T>> seeds(outputs.size());
  for (std::size_t i = 0; i < outputs.size(); ++i) {
    const Tensor<T>& out = outputs[i];
    METALEARN_CHECK(out.defined(), AutogradError, api, ": output ", i, " is undefined");
    METALEARN_CHECK(out.requires_grad(), AutogradError, api, ": output ", i, " (shape ",
                    out.shape(),
                    ") does not require grad: no input of the computation that produced it "
                    "requires grad, or it was computed under NoGradGuard");
    if (!grad_outputs.empty() && grad_outputs[i].defined()) {
      METALEARN_CHECK(grad_outputs[i].shape() == out.shape(), ShapeError, api, ": grad_output ", i,
                      " has shape ", grad_outputs[i].shape(), " but output has shape ",
                      out.shape());
      seeds[i] = grad_outputs[i];
    } else {
      METALEARN_CHECK(out.numel() == 1, AutogradError, api, ": output ", i, " has shape ",
                      out.shape(),
                      "; a gradient can be implied only for one-element outputs, pass "
                      "grad_outputs");
      seeds[i] = ones<T>(out.shape());
    }
  }

  // Discover the graph (iterative DFS) and count the edges into each node.
  std::vector<NodeState<T>> nodes;
  NodeIndex index;
  nodes.reserve(64);
  std::vector<Node<T>*> stack;
  auto visit = [&](Node<T>* n) -> std::size_t {
    auto [at, inserted] = index.try_emplace(n, nodes.size());
    if (inserted) {
      nodes.push_back(NodeState<T>{n, 0, true, -1, Tensor<T>()});
      stack.push_back(n);
    }
    return at;
  };
  for (const auto& out : outputs) visit(out.edge().get());
  while (!stack.empty()) {
    Node<T>* n = stack.back();
    stack.pop_back();
    for (const auto& e : n->next()) {
      if (e) ++nodes[visit(e.get())].pending;
    }
  }

  // Requested inputs.
  std::vector<Tensor<T>> result(inputs.size());
  if (capture) {
    for (std::size_t i = 0; i < inputs.size(); ++i) {
      const Tensor<T>& in = inputs[i];
      METALEARN_CHECK(in.defined(), AutogradError, api, ": input ", i, " is undefined");
      const std::size_t at = in.edge() ? index.find(in.edge().get()) : NodeIndex::kNone;
      if (at == NodeIndex::kNone) {
        METALEARN_CHECK(
            options.allow_unused, AutogradError, api, ": input ", i, " (shape ", in.shape(), ") ",
            in.requires_grad() ? "is not used to compute the outputs" : "does not require grad",
            "; pass allow_unused = true to get an undefined gradient for it");
        continue;
      }
      METALEARN_CHECK(nodes[at].target < 0, AutogradError, api, ": input ", i,
                      " is passed twice (or aliases input ", nodes[at].target, ")");
      nodes[at].target = static_cast<int>(i);
    }
  }

  // Topological order (Kahn) on a copy of the counts.
  std::vector<std::size_t> order;
  order.reserve(nodes.size());
  {
    std::vector<int> pending(nodes.size());
    for (std::size_t i = 0; i < nodes.size(); ++i) pending[i] = nodes[i].pending;
    std::vector<std::size_t> ready;
    for (std::size_t i = 0; i < nodes.size(); ++i) {
      if (pending[i] == 0) ready.push_back(i);
    }
    while (!ready.empty()) {
      const std::size_t i = ready.back();
      ready.pop_back();
      order.push_back(i);
      for (const auto& e : nodes[i].node->next()) {
        if (!e) continue;
        const std::size_t j = index.find(e.get());
        if (--pending[j] == 0) ready.push_back(j);
      }
    }
    METALEARN_ASSERT(order.size() == nodes.size(), "autograd graph has a cycle");
  }

  // With requested inputs, a node runs only when a requested input lies below it;
  // a requested input's own producer is not run (the pass stops there), so parts
  // of the graph beyond the inputs are neither executed nor freed.
  if (capture) {
    for (auto it = order.rbegin(); it != order.rend(); ++it) {
      NodeState<T>& s = nodes[*it];
      bool below = false;
      for (const auto& e : s.node->next()) {
        if (below) break;
        if (e) {
          const NodeState<T>& c = nodes[index.find(e.get())];
          below = c.target >= 0 || c.needed;
        }
      }
      s.needed = below;  // needed == "must run apply()"
    }
  }

  for (std::size_t i = 0; i < outputs.size(); ++i) {
    NodeState<T>& s = nodes[index.find(outputs[i].edge().get())];
    add_to(s.grad, seeds[i]);
  }

  GradModeGuard mode(options.create_graph);
  for (std::size_t i : order) {
    NodeState<T>& s = nodes[i];
    if (s.target < 0 && !s.needed) continue;
    Node<T>* node = s.node;
    Tensor<T> g = std::move(s.grad);
    if (!g.defined()) continue;  // no gradient reached this node
    METALEARN_ASSERT(g.shape() == node->output_shape() || node->is_leaf(), "gradient shape ",
                     g.shape(), " reaching ", node->name(), " expected ", node->output_shape());
    if (s.target >= 0) result[static_cast<std::size_t>(s.target)] = g;
    if (node->is_leaf()) {
      if (!capture) {
        const auto* accumulator = static_cast<LeafNode<T>*>(node);
        auto leaf = accumulator->leaf();
        if (leaf) {
          Tensor<T> owner(leaf);
          Tensor<T> add_me = options.create_graph ? g : g.clone();
          const std::lock_guard<std::mutex> lock(accumulator->accumulate_mutex());
          Tensor<T> prev = owner.grad();
          owner.set_grad(prev.defined() ? add(prev, add_me) : add_me);
        }
      }
      continue;
    }
    if (!s.needed) continue;
    node->check_versions();
    std::vector<Tensor<T>> grads = node->apply(g);
    METALEARN_ASSERT(grads.size() == node->next().size(), "backward of ", node->name(),
                     " returned ", grads.size(), " gradients for ", node->next().size(), " inputs");
    for (std::size_t k = 0; k < grads.size(); ++k) {
      const auto& e = node->next()[k];
      if (!e || !grads[k].defined()) continue;
      metalearn::detail::check_anomaly(grads[k], node->name(), "backward");
      NodeState<T>& child = nodes[index.find(e.get())];
      if (capture && child.target < 0 && !child.needed) continue;
      add_to(child.grad, grads[k]);
    }
    // Free what this node saved, unless the graph must be kept.
    if (!retain) node->release();
  }
  if (capture && !options.create_graph) {
    // Results must not keep graph nodes alive when no graph was requested.
    for (auto& r : result) {
      if (r.defined() && r.requires_grad()) r = r.detach();
    }
  }
  return result;
}

template std::vector<Tensor<float>> run_backward(const std::vector<Tensor<float>>&,
                                                 const std::vector<Tensor<float>>&,
                                                 const std::vector<Tensor<float>>&, bool,
                                                 GradOptions);
template std::vector<Tensor<double>> run_backward(const std::vector<Tensor<double>>&,
                                                  const std::vector<Tensor<double>>&,
                                                  const std::vector<Tensor<double>>&, bool,
                                                  GradOptions);

}  // namespace metalearn::autograd::detail

namespace metalearn {

template <class T>
void Tensor<T>::backward(const Tensor<T>& grad_output, BackwardOptions options) const {
  std::vector<Tensor<T>> go;
  if (grad_output.defined()) go.push_back(grad_output);
  autograd::detail::run_backward<T>(
      {*this}, go, {}, false,
      autograd::GradOptions{options.retain_graph, options.create_graph, true});
}

// With autograd/node.hpp included, these also give the library the float and double
// instances of the members defined there (requires_grad, set_requires_grad).
template class Tensor<float>;
template class Tensor<double>;

}  // namespace metalearn
