#!/usr/bin/env bash
# Data-parallel speed on this machine: MAML (paper: ConvNet4 5-way 1-shot, meta-batch
# 32, second order) and ProtoNet 60-way (2 episodes a step) as 1 process of 1 thread,
# 1 process of 2 threads, 2 ranks of 1 thread (one all-reduce a step) and 2 ranks
# deterministic (all-gather), with examples/distributed/distributed_omniglot; then the
# collectives alone (bench_collective). Prints a Markdown record: docs/distributed.md
# takes its numbers from one (benchmarks/results/distributed-*.md).
#
#   benchmarks/distributed_scaling.sh [--data OMNIGLOT_DIR] [--steps N]
#
# Needs 2 idle cores (stop other jobs first: the point is the ratios). Builds the two
# programs in $BUILD_DIR (default build/bench-mpi, configured Release with portable
# flags when it does not exist yet; an existing build is used as it is configured).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${BUILD_DIR:-$root/build/bench-mpi}"
data=()
steps=6
while (($#)); do
  case "$1" in
    --data) data=(--data "$2"); shift 2 ;;
    --steps) steps="$2"; shift 2 ;;
    *) echo "distributed_scaling: unknown argument '$1'" >&2; exit 2 ;;
  esac
done
launcher=()
if command -v ccache >/dev/null; then launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache); fi
if [ ! -f "$build/CMakeCache.txt" ]; then  # an existing build is used as configured
  cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release "${launcher[@]}" -DMETALEARN_WITH_MPI=ON \
    -DMETALEARN_BUILD_TESTS=OFF -DMETALEARN_BUILD_EXAMPLES=ON -DMETALEARN_BUILD_BENCHMARKS=ON \
    >/dev/null
fi
cmake --build "$build" -j"$(nproc)" --target distributed_omniglot bench_collective >/dev/null

export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
example="$build/distributed_omniglot"
mpi=(mpirun -np 2 --bind-to core)

# mean_ms ARGS...: "ms a step | ms in the collective" of one run (its first step left out).
mean_ms() {
  local line
  line="$("$@" | grep '^mean over')" || { echo "distributed_scaling: $* failed" >&2; exit 1; }
  sed -E 's/.*: ([0-9.]+) ms a step, ([0-9.]+) ms .*/\1 | \2/' <<<"$line"
}

echo "# Data-parallel meta-training speed ($(date -u +%F), commit $(git -C "$root" rev-parse --short HEAD))"
echo
echo "- machine: $(nproc) vCPU $(lscpu | sed -n 's/^Model name: *//p'), $(mpirun --version | head -1)"
echo "- command: benchmarks/distributed_scaling.sh ${data[*]} --steps $steps"
echo "- ${steps} meta-steps per run, the first left out; data: ${data[1]:-the embedded glyphs}"
echo
echo "| workload | layout | ms a step | ms in the collective |"
echo "|---|---|---|---|"
for algo in maml protonet; do
  args=(--algo "$algo" --steps "$steps" "${data[@]}")
  [ "$algo" = protonet ] && args+=(--meta-batch 2)
  # (an assignment, so that a failed run ends the script under set -e)
  one=$(mean_ms taskset -c 0 "$example" "${args[@]}" --threads 1)
  two=$(mean_ms "$example" "${args[@]}" --threads 2)
  ranks=$(mean_ms "${mpi[@]}" "$example" "${args[@]}" --threads 1)
  ordered=$(mean_ms "${mpi[@]}" "$example" "${args[@]}" --threads 1 --deterministic)
  echo "| $algo | 1 process x 1 thread | $one |"
  echo "| $algo | 1 process x 2 threads | $two |"
  echo "| $algo | 2 ranks x 1 thread | $ranks |"
  echo "| $algo | 2 ranks x 1 thread, deterministic | $ordered |"
done
echo
echo "Collectives alone (2 ranks, one node):"
echo
maml=$("${mpi[@]}" "$build/benchmarks/bench_collective" --bytes 449080 --tasks 32)
protonet=$("${mpi[@]}" "$build/benchmarks/bench_collective" --bytes 447780 --tasks 2)
echo "    $maml"
echo "    $protonet"
