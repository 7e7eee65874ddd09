#pragma once
/// @file
/// EpisodicSampler<T>: N-way K-shot classification episodes over any ClassDataset.

#include <algorithm>
#include <memory>
#include <numeric>
#include <span>
#include <type_traits>
#include <utility>
#include <vector>

#include "metalearn/core/error.hpp"
#include "metalearn/core/export.hpp"
#include "metalearn/core/random.hpp"
#include "metalearn/data/class_dataset.hpp"
#include "metalearn/data/task.hpp"
#include "metalearn/tensor/tensor.hpp"

namespace metalearn::data {

/// Options of EpisodicSampler (designated-initializer friendly).
struct EpisodicOptions {
  /// Classes per episode (N).
  Index ways = 5;
  /// Support examples per class (K).
  Index shots = 1;
  /// Query examples per class.
  Index queries = 15;
  /// false: support and query are grouped by label (label 0's examples first, then
  /// label 1's, ...). true: each set is randomly permuted (labels permuted with it).
  bool shuffle = false;
};

namespace detail {
/// Draws `k` distinct values of 0..n-1 in random order (partial Fisher-Yates).
inline std::vector<Index> choose_distinct(Index n, Index k, Generator& gen) {
  std::vector<Index> pool(static_cast<std::size_t>(n));
  std::iota(pool.begin(), pool.end(), Index{0});
  for (Index i = 0; i < k; ++i) {
    const Index j = gen.randint(i, n - 1);
    std::swap(pool[static_cast<std::size_t>(i)], pool[static_cast<std::size_t>(j)]);
  }
  pool.resize(static_cast<std::size_t>(k));
  return pool;
}
}  // namespace detail

/// Few-shot classification episodes: N classes drawn without replacement, K support and
/// Q query examples per class drawn without replacement (support and query are disjoint).
///
/// Labels: the drawn classes are in random order and class `classes[l]` gets label l, so
/// labels are 0..N-1 and say nothing about the dataset's class ids. support_x is
/// [N*K, C, H, W], support_labels holds its N*K labels; the query set likewise with Q.
/// Ordering: with `shuffle = false` example s of label l is row l*K + s (grouped by
/// class); with `shuffle = true` the rows of each set are randomly permuted.
///
/// The sampler keeps a pointer to the dataset. Construct it from a shared_ptr to share
/// ownership, or from a reference when the dataset is known to outlive the sampler.
///
/// @code
/// data::ProceduralGlyphs glyphs({.split = data::Split::kTrain});
/// data::EpisodicSampler<float> episodes(glyphs, {.ways = 5, .shots = 1, .queries = 15});
/// @endcode
template <class T>
class METALEARN_API EpisodicSampler {
 public:
  using value_type = T;

  /// Shares ownership of `dataset`. Throws ValueError when the options do not fit it.
  EpisodicSampler(std::shared_ptr<const ClassDataset> dataset, EpisodicOptions options = {})
      : dataset_(std::move(dataset)), options_(options) {
    validate();
  }
  /// Refers to `dataset`, which must outlive the sampler and its copies.
  EpisodicSampler(const ClassDataset& dataset, EpisodicOptions options = {})
      : EpisodicSampler(
            std::shared_ptr<const ClassDataset>(std::shared_ptr<const void>(), &dataset), options) {
  }

