# MPI, the communicator of data-parallel training on the CPU backend (include/polyalpaca/distributed/mpi.hpp;
# Debian: libopenmpi-dev openmpi-bin). Defines polyalpaca_mpi (alias polyalpaca::mpi): polyalpaca plus MPI's C API
# library, for the programs that include distributed/mpi.hpp, and POLYALPACA_MPI_LAUNCH: the command that starts N
# ranks here, `mpiexec --oversubscribe -np` (plus --allow-run-as-root as root), N appended by the caller.
# Sets POLYALPACA_WITH_MPI. Without MPI everything else builds as before and trains on one rank.
set(POLYALPACA_WITH_MPI OFF)
set(MPI_CXX_SKIP_MPICXX ON)  # MPI's C API from C++: the long-removed C++ bindings are not needed
find_package(MPI COMPONENTS CXX)
if(NOT MPI_CXX_FOUND OR NOT MPIEXEC_EXECUTABLE)
  message(STATUS "polyalpaca: MPI not found: data-parallel training on the CPU and its tests are off "
                 "(apt-get install libopenmpi-dev openmpi-bin)")
  return()
endif()

add_library(polyalpaca_mpi INTERFACE)
add_library(polyalpaca::mpi ALIAS polyalpaca_mpi)
target_link_libraries(polyalpaca_mpi INTERFACE polyalpaca MPI::MPI_CXX)
set(POLYALPACA_MPI_LAUNCH ${MPIEXEC_EXECUTABLE})
execute_process(COMMAND ${MPIEXEC_EXECUTABLE} --version OUTPUT_VARIABLE mpiexec_version ERROR_QUIET)
if(mpiexec_version MATCHES "Open MPI|OpenRTE")
  list(APPEND POLYALPACA_MPI_LAUNCH --oversubscribe)  # more ranks than cores: CI's two ranks on any machine
  execute_process(COMMAND id -u OUTPUT_VARIABLE uid OUTPUT_STRIP_TRAILING_WHITESPACE ERROR_QUIET)
  if(uid STREQUAL "0")
    list(APPEND POLYALPACA_MPI_LAUNCH --allow-run-as-root)  # Open MPI refuses root otherwise
  endif()
endif()
list(APPEND POLYALPACA_MPI_LAUNCH ${MPIEXEC_NUMPROC_FLAG})
set(POLYALPACA_WITH_MPI ON)
list(JOIN POLYALPACA_MPI_LAUNCH " " launch)
message(STATUS "polyalpaca: MPI found (${MPI_CXX_VERSION}): data-parallel tests launch with ${launch} N")
