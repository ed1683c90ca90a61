# Oniguruma, the regular-expression engine HF tokenizers uses, for include/polyalpaca/tokenizer/ (regex.hpp).
# Defines the imported target polyalpaca::oniguruma (from pkg-config "oniguruma", else find_path/find_library) and
# sets POLYALPACA_ONIGURUMA_FOUND. Debian/Ubuntu: apt-get install libonig-dev. Used by the root CMakeLists.txt and,
# installed next to it, by polyalpacaConfig.cmake, so both the build tree and find_package(polyalpaca) get the target.
set(POLYALPACA_ONIGURUMA_FOUND FALSE)
if(TARGET polyalpaca::oniguruma)
  set(POLYALPACA_ONIGURUMA_FOUND TRUE)
  return()
endif()

find_package(PkgConfig QUIET)
if(PkgConfig_FOUND)
  pkg_check_modules(POLYALPACA_ONIG QUIET IMPORTED_TARGET GLOBAL oniguruma)
endif()

if(TARGET PkgConfig::POLYALPACA_ONIG)
  add_library(polyalpaca::oniguruma INTERFACE IMPORTED GLOBAL)
  target_link_libraries(polyalpaca::oniguruma INTERFACE PkgConfig::POLYALPACA_ONIG)
  set(POLYALPACA_ONIGURUMA_FOUND TRUE)
else()
  find_path(POLYALPACA_ONIG_INCLUDE_DIR oniguruma.h)
  find_library(POLYALPACA_ONIG_LIBRARY NAMES onig)
  if(POLYALPACA_ONIG_INCLUDE_DIR AND POLYALPACA_ONIG_LIBRARY)
    add_library(polyalpaca::oniguruma UNKNOWN IMPORTED GLOBAL)
    set_target_properties(polyalpaca::oniguruma PROPERTIES
      IMPORTED_LOCATION "${POLYALPACA_ONIG_LIBRARY}"
      INTERFACE_INCLUDE_DIRECTORIES "${POLYALPACA_ONIG_INCLUDE_DIR}")
    set(POLYALPACA_ONIGURUMA_FOUND TRUE)
  endif()
endif()
