#!/usr/bin/env bash
# Matching Networks on Omniglot (Vinyals et al. 2016, Table 1): trains and evaluates
# 5-way 1-shot, 5-way 5-shot, 20-way 1-shot and 20-way 5-shot, each without and with
# full context embeddings (8 runs; a run trains on episodes of the shape it is tested
# on), EPISODES test episodes each with 95% intervals, then writes
# benchmarks/results/matching_omniglot.md beside the paper's numbers
# (98.1, 98.9, 93.8, 98.5).
#
# Usage: benchmarks/reproduce/matching_omniglot.sh [--data DIR] [--foreground]
# Runs in the background by default (nohup; progress in $LOG); --foreground runs in this
# shell. Without an Omniglot folder (--data DIR or METALEARN_OMNIGLOT_DIR, holding
# images_background/ and images_evaluation/) it says so and exits with 0.
#
# Environment: BUILD (build dir, default build-alg), METALEARN_OMNIGLOT_DIR, STEPS
# (training episodes per run, default 20000), TIME_LIMIT (minutes of this call, 0 = none:
# see legs below), EPISODES (test episodes per run, 600), DISTANCE (cosine, the paper's,
# or euclidean), SCALE (factor on the attention logits, 1), TRAIN_WAYS (classes per
# training episode; default: each configuration's own), THREADS (2; a training
# episode's convolutions and the evaluation episodes run on them), CPUS (the cores the
# runs are pinned to with taskset, default 0..THREADS-1), QUERIES (queries per class in
# training episodes, 5), TEST_QUERIES (15), FCE_STEPS (attention steps of the full
# context embeddings, 5), FCE (which runs of each configuration: both, the default;
# without, only the runs without full context embeddings; only, only those with them),
# DECAY_EVERY (lr halving period, 2000), SEED (1), CONFIGS (default "5w1s 5w5s 20w1s
# 20w5s"), TESTS (test shapes <ways>w<shots>s on which every finished run is also
# evaluated, beside its own configuration's: e.g. one network trained on 20-way 1-shot
# episodes tested on all four; default none), LOG, OUT, RUNS (run folders, default
# $BUILD/matching_omniglot).
#
# Run folders are named <config>[_fce][_<distance>][_x<scale>][_t<train ways>] (the
# suffixes only for an attention other than the paper's cosine at scale 1, and for
# training episodes of other ways than the test's).
#
# Legs: every run keeps its state in RUNS/<name>/ (train::fit's checkpoint, the
# learner's whole state; metrics.jsonl) and continues from it exactly (--resume; a run
# directory written with other settings is refused). With TIME_LIMIT the call works
# through the unfinished runs in order and hands each the minutes left of the call as
# its --time-limit (training only: the evaluation of the last run comes on top); a run
# stopped by it is evaluated as it stands, and the next call continues it. A finished
# run (RUNS/<name>/complete names its STEPS and EPISODES) is not run again; the results
# file lists every run with its status.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
FOREGROUND=0
DATA=${METALEARN_OMNIGLOT_DIR:-}
while [[ $# -gt 0 ]]; do
  case "$1" in
    --foreground) FOREGROUND=1 ;;
    --data) DATA=${2:?--data needs a folder}; shift ;;
    --data=*) DATA=${1#--data=} ;;
    -h | --help) sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d;s/^# \{0,1\}//'; exit 0 ;;
    *) echo "matching_omniglot.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done
if [[ -z "$DATA" || ! -d "$DATA/images_background" || ! -d "$DATA/images_evaluation" ]]; then
  echo "matching_omniglot.sh: skipped: no Omniglot folder${DATA:+ at $DATA} (pass --data DIR" \
       "or set METALEARN_OMNIGLOT_DIR to a folder holding images_background/ and" \
       "images_evaluation/)"
  exit 0
fi
DATA=$(cd "$DATA" && pwd)

BUILD=${BUILD:-$ROOT/build-alg}
STEPS=${STEPS:-20000}
TIME_LIMIT=${TIME_LIMIT:-0}
EPISODES=${EPISODES:-600}
THREADS=${THREADS:-2}
CPUS=${CPUS:-0-$((THREADS - 1))}
QUERIES=${QUERIES:-5}
TEST_QUERIES=${TEST_QUERIES:-15}
FCE_STEPS=${FCE_STEPS:-5}
FCE=${FCE:-both}
case "$FCE" in
  both) FCE_RUNS="0 1" ;;
  without) FCE_RUNS=0 ;;
  only) FCE_RUNS=1 ;;
  *) echo "matching_omniglot.sh: FCE must be both, without or only, not '$FCE'" >&2; exit 2 ;;
