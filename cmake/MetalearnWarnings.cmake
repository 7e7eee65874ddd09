# metalearn_set_warnings(<target>): strict warnings on our own targets only.
function(metalearn_set_warnings target)
  if(MSVC)
    target_compile_options(${target} PRIVATE /W4 $<$<BOOL:${METALEARN_WERROR}>:/WX>)
  else()
    target_compile_options(${target} PRIVATE -Wall -Wextra -Wpedantic
      $<$<BOOL:${METALEARN_WERROR}>:-Werror>)
  endif()
  if(METALEARN_SANITIZE)
    string(REPLACE ";" "," _san "${METALEARN_SANITIZE}")
    # Every report fails the run: no recovery after a UBSan finding.
    target_compile_options(${target} PRIVATE -fsanitize=${_san} -fno-sanitize-recover=all
      -fno-omit-frame-pointer)
    target_link_options(${target} PRIVATE -fsanitize=${_san})
  endif()
  if(METALEARN_FUZZ)
    target_compile_options(${target} PRIVATE -fsanitize=fuzzer-no-link)
  endif()
endfunction()
