# Builds and runs tests/consumer against this polyalpaca, the way a user would. Run with cmake -P and:
#   MODE=find_package       install BUILD_DIR into WORK_DIR/prefix, then find_package(polyalpaca) from there
#   MODE=add_subdirectory   add_subdirectory(SOURCE_DIR) from the consumer
#   MODE=trainer            install, then tests/consumer_trainer: a trainer generated from a config.json written
#                           here (a LLaMA shape that is no preset) trains 2 steps and its adapter loads back; the
#                           README's quick-start snippet compiles; a config no model type expresses is refused;
#                           with EXPECT_MPI the package gives polyalpaca::mpi and the trainer is DISTRIBUTED
# plus SOURCE_DIR, BUILD_DIR, WORK_DIR, GENERATOR, MAKE_PROGRAM, CXX_COMPILER. Any failing step fails the test.
foreach(var MODE SOURCE_DIR BUILD_DIR WORK_DIR GENERATOR CXX_COMPILER)
  if(NOT DEFINED ${var})
    message(FATAL_ERROR "run_consumer.cmake: -D${var}=... is required")
  endif()
endforeach()

function(run_step name)
  string(REPLACE ";" " " shown "${ARGN}")
  message(STATUS "[${MODE}] ${name}: ${shown}")
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE out)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "[${MODE}] ${name} failed (${rc}):\n${out}")
  endif()
  set(step_output "${out}" PARENT_SCOPE)
endfunction()

file(REMOVE_RECURSE ${WORK_DIR})
file(MAKE_DIRECTORY ${WORK_DIR})
set(prefix ${WORK_DIR}/prefix)
set(consumer_build ${WORK_DIR}/build)

function(install_package)
  run_step(install ${CMAKE_COMMAND} --install ${BUILD_DIR} --prefix ${prefix} --component development)
  if(NOT EXISTS ${prefix}/include/polyalpaca/core/tensor.hpp)
    message(FATAL_ERROR "[${MODE}] install did not put the headers under ${prefix}/include")
  endif()
endfunction()

if(MODE STREQUAL "trainer")
  install_package()
  set(config ${WORK_DIR}/model/config.json)
  file(WRITE ${config} [=[{"model_type": "llama", "architectures": ["LlamaForCausalLM"], "vocab_size": 2048,
 "hidden_size": 48, "num_hidden_layers": 2, "num_attention_heads": 6, "num_key_value_heads": 2,
 "intermediate_size": 96, "rms_norm_eps": 1e-05, "rope_theta": 500000.0, "tie_word_embeddings": false,
 "hidden_act": "silu", "max_position_embeddings": 256}
]=])
  set(data ${WORK_DIR}/en.jsonl)
  file(WRITE ${data} "")
  foreach(i RANGE 11)
    file(APPEND ${data} "{\"id\": \"r${i}\", \"instruction\": \"Repeat the number ${i}.\", \"input\": \"\", \"output\": \"${i}\"}\n")
  endforeach()
  # Release at -O1, as the test programs compile: this checks what the package generates, not how fast it runs.
  set(trainer_args -S ${SOURCE_DIR}/tests/consumer_trainer -G ${GENERATOR} -DCMAKE_CXX_COMPILER=${CXX_COMPILER}
      -DCMAKE_BUILD_TYPE=Release "-DCMAKE_CXX_FLAGS_RELEASE=-O1 -DNDEBUG" -DCMAKE_PREFIX_PATH=${prefix}
      -DCMAKE_FIND_USE_PACKAGE_REGISTRY=OFF -DREADME=${SOURCE_DIR}/README.md)
  if(MAKE_PROGRAM)
    list(APPEND trainer_args -DCMAKE_MAKE_PROGRAM=${MAKE_PROGRAM})
  endif()

  # A GPT-NeoX config with a tied head: no model type here expresses it, and configuring says so.
  set(bad ${WORK_DIR}/bad/config.json)
  file(WRITE ${bad} [=[{"model_type": "gpt_neox", "vocab_size": 2048, "hidden_size": 48, "num_hidden_layers": 2,
 "num_attention_heads": 6, "intermediate_size": 100, "rotary_pct": 0.25, "tie_word_embeddings": true}
]=])
  execute_process(COMMAND ${CMAKE_COMMAND} ${trainer_args} -B ${WORK_DIR}/bad_build -DMODEL_CONFIG=${bad}
                  RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE out)
  string(REGEX REPLACE "[ \n]+" " " flat "${out}")  # CMake wraps the lines of a message
  if(rc EQUAL 0 OR NOT flat MATCHES "bad/config.json' describes a model no gpt_neox type here expresses:")
    message(FATAL_ERROR "[${MODE}] an inexpressible config.json was not refused by name (${rc}):\n${out}")
  endif()
  if(NOT flat MATCHES "tie_word_embeddings: GPT-NeoX here has an untied head")
    message(FATAL_ERROR "[${MODE}] the refusal does not name the field:\n${out}")
  endif()

  run_step(configure ${CMAKE_COMMAND} ${trainer_args} -B ${consumer_build} -DMODEL_CONFIG=${config})
  if(EXPECT_MPI AND NOT step_output MATCHES "consumer: the trainer is DISTRIBUTED")
    message(FATAL_ERROR "[${MODE}] this build found MPI but the installed package gave no polyalpaca::mpi:\n${step_output}")
  endif()
  string(REGEX MATCH "consumer: polyalpaca [^\n]* from ([^\n]*)" found "${step_output}")
  string(FIND "${CMAKE_MATCH_1}" "${prefix}/" at)
  if(NOT at EQUAL 0)
    message(FATAL_ERROR "[${MODE}] polyalpaca was found at '${CMAKE_MATCH_1}', not under ${prefix}:\n${step_output}")
  endif()
  run_step(build ${CMAKE_COMMAND} --build ${consumer_build} --config Release)
  run_step(train ${consumer_build}/consumer_trainer --tokenizer
           ${SOURCE_DIR}/tests/golden/data/tokenizers/bloom_style.tokenizer.json --data en=${data} --val-size 2
           --global-batch 4 --micro-batch 2 --budget-records 8 --warmup-steps 1 --cutoff 64 --quiet
           --output-dir ${WORK_DIR}/run)
  file(READ ${WORK_DIR}/run/run_summary.json summary)
  string(JSON steps GET "${summary}" steps)
  if(NOT steps EQUAL 2)
    message(FATAL_ERROR "[${MODE}] the generated trainer ran ${steps} steps, not 2:\n${summary}")
  endif()
  run_step(check_adapter ${consumer_build}/consumer_check_adapter ${config} ${WORK_DIR}/run/adapter)
  if(NOT step_output MATCHES "consumer: OK")
    message(FATAL_ERROR "[${MODE}] the adapter check did not report OK:\n${step_output}")
  endif()
  message(STATUS "[${MODE}] ${step_output}")
  return()