esac
DECAY_EVERY=${DECAY_EVERY:-2000}
SEED=${SEED:-1}
DISTANCE=${DISTANCE:-cosine}
SCALE=${SCALE:-1}
TRAIN_WAYS=${TRAIN_WAYS:-}
CONFIGS=${CONFIGS:-5w1s 5w5s 20w1s 20w5s}
TESTS=${TESTS:-}
for t in $TESTS; do
  if [[ ! "$t" =~ ^[0-9]+w[0-9]+s$ ]]; then
    echo "matching_omniglot.sh: TESTS entry '$t' is not of the form <ways>w<shots>s" >&2
    exit 2
  fi
done
LOG=${LOG:-$BUILD/matching_omniglot.log}
OUT=${OUT:-$ROOT/benchmarks/results/matching_omniglot.md}
RUNS=${RUNS:-$BUILD/matching_omniglot}

if [[ $FOREGROUND -eq 0 ]]; then
  mkdir -p "$(dirname "$LOG")"
  nohup "${BASH_SOURCE[0]}" --foreground --data "$DATA" >"$LOG" 2>&1 &
  echo "started matching_omniglot (pid $!); progress: tail -f $LOG; results: $OUT"
  exit 0
fi

BIN="$BUILD/examples/matching_omniglot"
[[ -x "$BIN" ]] || cmake --build "$BUILD" --target matching_omniglot
# Keep freed tensor buffers in the heap instead of returning them to the kernel: without
# this, page faults of the large im2col buffers take more time than the convolutions.
export GLIBC_TUNABLES=${GLIBC_TUNABLES:-glibc.malloc.mmap_threshold=4294967296:glibc.malloc.trim_threshold=4294967296}
export METALEARN_CACHE_DIR=${METALEARN_CACHE_DIR:-$BUILD/cache}
mkdir -p "$METALEARN_CACHE_DIR" "$(dirname "$OUT")" "$RUNS"
PIN=()
if command -v taskset >/dev/null; then
  PIN=(taskset -c "$CPUS")
else
  echo "taskset not found: the runs are not pinned to cores"
fi

# Evaluates the finished run of configuration $config in $dir on every shape of TESTS
# other than its own, into $dir/test_<shape>.md (an existing file is kept), with the
# run's command $RUN. Nothing is trained: the run folder's checkpoint is read and left
# as it is.
extra_tests() {
  local t
  for t in $TESTS; do
    [[ "$t" != "$config" && ! -f "$dir/test_$t.md" ]] || continue
    [[ "$t" =~ ^([0-9]+)w([0-9]+)s$ ]]
    local cmd=("${RUN[@]}" --test-ways "${BASH_REMATCH[1]}" --test-shots "${BASH_REMATCH[2]}"
               --out "$dir/test_$t.md.part")
    echo "command: ${cmd[*]}"
    "${cmd[@]}"
    mv "$dir/test_$t.md.part" "$dir/test_$t.md"
  done
}

start=$(date +%s)
# Minutes left of this call's TIME_LIMIT (may be negative).
minutes_left() { awk -v limit="$TIME_LIMIT" -v used=$(($(date +%s) - start)) \
                   'BEGIN { printf "%.3f", limit - used / 60 }'; }
