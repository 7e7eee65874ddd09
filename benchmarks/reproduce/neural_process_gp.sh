#!/usr/bin/env bash
# Reproduces the Neural Process GP-regression results (DeepMind neural-processes
# protocol; the CNP target: a per-point log-likelihood over all targets >= -0.50 after
# 40k batches and >= -0.33 after 80k, where a faithful PyTorch port measured -0.46 and
# -0.29).
# Usage: benchmarks/reproduce/neural_process_gp.sh [cnp|np|anp] [extra neural_process_gp flags]
# Resumable: run it again to continue (--resume); a time limit per call is
# --time-limit MIN. Writes build/reproduce/neural_process_gp_<model>/ (or
# METALEARN_REPRODUCE_OUT): checkpoint.safetensors, checkpoint_step<N>.safetensors at
# every evaluation, metrics.jsonl. METALEARN_THREADS sets the threads (default: all cores).
# The PyTorch twin of the CNP curve (the same protocol, evaluated every 10,000 steps):
#   benchmarks/pytorch/np_train.py OUT.jsonl --model cnp --protocol cnp
# The NP and ANP on the ANP notebook's protocol: benchmarks/reproduce/neural_process_anp.sh.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
model="${1:-cnp}"
[ $# -gt 0 ] && shift
. "$root/benchmarks/reproduce/build_example.sh"
build_example neural_process_gp
out="${METALEARN_REPRODUCE_OUT:-$root/build/reproduce/neural_process_gp_$model}"
start=$(date +%s)
"$build/examples/neural_process_gp" --model "$model" --steps 80000 --batch 64 \
  --eval-every 10000 --eval-episodes 32000 --threads "${METALEARN_THREADS:-$(nproc)}" \
  --out "$out" --resume "$@"
echo "wall time: $(( $(date +%s) - start )) s"
