#!/usr/bin/env bash
# Does meta-training show on the embedded procedural glyphs? Runs protonet_omniglot on
# them (no Omniglot folder) twice with the same seed: once without training (the
# ConvNet4 as initialised) and once after STEPS meta-training episodes, each evaluated
# on the same test episodes of held-out classes (5/20-way, 1/5-shot, 15 queries per
# class, 95% intervals) beside a nearest prototype on raw pixels, and writes
# benchmarks/results/procedural_glyphs.md.
#
# Target (20-way 1-shot): untrained <= 60%, trained >= 90%.
#
# Environment: BUILD (build dir, default build/glyphs; configured and built here when
# needed), STEPS (training episodes, 1500: 8-13 minutes of one shared Xeon core),
# TRAIN_WAYS (classes per training episode, 20; 5 shots and 5 queries), DECAY_EVERY
# (episodes between halvings of the Adam rate 1e-3, 500), EPISODES (test episodes per
# configuration, 600), THREADS (1), SEED (1), OUT. Pin it to a core for steady
# timings, e.g. `taskset -c 0 nice -n 5 benchmarks/reproduce/procedural_glyphs.sh`.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BUILD=${BUILD:-$ROOT/build/glyphs}
STEPS=${STEPS:-1500}
TRAIN_WAYS=${TRAIN_WAYS:-20}
DECAY_EVERY=${DECAY_EVERY:-500}
EPISODES=${EPISODES:-600}
THREADS=${THREADS:-1}
SEED=${SEED:-1}
OUT=${OUT:-$ROOT/benchmarks/results/procedural_glyphs.md}

if [[ ! -f "$BUILD/CMakeCache.txt" ]]; then
  cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DMETALEARN_BUILD_EXAMPLES=ON \
    -DMETALEARN_BUILD_TESTS=OFF -DMETALEARN_BUILD_BENCHMARKS=OFF
fi
cmake --build "$BUILD" -j2 --target protonet_omniglot
BIN="$BUILD/examples/protonet_omniglot"
# Keep freed tensor buffers in the heap (see protonet_omniglot.sh).
export GLIBC_TUNABLES=${GLIBC_TUNABLES:-glibc.malloc.mmap_threshold=4294967296:glibc.malloc.trim_threshold=4294967296}
unset METALEARN_OMNIGLOT_DIR  # the embedded glyphs, not Omniglot

TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
COMMON=(--episodes "$EPISODES" --test-queries 15 --threads "$THREADS" --seed "$SEED")
UNTRAINED=("$BIN" --steps 0 "${COMMON[@]}")
TRAINED=("$BIN" --steps "$STEPS" --train-ways "$TRAIN_WAYS" --train-shots 5 --train-queries 5
         --decay-every "$DECAY_EVERY" --log-every 100 "${COMMON[@]}")
start=$(date +%s)
echo "command: ${UNTRAINED[*]}"
"${UNTRAINED[@]}" --out "$TMP/untrained.md"
echo "command: ${TRAINED[*]}"
"${TRAINED[@]}" --out "$TMP/trained.md"
end=$(date +%s)

# Column $2 of the 20-way 1-shot row of a results table
# ("| 20-way 1-shot | 91.23 +- 0.45 | 51.20 +- 0.40 | - | 4.1 |": 3 the network, 4 raw pixels).
row() { grep -m1 '^| 20-way 1-shot ' "$1" | cut -d'|' -f"$2" | xargs; }
mkdir -p "$(dirname "$OUT")"
{
  echo "# ProtoNet on the embedded procedural glyphs: untrained vs meta-trained"
  echo
  echo "- date: $(date -u +%Y-%m-%dT%H:%M:%SZ), commit $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)"
  echo "- machine: $(lscpu | sed -n 's/^Model name: *//p' | head -1), $(nproc --all) cores" \
       "($(nproc) available to the script)," \
       "load average at the end $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "- command: \`STEPS=$STEPS TRAIN_WAYS=$TRAIN_WAYS DECAY_EVERY=$DECAY_EVERY EPISODES=$EPISODES" \
       "THREADS=$THREADS SEED=$SEED benchmarks/reproduce/procedural_glyphs.sh\`"
  echo "- wall time of the script: $((end - start)) s"
  echo "- target (20-way 1-shot): untrained <= 60%, trained >= 90%;" \
       "measured $(row "$TMP/untrained.md" 3) untrained, $(row "$TMP/trained.md" 3) trained" \
       "(nearest prototype on raw pixels: $(row "$TMP/untrained.md" 4))"
  echo
  echo "## Untrained ConvNet4 (\`${UNTRAINED[*]/#"$ROOT"\//}\`)"
  echo
  echo '```'
  sed -n '1,3p' "$TMP/untrained.md"
  echo '```'
  echo
  tail -n +5 "$TMP/untrained.md"
  echo
  echo "## Meta-trained ConvNet4 (\`${TRAINED[*]/#"$ROOT"\//}\`)"
  echo
  echo '```'
  sed -n '1,3p' "$TMP/trained.md"
  echo '```'
  echo
  tail -n +5 "$TMP/trained.md"
} >"$OUT"
echo "wrote $OUT"
