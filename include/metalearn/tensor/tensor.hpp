#pragma once
/// @file
/// Tensor<T>: a cheap handle to shared, contiguous, row-major storage plus a shape
/// and optional autograd metadata.

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstring>
#include <memory>
#include <ostream>
#include <type_traits>
#include <utility>
#include <vector>

#include "metalearn/core/eigen.hpp"

#include "metalearn/core/checked.hpp"
#include "metalearn/core/error.hpp"
#include "metalearn/core/export.hpp"
#include "metalearn/core/shape.hpp"

namespace metalearn {

template <class T>
class Node;
template <class T>
class Tensor;

/// The scalar types a Tensor may hold.
template <class T>
concept RealScalar = std::is_same_v<T, float> || std::is_same_v<T, double>;

namespace detail {

template <class T>
struct TensorImpl {
  std::shared_ptr<T[]> data;  // shared with views created by reshape
  Shape shape;
  Index numel = 0;
  bool requires_grad = false;
  bool is_leaf = true;
  std::shared_ptr<Node<T>> node;        // producer (non-leaf) or gradient accumulator (leaf)
  std::shared_ptr<TensorImpl<T>> grad;  // accumulated by Tensor::backward()
};

/// Storage for n elements, starting on a 64-byte boundary. Eigen's vectorised
/// kernels take different code paths (and round differently) depending on the
/// alignment of their operands, so a fixed alignment keeps results bit-identical
/// whatever address the allocator returns (e.g. on another thread).
inline constexpr std::size_t kStorageAlignment = 64;
/// Blocks below this size are cached in 64-byte size classes, larger ones by
/// size, a request taking a cached block up to 1.5 times its size (see
/// src/tensor/allocator.cpp).
inline constexpr std::size_t kCachedBlockBytes = std::size_t{64} << 10;

/// A 64-byte aligned block of `bytes` (a multiple of 64) from this thread's cache
/// of freed blocks; release_block() returns it. Implemented in src/tensor/allocator.cpp.
METALEARN_API void* acquire_block(std::size_t bytes);
METALEARN_API void release_block(void* p, std::size_t bytes) noexcept;

/// A standard allocator over the per-thread block cache, for the small objects
/// every recorded op creates (tensor headers, graph nodes, shared_ptr control
/// blocks): they are reused step after step instead of going through malloc.
template <class U>
struct CacheAllocator {
  using value_type = U;
  CacheAllocator() noexcept = default;
  template <class V>
  CacheAllocator(const CacheAllocator<V>& /*other*/) noexcept {}  // NOLINT: rebinding
  static std::size_t block_bytes(std::size_t n) noexcept {
    return (n * sizeof(U) + kStorageAlignment - 1) / kStorageAlignment * kStorageAlignment;
  }
  U* allocate(std::size_t n) { return static_cast<U*>(acquire_block(block_bytes(n))); }
  void deallocate(U* p, std::size_t n) noexcept { release_block(p, block_bytes(n)); }
  template <class V>
  bool operator==(const CacheAllocator<V>& /*other*/) const noexcept {
    return true;
  }
};

/// std::make_shared through the block cache.
template <class U, class... Args>
std::shared_ptr<U> make_cached(Args&&... args) {
  return std::allocate_shared<U>(CacheAllocator<U>{}, std::forward<Args>(args)...);
}

/// The deleter of storage made by allocate(): it hands the block back to the cache.
/// It lives in the storage's shared_ptr control block, which every view of the
/// storage shares (reshape, detach, row views), so it also holds the storage's
/// version counter: the number of in-place writes made to it (Tensor::version()).
/// The control block outlives the values while weak references remain, so a graph
/// node holding a std::weak_ptr to the storage may read the counter at any time.
template <class T>
struct StorageDeleter {
  explicit StorageDeleter(std::size_t block_bytes) noexcept : bytes(block_bytes) {}
  StorageDeleter(const StorageDeleter& other) noexcept
      : bytes(other.bytes), version(other.version.load(std::memory_order_relaxed)) {}
  StorageDeleter& operator=(const StorageDeleter&) = delete;
  ~StorageDeleter() = default;
  void operator()(T* p) const noexcept { release_block(p, bytes); }

