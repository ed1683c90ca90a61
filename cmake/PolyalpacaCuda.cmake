# The CUDA backend: finds nvcc (also at /usr/local/cuda/bin when it is not on PATH), enables the CUDA language,
# finds the toolkit and defines polyalpaca_cuda (alias polyalpaca::cuda): polyalpaca plus the CUDA runtime
# (shared) and cuBLASLt. Sets POLYALPACA_WITH_CUDA. Without a CUDA compiler everything else builds as before.
set(POLYALPACA_WITH_CUDA OFF)
if(NOT POLYALPACA_ENABLE_CUDA)
  return()
endif()

if(NOT DEFINED CMAKE_CUDA_COMPILER AND NOT DEFINED ENV{CUDACXX})
  find_program(_polyalpaca_nvcc nvcc NO_CACHE)
  if(NOT _polyalpaca_nvcc AND EXISTS /usr/local/cuda/bin/nvcc)
    set(ENV{CUDACXX} /usr/local/cuda/bin/nvcc)
  endif()
  unset(_polyalpaca_nvcc)
endif()

include(CheckLanguage)
check_language(CUDA)
if(NOT CMAKE_CUDA_COMPILER)
  message(STATUS "polyalpaca: no CUDA compiler found; the CUDA backend and its tests are off")
  return()
endif()

if(NOT DEFINED CMAKE_CUDA_ARCHITECTURES)
  set(CMAKE_CUDA_ARCHITECTURES "80;90")   # A100, H100
endif()
enable_language(CUDA)
find_package(CUDAToolkit)
if(NOT CUDAToolkit_FOUND OR NOT TARGET CUDA::cublasLt)
  message(STATUS "polyalpaca: CUDA compiler found but not the toolkit's cuBLASLt; the CUDA backend is off")
  return()
endif()

add_library(polyalpaca_cuda INTERFACE)
add_library(polyalpaca::cuda ALIAS polyalpaca_cuda)
set_target_properties(polyalpaca_cuda PROPERTIES EXPORT_NAME cuda)
target_link_libraries(polyalpaca_cuda INTERFACE polyalpaca CUDA::cudart CUDA::cublasLt)
# Eigen is used on the host only (views, checks); without this nvcc compiles Eigen for the device as well,
# which is slow and floods the log with Eigen's constexpr warnings.
target_compile_definitions(polyalpaca_cuda INTERFACE $<$<COMPILE_LANGUAGE:CUDA>:EIGEN_NO_CUDA>)
# OpenMP's flags reach C++ files only: pass them to nvcc's host compiler too, so host loops in .cu programs
# (model construction, which draws every weight on the host) run on all cores.
if(POLYALPACA_WITH_OPENMP)
  target_compile_options(polyalpaca_cuda INTERFACE $<$<COMPILE_LANGUAGE:CUDA>:-Xcompiler=-fopenmp>)
endif()
set(POLYALPACA_WITH_CUDA ON)
message(STATUS "polyalpaca: CUDA backend on (nvcc ${CMAKE_CUDA_COMPILER_VERSION}, architectures ${CMAKE_CUDA_ARCHITECTURES})")

# polyalpaca_cuda_settings(TARGET): TARGET's .cu sources compile as C++20 on polyalpaca::cuda, linked (PUBLIC, so
# a program made of such objects links it too) to the shared CUDA runtime polyalpaca::cuda links.
function(polyalpaca_cuda_settings target)
  target_link_libraries(${target} PUBLIC polyalpaca::cuda)
  set_target_properties(${target} PROPERTIES CUDA_RUNTIME_LIBRARY Shared)
  if(DEFINED CMAKE_CUDA20_STANDARD_COMPILE_OPTION)
    set_target_properties(${target} PROPERTIES CUDA_STANDARD 20 CUDA_STANDARD_REQUIRED ON CUDA_EXTENSIONS OFF)
  else()
    target_compile_options(${target} PRIVATE $<$<COMPILE_LANGUAGE:CUDA>:-std=c++20>)  # CMake < 3.26 lacks nvcc's flag
  endif()
endfunction()

# polyalpaca_add_cuda_executable(TARGET SOURCE): a .cu program on polyalpaca::cuda (polyalpaca_cuda_settings), for
# this project's tests and benchmarks.
function(polyalpaca_add_cuda_executable target source)
  add_executable(${target} ${source})
  polyalpaca_cuda_settings(${target})
endfunction()

# polyalpaca_flash_head_dims(TARGET [DIM...]): compile TARGET's flash attention kernels for these head dims only
# (none when no DIM is given; all five by default, backend/cuda/flash_attention_tile.hpp). Each head dim costs a
# translation unit about 3 s of nvcc time.
function(polyalpaca_flash_head_dims target)
  list(JOIN ARGN "\\," dims)  # nvcc splits -D values at unescaped commas
  target_compile_definitions(${target} PRIVATE "POLYALPACA_FLASH_HEAD_DIMS=${dims}")
endfunction()
