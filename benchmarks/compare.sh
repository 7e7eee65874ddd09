#!/usr/bin/env bash
# Side-by-side comparison of metalearn and PyTorch on the same meta-learning workloads.
#
#   benchmarks/compare.sh [run_compare.py options, e.g. --rounds 3 --workloads sinusoid_maml2]
#
# Installs what it needs (Debian's python3-torch and OpenBLAS, so PyTorch's BLAS
# calls do not fall back to the reference BLAS), builds bench_compare in Release in
# its own build directory ($BUILD_DIR, default <repo>/build-cmp), checks that both
# sides compute the same meta-gradient, then times both sides in alternation and
# writes benchmarks/results/compare-<date>.md. See benchmarks/compare/run_compare.py
# for the protocol and how memory is measured.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD_DIR="${BUILD_DIR:-$ROOT/build-cmp}"
PYTHON="${PYTHON:-/usr/bin/python3}"   # Debian's python (a pyenv python3 has no torch)
OUT="${OUT:-$ROOT/benchmarks/results/compare-$(date +%Y-%m-%d).md}"

"$ROOT/scripts/install-deps"  # what metalearn builds with
need_apt=()
"$PYTHON" -c "import torch" 2>/dev/null || need_apt+=(python3-torch)
# Debian's torch calls the system libblas.so.3; without a threaded OpenBLAS that is the
# unoptimised reference BLAS or metalearn's single-threaded OpenBLAS.
if ! ls /usr/lib/x86_64-linux-gnu/openblas-{openmp,pthread}/libblas.so.3 >/dev/null 2>&1; then
  need_apt+=(libopenblas0-openmp)
fi
if ((${#need_apt[@]})); then
  echo "installing: ${need_apt[*]}"
  SUDO=""
  [[ $(id -u) -ne 0 ]] && SUDO="sudo"
  $SUDO apt-get update -qq
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}"
fi
"$PYTHON" -c "import torch; print('PyTorch', torch.__version__)"

cmake -S "$ROOT" -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=Release -DMETALEARN_BUILD_TESTS=OFF \
  -DMETALEARN_BUILD_EXAMPLES=OFF -DMETALEARN_BUILD_BENCHMARKS=ON >/dev/null
cmake --build "$BUILD_DIR" --target bench_compare -j"$(nproc)"

mkdir -p "$(dirname "$OUT")"
exec "$PYTHON" "$ROOT/benchmarks/compare/run_compare.py" \
  --driver "$BUILD_DIR/benchmarks/bench_compare" --python "$PYTHON" --out "$OUT" "$@"
