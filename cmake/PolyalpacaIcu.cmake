# ICU, the Unicode data of include/polyalpaca/tokenizer/ (unicode.hpp: normalization forms, general categories,
# scripts, lowercase mappings, grapheme clusters). Defines the imported target polyalpaca::icu (ICU's common library
# and its data) from pkg-config "icu-uc", else CMake's FindICU, and sets POLYALPACA_ICU_FOUND. Debian/Ubuntu:
# apt-get install libicu-dev. Used by the root CMakeLists.txt and, installed next to it, by polyalpacaConfig.cmake,
# so both the build tree and find_package(polyalpaca) get the target.
set(POLYALPACA_ICU_FOUND FALSE)
if(TARGET polyalpaca::icu)
  set(POLYALPACA_ICU_FOUND TRUE)
  return()
endif()

find_package(PkgConfig QUIET)
if(PkgConfig_FOUND)
  pkg_check_modules(POLYALPACA_ICU QUIET IMPORTED_TARGET GLOBAL icu-uc)
endif()

if(TARGET PkgConfig::POLYALPACA_ICU)
  add_library(polyalpaca::icu INTERFACE IMPORTED GLOBAL)
  target_link_libraries(polyalpaca::icu INTERFACE PkgConfig::POLYALPACA_ICU)
  set(POLYALPACA_ICU_FOUND TRUE)
else()
  find_package(ICU QUIET COMPONENTS uc OPTIONAL_COMPONENTS data)  # a shared libicuuc brings its data itself
  if(ICU_FOUND)
    # The found paths, not FindICU's ICU::uc: that target is not global, and a project that adds polyalpaca with
    # add_subdirectory links from outside the directory that found it.
    add_library(polyalpaca::icu INTERFACE IMPORTED GLOBAL)
    set(libraries ${ICU_UC_LIBRARY})
    if(ICU_DATA_FOUND)
      list(APPEND libraries ${ICU_DATA_LIBRARY})
    endif()
    set_target_properties(polyalpaca::icu PROPERTIES
      INTERFACE_LINK_LIBRARIES "${libraries}" INTERFACE_INCLUDE_DIRECTORIES "${ICU_INCLUDE_DIR}")
    set(POLYALPACA_ICU_FOUND TRUE)
  endif()
endif()