  /// Draws one episode from `gen`.
  [[nodiscard]] Task<T> sample(Generator& gen) const {
    const auto& o = options_;
    const ClassDataset& ds = *dataset_;
    const Shape ex = ds.example_shape();
    const Index e = ex.numel();
    std::vector<Index> dims{0};
    dims.insert(dims.end(), ex.begin(), ex.end());

    Task<T> task;
    task.ways = o.ways;
    task.shots = o.shots;
    task.queries = o.queries;
    task.classes = detail::choose_distinct(ds.num_classes(), o.ways, gen);
    dims[0] = o.ways * o.shots;
    task.support_x = Tensor<T>::empty(Shape(dims));
    task.support_labels.resize(static_cast<std::size_t>(o.ways * o.shots));
    dims[0] = o.ways * o.queries;
    task.query_x = Tensor<T>::empty(Shape(dims));
    task.query_labels.resize(static_cast<std::size_t>(o.ways * o.queries));

    std::vector<float> buffer(static_cast<std::size_t>(e));
    auto put = [&](Index c, Index i, const Tensor<T>& x, Index row) {
      if constexpr (std::is_same_v<T, float>) {
        ds.load(c, i, std::span<float>(x.data() + row * e, static_cast<std::size_t>(e)));
      } else {
        ds.load(c, i, std::span<float>(buffer));
        for (Index k = 0; k < e; ++k)
          x.data()[row * e + k] = static_cast<T>(buffer[static_cast<std::size_t>(k)]);
      }
    };
    for (Index l = 0; l < o.ways; ++l) {
      const Index c = task.classes[static_cast<std::size_t>(l)];
      const auto picks =
          detail::choose_distinct(ds.examples_per_class(c), o.shots + o.queries, gen);
      for (Index s = 0; s < o.shots; ++s) {
        put(c, picks[static_cast<std::size_t>(s)], task.support_x, l * o.shots + s);
        task.support_labels[static_cast<std::size_t>(l * o.shots + s)] = l;
      }
      for (Index q = 0; q < o.queries; ++q) {
        put(c, picks[static_cast<std::size_t>(o.shots + q)], task.query_x, l * o.queries + q);
        task.query_labels[static_cast<std::size_t>(l * o.queries + q)] = l;
      }
    }
    if (o.shuffle) {
      shuffle_rows(task.support_x, task.support_labels, e, gen);
      shuffle_rows(task.query_x, task.query_labels, e, gen);
    }
    return task;
  }

  [[nodiscard]] const EpisodicOptions& options() const { return options_; }
  [[nodiscard]] const ClassDataset& dataset() const { return *dataset_; }

 private:
  void validate() const {
    METALEARN_CHECK(dataset_ != nullptr, ValueError, "EpisodicSampler: null dataset");
    const auto& o = options_;
    const ClassDataset& ds = *dataset_;
    METALEARN_CHECK(o.ways >= 1 && o.shots >= 0 && o.queries >= 0 && o.shots + o.queries >= 1,
                    ValueError,
                    "EpisodicSampler: need ways >= 1, shots >= 0, queries >= 0 and "
                    "shots + queries >= 1, got ways=",
                    o.ways, " shots=", o.shots, " queries=", o.queries);
    METALEARN_CHECK(o.ways <= ds.num_classes(), ValueError, "EpisodicSampler: ", o.ways,
                    " ways requested but ", ds.name(), " has only ", ds.num_classes(), " classes");
    for (Index c = 0; c < ds.num_classes(); ++c) {
      const Index n = ds.examples_per_class(c);
      METALEARN_CHECK(o.shots + o.queries <= n, ValueError, "EpisodicSampler: ", o.shots,
                      " shots + ", o.queries, " queries per class requested but class ", c, " of ",
                      ds.name(), " has only ", n, " examples");
    }
  }

  static void shuffle_rows(const Tensor<T>& x, Labels& y, Index e, Generator& gen) {
    const auto n = static_cast<Index>(y.size());
    for (Index i = n - 1; i > 0; --i) {
      const Index j = gen.randint(0, i);
      if (j == i) continue;
      std::swap(y[static_cast<std::size_t>(i)], y[static_cast<std::size_t>(j)]);
      T* a = x.data() + i * e;
      T* b = x.data() + j * e;
      std::swap_ranges(a, a + e, b);
    }
  }

  std::shared_ptr<const ClassDataset> dataset_;
  EpisodicOptions options_;
};

}  // namespace metalearn::data