endif()

set(configure_args -S ${SOURCE_DIR}/tests/consumer -B ${consumer_build} -G ${GENERATOR}
    -DCMAKE_CXX_COMPILER=${CXX_COMPILER} -DCMAKE_BUILD_TYPE=Release -DPOLYALPACA_CONSUME=${MODE}
    -DCMAKE_FIND_USE_PACKAGE_REGISTRY=OFF)
if(MAKE_PROGRAM)
  list(APPEND configure_args -DCMAKE_MAKE_PROGRAM=${MAKE_PROGRAM})
endif()

if(MODE STREQUAL "find_package")
  install_package()
  file(GLOB_RECURSE config_files ${prefix}/*/polyalpacaConfig.cmake)
  if(NOT config_files)
    message(FATAL_ERROR "[${MODE}] install did not write polyalpacaConfig.cmake under ${prefix}")
  endif()
  list(APPEND configure_args -DCMAKE_PREFIX_PATH=${prefix})
elseif(MODE STREQUAL "add_subdirectory")
  list(APPEND configure_args -DPOLYALPACA_SOURCE_DIR=${SOURCE_DIR})
else()
  message(FATAL_ERROR "run_consumer.cmake: MODE must be find_package, add_subdirectory or trainer, not '${MODE}'")
endif()

run_step(configure ${CMAKE_COMMAND} ${configure_args})
if(MODE STREQUAL "find_package")
  # The package must come from the fresh install, not from the build tree or another copy on the machine.
  string(REGEX MATCH "consumer: polyalpaca [^\n]* from ([^\n]*)" found "${step_output}")
  string(FIND "${CMAKE_MATCH_1}" "${prefix}/" at)
  if(NOT at EQUAL 0)
    message(FATAL_ERROR "[${MODE}] polyalpaca was found at '${CMAKE_MATCH_1}', not under ${prefix}:\n${step_output}")
  endif()
endif()
run_step(build ${CMAKE_COMMAND} --build ${consumer_build} --config Release)

set(exe ${consumer_build}/consumer)
if(NOT EXISTS ${exe} AND EXISTS ${consumer_build}/Release/consumer)
  set(exe ${consumer_build}/Release/consumer)
endif()
run_step(run ${exe})
if(NOT step_output MATCHES "consumer: OK")
  message(FATAL_ERROR "[${MODE}] the consumer ran but did not report OK:\n${step_output}")
endif()
message(STATUS "[${MODE}] ${step_output}")
