// BernoulliBandit and the BernoulliBandits family.

#include "metalearn/env/bandit.hpp"

#include <algorithm>
#include <utility>

#include "metalearn/core/error.hpp"

namespace metalearn::env {

BernoulliBandit::BernoulliBandit(std::vector<double> probabilities, Index pulls, Generator noise)
    : probabilities_(std::move(probabilities)), pulls_(pulls), noise_(noise) {
  METALEARN_CHECK(!probabilities_.empty(), ValueError, "BernoulliBandit: needs at least one arm");
  METALEARN_CHECK(pulls_ >= 1, ValueError, "BernoulliBandit: pulls must be >= 1, got ", pulls_);
  for (std::size_t i = 0; i < probabilities_.size(); ++i) {
    const double p = probabilities_[i];
    METALEARN_CHECK(p >= 0.0 && p <= 1.0, ValueError, "BernoulliBandit: probability of arm ", i,
                    " must be in [0, 1], got ", p);
  }
}

EnvSpec BernoulliBandit::spec() const {
  return {.observations = 1,
          .actions = static_cast<Index>(probabilities_.size()),
          .horizon = 1,
          .episodes = pulls_};
}

Index BernoulliBandit::reset() {
  in_episode_ = true;
  return 0;
}

Step BernoulliBandit::step(Index action) {
  METALEARN_CHECK(in_episode_, ValueError,
                  "BernoulliBandit::step: the episode is over (one pull per episode); call "
                  "reset() first");
  const auto arms = static_cast<Index>(probabilities_.size());
  METALEARN_CHECK(action >= 0 && action < arms, ValueError, "BernoulliBandit::step: action ",
                  action, " out of range for ", arms, " arms");
  in_episode_ = false;
  const double u = noise_.uniform();
  const double reward = u < probabilities_[static_cast<std::size_t>(action)] ? 1.0 : 0.0;
  return {.observation = 0, .reward = reward, .done = true};
}

double BernoulliBandit::best_mean() const {
  return *std::max_element(probabilities_.begin(), probabilities_.end());
}

BernoulliBandits::BernoulliBandits(BanditOptions options) : options_(options) {
  METALEARN_CHECK(options_.arms >= 1 && options_.pulls >= 1, ValueError,
                  "BernoulliBandits: arms and pulls must be >= 1, got arms=", options_.arms,
                  " pulls=", options_.pulls);
}

EnvSpec BernoulliBandits::spec() const {
  return {.observations = 1, .actions = options_.arms, .horizon = 1, .episodes = options_.pulls};
}

BernoulliBandit BernoulliBandits::sample(Generator& gen) const {
  std::vector<double> p(static_cast<std::size_t>(options_.arms));
  for (double& x : p) x = gen.uniform();
  const std::uint64_t noise_seed = gen();
  return BernoulliBandit(std::move(p), options_.pulls, Generator(noise_seed));
}

BernoulliBandit BernoulliBandits::make(std::uint64_t seed, Split split, std::uint64_t index) const {
  Generator gen(environment_seed(seed, split, index));
  return sample(gen);
}

}  // namespace metalearn::env