  std::size_t bytes;
  mutable std::atomic<std::uint64_t> version{0};
};

/// The version counter of storage made by allocate(), or nullptr for storage from
/// elsewhere (Tensor::from_storage with a pointer of the caller's).
template <class T>
std::atomic<std::uint64_t>* storage_version(const std::shared_ptr<T[]>& storage) noexcept {
  const auto* deleter = std::get_deleter<StorageDeleter<T>>(storage);
  return deleter != nullptr ? &deleter->version : nullptr;
}

/// Storage for n elements; OverflowError when n * sizeof(T) does not fit (see
/// checked_bytes), so a block is never smaller than the tensor it holds.
template <class T>
std::shared_ptr<T[]> allocate(Index n) {
  constexpr std::size_t kAlign = kStorageAlignment;
  const std::size_t count = static_cast<std::size_t>(n > 0 ? n : 1);
  // checked_bytes caps the size far below SIZE_MAX, so rounding up cannot wrap.
  const std::size_t bytes =
      (checked_bytes(static_cast<std::int64_t>(count), sizeof(T), "Tensor: allocation") + kAlign -
       1) /
      kAlign * kAlign;
  return std::shared_ptr<T[]>(static_cast<T*>(acquire_block(bytes)), StorageDeleter<T>(bytes),
                              CacheAllocator<T>{});
}

}  // namespace detail

/// Options for Tensor::backward().
struct BackwardOptions {
  bool retain_graph = false;
  bool create_graph = false;
};

/// An n-dimensional array of float or double.
///
/// A Tensor is a handle: copying it shares the storage. Ops never mutate their
/// inputs. Element writes through data() are allowed only on tensors that no graph
/// needs any more, typically leaves under autograd::NoGradGuard (optimizers).
///
/// Storage has a version: the number of in-place writes made to it. The library's
/// own in-place writes (optimizer steps, Module::load_parameters/load_buffers, the
/// nn::init functions, batch-norm running statistics) count themselves; code that
/// writes through data() calls bump_version(). A recorded op remembers the versions
/// of its inputs and of its saved output, and backward() throws AutogradError when
/// one of them changed since, instead of computing a gradient from the new values.
template <class T>
class METALEARN_API Tensor {
  static_assert(RealScalar<T>, "Tensor<T> supports T = float or double");

 public:
  using value_type = T;
  using Impl = detail::TensorImpl<T>;
  using EigenMatrix = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
  using EigenMap = Eigen::Map<EigenMatrix>;
  using EigenVectorMap = Eigen::Map<Eigen::Array<T, Eigen::Dynamic, 1>>;

  /// An undefined tensor (defined() == false).
  Tensor() = default;

  /// A tensor of the given shape with uninitialised values.
  static Tensor empty(const Shape& shape) {
    auto impl = detail::make_cached<Impl>();
    impl->numel = shape.checked_numel("Tensor::empty");
    impl->data = detail::allocate<T>(impl->numel);
    impl->shape = shape;
    return Tensor(std::move(impl));
  }

  /// A tensor sharing `data` (at least shape.numel() elements).
  static Tensor from_storage(std::shared_ptr<T[]> data, const Shape& shape) {
    auto impl = detail::make_cached<Impl>();
    impl->numel = shape.checked_numel("Tensor::from_storage");
    impl->data = std::move(data);
    impl->shape = shape;
    return Tensor(std::move(impl));
  }

  explicit Tensor(std::shared_ptr<Impl> impl) : impl_(std::move(impl)) {}

  // ---- metadata ------------------------------------------------------------
  [[nodiscard]] bool defined() const { return impl_ != nullptr; }
  [[nodiscard]] const Shape& shape() const { return checked().shape; }
  [[nodiscard]] Index dim() const { return shape().dim(); }
  [[nodiscard]] Index size(Index d) const { return shape()[shape().wrap_dim(d, "Tensor::size")]; }
  [[nodiscard]] Index numel() const { return checked().numel; }

  // ---- data access ---------------------------------------------------------
  [[nodiscard]] T* data() const { return checked().data.get(); }
  [[nodiscard]] const std::shared_ptr<T[]>& storage() const { return checked().data; }
  [[nodiscard]] std::vector<T> to_vector() const {
    return std::vector<T>(data(), data() + numel());
  }

  /// The single value of a one-element tensor.
  [[nodiscard]] T item() const {
    METALEARN_CHECK(numel() == 1, ShapeError, "Tensor::item: expected one element, got shape ",
                    shape());
    return data()[0];
  }

  /// Element at a multi-index, bounds-checked.
  template <class... I>
    requires(std::is_integral_v<I> && ...)
  [[nodiscard]] T& at(I... idx) const {
    const Index ids[] = {static_cast<Index>(idx)...};
    METALEARN_CHECK(static_cast<Index>(sizeof...(I)) == dim(), ShapeError,
                    "Tensor::at: ", sizeof...(I), " indices for a tensor of shape ", shape());
    Index off = 0;
    for (Index d = 0; d < dim(); ++d) {
      const Index i = ids[d];
      METALEARN_CHECK(i >= 0 && i < shape()[d], ShapeError, "Tensor::at: index ", i,
                      " out of range for dimension ", d, " of shape ", shape());
      off = off * shape()[d] + i;
    }
    return data()[off];
  }

