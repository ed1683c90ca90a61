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

# polyalpaca_cuda_settings(), polyalpaca_add_cuda_executable(), polyalpaca_flash_head_dims(): cmake/PolyalpacaCudaPrograms.cmake.
include(${CMAKE_CURRENT_LIST_DIR}/PolyalpacaCudaPrograms.cmake)

# What the test build (cmake/PolyalpacaTestBuild.cmake) does with the CUDA programs. "full": compiles them for every
# architecture of CMAKE_CUDA_ARCHITECTURES and runs their tests. "front-end": compiles them front end only (every
# template instantiated, no code) and their tests report themselves skipped, as they would without a GPU; the
# embedded study runner the tests run gets no CUDA engine. "auto" (the default): full when `nvidia-smi -L` lists a
# GPU at configure time, else front-end. `cmake --build` without a target (all) always builds every program in full;
# bench/device_check.sh configures with full.
set(POLYALPACA_CUDA_TEST_BUILD auto CACHE STRING
    "CUDA programs in the test build: full, front-end, or auto (full when a GPU is visible at configure time)")
set_property(CACHE POLYALPACA_CUDA_TEST_BUILD PROPERTY STRINGS auto full front-end)
if(POLYALPACA_CUDA_TEST_BUILD STREQUAL "auto")
  set(POLYALPACA_CUDA_TESTS_RUN OFF)
  find_program(POLYALPACA_NVIDIA_SMI nvidia-smi)
  if(POLYALPACA_NVIDIA_SMI)
    execute_process(COMMAND ${POLYALPACA_NVIDIA_SMI} -L RESULT_VARIABLE smi_status OUTPUT_VARIABLE smi_gpus
                    ERROR_QUIET TIMEOUT 30)
    if(smi_status EQUAL 0 AND smi_gpus MATCHES "GPU [0-9]")
      set(POLYALPACA_CUDA_TESTS_RUN ON)
    endif()
  endif()
elseif(POLYALPACA_CUDA_TEST_BUILD STREQUAL "full")
  set(POLYALPACA_CUDA_TESTS_RUN ON)
elseif(POLYALPACA_CUDA_TEST_BUILD STREQUAL "front-end")
  set(POLYALPACA_CUDA_TESTS_RUN OFF)
else()
  message(FATAL_ERROR "POLYALPACA_CUDA_TEST_BUILD must be auto, full or front-end, not '${POLYALPACA_CUDA_TEST_BUILD}'")
endif()
if(POLYALPACA_CUDA_TESTS_RUN)
  message(STATUS "polyalpaca: the test build compiles the CUDA programs in full and runs their tests")
else()
  message(STATUS "polyalpaca: no GPU at configure time: the test build compiles the CUDA programs front end only and "
                 "their tests report skipped (-DPOLYALPACA_CUDA_TEST_BUILD=full to build and run them)")
endif()

# polyalpaca_add_cuda_test(NAME name COMMAND command...): a CTest test that runs a CUDA program (label cuda, skipped
# on exit status 77). When the test build compiles the CUDA programs front end only it reports itself skipped.
function(polyalpaca_add_cuda_test)
  cmake_parse_arguments(PARSE_ARGV 0 ARG "" "NAME" "COMMAND")
  if(POLYALPACA_CUDA_TESTS_RUN)
    add_test(NAME ${ARG_NAME} COMMAND ${ARG_COMMAND})
  else()
    add_test(NAME ${ARG_NAME} COMMAND sh -c "echo 'skipped: the test build compiled the CUDA programs front end only \
(no GPU at configure time; -DPOLYALPACA_CUDA_TEST_BUILD=full builds and runs them)'; exit 77")
  endif()
  set_tests_properties(${ARG_NAME} PROPERTIES LABELS cuda SKIP_RETURN_CODE 77)
endfunction()
