# The test build, target polyalpaca_test_build (what scripts/test.sh builds): every target of this project, except
# that a program no test runs is compiled front end only. Such a program is marked with
# polyalpaca_front_end_check(TARGET): the paper's BLOOM-560m trainers and evaluators, and the benchmarks. Targets
# marked with polyalpaca_test_build_skip(TARGET) are left out (their code is compiled through other targets).
# `cmake --build build` still builds them in full.
#
# A front-end-only compile parses the program, instantiates every template it uses and evaluates every
# static_assert, but generates no code. It catches what would stop the program compiling, except link errors.
# A BLOOM-560m CPU trainer takes 15 s instead of 53 s. With nvcc, the host compiler stops after its front end and
# the device code is compiled to sm_90 PTX only: the BLOOM-560m CUDA trainer takes 41 s instead of 89 s.
#
# The test build checks all marked programs of one language in one translation unit (polyalpaca_front_end_unity
# below): the headers every program includes, every kernel of the CUDA backend and the models the programs share are
# then compiled once instead of once a program. In the clean test build on the 2-core machine (two jobs at a time,
# .ninja_log of both builds) the 17 CUDA programs took 449 job-seconds one by one and take 80 together, the 5 C++
# programs 84 and 22.
include(${CMAKE_CURRENT_LIST_DIR}/PolyalpacaUnity.cmake)  # polyalpaca_write_unity()

set(POLYALPACA_FRONT_END_LAUNCHER ${CMAKE_CURRENT_LIST_DIR}/front_end_only.sh)

# polyalpaca_front_end_check(TARGET): TARGET_front_end, an object library (outside `all`) that compiles TARGET's
# sources with TARGET's compile settings, front end only. Call it once TARGET's settings are complete.
# TARGET's sources as absolute paths, in OUT_VAR.
function(_polyalpaca_absolute_sources target out_var)
  get_target_property(listed ${target} SOURCES)
  get_target_property(source_dir ${target} SOURCE_DIR)
  set(sources)
  foreach(source IN LISTS listed)
    get_filename_component(source ${source} ABSOLUTE BASE_DIR ${source_dir})
    list(APPEND sources ${source})
  endforeach()
  set(${out_var} ${sources} PARENT_SCOPE)
endfunction()

# Makes CHECK, an object library, compile front end only: the compiler writes no object file, and the launcher creates
# an empty one, so the check reruns only on changes. nvcc compiles the device code for sm_90 PTX only.
function(_polyalpaca_front_end_only check)
  target_compile_options(${check} PRIVATE $<$<COMPILE_LANGUAGE:CXX>:-fsyntax-only>
                                          $<$<COMPILE_LANGUAGE:CUDA>:-Xcompiler=-fsyntax-only>)
  set_target_properties(${check} PROPERTIES
    CUDA_ARCHITECTURES 90-virtual
    CXX_COMPILER_LAUNCHER "sh;${POLYALPACA_FRONT_END_LAUNCHER}"
    CUDA_COMPILER_LAUNCHER "sh;${POLYALPACA_FRONT_END_LAUNCHER}")
endfunction()

function(polyalpaca_front_end_check target)
  set(check ${target}_front_end)
  _polyalpaca_absolute_sources(${target} sources)
  add_library(${check} OBJECT EXCLUDE_FROM_ALL ${sources})
  foreach(property IN ITEMS COMPILE_DEFINITIONS COMPILE_OPTIONS INCLUDE_DIRECTORIES LINK_LIBRARIES
                            CUDA_STANDARD CUDA_STANDARD_REQUIRED CUDA_EXTENSIONS)
    get_target_property(value ${target} ${property})
    if(NOT value STREQUAL "value-NOTFOUND")
      set_property(TARGET ${check} PROPERTY ${property} "${value}")
    endif()
  endforeach()
  _polyalpaca_front_end_only(${check})
  set_property(TARGET ${target} PROPERTY POLYALPACA_FRONT_END_CHECK ${check})
endfunction()

# polyalpaca_test_build_skip(TARGET...): leaves these targets out of the test build (programs whose code the test
# build compiles through other targets, e.g. the study runner's engines of other sizes). `all` still builds them.
function(polyalpaca_test_build_skip)
  set_target_properties(${ARGN} PROPERTIES POLYALPACA_TEST_BUILD_SKIP ON)
endfunction()

