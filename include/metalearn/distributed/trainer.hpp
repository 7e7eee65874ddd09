#pragma once
/// @file
/// DistributedTrainer: data-parallel meta-training of any algorithms::MetaLearner over
/// MPI. Each rank computes the meta-gradient of its share of every meta-batch
/// (ShardedBatches: tasks rank, rank + R, ...); one collective per step sums the
/// shares and the step's statistics; every rank then applies the same update, so the
/// learners stay equal without sending parameters.
///
/// @code
/// distributed::Environment mpi(argc, argv);
/// distributed::Communicator world;
/// nn::MLP<float> model({1, 40, 40, 1}, gen);               // same seed on every rank
/// algorithms::Maml<float> maml(model, algorithms::MamlOptions<float>{});
/// distributed::ShardedBatches<float> batches(family, {.batch = 25, .seed = 1},
///                                            world.rank(), world.size());
/// distributed::DistributedTrainer trainer(maml, world, {.deterministic = true});
/// trainer.fit(batches, {.steps = 70'000, .checkpoint_every = 500, .run_dir = "runs/maml"});
/// @endcode
///
/// Equal to the single-process run: with `deterministic`, every task's gradient is
/// all-gathered and the sums are formed in global task order, exactly as
/// meta_gradient() folds them in one process, so the parameters are bitwise those of
/// train::fit on a data::MetaBatchSampler with the same options, for any number of
/// ranks. Without it, one MPI_Allreduce sums the ranks' partial sums in MPI's order,
/// equal to the single-process run only to rounding.
///
/// What is not reduced: buffers that forward passes move (batch-norm running
/// statistics in BatchNormMode::kRunning) are each rank's own, moved by its shard's
/// tasks; rank 0's are the ones checkpoints save. They do not enter the training
/// loss (training normalises with batch statistics), so parameters are unaffected.
// SPDX-License-Identifier: MIT

#include <chrono>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <optional>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "metalearn/algorithms.hpp"
#include "metalearn/core/error.hpp"
#include "metalearn/data/task.hpp"
#include "metalearn/data/task_sampler.hpp"
#include "metalearn/distributed/communicator.hpp"
#include "metalearn/distributed/sharded_batches.hpp"
#include "metalearn/train.hpp"

namespace metalearn::distributed {

/// Options of DistributedTrainer.
struct DistributedOptions {
  /// Sum the tasks' gradients in global task order after an all-gather of every
  /// task's gradient, so that the parameters are bitwise those of the single-process
  /// run for any number of ranks. Costs an all-gather of tasks x parameters values
  /// per step (instead of an all-reduce of one set) and runs a rank's tasks one at a
  /// time (each task's operations still use the learner's threads).
  bool deterministic = false;
  /// Give every rank rank 0's whole state (parameters, buffers, optimizer state, step
  /// count) when the trainer is built, so that ranks whose models were initialised
  /// differently start equal.
  bool broadcast_initial_state = true;
  /// A rank whose step throws prints the message and ends the job with MPI_Abort
  /// instead of throwing (the other ranks would otherwise wait in the step's
  /// collective forever). Turn off only when every rank is known to throw alike.
  bool abort_on_error = true;
};

namespace detail {

inline void append_bytes(std::vector<std::byte>& out, const void* data, std::size_t n) {
  const auto* p = static_cast<const std::byte*>(data);
  out.insert(out.end(), p, p + n);
}

template <class V>
void append_value(std::vector<std::byte>& out, V v) {
  append_bytes(out, &v, sizeof v);
}

/// Reads values back in the order append_* wrote them; ValueError naming `function`
/// when the bytes run out.
class ByteReader {
 public:
  ByteReader(std::span<const std::byte> bytes, const char* function)
      : bytes_(bytes), function_(function) {}
  void read(void* data, std::size_t n) {
    METALEARN_CHECK(at_ + n <= bytes_.size(), ValueError, function_,
                    ": the state's bytes end before the state does");
    std::memcpy(data, bytes_.data() + at_, n);
    at_ += n;
  }
  template <class V>
  V value() {
    V v{};
    read(&v, sizeof v);
    return v;
  }
  [[nodiscard]] bool done() const { return at_ == bytes_.size(); }

