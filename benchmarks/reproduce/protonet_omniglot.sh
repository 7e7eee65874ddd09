#!/usr/bin/env bash
# Prototypical Networks on Omniglot (Snell et al. 2017): trains 60-way 5-shot episodes
# and evaluates 5/20-way 1/5-shot, then writes benchmarks/results/protonet_omniglot.md.
#
# Runs in the background by default (nohup; progress in $LOG); pass --foreground to
# run in this shell. Target: 5-way 1-shot >= 98.3%, 20-way 1-shot >= 95.0%.
#
# Environment: BUILD (build dir, default build-alg), METALEARN_OMNIGLOT_DIR (required:
# the Omniglot folder), STEPS (training episodes, default 20000), TIME_LIMIT
# (minutes of training, 0 = none), EPISODES (test episodes per configuration, 1000),
# THREADS (2; a training episode's convolutions and the evaluation episodes run on them),
# DECAY_EVERY (lr halving period, 2000),
# TEST_QUERIES (queries per class in test episodes, 15), TRAIN_WAYS (classes per
# training episode, 60 as in the paper), SEED (1), LOG, OUT, CHECKPOINT (the run folder,
# default $BUILD/protonet_omniglot.run).
#
# Training resumes from CHECKPOINT/checkpoint.safetensors when it exists (same seed,
# episode shape, rate and decay period): the learner's whole state (network, Adam state,
# episode count) is saved there every 500 episodes and when training stops, with
# CHECKPOINT/metrics.jsonl beside it, so the paper's schedule can be trained in several
# time-limited runs; each evaluates the network it reached. A checkpoint file of an
# earlier version at $BUILD/protonet_omniglot.ckpt.safetensors moves into the folder.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BUILD=${BUILD:-$ROOT/build-alg}
DATA=${METALEARN_OMNIGLOT_DIR:?set METALEARN_OMNIGLOT_DIR to the Omniglot folder (images_background/, images_evaluation/)}
STEPS=${STEPS:-20000}
TIME_LIMIT=${TIME_LIMIT:-0}
EPISODES=${EPISODES:-1000}
THREADS=${THREADS:-2}
DECAY_EVERY=${DECAY_EVERY:-2000}
TRAIN_WAYS=${TRAIN_WAYS:-60}
TEST_QUERIES=${TEST_QUERIES:-15}
SEED=${SEED:-1}
LOG=${LOG:-$BUILD/protonet_omniglot.log}
OUT=${OUT:-$ROOT/benchmarks/results/protonet_omniglot.md}
CHECKPOINT=${CHECKPOINT:-$BUILD/protonet_omniglot.run}

if [[ "${1:-}" != "--foreground" ]]; then
  mkdir -p "$(dirname "$LOG")"
  nohup "${BASH_SOURCE[0]}" --foreground >"$LOG" 2>&1 &
  echo "started protonet_omniglot (pid $!); progress: tail -f $LOG; results: $OUT"
  exit 0
fi

BIN="$BUILD/examples/protonet_omniglot"
[[ -x "$BIN" ]] || cmake --build "$BUILD" --target protonet_omniglot
# Keep freed tensor buffers in the heap instead of returning them to the kernel: without
# this, page faults of the large im2col buffers take more time than the convolutions.
export GLIBC_TUNABLES=${GLIBC_TUNABLES:-glibc.malloc.mmap_threshold=4294967296:glibc.malloc.trim_threshold=4294967296}
export METALEARN_CACHE_DIR=${METALEARN_CACHE_DIR:-$BUILD/cache}
mkdir -p "$METALEARN_CACHE_DIR" "$(dirname "$OUT")"
# The checkpoint file earlier versions of the example wrote continues from the run folder.
if [[ -f "$BUILD/protonet_omniglot.ckpt.safetensors" && ! -e "$CHECKPOINT/checkpoint.safetensors" ]]; then
  mkdir -p "$CHECKPOINT" && mv "$BUILD/protonet_omniglot.ckpt.safetensors" "$CHECKPOINT/checkpoint.safetensors"
fi
CMD=("$BIN" --data "$DATA" --steps "$STEPS" --time-limit "$TIME_LIMIT" --train-ways "$TRAIN_WAYS"
     --train-shots 5 --train-queries 5 --test-queries "$TEST_QUERIES" --decay-every "$DECAY_EVERY" --episodes "$EPISODES"
     --threads "$THREADS" --seed "$SEED" --log-every 50 --out "$OUT.part"
     --checkpoint "$CHECKPOINT" --checkpoint-every 500 --resume)
echo "command: ${CMD[*]}"
start=$(date +%s)
"${CMD[@]}"
end=$(date +%s)
{
  echo "# ProtoNet, Omniglot (Snell et al. 2017)"
  echo
  echo "- date: $(date -u +%Y-%m-%dT%H:%M:%SZ), commit $(git -C "$ROOT" rev-parse --short HEAD)"
  echo "- machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)," \
       "load average at the end $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "- command: \`STEPS=$STEPS TIME_LIMIT=$TIME_LIMIT EPISODES=$EPISODES THREADS=$THREADS DECAY_EVERY=$DECAY_EVERY" \
       "TEST_QUERIES=$TEST_QUERIES TRAIN_WAYS=$TRAIN_WAYS" \
       "benchmarks/reproduce/protonet_omniglot.sh\`"
  echo "- wall time of the script: $((end - start)) s"
  echo "- target: 5-way 1-shot >= 98.3%, 20-way 1-shot >= 95.0%"
  echo
  echo '```'
  sed -n '1,3p' "$OUT.part"
  echo '```'
  echo
  tail -n +5 "$OUT.part"
} >"$OUT"
rm -f "$OUT.part"
echo "wrote $OUT"
