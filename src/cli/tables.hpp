#pragma once
// The field tables of the options structs the `metalearn` command sets: every field
// of MamlOptions, ReptileOptions, ProtoNetOptions, MatchingNetOptions, CnpOptions,
// NpOptions and Rl2Options, of the task families' options, and of the command's own
// task and run settings. tests/cli/cli_test.cpp checks that each table
// covers every field of its struct, so a field added to an options struct and not
// here fails the build's tests.

#include <cstdint>
#include <metalearn/algorithms.hpp>
#include <metalearn/data.hpp>
#include <metalearn/env.hpp>
#include <optional>
#include <string>
#include <vector>

#include "src/cli/fields.hpp"

namespace metalearn::cli {

namespace alg = metalearn::algorithms;

/// What the command trains on, beside the algorithm's own options.
struct TaskSettings {
  /// Classes per task (classification).
  Index ways = 5;
  /// Support examples per class (classification) or support points (regression).
  Index shots = 1;
  /// Query examples per class (points) in training; unset: as many as shots.
  std::optional<Index> queries{};
  /// Classes per evaluation episode; unset: ways.
  std::optional<Index> eval_ways{};
  /// Support examples per class (points) of the evaluation episodes; unset: shots.
  std::optional<Index> eval_shots{};
  /// Query examples per class (points) of the evaluation episodes.
  Index eval_queries = 15;
  /// Tasks per meta-step.
  Index meta_batch = 32;
  /// Omniglot folder (images_background/, images_evaluation/) for --tasks omniglot.
  std::string data{};
  /// Seed of the model's initialisation and of the task stream.
  std::uint64_t seed = 1;
};

/// How long a run trains and what it writes (train::FitOptions' settings).
struct RunSettings {
  /// Meta-steps of the whole run.
  std::int64_t steps = 1000;
  /// Evaluate (and checkpoint) every this many meta-steps.
  std::int64_t eval_every = 500;
  /// Episodes of each evaluation during training.
  std::int64_t eval_episodes = 100;
  /// Episodes of the evaluation at the end of the run.
  std::int64_t final_eval_episodes = 600;
  /// Stop after this many seconds (0: no limit); `metalearn resume` continues.
  double time_limit = 0.0;
  /// Log the training statistics every this many meta-steps.
  std::int64_t log_every = 10;
  /// Meta-steps whose checkpoints are also kept as checkpoint_step<N>.safetensors.
  std::vector<std::int64_t> keep{};
};

inline const EnumNames<alg::LossKind>& loss_names() {
  static const EnumNames<alg::LossKind> names{{"mse", alg::LossKind::kMse},
                                              {"cross-entropy", alg::LossKind::kCrossEntropy}};
  return names;
}

inline const EnumNames<Distance>& distance_names() {
  static const EnumNames<Distance> names{{"squared-euclidean", Distance::kSquaredEuclidean},
                                         {"cosine", Distance::kCosine}};
  return names;
}

inline const FieldTable<TaskSettings>& task_table() {
  static const FieldTable<TaskSettings> table = [] {
    FieldTable<TaskSettings> t("task");
    t.add("ways", &TaskSettings::ways, "classes per task (classification)")
        .add("shots", &TaskSettings::shots, "support examples per class, or support points")
        .add("queries", &TaskSettings::queries,
             "query examples per class (or points) in training (none: as many as shots)")
        .add("eval_ways", &TaskSettings::eval_ways, "classes per evaluation episode (none: ways)")
        .add("eval_shots", &TaskSettings::eval_shots,
             "support examples per class (or points) at evaluation (none: shots)")
        .add("eval_queries", &TaskSettings::eval_queries,
             "query examples per class (or points) of the evaluation episodes")
        .add("meta_batch", &TaskSettings::meta_batch, "tasks per meta-step")
        .add("data", &TaskSettings::data,
             "Omniglot folder for --tasks omniglot (default: $METALEARN_OMNIGLOT_DIR) or "
             "--tasks images (default: the embedded procedural glyphs)")
        .add("seed", &TaskSettings::seed, "seed of the initialisation and of the task stream");
    return t;
  }();
  return table;
}

/// The task settings of a run on an environment family (RL^2): only the seed applies;
/// the family's own table (bandit_table, mdp_table) describes its environments.
inline const FieldTable<TaskSettings>& environment_task_table() {
  static const FieldTable<TaskSettings> table = [] {
    FieldTable<TaskSettings> t("task");
    const char* why = "episodes of supervised tasks; an environment family has its own sizes";
    for (const char* name :
         {"ways", "shots", "queries", "eval_ways", "eval_shots", "eval_queries", "data"}) {
      t.exclude(name, why);
    }
    t.exclude("meta_batch", "trials per meta-step are Rl2Options' trials (--trials)")
        .add("seed", &TaskSettings::seed,
             "seed of the initialisation and of the environment streams");
    return t;
  }();
  return table;
}

inline const FieldTable<RunSettings>& run_table() {
  static const FieldTable<RunSettings> table = [] {
    FieldTable<RunSettings> t("run");
    t.add("steps", &RunSettings::steps, "meta-steps of the whole run")
        .add("eval_every", &RunSettings::eval_every,
             "evaluate and write a checkpoint every this many meta-steps")
        .add("eval_episodes", &RunSettings::eval_episodes, "episodes of each evaluation")
        .add("final_eval_episodes", &RunSettings::final_eval_episodes,
             "episodes of the evaluation at the end of the run")
        .add("time_limit", &RunSettings::time_limit,
             "stop after this many seconds (0: no limit); resume continues")
        .add("log_every", &RunSettings::log_every,
             "write the training statistics to metrics.jsonl every this many meta-steps")
        .add("keep", &RunSettings::keep,
             "meta-steps whose checkpoints are kept as checkpoint_step<N>.safetensors");
    return t;
  }();
  return table;
}

inline const FieldTable<alg::MamlOptions<float>>& maml_table() {
  using O = alg::MamlOptions<float>;
  static const FieldTable<O> table = [] {
    FieldTable<O> t("MamlOptions");
    t.add("inner_lr", &O::inner_lr, "step size of the inner SGD updates")
        .add("inner_steps", &O::inner_steps, "inner steps in meta-training")
        .add("eval_inner_steps", &O::eval_inner_steps,
             "inner steps when adapting for evaluation (none: inner_steps)")
        .add("first_order", &O::first_order, "drop the second-order terms (FOMAML)")
        .add("outer_lr", &O::outer_lr, "learning rate of the meta-update")
        .add_enum("outer_optimizer", &O::outer_optimizer,
                  EnumNames<alg::OuterOptimizer>{{"adam", alg::OuterOptimizer::kAdam},
                                                 {"sgd", alg::OuterOptimizer::kSgd}},
                  "optimizer of the meta-update")
        .add_enum("loss", &O::loss, loss_names(), "task loss")
        .exclude("custom_loss", "a C++ callable; the command uses the built-in losses")
        .add("learn_inner_lr", &O::learn_inner_lr,
             "Meta-SGD: a learned inner learning rate per parameter element")
        .add("per_step_lr", &O::per_step_lr,
             "MAML++: a learned inner learning rate per tensor and inner step")
        .add("multi_step_loss", &O::multi_step_loss,
             "MAML++: the meta-loss weighs the query losses after every inner step")
        .add("msl_anneal_steps", &O::msl_anneal_steps,
             "meta-steps over which the multi-step loss anneals to the last step")
        .add("adapt_only", &O::adapt_only,
             "ANIL: only parameters whose name starts with one of these adapt")
        .add("threads", &O::threads, "threads adapting the tasks of a meta-batch")
        .add("threads_within_tasks", &O::threads_within_tasks,
             "spend the threads inside each task instead of across tasks")
        .add("batch_tasks", &O::batch_tasks,
             "run the meta-batch as one graph (models of Linear layers and activations)")
        .add("pre_adaptation_stats", &O::pre_adaptation_stats,
             "also report the query loss and accuracy before adaptation")
        .add("check_finite", &O::check_finite,
             "refuse a meta-step whose gradient or result is not finite")
        .exclude("seed", "set from the run's seed (--seed)");
    return t;
  }();
  return table;
}

inline const FieldTable<alg::ReptileOptions<float>>& reptile_table() {
  using O = alg::ReptileOptions<float>;
  static const FieldTable<O> table = [] {
    FieldTable<O> t("ReptileOptions");
    t.add_enum("inner_optimizer", &O::inner_optimizer,
               EnumNames<alg::InnerOptimizer>{{"sgd", alg::InnerOptimizer::kSgd},
                                              {"adam", alg::InnerOptimizer::kAdam}},
               "optimizer of the inner loop")
        .add("inner_lr", &O::inner_lr, "inner learning rate")
        .add("adam_beta1", &O::adam_beta1, "beta1 of the inner Adam")
        .add("adam_beta2", &O::adam_beta2, "beta2 of the inner Adam")
        .add("carry_inner_state", &O::carry_inner_state,
             "keep the inner Adam's moments from one task to the next")
        .add("inner_steps", &O::inner_steps, "inner steps in meta-training")
        .add("inner_batch", &O::inner_batch, "examples per inner step (0: the support set)")
        .add("eval_inner_steps", &O::eval_inner_steps, "inner steps when adapting at test")
        .add("eval_inner_batch", &O::eval_inner_batch,
             "examples per inner step at test (none: inner_batch)")
        .add("outer_step", &O::outer_step, "outer step size epsilon")
        .add("outer_step_final", &O::outer_step_final, "outer step size at the end of annealing")
        .add("anneal_steps", &O::anneal_steps,
             "meta-steps over which the outer step anneals (0: constant)")
        .exclude("meta_batch", "set from the run's meta-batch (--meta-batch)")
        .add_enum("loss", &O::loss, loss_names(), "task loss")
        .exclude("custom_loss", "a C++ callable; the command uses the built-in losses")
        .add("transductive", &O::transductive,
             "batch-norm statistics over all queries at once at test")
        .add("threads", &O::threads, "threads adapting the tasks of a meta-batch")
        .add("batch_tasks", &O::batch_tasks,
             "run the meta-batch as one graph (models of Linear layers and activations)")
        .add("check_finite", &O::check_finite,
             "refuse a meta-step whose direction or result is not finite")
        .exclude("seed", "set from the run's seed (--seed)");
    return t;
  }();
  return table;
}

/// The fields ProtoNetOptions and MatchingNetOptions share (the metric learners').
template <class O>
void add_metric_fields(FieldTable<O>& t) {
  t.add_enum("distance", &O::distance, distance_names(), "distance between embeddings")
      .add("scale", &O::scale, "logits are -scale * distance")
      .add("lr", &O::lr, "Adam learning rate")
      .add("lr_decay", &O::lr_decay, "learning-rate factor applied every lr_decay_every steps")
      .add("lr_decay_every", &O::lr_decay_every, "meta-steps between learning-rate decays")
      .add(
          "embedding.hidden", [](O& o) -> Index& { return o.embedding.hidden; },
          "channels of the ConvNet4 embedding")
      .add("threads", &O::threads, "threads running the episodes of a meta-batch")
      .add("check_finite", &O::check_finite,
           "refuse a meta-step whose gradient or result is not finite")
      .exclude("seed", "set from the run's seed (--seed)");
}

inline const FieldTable<alg::ProtoNetOptions<float>>& protonet_table() {
  using O = alg::ProtoNetOptions<float>;
  static const FieldTable<O> table = [] {
    FieldTable<O> t("ProtoNetOptions");
    add_metric_fields(t);
    return t;
  }();
  return table;
}

inline const FieldTable<alg::MatchingNetOptions<float>>& matching_table() {
  using O = alg::MatchingNetOptions<float>;
  static const FieldTable<O> table = [] {
    FieldTable<O> t("MatchingNetOptions");
    add_metric_fields(t);
    t.add("full_context_dim", &O::full_context_dim,
          "full context embeddings with this LSTM width (0: off)")
        .add("full_context_steps", &O::full_context_steps,
             "processing steps of the attention LSTM over the support set");
    return t;
  }();
  return table;
}

inline const FieldTable<data::GaussianProcessOptions>& gp_table() {
  using O = data::GaussianProcessOptions;
  static const FieldTable<O> table = [] {
    FieldTable<O> t("GaussianProcessOptions");
    t.add_enum("kernel", &O::kernel,
               EnumNames<data::GpKernel>{{"eq", data::GpKernel::kEq},
                                         {"matern52", data::GpKernel::kMatern52},
                                         {"periodic", data::GpKernel::kPeriodic}},
               "covariance function")
        .add("length_scale", &O::length_scale, "the kernel's length scale (smallest, if drawn)")
        .add("signal_scale", &O::signal_scale, "the kernel's signal scale (smallest, if drawn)")
        .add("length_scale_max", &O::length_scale_max,
             "draw each task's length scale from [length_scale, this) (0: fixed)")
        .add("signal_scale_max", &O::signal_scale_max,
             "draw each task's signal scale from [signal_scale, this) (0: fixed)")
        .add("period", &O::period, "period of the periodic kernel")
        .add("noise_std", &O::noise_std, "standard deviation of the targets' noise")
        .add("min_context", &O::min_context, "fewest context points of a task")
        .add("max_context", &O::max_context, "most context points of a task")
        .add("min_target", &O::min_target, "fewest target points of a task")
        .add("max_target", &O::max_target, "most target points of a task")
        .add("x_min", &O::x_min, "inputs are drawn from [x_min, x_max)")
        .add("x_max", &O::x_max, "inputs are drawn from [x_min, x_max)")
        .add("jitter", &O::jitter, "added to the kernel's diagonal before the Cholesky factor")
        .add("targets_include_context", &O::targets_include_context,
             "the query set is the context points followed by the targets");
    return t;
  }();
  return table;
}

inline const FieldTable<data::ImageCompletionOptions>& image_table() {
  using O = data::ImageCompletionOptions;
  static const FieldTable<O> table = [] {
    FieldTable<O> t("ImageCompletionOptions");
    t.add("min_context", &O::min_context, "fewest context pixels of a task")
        .add("max_context", &O::max_context, "most context pixels of a task")
        .add("targets_include_context", &O::targets_include_context,
             "the query set is the context pixels followed by every other pixel");
    return t;
  }();
  return table;
}

/// The fields CnpOptions and NpOptions share.
template <class O>
void add_neural_process_fields(FieldTable<O>& t) {
  t.add("decoder", &O::decoder, "widths of the decoder MLP's hidden layers")
      .add("sigma_floor", &O::sigma_floor, "the predictive sigma's lower bound")
      .add("glorot_init", &O::glorot_init, "Glorot-uniform weights and zero biases")
      .add("lr", &O::lr, "Adam learning rate")
      .add("threads", &O::threads, "threads running the tasks of a batch")
      .exclude("seed", "set from the run's seed (--seed)")
      .add("check_finite", &O::check_finite,
           "refuse a meta-step whose gradient or result is not finite");
}

inline const FieldTable<alg::CnpOptions>& cnp_table() {
  using O = alg::CnpOptions;
  static const FieldTable<O> table = [] {
    FieldTable<O> t("CnpOptions");
    t.add("encoder", &O::encoder, "widths of the encoder MLP's layers");
    add_neural_process_fields(t);
    return t;
  }();
  return table;
}

inline const FieldTable<alg::NpOptions>& np_table() {
  using O = alg::NpOptions;
  static const FieldTable<O> table = [] {
    FieldTable<O> t("NpOptions");
    t.add("deterministic", &O::deterministic,
          "widths of the deterministic path's MLP (empty: no deterministic path)")
        .add("latent_encoder", &O::latent_encoder, "widths of the latent path's MLP")
        .add("latent", &O::latent, "size of the latent variable z")
        .add("attention_heads", &O::attention_heads,
             "heads of the cross-attention over the context (0: mean aggregation; ANP: 8)")
        .add("attention_mlp", &O::attention_mlp, "widths of the keys' and queries' MLP")
        .add("self_attention", &O::self_attention, "self-attention over the context points")
        .add("likelihood_samples", &O::likelihood_samples,
             "samples of z for the evaluation's log-likelihood");
    add_neural_process_fields(t);
    return t;
  }();
  return table;
}

inline const FieldTable<env::BanditOptions>& bandit_table() {
  using O = env::BanditOptions;
  static const FieldTable<O> table = [] {
    FieldTable<O> t("BanditOptions");
    t.add("arms", &O::arms, "arms of each Bernoulli bandit (k)")
        .add("pulls", &O::pulls, "pulls per trial (n); each pull is one episode");
    return t;
  }();
  return table;
}

inline const FieldTable<env::TabularMdpOptions>& mdp_table() {
  using O = env::TabularMdpOptions;
  static const FieldTable<O> table = [] {
    FieldTable<O> t("TabularMdpOptions");
    t.add("states", &O::states, "states of each MDP")
        .add("actions", &O::actions, "actions of each MDP")
        .add("horizon", &O::horizon, "steps per episode")
        .add("episodes", &O::episodes, "episodes per trial")
        .add("start_state", &O::start_state, "the state every episode starts in")
        .add("reward_mean", &O::reward_mean, "mean of the distribution of the mean rewards")
        .add("reward_mean_std", &O::reward_mean_std,
             "standard deviation of the distribution of the mean rewards")
        .add("reward_noise_std", &O::reward_noise_std,
             "standard deviation of the reward noise on every step")
        .add("transition_alpha", &O::transition_alpha,
             "concentration of the Dirichlet each transition row is drawn from");
    return t;
  }();
  return table;
}

inline const FieldTable<alg::Rl2Options>& rl2_table() {
  using O = alg::Rl2Options;
  static const FieldTable<O> table = [] {
    FieldTable<O> t("Rl2Options");
    t.add("hidden", &O::hidden, "GRU units of the policy")
        .add("separate_value", &O::separate_value,
             "give the value head a GRU of its own, so the value loss trains none of the "
             "policy's parameters")
        .add("trials", &O::trials, "trials collected per meta-step, each on its own environment")
        .add("gamma", &O::gamma, "discount factor across the whole trial")
        .add("gae_lambda", &O::gae_lambda, "lambda of generalised advantage estimation")
        .add("clip", &O::clip, "PPO's clipping range of the probability ratio")
        .add("epochs", &O::epochs, "passes over the collected trials per meta-step")
        .add("minibatches", &O::minibatches, "minibatches of whole trials per epoch")
        .add("value_coef", &O::value_coef, "weight of the value loss")
        .add("reward_scale", &O::reward_scale,
             "factor on the rewards of the value targets and advantages (not the policy's "
             "input); below 1 balances the value loss against the policy's on long trials")
        .add("entropy_coef", &O::entropy_coef, "weight of the entropy bonus")
        .add("lr", &O::lr, "Adam learning rate")
        .add("adam_eps", &O::adam_eps, "Adam's epsilon")
        .add("max_grad_norm", &O::max_grad_norm,
             "clip each minibatch gradient's global norm to this (0: no clipping)")
        .add("clip_each_network", &O::clip_each_network,
             "with separate_value, clip the policy's and the value's gradients to "
             "max_grad_norm each instead of their joint norm")
        .add("normalize_advantages", &O::normalize_advantages,
             "standardise the advantages of each meta-step's trials")
        .add("chunk", &O::chunk,
             "trials stepped together as one batch (results depend on it, not on threads)")
        .add("collect_chunk", &O::collect_chunk,
             "trials stepped together when collecting (results may depend on it)")
        .add("threads", &O::threads, "threads collecting and updating the chunks")
        .exclude("seed", "set from the run's seed (--seed)")
        .add("check_finite", &O::check_finite,
             "refuse an update whose gradient or result is not finite");
    return t;
  }();
  return table;
}

}  // namespace metalearn::cli
