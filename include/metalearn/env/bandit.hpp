#pragma once
/// @file
/// Bernoulli multi-armed bandits: BernoulliBandit (one environment) and
/// BernoulliBandits (the family of Duan et al. 2016, section 3.1: k arms with success
/// probabilities p_i ~ U[0, 1]; one pull is one episode, a trial is n pulls).

#include <cstdint>
#include <vector>

#include "metalearn/core/export.hpp"
#include "metalearn/core/random.hpp"
#include "metalearn/core/shape.hpp"
#include "metalearn/env/environment.hpp"

namespace metalearn::env {

/// Sizes of the bandit family. Defaults: the paper's smallest setting (k = 5, n = 10).
struct BanditOptions {
  /// Number of arms (k).
  Index arms = 5;
  /// Pulls per trial (n); each pull is one episode.
  Index pulls = 10;
};

/// One Bernoulli bandit: pulling arm i gives reward 1 with probability p_i, else 0.
///
/// It has one observation (0), `arms` actions, horizon 1 and `pulls` episodes per
/// trial: every step ends its episode (done = true), and the next pull needs reset().
class METALEARN_API BernoulliBandit {
 public:
  /// A bandit with the given success probabilities, `pulls` pulls per trial, drawing
  /// its outcomes from `noise`. Throws ValueError for no arms, a probability outside
  /// [0, 1] or pulls < 1.
  BernoulliBandit(std::vector<double> probabilities, Index pulls, Generator noise);

  /// 1 observation, `arms` actions, horizon 1, `pulls` episodes.
  [[nodiscard]] EnvSpec spec() const;
  /// Starts an episode (one pull); returns observation 0.
  Index reset();
  /// Pulls arm `action`: reward 1 with probability p_action (one uniform draw), done.
  Step step(Index action);

  /// The success probabilities p_i.
  [[nodiscard]] const std::vector<double>& probabilities() const { return probabilities_; }
  /// max_i p_i: the expected reward per pull of the best arm.
  [[nodiscard]] double best_mean() const;

 private:
  std::vector<double> probabilities_;
  Index pulls_;
  Generator noise_;
  bool in_episode_ = false;
};

/// The family of Bernoulli bandits with p_i ~ U[0, 1] independently.
///
/// @code
/// env::BernoulliBandits family({.arms = 10, .pulls = 100});
/// env::BernoulliBandit bandit = family.make(/*seed=*/1, env::Split::kTest, /*index=*/7);
/// bandit.reset();
/// double r = bandit.step(3).reward;
/// @endcode
class METALEARN_API BernoulliBandits {
 public:
  using environment_type = BernoulliBandit;

  /// Throws ValueError for arms < 1 or pulls < 1.
  explicit BernoulliBandits(BanditOptions options = {});

  /// 1 observation, `arms` actions, horizon 1, `pulls` episodes.
  [[nodiscard]] EnvSpec spec() const;
  /// Draws one bandit with `gen`: p_0, ..., p_{k-1} ~ U[0, 1), then one 64-bit value that
  /// seeds the bandit's own outcome stream.
  [[nodiscard]] BernoulliBandit sample(Generator& gen) const;
  /// Bandit `index` of the run: sample() on Generator(environment_seed(seed, split, index)).
  [[nodiscard]] BernoulliBandit make(std::uint64_t seed, Split split, std::uint64_t index) const;

  [[nodiscard]] const BanditOptions& options() const { return options_; }

 private:
  BanditOptions options_;
};

static_assert(Environment<BernoulliBandit> && EnvFamily<BernoulliBandits>);

}  // namespace metalearn::env
