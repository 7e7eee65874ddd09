# All options of the project. Tests, benchmarks and examples are built by default
# only when metalearn is the top-level project (not when it is a subproject).
option(METALEARN_BUILD_TESTS "Build the test suite" ${PROJECT_IS_TOP_LEVEL})
option(METALEARN_BUILD_BENCHMARKS "Build the Google Benchmark suite" ${PROJECT_IS_TOP_LEVEL})
option(METALEARN_BUILD_EXAMPLES "Build the examples" ${PROJECT_IS_TOP_LEVEL})
option(METALEARN_WERROR "Treat warnings as errors in metalearn's own targets" ${PROJECT_IS_TOP_LEVEL})
set(METALEARN_SANITIZE "" CACHE STRING "Sanitizers for our targets: address;undefined or thread")
set(METALEARN_ARCH_FLAGS "-march=native" CACHE STRING
  "Code generation flags for metalearn's targets (empty for the compiler default); Eigen's kernels need AVX2/FMA to reach the GEMM peak")
option(METALEARN_USE_OPENBLAS
  "Compute the convolution GEMMs with single-threaded OpenBLAS (Debian: libopenblas-serial-dev); OFF uses Eigen's GEMM"
  ON)
