# Shared by the consumer projects: metalearn_distributed_program(<target>) builds
# distributed_program.cpp against metalearn::distributed and adds a test that runs it
# on 2 ranks under mpiexec (each rank checks its parameters against the single-process
# run's bits; mpiexec fails when a rank does). Used when METALEARN_CONSUMER_DISTRIBUTED
# is ON: scripts/consumer-test sets it when the installed package has the component.
find_package(MPI REQUIRED COMPONENTS CXX)
set(_metalearn_distributed_consumer_dir "${CMAKE_CURRENT_LIST_DIR}")

function(metalearn_distributed_program target)
  add_executable(${target} "${_metalearn_distributed_consumer_dir}/distributed_program.cpp")
  target_link_libraries(${target} PRIVATE metalearn::distributed)
  metalearn_consumer_flags(${target})  # readme_program.cmake
  set(_mpi_flags ${MPIEXEC_PREFLAGS})
  if(MPI_CXX_LIBRARY_VERSION_STRING MATCHES "Open MPI")
    list(APPEND _mpi_flags --oversubscribe)
  endif()
  add_test(NAME ${target}
    COMMAND ${MPIEXEC_EXECUTABLE} ${MPIEXEC_NUMPROC_FLAG} 2 ${_mpi_flags}
            "$<TARGET_FILE:${target}>" ${MPIEXEC_POSTFLAGS})
  # Open MPI refuses root without the two variables.
  set_tests_properties(${target} PROPERTIES
    ENVIRONMENT "OMPI_ALLOW_RUN_AS_ROOT=1;OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1"
    FAIL_REGULAR_EXPRESSION "DIFFER")
endfunction()
