# Build options of vahanorm, in one place.

option(VAHANORM_BUILD_IO "Build the image and slide I/O (needs libpng, libjpeg, libtiff, OpenSlide)" ON)
option(VAHANORM_BUILD_APP "Build the vahanorm command-line tool (needs the I/O, CLI11, spdlog)" ON)
option(VAHANORM_BUILD_TESTS "Build the tests (needs Catch2 v2)" ON)
option(VAHANORM_BUILD_PYTHON "Build the Python module vahanorm._core (needs nanobind; pip install ./python sets it)" OFF)
option(VAHANORM_WERROR "Treat compiler warnings as errors" OFF)
option(VAHANORM_NATIVE "Tune for this machine's CPU (-march=native); off for portable binaries" OFF)
set(VAHANORM_SANITIZE "" CACHE STRING "Sanitizers to build with, e.g. address,undefined")
set(VAHANORM_CUDA "AUTO" CACHE STRING "Build the CUDA backend: AUTO (when a toolkit is found), ON, OFF")
set_property(CACHE VAHANORM_CUDA PROPERTY STRINGS AUTO ON OFF)

if(NOT CMAKE_BUILD_TYPE AND NOT CMAKE_CONFIGURATION_TYPES)
  set(CMAKE_BUILD_TYPE Release CACHE STRING "Build type" FORCE)
endif()

set(CMAKE_CXX_STANDARD 17)
set(CMAKE_CXX_STANDARD_REQUIRED ON)
set(CMAKE_CXX_EXTENSIONS OFF)
set(CMAKE_EXPORT_COMPILE_COMMANDS ON)

if(VAHANORM_BUILD_APP AND NOT VAHANORM_BUILD_IO)
  message(FATAL_ERROR "VAHANORM_BUILD_APP needs VAHANORM_BUILD_IO")
endif()
if(VAHANORM_BUILD_PYTHON AND NOT VAHANORM_BUILD_IO)
  message(FATAL_ERROR "VAHANORM_BUILD_PYTHON needs VAHANORM_BUILD_IO")
endif()

# Warnings for our own C++ code; nvcc gets its own set in cuda/ (generator expressions keep
# host-only flags away from it).
add_library(vahanorm_warnings INTERFACE)
target_compile_options(vahanorm_warnings INTERFACE
  $<$<COMPILE_LANGUAGE:CXX>:-Wall -Wextra -Wpedantic -Wshadow -Wconversion -Wno-sign-conversion>
  $<$<AND:$<COMPILE_LANGUAGE:CXX>,$<BOOL:${VAHANORM_WERROR}>>:-Werror>)

# The per-pixel math must round identically on every backend: no contraction of a*b+c into
# fused multiply-adds on the host (nvcc gets --fmad=false in cuda/).
# -fno-trapping-math changes no result; it lets GCC turn the selects of px::solve into vector code.
add_compile_options($<$<COMPILE_LANGUAGE:CXX>:-ffp-contract=off> $<$<COMPILE_LANGUAGE:CXX>:-fno-trapping-math>)
if(VAHANORM_NATIVE)
  add_compile_options($<$<COMPILE_LANGUAGE:CXX>:-march=native>)
endif()

if(VAHANORM_SANITIZE)
  add_compile_options(-fsanitize=${VAHANORM_SANITIZE} -fno-omit-frame-pointer -fno-sanitize-recover=all)
  add_link_options(-fsanitize=${VAHANORM_SANITIZE})
endif()

# CUDA feature detection.
set(VAHANORM_HAVE_CUDA OFF)
if(NOT VAHANORM_CUDA STREQUAL "OFF")
  include(CheckLanguage)
  check_language(CUDA)
  find_package(CUDAToolkit QUIET)
  if(CMAKE_CUDA_COMPILER AND CUDAToolkit_FOUND)
    set(VAHANORM_HAVE_CUDA ON)
  elseif(VAHANORM_CUDA STREQUAL "ON")
    message(FATAL_ERROR "VAHANORM_CUDA=ON but no CUDA compiler/toolkit was found")
  else()
    message(STATUS "vahanorm: no CUDA toolkit found; building the CPU backend only")
  endif()
endif()