 private:
  std::span<const std::byte> bytes_;
  const char* function_;
  std::size_t at_ = 0;
};

template <class T>
void append_dict(std::vector<std::byte>& out, const nn::ParamDict<T>& dict) {
  append_value<std::uint64_t>(out, dict.size());
  for (const auto& [name, t] : dict) {
    append_value<std::uint64_t>(out, name.size());
    append_bytes(out, name.data(), name.size());
    const auto dims = t.shape().dims();
    append_value<std::uint64_t>(out, dims.size());
    for (const Index d : dims) append_value<std::int64_t>(out, d);
    append_bytes(out, t.data(), static_cast<std::size_t>(t.numel()) * sizeof(T));
  }
}

template <class T>
nn::ParamDict<T> read_dict(ByteReader& in) {
  nn::ParamDict<T> out;
  const auto n = in.value<std::uint64_t>();
  for (std::uint64_t i = 0; i < n; ++i) {
    std::string name(in.value<std::uint64_t>(), '\0');
    in.read(name.data(), name.size());
    std::vector<Index> dims(in.value<std::uint64_t>());
    for (Index& d : dims) d = static_cast<Index>(in.value<std::int64_t>());
    Tensor<T> t = zeros<T>(Shape(dims));
    in.read(t.data(), static_cast<std::size_t>(t.numel()) * sizeof(T));
    out.insert(name, std::move(t));
  }
  return out;
}

/// `state` as bytes: every name, shape and value, the step counts and learning rates.
template <class T>
std::vector<std::byte> pack_state(const algorithms::LearnerState<T>& state) {
  std::vector<std::byte> out;
  append_value<std::int64_t>(out, state.steps);
  append_dict(out, state.parameters);
  append_dict(out, state.buffers);
  for (const auto* o : {&state.optimizer, &state.inner_optimizer}) {
    append_value<std::uint8_t>(out, o->has_value() ? 1 : 0);
    if (!o->has_value()) continue;
    append_value<std::int64_t>(out, (*o)->step);
    append_value<double>(out, (*o)->lr);
    append_dict(out, (*o)->buffers);
  }
  return out;
}

/// The state pack_state() wrote into `bytes`.
template <class T>
algorithms::LearnerState<T> unpack_state(std::span<const std::byte> bytes) {
  ByteReader in(bytes, "distributed::broadcast_state");
  algorithms::LearnerState<T> state;
  state.steps = in.value<std::int64_t>();
  state.parameters = read_dict<T>(in);
  state.buffers = read_dict<T>(in);
  for (auto* o : {&state.optimizer, &state.inner_optimizer}) {
    if (in.value<std::uint8_t>() == 0) continue;
    optim::OptimizerState<T> opt;
    opt.step = in.value<std::int64_t>();
    opt.lr = in.value<double>();
    opt.buffers = read_dict<T>(in);
    *o = std::move(opt);
  }
  METALEARN_CHECK(in.done(), ValueError, "distributed::broadcast_state: ", bytes.size(),
                  " bytes hold more than one learner state");
  return state;
}

/// Checks that an algorithm's meta_gradient() of a shard is its part of the
/// meta-batch's: nothing to check in general.
template <class L>
void check_shardable(const L& /*learner*/) {}

/// Reptile with carry_inner_state passes the inner optimizer's state from task to
/// task, in order.
template <class T>
void check_shardable(const algorithms::Reptile<T>& learner) {
  METALEARN_CHECK(!learner.options().carry_inner_state, ValueError,
                  "distributed::DistributedTrainer: Reptile with carry_inner_state passes the "
                  "inner optimizer's state from task to task, in order, which ranks working side "
                  "by side cannot; turn it off for data-parallel training");
}

/// Checks that the tasks of `shard` give the gradients they give in the whole
/// meta-batch: nothing to check in general.
template <class L, class T>
void check_shard(const L& /*learner*/, const data::TaskBatch<T>& /*shard*/) {}

/// Reptile draws inner mini-batches (a support set larger than inner_batch) by the
/// task's position in the batch meta_gradient() sees, which sharding changes.
template <class T>
void check_shard(const algorithms::Reptile<T>& learner, const data::TaskBatch<T>& shard) {
  const Index size = learner.options().inner_batch;
  if (size <= 0) return;
  for (const auto& task : shard) {
    const Index n =
        task.support_x.defined() && task.support_x.dim() > 0 ? task.support_x.shape()[0] : 0;
    METALEARN_CHECK(n <= size, ValueError,
                    "distributed::DistributedTrainer: Reptile draws inner mini-batches of ", size,
                    " from a support set of ", n,
                    " by each task's position in the meta-batch one process computes, which "
                    "sharding changes; use inner_batch(0) (the whole support set each step) or "
                    "an inner_batch of at least the support set's size");
  }
}

/// Statistics of one task as the deterministic reduction sends them: a statistic
/// not measured is sent as NaN.
struct TaskStats {
  double meta_loss, pre_loss, post_loss, pre_accuracy, post_accuracy;
};

/// A statistic on the wire: NaN when not measured.
inline double wire(const std::optional<double>& v) {
  return v.value_or(std::numeric_limits<double>::quiet_NaN());
}
/// A statistic off the wire: empty when NaN.
inline std::optional<double> unwire(double v) {
  return std::isnan(v) ? std::nullopt : std::optional<double>(v);
}

}  // namespace detail

/// Gives every rank of `comm` rank `root`'s whole state of `learner` (its
/// meta-parameters, buffers, optimizer states and step count, as learner.state()
/// holds them): two broadcasts, then load_state() on the other ranks.
/// @throws ValueError or ShapeError (from load_state) on a rank whose learner does
/// not fit rank root's state (learners built differently); call it under or_abort,
/// as DistributedTrainer does, since the ranks that do not throw go on.
template <class L>
void broadcast_state(L& learner, const Communicator& comm, int root = 0) {
  static_assert(algorithms::MetaLearner<L>, "distributed::broadcast_state: not a MetaLearner");
  using T = typename L::value_type;
  std::vector<std::byte> bytes;
  if (comm.rank() == root) bytes = detail::pack_state(learner.state());
  comm.broadcast(bytes, root);
  if (comm.rank() == root) return;
  learner.load_state(detail::unpack_state<T>(bytes));
}

/// What the last step's collective moved and how long this rank spent in it (the
/// wait for the slowest rank included).
struct CollectiveStats {
  /// Bytes this rank contributed: the all-reduce buffer, or its share of the
  /// all-gather (deterministic).
  std::size_t bytes = 0;
  /// Bytes this rank received: the buffer again, or the whole all-gather.
  std::size_t received = 0;
  /// Seconds in the MPI call.
  double seconds = 0.0;
};

/// Data-parallel meta-training of `L` (any algorithms::MetaLearner) over the ranks of
/// a communicator. Every rank builds the same learner (same model, options and seed),
/// wraps it in a trainer and calls the same methods in the same order.
///
/// Algorithms whose meta_gradient() is not the sum of its shards' are refused with
/// ValueError: Reptile with carry_inner_state, or drawing inner mini-batches (a
/// support set larger than inner_batch).
template <class L>
class DistributedTrainer {
  static_assert(algorithms::MetaLearner<L>,
                "distributed::DistributedTrainer: the learner must satisfy "
                "algorithms::MetaLearner (see algorithms/meta_learner.hpp)");

