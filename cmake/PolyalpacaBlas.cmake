# Route Eigen's large float/double GEMMs to an optimised BLAS (Eigen docs: "Using BLAS/LAPACK from Eigen";
# measured ~1.8x over Eigen's own GEMM, docs PERFORMANCE §5.9). OpenBLAS is preferred; a BLA_VENDOR the
# user sets wins; otherwise any BLAS that FindBLAS knows is the fallback.
# Sets POLYALPACA_WITH_BLAS and POLYALPACA_BLAS_VENDOR (the vendor that found it, "" for any) for the package config.
set(POLYALPACA_WITH_BLAS OFF)
set(POLYALPACA_BLAS_VENDOR "")
if(POLYALPACA_USE_OPENBLAS)
  if(DEFINED BLA_VENDOR)
    set(POLYALPACA_BLAS_VENDOR "${BLA_VENDOR}")
    find_package(BLAS QUIET)
  else()
    set(BLA_VENDOR OpenBLAS)
    find_package(BLAS QUIET)
    unset(BLA_VENDOR)
    if(BLAS_FOUND)
      set(POLYALPACA_BLAS_VENDOR OpenBLAS)
    else()
      find_package(BLAS QUIET)
    endif()
  endif()

  if(BLAS_FOUND AND TARGET BLAS::BLAS)
    target_compile_definitions(polyalpaca INTERFACE EIGEN_USE_BLAS)
    if(POLYALPACA_BLAS_VENDOR STREQUAL "OpenBLAS")
      target_compile_definitions(polyalpaca INTERFACE POLYALPACA_OPENBLAS)  # enables the kernel check in cpu/blas.hpp
    endif()
    target_link_libraries(polyalpaca INTERFACE BLAS::BLAS)
    set(POLYALPACA_WITH_BLAS ON)
    message(STATUS "polyalpaca: Eigen GEMMs go to BLAS ${POLYALPACA_BLAS_VENDOR} (${BLAS_LIBRARIES})")
  else()
    message(STATUS "polyalpaca: no BLAS found; Eigen uses its own GEMM")
  endif()
endif()
