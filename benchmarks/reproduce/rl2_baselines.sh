#!/usr/bin/env bash
# Reproduces the baseline columns of Duan et al. (2016), "RL^2: Fast Reinforcement
# Learning via Slow Reinforcement Learning", Table 1 (Bernoulli bandits, k = 5, 10, 50
# arms, n = 10, 100, 500 pulls) and Table 2 (random tabular MDPs, 10 to 100 episodes),
# with 95% intervals, beside the paper's values. A few minutes on 2 cores.
# Usage: benchmarks/reproduce/rl2_baselines.sh [rl2_baselines flags]
# METALEARN_THREADS sets the threads (default: all cores); the numbers do not depend on it.
# Cumulative regret curves (CSV, one per table row) go to build/reproduce/rl2_baselines/ (or
# METALEARN_REPRODUCE_OUT).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
. "$root/benchmarks/reproduce/build_example.sh"
build_example rl2_baselines
# Arguments replace the default table (for example: --trials 200 --arms 5 --pulls 10).
if [ $# -eq 0 ]; then
  set -- --trials 1000 --seed 1 --arms 5 10 50 --pulls 10 100 500 --episodes 10 25 50 75 100
fi
"$build/examples/rl2_baselines" --threads "${METALEARN_THREADS:-$(nproc)}" \
  --curves "${METALEARN_REPRODUCE_OUT:-$root/build/reproduce/rl2_baselines}" "$@"