function(polyalpaca_targets_under directory out_var)
  get_property(targets DIRECTORY ${directory} PROPERTY BUILDSYSTEM_TARGETS)
  get_property(subdirectories DIRECTORY ${directory} PROPERTY SUBDIRECTORIES)
  foreach(subdirectory IN LISTS subdirectories)
    polyalpaca_targets_under(${subdirectory} nested)
    list(APPEND targets ${nested})
  endforeach()
  set(${out_var} ${targets} PARENT_SCOPE)
endfunction()

# polyalpaca_front_end_unity(NAME LANGUAGE TARGET...): NAME, an object library (outside `all`) that compiles the
# LANGUAGE (CXX or CUDA) sources of every TARGET front end only, in one translation unit, with the union of the
# targets' include directories, libraries and options.
function(polyalpaca_front_end_unity name language)
  set(sources)
  set(members)
  foreach(target IN LISTS ARGN)
    _polyalpaca_absolute_sources(${target} listed)
    foreach(source IN LISTS listed)
      set(source_language CXX)
      if(source MATCHES "\\.cu$")
        set(source_language CUDA)
      endif()
      if(source_language STREQUAL language AND source MATCHES "\\.(cpp|cu)$")
        list(APPEND sources ${source})
        list(APPEND members ${target})
      endif()
    endforeach()
  endforeach()
  if(NOT sources)
    return()
  endif()
  set(extension_CXX cpp)
  set(extension_CUDA cu)
  set(file ${CMAKE_BINARY_DIR}/front_end_unity/${name}.${extension_${language}})
  polyalpaca_write_unity(${file} SOURCES ${sources} DEFINITIONS_OF ${members})
  add_library(${name} OBJECT EXCLUDE_FROM_ALL ${file})
  list(REMOVE_DUPLICATES members)
  foreach(property IN ITEMS INCLUDE_DIRECTORIES LINK_LIBRARIES COMPILE_OPTIONS)  # the union over the members
    set(union)
    foreach(target IN LISTS members)
      get_target_property(value ${target} ${property})
      if(value)
        list(APPEND union ${value})
      endif()
    endforeach()
    list(REMOVE_DUPLICATES union)
    set_property(TARGET ${name} PROPERTY ${property} "${union}")
  endforeach()
  foreach(property IN ITEMS CUDA_STANDARD CUDA_STANDARD_REQUIRED CUDA_EXTENSIONS)  # the same for every member
    foreach(target IN LISTS members)
      get_target_property(value ${target} ${property})
      if(NOT value STREQUAL "value-NOTFOUND")
        set_property(TARGET ${name} PROPERTY ${property} "${value}")
      endif()
    endforeach()
  endforeach()
  _polyalpaca_front_end_only(${name})
endfunction()

# polyalpaca_add_test_build(): the target polyalpaca_test_build. Call it after every add_subdirectory(). Without
# POLYALPACA_CUDA_TESTS_RUN (cmake/PolyalpacaCuda.cmake) every program with CUDA sources is compiled front end only.
# The programs compiled front end only are checked together, one translation unit a language
# (polyalpaca_front_end_unity); each keeps its own TARGET_front_end, to check it alone.
function(polyalpaca_add_test_build)
  polyalpaca_targets_under(${PROJECT_SOURCE_DIR} targets)
  set(test_build)
  set(front_end)
  foreach(target IN LISTS targets)
    get_target_property(type ${target} TYPE)
    get_target_property(excluded ${target} EXCLUDE_FROM_ALL)
    get_target_property(left_out ${target} POLYALPACA_TEST_BUILD_SKIP)
    if(type STREQUAL "INTERFACE_LIBRARY" OR excluded OR left_out)
      continue()
    endif()
    get_target_property(check ${target} POLYALPACA_FRONT_END_CHECK)
    get_target_property(sources ${target} SOURCES)
    if(NOT check AND NOT POLYALPACA_CUDA_TESTS_RUN AND sources MATCHES "\\.cu(;|$)")
      polyalpaca_front_end_check(${target})
      set(check ${target}_front_end)
    endif()
    if(check)
      list(APPEND front_end ${target})
    else()
      list(APPEND test_build ${target})
    endif()
  endforeach()
  add_custom_target(polyalpaca_test_build)
  foreach(language IN ITEMS CXX CUDA)
    polyalpaca_front_end_unity(polyalpaca_front_end_${language} ${language} ${front_end})
    if(TARGET polyalpaca_front_end_${language})
      list(APPEND test_build polyalpaca_front_end_${language})
    endif()
  endforeach()
  add_dependencies(polyalpaca_test_build ${test_build})
endfunction()