 public:
  /// The learner's scalar type.
  using T = typename L::value_type;

  /// Trains `learner` over `comm`; with options.broadcast_initial_state every rank
  /// continues from rank 0's state.
  explicit DistributedTrainer(L& learner, Communicator comm = Communicator(),
                              DistributedOptions options = {})
      : learner_(learner), comm_(comm), options_(options) {
    guarded([&] {
      detail::check_shardable(learner_);
      if (options_.broadcast_initial_state) broadcast_state(learner_, comm_);
    });
  }

  /// The meta-gradient of a whole meta-batch of `batch` tasks from this rank's
  /// `shard` of it (its tasks rank, rank + R, ..., as ShardedBatches draws them; may
  /// be empty): the same on every rank. One collective.
  [[nodiscard]] algorithms::MetaGradient<T> meta_gradient(const data::TaskBatch<T>& shard,
                                                          std::size_t batch) const {
    return guarded([&] { return reduce(shard, batch, false).gradient; });
  }

  /// One meta-step on the meta-batch whose share `shard` is: meta_gradient(), then
  /// the learner's apply() on every rank. Returns the statistics of the whole batch.
  algorithms::StepStats step(const data::TaskBatch<T>& shard, std::size_t batch) {
    return guarded([&] {
      const Reduced r = reduce(shard, batch, false);
      learner_.apply(r.gradient);
      return r.gradient.stats;
    });
  }

  /// step() on the next share of `batches`.
  algorithms::StepStats step(ShardedBatches<T>& batches) {
    return guarded([&] { return step(batches.next(), batches.batch_size()); });
  }

