# Shared by the consumer projects: metalearn_readme_program(<target>) builds the
# README's first program (extracted at build time from README.md as it stands) as
# <target>, and adds a test that runs it and checks the numbers it prints.
#
# METALEARN_SOURCE_DIR: the metalearn checkout (default: three levels up).
# METALEARN_CONSUMER_CXX_FLAGS: extra flags for the consumer's own code only, e.g.
#   -march=x86-64-v3, to check that a program compiled with other flags than the
#   library's links and computes the same.
set(METALEARN_SOURCE_DIR "${CMAKE_CURRENT_LIST_DIR}/../.." CACHE PATH "The metalearn source tree")
set(METALEARN_CONSUMER_CXX_FLAGS "" CACHE STRING "Extra flags for the consumer's own sources")
get_filename_component(METALEARN_SOURCE_DIR "${METALEARN_SOURCE_DIR}" ABSOLUTE)
set(_metalearn_consumer_dir "${CMAKE_CURRENT_LIST_DIR}")

# The consumer's own flags (METALEARN_CONSUMER_CXX_FLAGS) on <target>.
function(metalearn_consumer_flags target)
  if(METALEARN_CONSUMER_CXX_FLAGS)
    separate_arguments(_flags UNIX_COMMAND "${METALEARN_CONSUMER_CXX_FLAGS}")
    target_compile_options(${target} PRIVATE ${_flags})
  endif()
endfunction()

function(metalearn_readme_program target)
  set(_readme "${METALEARN_SOURCE_DIR}/README.md")
  set(_cpp "${CMAKE_CURRENT_BINARY_DIR}/${target}.cpp")
  add_custom_command(OUTPUT "${_cpp}"
    COMMAND "${CMAKE_COMMAND}" "-DREADME=${_readme}" "-DSECTION=A first program"
            "-DOUT=${_cpp}" -P "${_metalearn_consumer_dir}/extract_readme.cmake"
    DEPENDS "${_readme}" "${_metalearn_consumer_dir}/extract_readme.cmake"
    COMMENT "Extracting the first program from README.md"
    VERBATIM)
  add_executable(${target} "${_cpp}")
  target_link_libraries(${target} PRIVATE metalearn::metalearn)
  metalearn_consumer_flags(${target})
  add_test(NAME ${target}
    COMMAND "${_metalearn_consumer_dir}/check-first-program" "$<TARGET_FILE:${target}>")
endfunction()
