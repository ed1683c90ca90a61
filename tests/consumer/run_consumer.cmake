# Builds and runs tests/consumer against this polyalpaca, the way a user would. Run with cmake -P and:
#   MODE=find_package       install BUILD_DIR into WORK_DIR/prefix, then find_package(polyalpaca) from there
#   MODE=add_subdirectory   add_subdirectory(SOURCE_DIR) from the consumer
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

set(configure_args -S ${SOURCE_DIR}/tests/consumer -B ${consumer_build} -G ${GENERATOR}
    -DCMAKE_CXX_COMPILER=${CXX_COMPILER} -DCMAKE_BUILD_TYPE=Release -DPOLYALPACA_CONSUME=${MODE}
    -DCMAKE_FIND_USE_PACKAGE_REGISTRY=OFF)
if(MAKE_PROGRAM)
  list(APPEND configure_args -DCMAKE_MAKE_PROGRAM=${MAKE_PROGRAM})
endif()

if(MODE STREQUAL "find_package")
  run_step(install ${CMAKE_COMMAND} --install ${BUILD_DIR} --prefix ${prefix} --component development)
  if(NOT EXISTS ${prefix}/include/polyalpaca/core/tensor.hpp)
    message(FATAL_ERROR "[${MODE}] install did not put the headers under ${prefix}/include")
  endif()
  file(GLOB_RECURSE config_files ${prefix}/*/polyalpacaConfig.cmake)
  if(NOT config_files)
    message(FATAL_ERROR "[${MODE}] install did not write polyalpacaConfig.cmake under ${prefix}")
  endif()
  list(APPEND configure_args -DCMAKE_PREFIX_PATH=${prefix})
elseif(MODE STREQUAL "add_subdirectory")
  list(APPEND configure_args -DPOLYALPACA_SOURCE_DIR=${SOURCE_DIR})
else()
  message(FATAL_ERROR "run_consumer.cmake: MODE must be find_package or add_subdirectory, not '${MODE}'")
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
