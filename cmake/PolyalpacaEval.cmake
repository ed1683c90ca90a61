# The evaluation side's native libraries: CLD2 (language identification, Debian: libcld2-dev), required, and
# libcurl (the judge's HTTP client, Debian: libcurl4-openssl-dev). Defines polyalpaca_eval (alias polyalpaca::eval):
# polyalpaca plus both. Programs that use include/polyalpaca/eval/ link it; the rest of the library needs neither.
# Without libcurl (e.g. a GPU machine that builds the study runner from bench/make_device_kit.sh's kit) only the
# judge client is left out: POLYALPACA_WITH_JUDGE is OFF, and polyalpaca_judge and its tests are not defined.
set(POLYALPACA_WITH_EVAL OFF)
set(POLYALPACA_WITH_JUDGE OFF)

find_path(POLYALPACA_CLD2_INCLUDE_DIR cld2/public/compact_lang_det.h)
find_library(POLYALPACA_CLD2_LIBRARY NAMES cld2)
find_package(CURL)
if(NOT POLYALPACA_CLD2_INCLUDE_DIR OR NOT POLYALPACA_CLD2_LIBRARY)
  message(FATAL_ERROR "polyalpaca's evaluation needs CLD2 (and libcurl for the judge): apt-get install libcld2-dev "
                      "libcurl4-openssl-dev (found cld2 headers: '${POLYALPACA_CLD2_INCLUDE_DIR}', cld2 library: "
                      "'${POLYALPACA_CLD2_LIBRARY}')")
endif()
if(NOT CURL_FOUND)
  message(STATUS "polyalpaca: libcurl not found: the judge client (polyalpaca_judge) is left out; "
                 "apt-get install libcurl4-openssl-dev to build it")
endif()

add_library(polyalpaca_cld2 UNKNOWN IMPORTED GLOBAL)
set_target_properties(polyalpaca_cld2 PROPERTIES
  IMPORTED_LOCATION "${POLYALPACA_CLD2_LIBRARY}"
  INTERFACE_INCLUDE_DIRECTORIES "${POLYALPACA_CLD2_INCLUDE_DIR}")

add_library(polyalpaca_eval INTERFACE)
add_library(polyalpaca::eval ALIAS polyalpaca_eval)
target_link_libraries(polyalpaca_eval INTERFACE polyalpaca polyalpaca_cld2)
if(CURL_FOUND)
  target_link_libraries(polyalpaca_eval INTERFACE CURL::libcurl)
  set(POLYALPACA_WITH_JUDGE ON)
endif()
set(POLYALPACA_WITH_EVAL ON)
