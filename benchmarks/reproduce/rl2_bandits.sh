#!/usr/bin/env bash
# Trains RL^2 (Duan et al. 2016) on Bernoulli bandits with PPO and evaluates it on 1,000
# fresh test bandits, for the RL^2 column of Table 1 (issue #30 asks for k = 5 arms:
# >= 6.6 at n = 10 pulls and >= 77.5 at n = 100; paper 6.7 and 78.7).
# Usage: benchmarks/reproduce/rl2_bandits.sh [rl2_bandits flags, e.g. --pulls 100]
# Resumable: the run folder build/reproduce/rl2_bandits_k<K>_n<N>/ (or
# METALEARN_REPRODUCE_OUT) keeps checkpoint.safetensors and metrics.jsonl; running the script
# again continues from the last checkpoint, bit for bit. For a long run, in the background:
#   nohup benchmarks/reproduce/rl2_bandits.sh > rl2_bandits.log 2>&1 &
# METALEARN_THREADS sets the threads (default: all cores); the numbers do not depend on it.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
. "$root/benchmarks/reproduce/build_example.sh"
build_example rl2_bandits
arms=5
pulls=10
args=("$@")
for ((i = 0; i < ${#args[@]}; ++i)); do
  case "${args[i]}" in
    --arms) arms="${args[i + 1]}" ;;
    --pulls) pulls="${args[i + 1]}" ;;
  esac
done
out="${METALEARN_REPRODUCE_OUT:-$root/build/reproduce/rl2_bandits_k${arms}_n${pulls}}"
start=$(date +%s)
# The paper's GRU (256 units), gamma 0.99 and lambda 0.3 (the defaults of Rl2Options);
# PPO with 128 trials per step, Adam 1e-3. Later flags override these.
"$build/examples/rl2_bandits" --hidden 256 --trials 128 --lr 1e-3 --steps 3000 --seed 1 \
  --eval-every 100 --eval-trials 1000 --threads "${METALEARN_THREADS:-$(nproc)}" \
  --out "$out" "$@"
echo "wall time: $(( $(date +%s) - start )) s"
