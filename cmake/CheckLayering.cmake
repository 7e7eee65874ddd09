# Run as: cmake -DROOT=<source dir> -P CheckLayering.cmake
#
# Reads every public header's includes of "metalearn/..." and fails on any include that
# the layer graph below does not allow, and when one algorithm includes another (the
# shared common, meta_learner, episodic and detail headers are not algorithms).
#
# A header's layer is its first folder under include/metalearn/, except that
# tensor/ops/ is the ops layer and autograd's tools written with the ops (gradcheck,
# functional) are the autograd-tools layer above them. Umbrellas and other top-level
# headers (metalearn.hpp, nn.hpp, version.hpp) may include anything; an include of an
# umbrella counts as an include of its layer.
# docs/architecture.md explains the graph.

set(_layers core tensor autograd ops autograd-tools nn optim data env algorithms io train distributed)
set(_may_core "")
set(_may_tensor core)
set(_may_autograd core tensor)
set(_may_ops core tensor autograd)
set(_may_autograd-tools core tensor autograd ops)
set(_may_nn core tensor autograd ops)
set(_may_optim core tensor autograd ops nn)
set(_may_data core tensor)
set(_may_env core tensor)
set(_may_algorithms core tensor autograd ops nn optim data env)
# io saves modules' parameters and optimizers' states, so it knows their types.
set(_may_io core tensor nn optim)
set(_may_train core tensor autograd ops nn optim data env algorithms io)
set(_may_distributed core tensor autograd ops nn optim data env algorithms io train)

# _layer_of(<path relative to include/metalearn> <out var>): the layer, or "" when the
# path is not in a layer.
function(_layer_of _path _out)
  if(_path MATCHES "^tensor/ops(/|\\.hpp$)")
    set(${_out} ops PARENT_SCOPE)
    return()
  endif()
  if(_path MATCHES "^autograd/(gradcheck|functional)\\.hpp$")
    set(${_out} autograd-tools PARENT_SCOPE)
    return()
  endif()
  string(REGEX MATCH "^[^/]+" _first "${_path}")
  string(REGEX REPLACE "\\.hpp$" "" _first "${_first}")
  list(FIND _layers "${_first}" _i)
  if(_i EQUAL -1)
    set(${_out} "" PARENT_SCOPE)
  else()
    set(${_out} "${_first}" PARENT_SCOPE)
  endif()
endfunction()

# _method_of(<path> <out var>): algorithms/<method> with "_impl" dropped, or "" for the
# shared headers of the algorithms layer.
function(_method_of _path _out)
  string(REGEX MATCH "^algorithms/[^/.]+" _m "${_path}")
  string(REGEX REPLACE "_impl$" "" _m "${_m}")
  if(_m MATCHES "^algorithms/(common|meta_learner|episodic|detail)$")
    set(_m "")
  endif()
  set(${_out} "${_m}" PARENT_SCOPE)
endfunction()

file(GLOB_RECURSE _files "${ROOT}/include/metalearn/*.hpp")
if(NOT _files)
  message(FATAL_ERROR "CheckLayering: no headers under ${ROOT}/include/metalearn")
endif()
set(_errors "")
foreach(_file IN LISTS _files)
  file(RELATIVE_PATH _rel "${ROOT}/include/metalearn" "${_file}")
  if(NOT _rel MATCHES "/")
    continue()  # an umbrella or another top-level header
  endif()
  _layer_of("${_rel}" _own)
  if(NOT _own)
    string(APPEND _errors "  ${_rel} is in no layer (a folder the graph does not know)\n")
    continue()
  endif()
  file(STRINGS "${_file}" _includes REGEX "^[ \t]*#[ \t]*include[ \t]*\"metalearn/")
  foreach(_line IN LISTS _includes)
    string(REGEX REPLACE ".*\"metalearn/([^\"]+)\".*" "\\1" _target "${_line}")
    _layer_of("${_target}" _dep)
    if(NOT _dep)
      if(NOT _target MATCHES "/")
        continue()  # a top-level header such as version.hpp
      endif()
      string(APPEND _errors "  ${_rel} includes metalearn/${_target}, which is in no layer\n")
      continue()
    endif()
    if(NOT _dep STREQUAL _own)
      list(FIND _may_${_own} "${_dep}" _allowed)
      if(_allowed EQUAL -1)
        string(APPEND _errors "  ${_rel} (layer ${_own}) includes metalearn/${_target} "
                              "(layer ${_dep}); ${_own} may use: ${_may_${_own}}\n")
      endif()
    elseif(_own STREQUAL "algorithms")
      _method_of("${_rel}" _a)
      _method_of("${_target}" _b)
      if(_a AND _b AND NOT _a STREQUAL _b)
        string(APPEND _errors "  ${_rel} includes another algorithm: metalearn/${_target}\n")
      endif()
      if(NOT _a AND _b)
        string(APPEND _errors "  ${_rel} (shared by the algorithms) includes one algorithm: "
                              "metalearn/${_target}\n")
      endif()
    endif()
  endforeach()
endforeach()
if(_errors)
  message(FATAL_ERROR "Layering violations:\n${_errors}")
endif()
message(STATUS "Layering check passed for ${ROOT}/include/metalearn")
