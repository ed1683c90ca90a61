# The evaluation side's native libraries: CLD2 (language identification, Debian: libcld2-dev) and libcurl (the
# judge's HTTP client, Debian: libcurl4-openssl-dev). Defines polyalpaca_eval (alias polyalpaca::eval): polyalpaca
# plus both. Programs that use include/polyalpaca/eval/ link it; the rest of the library needs neither.
set(POLYALPACA_WITH_EVAL OFF)

find_path(POLYALPACA_CLD2_INCLUDE_DIR cld2/public/compact_lang_det.h)
find_library(POLYALPACA_CLD2_LIBRARY NAMES cld2)
find_package(CURL)
if(NOT POLYALPACA_CLD2_INCLUDE_DIR OR NOT POLYALPACA_CLD2_LIBRARY OR NOT CURL_FOUND)
  message(FATAL_ERROR "polyalpaca's evaluation needs CLD2 and libcurl: apt-get install libcld2-dev libcurl4-openssl-dev "
                      "(found cld2 headers: '${POLYALPACA_CLD2_INCLUDE_DIR}', cld2 library: '${POLYALPACA_CLD2_LIBRARY}', "
                      "libcurl: ${CURL_FOUND})")
endif()

add_library(polyalpaca_cld2 UNKNOWN IMPORTED GLOBAL)
set_target_properties(polyalpaca_cld2 PROPERTIES
  IMPORTED_LOCATION "${POLYALPACA_CLD2_LIBRARY}"
  INTERFACE_INCLUDE_DIRECTORIES "${POLYALPACA_CLD2_INCLUDE_DIR}")

add_library(polyalpaca_eval INTERFACE)
add_library(polyalpaca::eval ALIAS polyalpaca_eval)
target_link_libraries(polyalpaca_eval INTERFACE polyalpaca polyalpaca_cld2 CURL::libcurl)
set(POLYALPACA_WITH_EVAL ON)
