# polyalpaca_add_trainer(): a trainer program for one model and method, generated from trainer.cpp.in. Installed with
# the package, so `find_package(polyalpaca)` provides it to a user's own project (docs/trainers.md).
#
#   polyalpaca_add_trainer(NAME <target>
#                          MODEL <C++ model type>                       # e.g. "pa::Bloom<pa::bloom::Size560m>"
#                        | HF_CONFIG <config.json> [ADAPTER lora|full]  # the type generated from an HF config
#                                      [LORA_RANK r] [LORA_ALPHA a] [LORA_SITES <site types>]
#                          [STRATEGY <default of --strategy>] [BACKEND cpu|cuda] [HEAD_DIMS <dim>... | NONE]
#                          [DISTRIBUTED])
#
# DISTRIBUTED: the trainer runs data parallel over the ranks `mpirun -np N` or `srun` starts, and as one rank without
# them (docs/distributed.md): BACKEND cpu over MPI (polyalpaca::mpi: MPI found in this build), BACKEND cuda over NCCL,
# one rank per GPU (polyalpaca::nccl: MPI and NCCL found).
#
# The model type and the backend are fixed at compile time; the strategy (monolingual, multilingual, downsampled,
# temperature:T, weighted:LANG=W,..., one spelling: data/strategy.hpp) is chosen at run time with --strategy, whose
# default STRATEGY sets (multilingual).
#
# HF_CONFIG reads the config.json at configure time (re-read when it changes) and generates <target>_model.hpp with
# the checkpoint's Size struct (io/model_source.hpp; `polyalpaca-inspect DIR --cpp` prints the same), so any BLOOM,
# GPT-NeoX or LLaMA checkpoint gets a trainer without C++. ADAPTER lora (the default) is LoRA r 8, alpha 16 on PEFT's
# default target modules of the family (BLOOM and GPT-NeoX: query_key_value; LLaMA: q_proj, v_proj) unless
# LORA_RANK, LORA_ALPHA or LORA_SITES (e.g. "polyalpaca::site::Query, polyalpaca::site::Value") say otherwise;
# ADAPTER dora is DoRA with the same settings; ADAPTER ia3 is IA3 on PEFT's default IA3 modules of the family
# (query_key_value and dense_4h_to_h; LLaMA: k_proj, v_proj, down_proj) unless LORA_SITES names others;
# ADAPTER full trains every parameter.
#
# BACKEND cuda needs polyalpaca::cuda and the CUDA language enabled. HEAD_DIMS (BACKEND cuda only): the head dims to
# compile the flash attention kernels for, about 3 s of nvcc time each; give the model's (hidden / heads). Default:
# the model's with HF_CONFIG, else all five of backend/cuda/flash_attention_tile.hpp. The trainer does not compile
# when its model's head_dim is not among them, so --attention auto and flash never fall back to the GEMM path
# unasked; NONE compiles no flash kernels and runs the GEMM path (for a head_dim the flash kernels do not serve,
# e.g. OpenLLaMA-3b's 100). Examples:
#   polyalpaca_add_trainer(NAME train_bloom560m_lora MODEL "pa::Bloom<pa::bloom::Size560m, pa::LoRA<8, 16, pa::site::Qkv>>")
#   polyalpaca_add_trainer(NAME train_mine HF_CONFIG ${CMAKE_CURRENT_SOURCE_DIR}/my-model/config.json ADAPTER lora)
include_guard(GLOBAL)

# Next to this file when installed; examples/ in the source tree.
if(EXISTS ${CMAKE_CURRENT_LIST_DIR}/trainer.cpp.in)
  set(POLYALPACA_TRAINER_TEMPLATE ${CMAKE_CURRENT_LIST_DIR}/trainer.cpp.in CACHE INTERNAL "")
else()
  set(POLYALPACA_TRAINER_TEMPLATE ${CMAKE_CURRENT_LIST_DIR}/../examples/trainer.cpp.in CACHE INTERNAL "")
endif()
set(POLYALPACA_MODEL_HEADER_SOURCE ${CMAKE_CURRENT_LIST_DIR}/polyalpaca_model_header.cpp CACHE INTERNAL "")
include(${CMAKE_CURRENT_LIST_DIR}/PolyalpacaCudaPrograms.cmake)

