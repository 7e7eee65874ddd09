# Cross compilation for ARM64 Linux from a Debian x86-64 host with Debian's cross
# compiler (g++-aarch64-linux-gnu) and arm64 multiarch packages (libpng-dev:arm64,
# libhwy-dev:arm64, ...). Executables built here run under qemu-aarch64, which
# CMake uses as the emulator (ctest, gtest discovery). scripts/cross-arm64 uses it.
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)

set(CMAKE_C_COMPILER aarch64-linux-gnu-gcc)
set(CMAKE_CXX_COMPILER aarch64-linux-gnu-g++)
# Multiarch: arm64 libraries and their CMake packages are in /usr/lib/aarch64-linux-gnu,
# headers in /usr/include (shared with the host) and /usr/include/aarch64-linux-gnu.
set(CMAKE_LIBRARY_ARCHITECTURE aarch64-linux-gnu)

set(CMAKE_FIND_ROOT_PATH /usr/aarch64-linux-gnu /usr/lib/aarch64-linux-gnu)
# Programs (cmake, pkg-config) are the host's; libraries, headers and packages are
# searched in the root path first and then in /usr, where CMAKE_LIBRARY_ARCHITECTURE
# picks lib/aarch64-linux-gnu over the host's lib/x86_64-linux-gnu.
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY BOTH)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE BOTH)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE BOTH)

find_program(_metalearn_qemu NAMES qemu-aarch64 qemu-aarch64-static)
if(_metalearn_qemu)
  set(CMAKE_CROSSCOMPILING_EMULATOR "${_metalearn_qemu};-L;/usr/aarch64-linux-gnu")
endif()
unset(_metalearn_qemu CACHE)
