# NCCL, the communicator of data-parallel training on the CUDA backend (include/polyalpaca/distributed/nccl.cuh),
# with MPI to start the ranks and carry NCCL's unique id. NCCL ships with the CUDA toolkit (or as libnccl-dev).
# Defines polyalpaca_nccl (alias polyalpaca::nccl): polyalpaca::cuda, polyalpaca::mpi and libnccl, for the programs
# that include distributed/nccl.cuh. Sets POLYALPACA_WITH_NCCL. Needs the CUDA backend and MPI; without them, or
# without NCCL, everything else builds as before.
set(POLYALPACA_WITH_NCCL OFF)
if(NOT POLYALPACA_WITH_CUDA OR NOT POLYALPACA_WITH_MPI)
  return()
endif()
find_path(POLYALPACA_NCCL_INCLUDE_DIR nccl.h HINTS ${CUDAToolkit_INCLUDE_DIRS})
find_library(POLYALPACA_NCCL_LIBRARY nccl HINTS ${CUDAToolkit_LIBRARY_DIR} ${CUDAToolkit_LIBRARY_ROOT}/lib
                                                 ${CUDAToolkit_LIBRARY_ROOT}/lib64)
if(NOT POLYALPACA_NCCL_INCLUDE_DIR OR NOT POLYALPACA_NCCL_LIBRARY)
  message(STATUS "polyalpaca: NCCL not found: data-parallel training on GPUs is off")
  return()
endif()
add_library(polyalpaca_nccl INTERFACE)
add_library(polyalpaca::nccl ALIAS polyalpaca_nccl)
target_include_directories(polyalpaca_nccl INTERFACE ${POLYALPACA_NCCL_INCLUDE_DIR})
target_link_libraries(polyalpaca_nccl INTERFACE polyalpaca::cuda polyalpaca::mpi ${POLYALPACA_NCCL_LIBRARY})
set(POLYALPACA_WITH_NCCL ON)
message(STATUS "polyalpaca: NCCL found (${POLYALPACA_NCCL_LIBRARY}): data-parallel training on GPUs")