# polyalpaca_model_from_hf_config(NAME CONFIG OUT_MODEL_VAR OUT_HEADER_VAR OUT_HEAD_DIM_VAR ADAPTER RANK ALPHA SITES):
# generates NAME_model.hpp from CONFIG by compiling and running cmake/polyalpaca_model_header.cpp (once per content
# of CONFIG) against POLYALPACA_INCLUDE_DIRS (polyalpaca's and Eigen's headers, set by polyalpaca's CMakeLists.txt
# or its package configuration), and sets the model type, the header and the model's head dim.
function(polyalpaca_model_from_hf_config name config out_model out_header out_head_dim adapter rank alpha sites)
  get_filename_component(config ${config} ABSOLUTE BASE_DIR ${CMAKE_CURRENT_SOURCE_DIR})
  if(NOT EXISTS ${config})
    message(FATAL_ERROR "polyalpaca_add_trainer(${name}): HF_CONFIG '${config}' does not exist")
  endif()
  set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS ${config})
  string(MAKE_C_IDENTIFIER "${name}" id)
  set(size ${id}_size)
  set(header ${CMAKE_CURRENT_BINARY_DIR}/${name}_model.hpp)
  file(SHA256 ${config} config_hash)
  file(SHA256 ${POLYALPACA_MODEL_HEADER_SOURCE} generator_hash)
  set(key "${config_hash}:${generator_hash}:${header}")
  if(NOT EXISTS ${header} OR NOT "${POLYALPACA_GENERATED_${id}_KEY}" STREQUAL "${key}")
    if(NOT POLYALPACA_INCLUDE_DIRS)
      message(FATAL_ERROR "polyalpaca_add_trainer(${name}): HF_CONFIG needs POLYALPACA_INCLUDE_DIRS "
                          "(set by find_package(polyalpaca) or polyalpaca's own CMakeLists.txt)")
    endif()
    message(STATUS "polyalpaca_add_trainer(${name}): generating ${name}_model.hpp from ${config}")
    try_run(run_status compiled ${CMAKE_CURRENT_BINARY_DIR}/${name}_model_header ${POLYALPACA_MODEL_HEADER_SOURCE}
            CMAKE_FLAGS "-DINCLUDE_DIRECTORIES=${POLYALPACA_INCLUDE_DIRS}"
            CXX_STANDARD 20 CXX_STANDARD_REQUIRED ON CXX_EXTENSIONS OFF
            COMPILE_OUTPUT_VARIABLE compile_output
            RUN_OUTPUT_VARIABLE run_output
            ARGS ${config} ${header} ${size})
    if(NOT compiled)
      message(FATAL_ERROR "polyalpaca_add_trainer(${name}): the config reader did not compile:\n${compile_output}")
    endif()
    if(NOT run_status EQUAL 0)
      file(REMOVE ${header})
      message(FATAL_ERROR "polyalpaca_add_trainer(${name}): HF_CONFIG ${run_output}")
    endif()
    string(REGEX MATCH "family=([^\n]*)\nsites=([^\n]*)\nia3_sites=([^\n]*)\nhead_dim=([0-9]+)" found "${run_output}")
    if(NOT found)
      message(FATAL_ERROR "polyalpaca_add_trainer(${name}): unexpected output of the config reader:\n${run_output}")
    endif()
    set(POLYALPACA_GENERATED_${id}_KEY "${key}" CACHE INTERNAL "")
    set(POLYALPACA_GENERATED_${id}_FAMILY "${CMAKE_MATCH_1}" CACHE INTERNAL "")
    set(POLYALPACA_GENERATED_${id}_SITES "${CMAKE_MATCH_2}" CACHE INTERNAL "")
    set(POLYALPACA_GENERATED_${id}_IA3_SITES "${CMAKE_MATCH_3}" CACHE INTERNAL "")
    set(POLYALPACA_GENERATED_${id}_HEAD_DIM "${CMAKE_MATCH_4}" CACHE INTERNAL "")
  endif()
  set(family ${POLYALPACA_GENERATED_${id}_FAMILY})
  if(adapter STREQUAL "full")
    set(model "${family}<${size}>")
  elseif(adapter STREQUAL "ia3")
    if(NOT sites)
      set(sites "${POLYALPACA_GENERATED_${id}_IA3_SITES}")
    endif()
    set(model "${family}<${size}, polyalpaca::IA3<${sites}>>")
  else()
    if(NOT sites)
      set(sites "${POLYALPACA_GENERATED_${id}_SITES}")
    endif()
    set(policy LoRA)
    if(adapter STREQUAL "dora")
      set(policy DoRA)
    endif()
    set(model "${family}<${size}, polyalpaca::${policy}<${rank}, ${alpha}, ${sites}>>")
  endif()
  set(${out_model} "${model}" PARENT_SCOPE)
  set(${out_header} ${header} PARENT_SCOPE)
  set(${out_head_dim} ${POLYALPACA_GENERATED_${id}_HEAD_DIM} PARENT_SCOPE)
endfunction()

# A one-word argument of polyalpaca_add_trainer: VAR defaults to DEFAULT and must match PATTERN.
macro(polyalpaca_trainer_choice var default pattern what)
  if(NOT ${var})
    set(${var} ${default})
  endif()
  if(NOT ${var} MATCHES "${pattern}")
    message(FATAL_ERROR "polyalpaca_add_trainer(${ARG_NAME}): ${what}, got '${${var}}'")
  endif()