  /// train::fit() over the ranks: meta-steps on the shares of `batches` (a fresh
  /// stream, positioned at the learner's step) until options.steps, with the same
  /// meaning of every option. Rank 0 alone reads a checkpoint to resume (then gives
  /// its state to every rank, so a run may continue on another number of ranks),
  /// writes checkpoints and metrics, evaluates on `eval` (which other ranks may pass
  /// as null) and prints progress; on_step is called on every rank, on_eval on rank
  /// 0. A time limit stops every rank after the same step (the first step after which
  /// some rank is past it). The returned FitResult's evaluation is rank 0's.
  train::FitResult fit(ShardedBatches<T>& batches, const train::FitOptions& options,
                       const data::AnyTaskSampler<T>* eval = nullptr) {
    return guarded([&] { return fit_impl(batches, options, eval); });
  }

  /// What the last step's collective moved and how long it took on this rank.
  [[nodiscard]] const CollectiveStats& last_collective() const { return last_; }
  /// The communicator.
  [[nodiscard]] const Communicator& communicator() const { return comm_; }
  /// The options.
  [[nodiscard]] const DistributedOptions& options() const { return options_; }
  /// The learner.
  [[nodiscard]] L& learner() const { return learner_; }

 private:
  struct Reduced {
    algorithms::MetaGradient<T> gradient;
    bool stop = false;  // some rank asked to stop after this step
  };

  // The statistics slots after the gradient in the all-reduce buffer.
  enum Slot : std::size_t {
    kTasks,
    kMetaLoss,
    kPreLoss,
    kPostLoss,
    kPreAccuracy,
    kPostAccuracy,
    kPreMeasured,
    kPostMeasured,
    kStop,
    kSlots
  };

  template <class F>
  decltype(auto) guarded(F&& fn) const {
    if (options_.abort_on_error) return or_abort(comm_, std::forward<F>(fn));
    return std::forward<F>(fn)();
  }

  [[nodiscard]] algorithms::MetaGradient<T> local_gradient(const data::TaskBatch<T>& tasks) const {
    algorithms::MetaGradient<T> g = learner_.meta_gradient(tasks);
    METALEARN_CHECK(!g.carried.has_value(), ValueError,
                    "distributed::DistributedTrainer: the learner carries state from task to "
                    "task through the meta-batch (MetaGradient::carried), which ranks working "
                    "side by side cannot");
    return g;
  }

  // The learner's meta-parameters as a MetaGradient sum filled from `values`.
  [[nodiscard]] nn::ParamDict<T> gradient_dict(const nn::ParamDict<T>& meta,
                                               const T* values) const {
    nn::ParamDict<T> out;
    for (const auto& [name, p] : meta) {
      Tensor<T> g = zeros<T>(p.shape());
      const auto n = static_cast<std::size_t>(p.numel());
      std::copy_n(values, n, g.data());
      values += n;
      out.insert(name, std::move(g));
    }
    return out;
  }

  [[nodiscard]] Reduced reduce(const data::TaskBatch<T>& shard, std::size_t batch,
                               bool stop) const {
    const char* function = "distributed::DistributedTrainer::meta_gradient";
    const auto ranks = static_cast<std::size_t>(comm_.size());
    const auto rank = static_cast<std::size_t>(comm_.rank());
    METALEARN_CHECK(batch >= 1, ValueError, function, ": the meta-batch has no tasks");
    const std::size_t mine = rank < batch ? (batch - rank + ranks - 1) / ranks : 0;
    METALEARN_CHECK(shard.size() == mine, ValueError, function, ": rank ", rank, " of ", ranks,
                    " holds ", shard.size(), " tasks of a meta-batch of ", batch,
                    " but its share is ", mine, " (tasks rank, rank + ranks, ...)");
    detail::check_shard(learner_, shard);
    return options_.deterministic ? reduce_ordered(shard, batch, stop)
                                  : reduce_summed(shard, batch, stop);
  }

