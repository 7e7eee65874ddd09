# Dependencies come from the system (Debian packages); nothing is downloaded.
find_package(Eigen3 3.3 REQUIRED NO_MODULE)
find_package(Threads REQUIRED)
find_package(PNG REQUIRED)
find_package(nlohmann_json 3.2 REQUIRED)
# Message, table and number formatting in src/, the examples and the benchmarks
# (Debian: libfmt-dev); no public header includes it.
find_package(fmt 9 REQUIRED CONFIG)
# Portable SIMD with run-time dispatch for the hand-written kernels (Debian: libhwy-dev).
find_package(hwy 1.0 REQUIRED CONFIG)
if(METALEARN_BUILD_TESTS)
  find_package(GTest REQUIRED)
endif()
if(METALEARN_BUILD_BENCHMARKS)
  find_package(benchmark REQUIRED)
endif()
if(METALEARN_BUILD_EXAMPLES OR METALEARN_BUILD_CLI)
  # command lines of the example programs and of the metalearn command
  find_package(CLI11 2.1 REQUIRED CONFIG)
endif()
if(METALEARN_USE_OPENBLAS)
  include(MetalearnOpenBLAS)  # the single-threaded OpenBLAS as metalearn_deps::openblas
  if(NOT TARGET metalearn_deps::openblas)
    message(FATAL_ERROR
      "METALEARN_USE_OPENBLAS is ON but the single-threaded OpenBLAS was not found "
      "(Debian: apt-get install libopenblas-serial-dev; or set METALEARN_OPENBLAS_LIBRARY and "
      "METALEARN_OPENBLAS_INCLUDE_DIR), or configure with -DMETALEARN_USE_OPENBLAS=OFF for Eigen's GEMM")
  endif()
  message(STATUS "metalearn: convolution GEMMs by ${METALEARN_OPENBLAS_LIBRARY}")
endif()
