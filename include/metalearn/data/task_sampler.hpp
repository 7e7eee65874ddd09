#pragma once
/// @file
/// The TaskSampler concept and AnyTaskSampler<T>, its type-erased form.

#include <concepts>
#include <cstdint>
#include <memory>
#include <type_traits>
#include <utility>

#include "metalearn/core/error.hpp"
#include "metalearn/core/export.hpp"
#include "metalearn/core/random.hpp"
#include "metalearn/data/task.hpp"

namespace metalearn::data {

namespace detail {
template <class X>
struct IsTask : std::false_type {};
template <class T>
struct IsTask<Task<T>> : std::true_type {};
}  // namespace detail

/// A source of tasks: `s.sample(gen)` returns a `Task<T>` drawn with `gen` only.
///
/// `sample` is called on a const sampler and must depend on nothing but the generator
/// (no hidden state), so that concurrent calls with distinct generators are safe and a
/// task is a pure function of its generator's seed. Every family of this layer satisfies it.
template <class S>
concept TaskSampler = requires(const S& s, Generator& gen) {
  { s.sample(gen) };
  requires detail::IsTask<std::remove_cvref_t<decltype(s.sample(gen))>>::value;
};

/// The scalar type of the tasks a sampler produces.
template <TaskSampler S>
using sampler_value_t = typename std::remove_cvref_t<decltype(std::declval<const S&>().sample(
    std::declval<Generator&>()))>::value_type;

/// A type-erased TaskSampler producing `Task<T>`. Copies share the wrapped sampler
/// (which is immutable), so copying is cheap.
///
/// @code
/// data::AnyTaskSampler<float> s = data::SinusoidTasks<float>({.shots = 5});
/// Generator gen(0);
/// data::Task<float> t = s.sample(gen);
/// @endcode
template <class T>
class METALEARN_API AnyTaskSampler {
 public:
  using value_type = T;

  AnyTaskSampler() = default;

  /// Wraps a copy of `sampler`.
  template <TaskSampler S>
    requires(!std::same_as<std::remove_cvref_t<S>, AnyTaskSampler> &&
             std::same_as<sampler_value_t<S>, T>)
  AnyTaskSampler(S sampler)  // NOLINT(google-explicit-constructor): implicit by design
      : impl_(std::make_shared<Model<S>>(std::move(sampler))) {}

  /// Draws one task using `gen`. Throws ValueError on an empty AnyTaskSampler.
  [[nodiscard]] Task<T> sample(Generator& gen) const {
    METALEARN_CHECK(impl_ != nullptr, ValueError,
                    "AnyTaskSampler::sample: the sampler is empty (default-constructed)");
    return impl_->sample(gen);
  }

  [[nodiscard]] bool empty() const { return impl_ == nullptr; }

 private:
  struct Concept {
    virtual ~Concept() = default;
    [[nodiscard]] virtual Task<T> sample(Generator& gen) const = 0;
  };
  template <class S>
  struct Model final : Concept {
    explicit Model(S s) : sampler(std::move(s)) {}
    [[nodiscard]] Task<T> sample(Generator& gen) const override { return sampler.sample(gen); }
    S sampler;
  };
  std::shared_ptr<const Concept> impl_;
};

/// The tasks of another sampler with only part of each query set (query_part()): a
/// model evaluated on `QueryPartTasks(family, QueryPart::kContext)` and on
/// `QueryPartTasks(family, QueryPart::kNewTargets)` sees the same tasks as on `family`
/// (the same generators), scored on the context points or on the further targets only.
template <class T>
class QueryPartTasks {
 public:
  using value_type = T;

  QueryPartTasks(AnyTaskSampler<T> sampler, QueryPart part)
      : sampler_(std::move(sampler)), part_(part) {}

  /// The wrapped sampler's task with the chosen part of its query set.
  /// @throws ShapeError as query_part() does.
  [[nodiscard]] Task<T> sample(Generator& gen) const {
    return query_part(sampler_.sample(gen), part_);
  }

 private:
  AnyTaskSampler<T> sampler_;
  QueryPart part_;
};

/// The generator of task `index` of the stream (seed, split). Every task the library
/// draws comes from one: task j of meta-batch `position` is task position * batch + j
/// of its MetaBatchSampler's stream, and evaluation episode i (Maml::evaluate and
/// the other learners') is task i of the test stream of the learner's seed.
[[nodiscard]] inline Generator task_generator(std::uint64_t seed, Split split,
                                              std::uint64_t index) {
  return Generator(derive_seed({seed, static_cast<std::uint64_t>(split), index}));
}

}  // namespace metalearn::data
