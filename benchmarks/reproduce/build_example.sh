# shellcheck shell=bash
# Sourced by the reproduce scripts: `build_example TARGET` installs what is missing,
# builds example TARGET in Release under build/release (tests and benchmarks off), sets
# $build to that folder, and prints the machine, the date and the commit for the record.
# Needs $root, the repository's root.
build_example() {
  : "${root:?build_example needs \$root, the repository root}"
  "$root/scripts/install-deps"
  build="$root/build/release"
  cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release -DMETALEARN_BUILD_TESTS=OFF \
    -DMETALEARN_BUILD_BENCHMARKS=OFF -DMETALEARN_BUILD_EXAMPLES=ON >/dev/null
  cmake --build "$build" --target "$1" -j"$(nproc)"
  echo "machine: $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) cores; $(date -u +%FT%TZ)"
  echo "commit: $(git -C "$root" rev-parse --short HEAD)"
}