  /// Row-major matrix view of a 1-D or 2-D tensor (a 1-D tensor is one row).
  [[nodiscard]] EigenMap matrix() const {
    METALEARN_CHECK(dim() <= 2, ShapeError, "Tensor::matrix: expected at most 2-D, got ", shape());
    const Index rows = dim() == 2 ? shape()[0] : 1;
    const Index cols = dim() == 0 ? 1 : shape()[dim() - 1];
    return EigenMap(data(), rows, cols);
  }
  /// Flat array view of all elements.
  [[nodiscard]] EigenVectorMap array() const { return EigenVectorMap(data(), numel()); }

  // ---- autograd metadata ---------------------------------------------------
  [[nodiscard]] bool requires_grad() const { return checked().requires_grad; }

  /// Marks a leaf as needing gradients; returns *this for chaining. Defined with the
  /// graph nodes in the autograd layer (autograd/node.hpp); the library holds the
  /// float and double instances.
  Tensor& requires_grad(bool value) &;
  Tensor requires_grad(bool value) && { return std::move(set_requires_grad(value)); }
  /// Same as requires_grad(value).
  Tensor& set_requires_grad(bool value);

  /// True for tensors not produced by a recorded op.
  [[nodiscard]] bool is_leaf() const { return checked().is_leaf; }
  /// The node that produced this tensor (null for leaves).
  [[nodiscard]] std::shared_ptr<Node<T>> grad_fn() const {
    return checked().is_leaf ? nullptr : checked().node;
  }
  /// The graph edge to this tensor: its producer, or its accumulator for a leaf
  /// that requires grad; null when no gradient can flow into it.
  [[nodiscard]] const std::shared_ptr<Node<T>>& edge() const { return checked().node; }

  /// Accumulated gradient (undefined until backward() reaches this leaf).
  [[nodiscard]] Tensor grad() const { return checked().grad ? Tensor(checked().grad) : Tensor(); }
  void set_grad(const Tensor& g) const { checked().grad = g.impl_; }
  void zero_grad() const { checked().grad.reset(); }

  /// Backpropagates from this scalar (or with an explicit `grad_output`) into the
  /// .grad() of every leaf that requires grad. Defined in the autograd layer.
  void backward(const Tensor& grad_output = Tensor(), BackwardOptions options = {}) const;

  /// A tensor sharing this one's storage, cut from the graph.
  [[nodiscard]] Tensor detach() const { return from_storage(storage(), shape()); }
  /// A deep copy of the values, cut from the graph.
  [[nodiscard]] Tensor clone() const {
    Tensor out = empty(shape());
    std::copy_n(data(), numel(), out.data());
    return out;
  }

  /// The number of in-place writes made to this tensor's storage (shared by every
  /// view of it); 0 for storage the library did not allocate, which is not tracked.
  [[nodiscard]] std::uint64_t version() const {
    const auto* v = detail::storage_version(storage());
    return v != nullptr ? v->load(std::memory_order_acquire) : 0;
  }
  /// Records an in-place write to this tensor's storage (see version()). Call it
  /// after writing through data() into a tensor that a recorded graph may still read.
  void bump_version() const {
    if (auto* v = detail::storage_version(storage())) v->fetch_add(1, std::memory_order_acq_rel);
  }

  /// Identity of the underlying handle (two tensors alias when equal).
  [[nodiscard]] const Impl* impl() const { return impl_.get(); }
  [[nodiscard]] const std::shared_ptr<Impl>& impl_ptr() const { return impl_; }

 private:
  [[nodiscard]] Impl& checked() const {
    METALEARN_CHECK(impl_ != nullptr, ValueError, "Tensor: operation on an undefined tensor");
    return *impl_;
  }
  std::shared_ptr<Impl> impl_;
};

/// Prints shape and values (at most 64 values per tensor).
template <class T>
std::ostream& operator<<(std::ostream& os, const Tensor<T>& t) {
  if (!t.defined()) return os << "Tensor(undefined)";
  os << "Tensor(shape=" << t.shape() << ", values=[";
  const Index n = std::min<Index>(t.numel(), 64);
  for (Index i = 0; i < n; ++i) os << (i ? ", " : "") << t.data()[i];
  if (t.numel() > n) os << ", ...";
  os << "]";
  if (t.requires_grad()) os << ", requires_grad";
  return os << ")";
}

}  // namespace metalearn