endmacro()

function(polyalpaca_add_trainer)
  cmake_parse_arguments(PARSE_ARGV 0 ARG "DISTRIBUTED"
                        "NAME;MODEL;HF_CONFIG;ADAPTER;LORA_RANK;LORA_ALPHA;LORA_SITES;STRATEGY;BACKEND" "HEAD_DIMS")
  if(ARG_UNPARSED_ARGUMENTS)
    message(FATAL_ERROR "polyalpaca_add_trainer(${ARG_NAME}): unknown arguments ${ARG_UNPARSED_ARGUMENTS}")
  endif()
  if(NOT ARG_NAME OR (NOT ARG_MODEL AND NOT ARG_HF_CONFIG) OR (ARG_MODEL AND ARG_HF_CONFIG))
    message(FATAL_ERROR "polyalpaca_add_trainer: NAME and one of MODEL or HF_CONFIG are required")
  endif()
  if(ARG_MODEL AND (ARG_ADAPTER OR ARG_LORA_RANK OR ARG_LORA_ALPHA OR ARG_LORA_SITES))
    message(FATAL_ERROR "polyalpaca_add_trainer(${ARG_NAME}): ADAPTER and LORA_* go with HF_CONFIG; MODEL names the "
                        "adapter in its type")
  endif()
  polyalpaca_trainer_choice(ARG_STRATEGY multilingual
                            "^(monolingual|multilingual|downsampled|temperature:.+|weighted:.+)$"
                            "STRATEGY must be monolingual, multilingual, downsampled, temperature:T or weighted:...")
  if(NOT ARG_BACKEND)
    set(ARG_BACKEND cpu)
  endif()
  set(POLYALPACA_MODEL_INCLUDE "")
  if(ARG_HF_CONFIG)
    polyalpaca_trainer_choice(ARG_ADAPTER lora "^(lora|dora|ia3|full)$" "ADAPTER must be lora, dora, ia3 or full")
    if(ARG_ADAPTER STREQUAL "full" AND (ARG_LORA_RANK OR ARG_LORA_ALPHA OR ARG_LORA_SITES))
      message(FATAL_ERROR "polyalpaca_add_trainer(${ARG_NAME}): LORA_* need ADAPTER lora, dora or ia3")
    endif()
    if(ARG_ADAPTER STREQUAL "ia3" AND (ARG_LORA_RANK OR ARG_LORA_ALPHA))
      message(FATAL_ERROR "polyalpaca_add_trainer(${ARG_NAME}): IA3 has no rank or alpha (LORA_SITES names its sites)")
    endif()
    if(NOT ARG_LORA_RANK)
      set(ARG_LORA_RANK 8)
    endif()
    if(NOT ARG_LORA_ALPHA)
      set(ARG_LORA_ALPHA 16)
    endif()
    foreach(value IN ITEMS ${ARG_LORA_RANK} ${ARG_LORA_ALPHA})
      if(NOT value MATCHES "^[1-9][0-9]*$")
        message(FATAL_ERROR "polyalpaca_add_trainer(${ARG_NAME}): LORA_RANK and LORA_ALPHA are positive integers, "
                            "got '${value}'")
      endif()
    endforeach()
    polyalpaca_model_from_hf_config(${ARG_NAME} ${ARG_HF_CONFIG} ARG_MODEL header model_head_dim ${ARG_ADAPTER}
                                    ${ARG_LORA_RANK} ${ARG_LORA_ALPHA} "${ARG_LORA_SITES}")
    set(POLYALPACA_MODEL_INCLUDE "#include \"${header}\"\n")
    if(ARG_BACKEND STREQUAL "cuda" AND NOT ARG_HEAD_DIMS)
      math(EXPR remainder "${model_head_dim} % 16")
      if(remainder EQUAL 0 AND model_head_dim LESS_EQUAL 128)
        set(ARG_HEAD_DIMS ${model_head_dim})
      else()
        set(ARG_HEAD_DIMS NONE)
      endif()
    endif()
  endif()
  # DISTRIBUTED: data parallel over the ranks mpirun or srun starts (distributed::Mpi on the CPU, polyalpaca::mpi;
  # distributed::Nccl on GPUs, polyalpaca::nccl).
  set(POLYALPACA_COMMUNICATOR "pa::distributed::SingleProcess")
  set(POLYALPACA_COMMUNICATOR_INCLUDE "")
  set(communicator_library)
  if(ARG_DISTRIBUTED)
    if(ARG_BACKEND STREQUAL "cuda")
      set(POLYALPACA_COMMUNICATOR "pa::distributed::Nccl")
      set(POLYALPACA_COMMUNICATOR_INCLUDE "#include <polyalpaca/distributed/nccl.cuh>\n")
      set(communicator_library polyalpaca::nccl)
      set(needs "NCCL and MPI (polyalpaca::nccl: the CUDA toolkit's NCCL, apt-get install libopenmpi-dev openmpi-bin)")
    else()
      set(POLYALPACA_COMMUNICATOR "pa::distributed::Mpi")
      set(POLYALPACA_COMMUNICATOR_INCLUDE "#include <polyalpaca/distributed/mpi.hpp>\n")
      set(communicator_library polyalpaca::mpi)
      set(needs "MPI (polyalpaca::mpi: apt-get install libopenmpi-dev openmpi-bin)")
    endif()
    if(NOT TARGET ${communicator_library})
      message(FATAL_ERROR "polyalpaca_add_trainer(${ARG_NAME}): DISTRIBUTED with BACKEND ${ARG_BACKEND} needs ${needs}")
    endif()
  endif()
  set(POLYALPACA_TRAINER_NAME ${ARG_NAME})
  set(POLYALPACA_MODEL "${ARG_MODEL}")
  set(POLYALPACA_STRATEGY ${ARG_STRATEGY})
  set(POLYALPACA_TRAINER_NEEDS_FLASH false)
  set(POLYALPACA_TRAINER_HEAD_DIMS NONE)
  if(ARG_BACKEND STREQUAL "cpu")
    if(ARG_HEAD_DIMS)
      message(FATAL_ERROR "polyalpaca_add_trainer(${ARG_NAME}): HEAD_DIMS applies to BACKEND cuda only")
    endif()
    set(POLYALPACA_BACKEND "pa::CpuEigen")
    set(POLYALPACA_BACKEND_INCLUDE "")
    configure_file(${POLYALPACA_TRAINER_TEMPLATE} ${CMAKE_CURRENT_BINARY_DIR}/${ARG_NAME}.cpp @ONLY)
    add_executable(${ARG_NAME} ${CMAKE_CURRENT_BINARY_DIR}/${ARG_NAME}.cpp)
  elseif(ARG_BACKEND STREQUAL "cuda")
    if(NOT TARGET polyalpaca::cuda OR NOT CMAKE_CUDA_COMPILER)
      message(FATAL_ERROR "polyalpaca_add_trainer(${ARG_NAME}): BACKEND cuda needs the CUDA language enabled and "
                          "polyalpaca::cuda (find_package(polyalpaca COMPONENTS cuda))")
    endif()
    if(NOT ARG_HEAD_DIMS)
      set(POLYALPACA_TRAINER_NEEDS_FLASH true)
      set(POLYALPACA_TRAINER_HEAD_DIMS "the default five")
    elseif(NOT ARG_HEAD_DIMS STREQUAL "NONE")
      set(POLYALPACA_TRAINER_NEEDS_FLASH true)
      foreach(dim IN LISTS ARG_HEAD_DIMS)
        if(NOT dim MATCHES "^[1-9][0-9]*$")
          message(FATAL_ERROR
                  "polyalpaca_add_trainer(${ARG_NAME}): HEAD_DIMS takes head dims, or NONE alone; got '${dim}'")
        endif()
      endforeach()
      list(JOIN ARG_HEAD_DIMS " " POLYALPACA_TRAINER_HEAD_DIMS)
    endif()
    set(POLYALPACA_BACKEND "pa::Cuda")
    set(POLYALPACA_BACKEND_INCLUDE "#include <polyalpaca/backend/cuda.cuh>\n")
    configure_file(${POLYALPACA_TRAINER_TEMPLATE} ${CMAKE_CURRENT_BINARY_DIR}/${ARG_NAME}.cu @ONLY)
    polyalpaca_add_cuda_executable(${ARG_NAME} ${CMAKE_CURRENT_BINARY_DIR}/${ARG_NAME}.cu)
    if(ARG_HEAD_DIMS)
      list(REMOVE_ITEM ARG_HEAD_DIMS NONE)
      polyalpaca_flash_head_dims(${ARG_NAME} ${ARG_HEAD_DIMS})
    endif()
  else()
    message(FATAL_ERROR "polyalpaca_add_trainer(${ARG_NAME}): BACKEND must be cpu or cuda, got '${ARG_BACKEND}'")
  endif()
  if(NOT TARGET Boost::program_options)
    find_package(Boost 1.74 REQUIRED COMPONENTS program_options)
  endif()
  target_link_libraries(${ARG_NAME} PRIVATE polyalpaca::polyalpaca Boost::program_options)
  if(ARG_DISTRIBUTED)
    target_link_libraries(${ARG_NAME} PRIVATE ${communicator_library})
  endif()
endfunction()
