#!/usr/bin/env bash
# Reptile on Omniglot (Nichol et al. 2018): meta-trains on 5-way 10-shot tasks
# and evaluates 5-way 1/5-shot, then writes benchmarks/results/reptile_omniglot.md.
# The inner Adam's moments carry over from task to task, as in the paper's code (the
# example's default), so training runs the tasks of a meta-batch in order on one
# thread; THREADS spreads the evaluation episodes.
#
# Runs in the background by default (nohup; progress in $LOG); pass --foreground to
# run in this shell. Target: 5-way 5-shot >= 98.5%, 5-way 1-shot >= 95% (non-transductive).
#
# Environment: BUILD (build dir, default build-alg), METALEARN_OMNIGLOT_DIR (required:
# the Omniglot folder), STEPS (meta-steps, default 100000; epsilon anneals to 0 over them), TIME_LIMIT
# (minutes of training, 0 = none), EPISODES (test episodes per configuration, 1000),
# THREADS (2), SEED (1), LOG, OUT, CHECKPOINT (the run folder, default
# $BUILD/reptile_omniglot.run), EXTRA (further options of the example, e.g.
# --fresh-inner-state).
#
# Training resumes from CHECKPOINT/checkpoint.safetensors when it exists (same STEPS and
# SEED; CHECKPOINT/metrics.jsonl beside it), so the paper's schedule can be trained in
# several time-limited runs: each run continues where the last one stopped and evaluates
# the meta-parameters it reached. A checkpoint file of an earlier version at
# $BUILD/reptile_omniglot.ckpt.safetensors moves into the folder.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BUILD=${BUILD:-$ROOT/build-alg}
DATA=${METALEARN_OMNIGLOT_DIR:?set METALEARN_OMNIGLOT_DIR to the Omniglot folder (images_background/, images_evaluation/)}
STEPS=${STEPS:-100000}
TIME_LIMIT=${TIME_LIMIT:-0}
EPISODES=${EPISODES:-1000}
THREADS=${THREADS:-2}
SEED=${SEED:-1}
LOG=${LOG:-$BUILD/reptile_omniglot.log}
OUT=${OUT:-$ROOT/benchmarks/results/reptile_omniglot.md}
CHECKPOINT=${CHECKPOINT:-$BUILD/reptile_omniglot.run}

if [[ "${1:-}" != "--foreground" ]]; then
  mkdir -p "$(dirname "$LOG")"
  nohup "${BASH_SOURCE[0]}" --foreground >"$LOG" 2>&1 &
  echo "started reptile_omniglot (pid $!); progress: tail -f $LOG; results: $OUT"
  exit 0
fi

BIN="$BUILD/examples/reptile_omniglot"
[[ -x "$BIN" ]] || cmake --build "$BUILD" --target reptile_omniglot
# Keep freed tensor buffers in the heap instead of returning them to the kernel: without
# this, page faults of the large im2col buffers take more time than the convolutions.
export GLIBC_TUNABLES=${GLIBC_TUNABLES:-glibc.malloc.mmap_threshold=4294967296:glibc.malloc.trim_threshold=4294967296}
export METALEARN_CACHE_DIR=${METALEARN_CACHE_DIR:-$BUILD/cache}
mkdir -p "$METALEARN_CACHE_DIR" "$(dirname "$OUT")"
# The checkpoint file earlier versions of the example wrote continues from the run folder.
if [[ -f "$BUILD/reptile_omniglot.ckpt.safetensors" && ! -e "$CHECKPOINT/checkpoint.safetensors" ]]; then
  mkdir -p "$CHECKPOINT" && mv "$BUILD/reptile_omniglot.ckpt.safetensors" "$CHECKPOINT/checkpoint.safetensors"
fi
read -ra EXTRA_ARGS <<<"${EXTRA:-}"
CMD=("$BIN" --data "$DATA" --steps "$STEPS" --time-limit "$TIME_LIMIT" --ways 5
     --train-shots 10 --meta-batch 5 --inner-steps 5 --eval-steps 50 --episodes "$EPISODES"
     --threads "$THREADS" --seed "$SEED" --log-every 100 --out "$OUT.part"
     --checkpoint "$CHECKPOINT" --resume "${EXTRA_ARGS[@]}")
echo "command: ${CMD[*]}"
start=$(date +%s)
"${CMD[@]}"
end=$(date +%s)
{
  echo "# Reptile, Omniglot (Nichol et al. 2018)"
  echo
  echo "- date: $(date -u +%Y-%m-%dT%H:%M:%SZ), commit $(git -C "$ROOT" rev-parse --short HEAD)"
  echo "- machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)," \
       "load average at the end $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "- command: \`STEPS=$STEPS TIME_LIMIT=$TIME_LIMIT EPISODES=$EPISODES THREADS=$THREADS${EXTRA:+ EXTRA='$EXTRA'}" \
       "benchmarks/reproduce/reptile_omniglot.sh\`"
  echo "- wall time of the script: $((end - start)) s"
  echo "- target: 5-way 5-shot >= 98.5%, 5-way 1-shot >= 95% (non-transductive)"
  echo
  echo '```'
  sed -n '1,3p' "$OUT.part"
  echo '```'
  echo
  tail -n +5 "$OUT.part"
} >"$OUT"
rm -f "$OUT.part"
echo "wrote $OUT"
