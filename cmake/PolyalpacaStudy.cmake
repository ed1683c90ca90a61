# The study runner (examples/polyalpaca_study.cpp) and its engines: one translation unit per (preset, backend),
# generated from examples/study_engine.cpp.in and explicitly instantiated there, so the engines of a runner compile
# in parallel and each only once (a runner that shares a preset with another links the same objects).
#
# POLYALPACA_STUDY_PRESETS: the base models polyalpaca_study can train (the embedded study's bloom-study is always
# in). POLYALPACA_STUDY_BACKENDS: cpu and cuda by default, cuda only when the CUDA backend is on
# (cmake/PolyalpacaCuda.cmake).
set(POLYALPACA_STUDY_PRESETS "bloom-560m;bloom-1b1;bloom-1b7;bloom-3b;bloom-7b1" CACHE STRING
    "Presets polyalpaca_study compiles an engine for (study/presets.hpp), e.g. bloom-560m;pythia-410m;open-llama-7b")
set(POLYALPACA_STUDY_BACKENDS "cpu;cuda" CACHE STRING
    "Backends the study runners compile engines for: cpu, cuda (when the CUDA backend is on) or both")

# Every preset study/presets.hpp knows, with its head dim (hidden / heads: the flash kernels a CUDA engine compiles).
# The generated engine checks the head dim against the model's at compile time.
set(POLYALPACA_STUDY_KNOWN_PRESETS
    bloom-study:32 bloom-560m:64 bloom-1b1:96 bloom-1b7:128 bloom-3b:80 bloom-7b1:128
    pythia-70m:64 pythia-160m:64 pythia-410m:64 pythia-1b:256 pythia-1.4b:128 pythia-2.8b:80 pythia-6.9b:128
    pythia-12b:128 open-llama-3b:100 open-llama-7b:128 open-llama-13b:128 llama-7b:128 llama-13b:128)
set(POLYALPACA_STUDY_FLASH_HEAD_DIMS 32 64 80 96 128)  # backend/cuda/flash_attention_tile.hpp's instantiable ones

set(POLYALPACA_STUDY_ENGINE_TEMPLATE ${CMAKE_CURRENT_LIST_DIR}/../examples/study_engine.cpp.in)
set(POLYALPACA_STUDY_TABLE_TEMPLATE ${CMAKE_CURRENT_LIST_DIR}/../examples/study_engines.cpp.in)

# polyalpaca_study_head_dim(PRESET OUT): the preset's head dim, or a configure error naming the known presets.
function(polyalpaca_study_head_dim preset out)
  set(known)
  foreach(entry IN LISTS POLYALPACA_STUDY_KNOWN_PRESETS)
    string(REPLACE ":" ";" pair "${entry}")
    list(GET pair 0 name)
    list(GET pair 1 dim)
    if(name STREQUAL preset)
      set(${out} ${dim} PARENT_SCOPE)
      return()
    endif()
    list(APPEND known ${name})
  endforeach()
  list(JOIN known ", " known)
  message(FATAL_ERROR "POLYALPACA_STUDY_PRESETS names '${preset}', which study/presets.hpp does not know "
                      "(known: ${known})")
endfunction()

# polyalpaca_study_engine(PRESET BACKEND OUT): OUT is the object library of the (PRESET, BACKEND) engine, made on
# the first call and reused after.
function(polyalpaca_study_engine preset backend out)
  string(MAKE_C_IDENTIFIER "${preset}_${backend}" id)
  set(target polyalpaca_study_engine_${id})
  set(${out} ${target} PARENT_SCOPE)
  if(TARGET ${target})
    return()
  endif()
  polyalpaca_study_head_dim(${preset} head_dim)
  set(POLYALPACA_PRESET ${preset})
  set(POLYALPACA_ENGINE_BACKEND ${backend})
  set(POLYALPACA_HEAD_DIM ${head_dim})
  set(POLYALPACA_FACTORY make_engine_${id})
  set(dir ${PROJECT_BINARY_DIR}/study_engines)
  if(backend STREQUAL "cpu")
    set(POLYALPACA_BACKEND "CpuEigen")
    set(POLYALPACA_BACKEND_INCLUDE "")
    configure_file(${POLYALPACA_STUDY_ENGINE_TEMPLATE} ${dir}/${id}.cpp @ONLY)
    add_library(${target} OBJECT ${dir}/${id}.cpp)
    target_link_libraries(${target} PUBLIC polyalpaca::polyalpaca)
    if(POLYALPACA_WITH_MPI)  # data parallel under mpirun (study/model_engine.hpp)
      target_link_libraries(${target} PUBLIC polyalpaca::mpi)
      target_compile_definitions(${target} PRIVATE POLYALPACA_STUDY_MPI)
    endif()
  else()
    set(POLYALPACA_BACKEND "Cuda")
    set(POLYALPACA_BACKEND_INCLUDE "#include <polyalpaca/backend/cuda.cuh>\n#include <polyalpaca/backend/cuda/device_info.cuh>\n")
    configure_file(${POLYALPACA_STUDY_ENGINE_TEMPLATE} ${dir}/${id}.cu @ONLY)
    add_library(${target} OBJECT ${dir}/${id}.cu)
    polyalpaca_cuda_settings(${target})
    if(POLYALPACA_WITH_NCCL)  # data parallel over GPUs under mpirun (study/model_engine.hpp)
      target_link_libraries(${target} PUBLIC polyalpaca::nccl)
      target_compile_definitions(${target} PRIVATE POLYALPACA_STUDY_MPI POLYALPACA_STUDY_NCCL)
    endif()
    # The flash kernels of the preset's head dim, when they exist for it (else attention runs the GEMM path).
    if(head_dim IN_LIST POLYALPACA_STUDY_FLASH_HEAD_DIMS)
      polyalpaca_flash_head_dims(${target} ${head_dim})
    else()
      polyalpaca_flash_head_dims(${target})
    endif()
  endif()