NAMES=()
stopped=0
for config in $CONFIGS; do
  if [[ ! "$config" =~ ^([0-9]+)w([0-9]+)s$ ]]; then
    echo "matching_omniglot.sh: CONFIGS entry '$config' is not of the form <ways>w<shots>s" >&2
    exit 2
  fi
  ways=${BASH_REMATCH[1]} shots=${BASH_REMATCH[2]}
  for fce in $FCE_RUNS; do
    name=$config
    [[ $fce -eq 0 ]] || name+=_fce
    [[ $DISTANCE == cosine ]] || name+=_$DISTANCE
    [[ $SCALE == 1 ]] || name+=_x$SCALE
    train_ways=${TRAIN_WAYS:-$ways}
    [[ $train_ways == "$ways" ]] || name+=_t$train_ways
    NAMES+=("$name")
    dir="$RUNS/$name"
    marker="steps=$STEPS episodes=$EPISODES"
    # The run's command, less what only training or only a test adds.
    RUN=("${PIN[@]}" "$BIN" --data "$DATA" --ways "$ways" --shots "$shots" --queries "$QUERIES"
         --test-queries "$TEST_QUERIES" --steps "$STEPS" --episodes "$EPISODES"
         --decay-every "$DECAY_EVERY" --distance "$DISTANCE" --scale "$SCALE"
         --train-ways "$train_ways" --threads "$THREADS" --seed "$SEED" --checkpoint "$dir"
         --resume)
    [[ $fce -eq 0 ]] || RUN+=(--fce --fce-steps "$FCE_STEPS")
    if [[ -f "$dir/complete" && "$(cat "$dir/complete")" == "$marker" ]]; then
      echo "$name: complete ($marker), not run again"
      extra_tests
      continue
    fi
    [[ $stopped -eq 0 ]] || continue
    limit=0
    if [[ "$TIME_LIMIT" != 0 ]]; then
      limit=$(minutes_left)
      if awk -v m="$limit" 'BEGIN { exit !(m <= 0) }'; then
        echo "$name: no time left in this call (TIME_LIMIT=$TIME_LIMIT); run again to continue"
        stopped=1
        continue
      fi
    fi
    CMD=("${RUN[@]}" --log-every 100 --time-limit "$limit" --checkpoint-every 500
         --out "$dir/results.md.part")
    echo "command: ${CMD[*]}"
    run_start=$(date +%s)
    "${CMD[@]}"
    mv "$dir/results.md.part" "$dir/results.md"
    echo "$name: $(( $(date +%s) - run_start )) s"
    if grep -q '^status: complete' "$dir/results.md"; then
      echo "$marker" >"$dir/complete"
      extra_tests
    else
      stopped=1  # out of time: the next call continues this run first
    fi
  done
done
end=$(date +%s)

# The results table: every run's row with its status.
{
  echo "# Matching Networks, Omniglot (Vinyals et al. 2016)"
  echo
  echo "- date: $(date -u +%Y-%m-%dT%H:%M:%SZ), commit $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)"
  echo "- machine: $(nproc --all) cores ($(nproc) available, runs pinned to $CPUS)," \
       "$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)," \
       "load average at the end $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "- command: \`STEPS=$STEPS TIME_LIMIT=$TIME_LIMIT EPISODES=$EPISODES THREADS=$THREADS" \
       "QUERIES=$QUERIES TEST_QUERIES=$TEST_QUERIES FCE_STEPS=$FCE_STEPS FCE=$FCE DECAY_EVERY=$DECAY_EVERY" \
       "DISTANCE=$DISTANCE SCALE=$SCALE TRAIN_WAYS=$TRAIN_WAYS SEED=$SEED CONFIGS='$CONFIGS'" \
       "TESTS='$TESTS'" \
       "benchmarks/reproduce/matching_omniglot.sh\`"
  echo "- wall time of the last call of the script: $((end - start)) s"
  if [[ -n "$TRAIN_WAYS" ]]; then
    shape="$TRAIN_WAYS-way episodes with the shots of the configuration it is tested on"
  else
    shape="episodes of the shape it is tested on"
  fi
  echo "- each run trains on $shape ($QUERIES queries per class)," \
       "$DISTANCE attention at scale $SCALE, Adam 1e-3 halved every $DECAY_EVERY episodes;" \
       "$EPISODES test episodes with" \
       "$TEST_QUERIES queries per class on the 423 unseen characters (with rotations)"
  echo
  echo "| test episodes | accuracy (%) | paper (%) | chance (%) | eval episodes/s | status |"
  echo "|---|---|---|---|---|---|"
  for name in "${NAMES[@]}"; do
    results="$RUNS/$name/results.md"
    if [[ -f "$results" ]]; then
      row=$(grep '^| [0-9]' "$results" | tail -n 1)
      status=$(sed -n 's/^status: //p' "$results")
      echo "$row $status |"
      for t in $TESTS; do
        [[ -f "$RUNS/$name/test_$t.md" ]] || continue
        echo "$(grep '^| [0-9]' "$RUNS/$name/test_$t.md" | tail -n 1) test of the run $name |"
      done
    else
      echo "| $name | - | - | - | - | not run yet |"
    fi
  done
  for name in "${NAMES[@]}"; do
    results="$RUNS/$name/results.md"
    [[ -f "$results" ]] || continue
    echo
    echo "## $name"
    echo
    echo '```'
    sed -n '1,4p' "$results"
    echo '```'
  done
} >"$OUT"
echo "wrote $OUT"
