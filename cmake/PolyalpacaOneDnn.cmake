# bf16 GEMMs on CPUs with AVX512_BF16 or AMX (backend/cpu/bf16_gemm.hpp, GemmMath::Bf16) go through oneDNN 2's matmul
# C API (Debian 12: libdnnl-dev, oneDNN 2.6). Without it the CPU backend multiplies in fp32 only.
# Sets POLYALPACA_WITH_ONEDNN for the package config.
option(POLYALPACA_USE_ONEDNN "Offer bf16 CPU GEMMs through oneDNN when it is found" ON)
set(POLYALPACA_WITH_ONEDNN OFF)
if(POLYALPACA_USE_ONEDNN)
  # Debian's oneDNN is built with the OpenCL GPU runtime, and its package config requires OpenCL's headers
  # (ocl-icd-opencl-dev, a Recommends of libdnnl-dev): without them that config stops the configure, so look first.
  find_package(OpenCL QUIET)
  if(OpenCL_FOUND)
    find_package(dnnl CONFIG QUIET)
  else()
    set(dnnl_FOUND FALSE)
  endif()
  if(dnnl_FOUND AND dnnl_VERSION VERSION_GREATER_EQUAL 3)
    # oneDNN 3 replaced the operation descriptors of the C API that backend/cpu/bf16_gemm.hpp calls.
    message(STATUS "polyalpaca: oneDNN ${dnnl_VERSION} found, but bf16 CPU GEMMs are written for oneDNN 2 (Debian 12's "
                   "2.6); CPU GEMMs are fp32 only")
  elseif(dnnl_FOUND AND TARGET DNNL::dnnl)
    target_compile_definitions(polyalpaca INTERFACE POLYALPACA_ONEDNN)
    target_link_libraries(polyalpaca INTERFACE DNNL::dnnl)
    set(POLYALPACA_WITH_ONEDNN ON)
    message(STATUS "polyalpaca: bf16 CPU GEMMs through oneDNN ${dnnl_VERSION}")
  else()
    message(STATUS "polyalpaca: no oneDNN found; CPU GEMMs are fp32 only (Debian: libdnnl-dev ocl-icd-opencl-dev)")
  endif()
endif()
