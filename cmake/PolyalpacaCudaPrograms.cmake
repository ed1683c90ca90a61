# Functions for CUDA programs on polyalpaca::cuda, used by this project and by polyalpaca_add_trainer(BACKEND cuda)
# (installed with the package).
include_guard(GLOBAL)

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
