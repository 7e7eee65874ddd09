#!/usr/bin/env bash
# RL^2 beside its PyTorch twin (benchmarks/pytorch/rl2_twin.py): first the agreement of
# the advantages and of the PPO gradient in float64 on a bandit batch and on an MDP
# batch, then the speed of collection and of one PPO update (the paper's GRU 256, 128
# trials of 5-arm bandits with 10 pulls, 4 epochs x 4 minibatches) at one thread,
# alternating the two sides on one core.
#
#   benchmarks/compare/rl2_compare.sh [rounds] [seconds per measurement]
#
# Builds bench_rl2 in Release in $BUILD_DIR (default <repo>/build-cmp); installs
# Debian's python3-torch when it is missing. CORE (default 0) is the core both sides
# are pinned to.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
BUILD_DIR="${BUILD_DIR:-$ROOT/build-cmp}"
PYTHON="${PYTHON:-/usr/bin/python3}"
ROUNDS="${1:-2}"
SECONDS_EACH="${2:-10}"
CORE="${CORE:-0}"

"$ROOT/scripts/install-deps"
if ! "$PYTHON" -c "import torch" 2>/dev/null; then
  SUDO=""
  [[ $(id -u) -ne 0 ]] && SUDO="sudo"
  $SUDO apt-get update -qq
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-torch
fi
cmake -S "$ROOT" -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=Release -DMETALEARN_BUILD_BENCHMARKS=ON \
  >/dev/null
cmake --build "$BUILD_DIR" --target bench_rl2 -j"$(nproc)"

export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1
echo "machine: $(lscpu | sed -n 's/^Model name: *//p'); $(date -u +%FT%TZ);" \
  "commit $(git -C "$ROOT" rev-parse --short HEAD)"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
for kind in dump dump-mdp; do
  "$BUILD_DIR/benchmarks/bench_rl2" "$kind" "$tmp/$kind.safetensors"
  "$PYTHON" "$ROOT/benchmarks/pytorch/rl2_twin.py" check "$tmp/$kind.safetensors"
done
for ((r = 1; r <= ROUNDS; ++r)); do
  taskset -c "$CORE" "$BUILD_DIR/benchmarks/bench_rl2" time "$SECONDS_EACH"
  taskset -c "$CORE" "$PYTHON" "$ROOT/benchmarks/pytorch/rl2_twin.py" time "$SECONDS_EACH"
done