  // One MPI_Allreduce of [gradient sums..., statistics...].
  [[nodiscard]] Reduced reduce_summed(const data::TaskBatch<T>& shard, std::size_t batch,
                                      bool stop) const {
    const nn::ParamDict<T> meta = learner_.meta_parameters();
    std::size_t params = 0;
    for (const auto& [name, p] : meta) params += static_cast<std::size_t>(p.numel());
    std::vector<T> buffer(params + kSlots, T(0));
    if (!shard.empty()) {
      const algorithms::MetaGradient<T> g = local_gradient(shard);
      T* at = buffer.data();
      for (const auto& [name, t] : g.sum) {
        at = std::copy_n(t.data(), static_cast<std::size_t>(t.numel()), at);
      }
      const auto n = static_cast<double>(g.tasks);
      T* s = buffer.data() + params;
      s[kTasks] = static_cast<T>(g.tasks);
      s[kMetaLoss] = static_cast<T>(g.stats.meta_loss * n);
      s[kPreLoss] = static_cast<T>(detail::wire(g.stats.pre_loss) * n);
      s[kPostLoss] = static_cast<T>(g.stats.post_loss * n);
      if (g.stats.pre_accuracy) {
        s[kPreAccuracy] = static_cast<T>(*g.stats.pre_accuracy * n);
        s[kPreMeasured] = static_cast<T>(g.tasks);
      }
      if (g.stats.post_accuracy) {
        s[kPostAccuracy] = static_cast<T>(*g.stats.post_accuracy * n);
        s[kPostMeasured] = static_cast<T>(g.tasks);
      }
    }
    buffer[params + kStop] = stop ? T(1) : T(0);
    const auto t0 = std::chrono::steady_clock::now();
    comm_.allreduce_sum(std::span<T>(buffer));
    last_.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    last_.bytes = last_.received = buffer.size() * sizeof(T);
    const T* s = buffer.data() + params;
    METALEARN_CHECK(static_cast<std::size_t>(s[kTasks]) == batch, ValueError,
                    "distributed::DistributedTrainer::meta_gradient: the ranks summed ",
                    static_cast<double>(s[kTasks]), " tasks for a meta-batch of ", batch);
    Reduced out;
    out.stop = s[kStop] > T(0);
    algorithms::MetaGradient<T>& g = out.gradient;
    g.tasks = batch;
    g.sum = gradient_dict(meta, buffer.data());
    const auto n = static_cast<double>(batch);
    algorithms::StepStats& st = g.stats;
    st.tasks = batch;
    st.meta_loss = static_cast<double>(s[kMetaLoss]) / n;
    st.pre_loss = detail::unwire(static_cast<double>(s[kPreLoss]) / n);
    st.post_loss = static_cast<double>(s[kPostLoss]) / n;
    if (s[kPreMeasured] > T(0)) {
      st.pre_accuracy = static_cast<double>(s[kPreAccuracy]) / static_cast<double>(s[kPreMeasured]);
    }
    if (s[kPostMeasured] > T(0)) {
      st.post_accuracy =
          static_cast<double>(s[kPostAccuracy]) / static_cast<double>(s[kPostMeasured]);
    }
    return out;
  }

  // One MPI_Allgatherv of every task's gradient and statistics, folded in global task
  // order as meta_gradient() folds them in one process (the first task's gradient,
  // then each next one added to the sums): the single-process bits.
  [[nodiscard]] Reduced reduce_ordered(const data::TaskBatch<T>& shard, std::size_t batch,
                                       bool stop) const {
    const nn::ParamDict<T> meta = learner_.meta_parameters();
    std::size_t params = 0;
    for (const auto& [name, p] : meta) params += static_cast<std::size_t>(p.numel());
    const std::size_t record = params * sizeof(T) + sizeof(detail::TaskStats);
    const std::size_t head = sizeof(std::uint64_t);  // the stop flag
    const auto ranks = static_cast<std::size_t>(comm_.size());
    std::vector<std::size_t> counts(ranks);
    std::vector<std::size_t> offsets(ranks);
    std::size_t total = 0;
    for (std::size_t r = 0; r < ranks; ++r) {
      const std::size_t tasks = r < batch ? (batch - r + ranks - 1) / ranks : 0;
      counts[r] = head + tasks * record;
      offsets[r] = total;
      total += counts[r];
    }
    std::vector<std::byte> local;
    local.reserve(counts[static_cast<std::size_t>(comm_.rank())]);
    detail::append_value<std::uint64_t>(local, stop ? 1 : 0);
    for (const auto& task : shard) {
      const algorithms::MetaGradient<T> g = local_gradient(data::TaskBatch<T>{task});
      for (const auto& [name, t] : g.sum) {
        detail::append_bytes(local, t.data(), static_cast<std::size_t>(t.numel()) * sizeof(T));
      }
      const detail::TaskStats s{g.stats.meta_loss, detail::wire(g.stats.pre_loss),
                                g.stats.post_loss, detail::wire(g.stats.pre_accuracy),
                                detail::wire(g.stats.post_accuracy)};
      detail::append_value(local, s);
    }
    std::vector<std::byte> all(total);
    const auto t0 = std::chrono::steady_clock::now();
    comm_.allgather(local, all, counts);
    last_.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    last_.bytes = local.size();
    last_.received = total;

    Reduced out;
    std::vector<T> sums(params);
    std::vector<T> g(params);
    detail::TaskStats sum{0.0, 0.0, 0.0, 0.0, 0.0};
    bool pre_measured = true;
    bool post_measured = true;
    for (std::size_t r = 0; r < ranks; ++r) {
      std::uint64_t flag = 0;
      std::memcpy(&flag, all.data() + offsets[r], sizeof flag);
      out.stop = out.stop || flag != 0;
    }
    for (std::size_t j = 0; j < batch; ++j) {
      const std::byte* at = all.data() + offsets[j % ranks] + head + (j / ranks) * record;
      std::memcpy(g.data(), at, params * sizeof(T));
      detail::TaskStats s{};
      std::memcpy(&s, at + params * sizeof(T), sizeof s);
      if (j == 0) {
        sums = g;
      } else {
        for (std::size_t k = 0; k < params; ++k) sums[k] += g[k];
      }
      sum.meta_loss += s.meta_loss;
      sum.pre_loss += s.pre_loss;
      sum.post_loss += s.post_loss;
      sum.pre_accuracy += s.pre_accuracy;
      sum.post_accuracy += s.post_accuracy;
      pre_measured = pre_measured && !std::isnan(s.pre_accuracy);
      post_measured = post_measured && !std::isnan(s.post_accuracy);
    }
    algorithms::MetaGradient<T>& gradient = out.gradient;
    gradient.tasks = batch;
    gradient.sum = gradient_dict(meta, sums.data());
    const auto n = static_cast<double>(batch);
    algorithms::StepStats& st = gradient.stats;
    st.tasks = batch;
    st.meta_loss = sum.meta_loss / n;
    st.pre_loss = detail::unwire(sum.pre_loss / n);
    st.post_loss = sum.post_loss / n;
    if (pre_measured) st.pre_accuracy = sum.pre_accuracy / n;
    if (post_measured) st.post_accuracy = sum.post_accuracy / n;
    return out;
  }

