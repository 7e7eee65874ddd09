# All options of the project. Tests, benchmarks and examples are built by default
# only when metalearn is the top-level project (not when it is a subproject).
option(METALEARN_BUILD_TESTS "Build the test suite" ${PROJECT_IS_TOP_LEVEL})
option(METALEARN_BUILD_BENCHMARKS "Build the Google Benchmark suite" ${PROJECT_IS_TOP_LEVEL})
option(METALEARN_BUILD_EXAMPLES "Build the examples" ${PROJECT_IS_TOP_LEVEL})
option(METALEARN_BUILD_CLI "Build (and install) the metalearn command-line program"
  ${PROJECT_IS_TOP_LEVEL})
# Warnings are errors in CI and developer builds (scripts/test with METALEARN_WERROR=ON, the
# "dev" preset), never by default: a user's newer compiler must not break the build.
option(METALEARN_WERROR "Treat warnings as errors in metalearn's own targets" OFF)
set(METALEARN_SANITIZE "" CACHE STRING "Sanitizers for our targets: address;undefined or thread")
# The hot kernels are compiled for every instruction set and chosen at run time, so the
# default build runs on any CPU of its architecture. -march=native is an opt-in for a
# build that will only ever run on the machine that built it; it applies to metalearn's
# own sources and is never exported to consumers.
set(METALEARN_ARCH_FLAGS "" CACHE STRING
  "Extra code generation flags for metalearn's own sources, e.g. -march=native (default: none, portable)")
option(METALEARN_USE_OPENBLAS
  "Compute the convolution GEMMs with single-threaded OpenBLAS (Debian: libopenblas-serial-dev); OFF uses Eigen's GEMM"
  ON)
option(METALEARN_FUZZ
  "Build the libFuzzer targets of tests/fuzz (Clang only); adds coverage instrumentation (-fsanitize=fuzzer-no-link) to metalearn's targets"
  OFF)
# The API reference: a `docs` target (never part of `all`) running Doxygen over the
# public headers (docs/CMakeLists.txt). Needs Doxygen 1.9 or later (Debian: doxygen).
option(METALEARN_BUILD_DOCS "Add the docs target: the API reference as HTML, by Doxygen" OFF)
