#!/usr/bin/env bash
# Reproduces MAML 5-way 1-shot Omniglot (Finn et al. 2017: 98.7 +- 0.4%).
# Usage: benchmarks/reproduce/maml_omniglot.sh [extra maml_omniglot flags]
# Needs METALEARN_OMNIGLOT_DIR (or --data DIR). Runs in the foreground; for a long
# run use: nohup benchmarks/reproduce/maml_omniglot.sh > maml_omniglot.log 2>&1 &
# Writes build/reproduce/maml_omniglot/{metrics.jsonl,checkpoint.safetensors} (or
# METALEARN_REPRODUCE_OUT/...), keeping checkpoint_step<N>.safetensors for steps 5k, 10k,
# 20k, 40k and 60k for the learning curve; a run directory of an earlier version
# (meta_parameters.safetensors) continues too. METALEARN_THREADS sets the threads
# (default: all cores).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
. "$root/benchmarks/reproduce/build_example.sh"
build_example maml_omniglot
out="${METALEARN_REPRODUCE_OUT:-$root/build/reproduce/maml_omniglot}"
start=$(date +%s)
"$build/examples/maml_omniglot" --ways 5 --shots 1 --meta-batch 32 --inner-lr 0.4 \
  --inner-steps 1 --eval-steps 3 --steps 60000 --eval-every 500 --eval-episodes 600 \
  --threads "${METALEARN_THREADS:-$(nproc)}" --keep 5000 10000 20000 40000 60000 \
  --out "$out" --resume "$@"
echo "wall time: $(( $(date +%s) - start )) s"
