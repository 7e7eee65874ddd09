# Dependencies come from the system (Debian packages); nothing is downloaded.
find_package(Eigen3 3.3 REQUIRED NO_MODULE)
find_package(Threads REQUIRED)
find_package(PNG REQUIRED)
find_package(nlohmann_json 3.2 REQUIRED)
if(METALEARN_BUILD_TESTS)
  find_package(GTest REQUIRED)
endif()
if(METALEARN_BUILD_BENCHMARKS)
  find_package(benchmark REQUIRED)
endif()
if(METALEARN_BUILD_EXAMPLES)
  find_package(CLI11 2.1 REQUIRED CONFIG)  # command lines of the example programs
endif()