endfunction()

# polyalpaca_add_study_runner(NAME [CPU_ONLY] PRESETS preset...): the study runner NAME with an engine per preset on
# the CPU and, when the CUDA backend is on and CPU_ONLY is not given, on CUDA; its engine table is generated.
function(polyalpaca_add_study_runner name)
  cmake_parse_arguments(PARSE_ARGV 1 ARG "CPU_ONLY" "" "PRESETS")
  foreach(backend IN LISTS POLYALPACA_STUDY_BACKENDS)
    if(NOT backend MATCHES "^(cpu|cuda)$")
      message(FATAL_ERROR "POLYALPACA_STUDY_BACKENDS names '${backend}': cpu, cuda or both")
    endif()
  endforeach()
  set(backends)
  set(cuda 0)
  if("cpu" IN_LIST POLYALPACA_STUDY_BACKENDS)
    list(APPEND backends cpu)
  endif()
  if("cuda" IN_LIST POLYALPACA_STUDY_BACKENDS AND POLYALPACA_WITH_CUDA AND NOT ARG_CPU_ONLY)
    list(APPEND backends cuda)
    set(cuda 1)
  endif()
  if(NOT backends)
    message(FATAL_ERROR "polyalpaca_add_study_runner(${name}): no backend to compile engines for "
                        "(POLYALPACA_STUDY_BACKENDS is '${POLYALPACA_STUDY_BACKENDS}'; cuda needs the CUDA backend)")
  endif()
  set(engines)
  set(declarations)
  set(entries)
  list(REMOVE_DUPLICATES ARG_PRESETS)
  foreach(preset IN LISTS ARG_PRESETS)
    foreach(backend IN LISTS backends)
      polyalpaca_study_engine(${preset} ${backend} engine)
      list(APPEND engines ${engine})
      string(MAKE_C_IDENTIFIER "${preset}_${backend}" id)
      string(APPEND declarations "std::unique_ptr<StudyEngine> make_engine_${id}(EngineOptions const&);\n")
      string(APPEND entries "        {\"${preset}\", \"${backend}\", &make_engine_${id}},\n")
    endforeach()
  endforeach()
  set(POLYALPACA_RUNNER ${name})
  set(POLYALPACA_ENGINE_DECLARATIONS "${declarations}")
  set(POLYALPACA_ENGINE_ENTRIES "${entries}")
  set(POLYALPACA_STUDY_CUDA ${cuda})
  configure_file(${POLYALPACA_STUDY_TABLE_TEMPLATE} ${CMAKE_CURRENT_BINARY_DIR}/${name}_engines.cpp @ONLY)
  # The plan (--plan, the fit check) is the other half of the runner's compile time: an object of its own, shared by
  # the runners, at -O0: 41 s of compile against 64 s at -O1, and the dry runs still take milliseconds.
  if(NOT TARGET polyalpaca_study_runner_plan)
    add_library(polyalpaca_study_runner_plan OBJECT ${PROJECT_SOURCE_DIR}/examples/study_runner_plan.cpp)
    target_link_libraries(polyalpaca_study_runner_plan PUBLIC polyalpaca::eval)
    target_compile_options(polyalpaca_study_runner_plan PRIVATE $<$<NOT:$<CONFIG:Debug>>:-O0>)
  endif()
  add_executable(${name} ${PROJECT_SOURCE_DIR}/examples/polyalpaca_study.cpp ${CMAKE_CURRENT_BINARY_DIR}/${name}_engines.cpp)
  target_link_libraries(${name} PRIVATE polyalpaca::eval Boost::program_options ${engines} polyalpaca_study_runner_plan)
  if(POLYALPACA_WITH_MPI)  # under mpirun every rank runs the runner; rank 0 leads (docs/distributed.md)
    target_link_libraries(${name} PRIVATE polyalpaca::mpi)
    target_compile_definitions(${name} PRIVATE POLYALPACA_STUDY_MPI)
  endif()
  if(cuda)
    if(NOT TARGET polyalpaca_study_cuda_devices)
      add_library(polyalpaca_study_cuda_devices OBJECT ${PROJECT_SOURCE_DIR}/examples/study_cuda_devices.cu)
      polyalpaca_cuda_settings(polyalpaca_study_cuda_devices)
    endif()
    target_link_libraries(${name} PRIVATE polyalpaca_study_cuda_devices)
  endif()
endfunction()
