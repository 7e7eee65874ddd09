# Finds the single-threaded OpenBLAS and defines the imported target
# metalearn_deps::openblas for it. Used by metalearn's own build and, for a static
# libmetalearn (whose link interface names this target as $<LINK_ONLY:...>), by the
# installed metalearnConfig.cmake, so the exported package holds no path of the
# machine that built it: the consumer's machine is searched again.
#
# The sequential build, never the threaded one that libopenblas.so may point to:
# metalearn's threads call the GEMM, so it must not start threads of its own. Debian
# installs it beside the other variants; elsewhere set METALEARN_OPENBLAS_LIBRARY and
# METALEARN_OPENBLAS_INCLUDE_DIR by hand.
if(NOT TARGET metalearn_deps::openblas)
  find_path(METALEARN_OPENBLAS_INCLUDE_DIR cblas.h
    PATHS /usr/include/${CMAKE_LIBRARY_ARCHITECTURE}/openblas-serial NO_DEFAULT_PATH)
  find_library(METALEARN_OPENBLAS_LIBRARY NAMES openblas
    PATHS /usr/lib/${CMAKE_LIBRARY_ARCHITECTURE}/openblas-serial NO_DEFAULT_PATH)
  if(METALEARN_OPENBLAS_INCLUDE_DIR AND METALEARN_OPENBLAS_LIBRARY)
    add_library(metalearn_deps::openblas UNKNOWN IMPORTED)
    set_target_properties(metalearn_deps::openblas PROPERTIES
      IMPORTED_LOCATION "${METALEARN_OPENBLAS_LIBRARY}"
      INTERFACE_INCLUDE_DIRECTORIES "${METALEARN_OPENBLAS_INCLUDE_DIR}")
  endif()
endif()