  train::FitResult fit_impl(ShardedBatches<T>& batches, const train::FitOptions& options,
                            const data::AnyTaskSampler<T>* eval) {
    const char* function = "distributed::DistributedTrainer::fit";
    METALEARN_CHECK(batches.ranks() == comm_.size() && batches.rank() == comm_.rank(), ValueError,
                    function, ": the batches are rank ", batches.rank(), " of ", batches.ranks(),
                    "'s share but this is rank ", comm_.rank(), " of ", comm_.size());
    METALEARN_CHECK(
        options.steps >= 0 && options.eval_every >= 0 && options.checkpoint_every >= 0 &&
            options.log_every >= 0 && options.time_limit >= 0.0,
        ValueError, function, ": steps (", options.steps, "), eval_every (", options.eval_every,
        "), checkpoint_every (", options.checkpoint_every, "), log_every (", options.log_every,
        ") and time_limit (", options.time_limit, ") must be non-negative");
    const bool root = comm_.rank() == 0;
    METALEARN_CHECK(!root || options.eval_episodes == 0 || eval != nullptr, ValueError, function,
                    ": eval_episodes is ", options.eval_episodes,
                    " but rank 0 has no evaluation sampler");
    train::detail::RunDirectory<L> run(learner_, options,
                                       train::detail::evaluate_on(learner_, eval), function, root);
    // Every rank continues from rank 0's state (a resumed one, or its own).
    broadcast_state(learner_, comm_);
    const std::int64_t start_step = learner_.steps_taken();
    batches.set_position(static_cast<std::uint64_t>(start_step));
    run.start(start_step);

    std::int64_t step = start_step;
    while (step < options.steps) {
      const data::TaskBatch<T> shard = batches.next();
      // Any rank's time limit or stop request ends the run on every rank (reduced).
      const bool late = (options.time_limit > 0.0 && run.elapsed() > options.time_limit) ||
                        (options.stop && options.stop());
      const Reduced reduced = reduce(shard, batches.batch_size(), late);
      learner_.apply(reduced.gradient);
      step = learner_.steps_taken();
      if (run.after_step(step, reduced.gradient.stats, run.elapsed(), reduced.stop)) break;
    }
    return run.finish(step);
  }

  L& learner_;
  Communicator comm_;
  DistributedOptions options_;
  mutable CollectiveStats last_;  // of the last reduce(); a trainer is used by one thread
};

}  // namespace metalearn::distributed
