# Install rules: the headers, the polyalpaca::polyalpaca target (and polyalpaca::cuda when built), and a
# polyalpacaConfig.cmake that finds the same dependencies and provides polyalpaca_add_trainer(), so that downstream
# projects can
#   find_package(polyalpaca REQUIRED)            # or: find_package(polyalpaca REQUIRED COMPONENTS cuda)
#   target_link_libraries(app PRIVATE polyalpaca::polyalpaca)
#   polyalpaca_add_trainer(NAME train_mine HF_CONFIG my-model/config.json ADAPTER lora)
# Everything is in the install component "development".
include(CMakePackageConfigHelpers)

set(POLYALPACA_INSTALL_CMAKEDIR ${CMAKE_INSTALL_LIBDIR}/cmake/polyalpaca CACHE STRING
    "Where polyalpacaConfig.cmake is installed, relative to the prefix")

install(DIRECTORY ${PROJECT_SOURCE_DIR}/include/ DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}
        COMPONENT development FILES_MATCHING PATTERN "*.hpp" PATTERN "*.cuh")

install(TARGETS polyalpaca EXPORT polyalpacaTargets COMPONENT development)
install(EXPORT polyalpacaTargets NAMESPACE polyalpaca:: DESTINATION ${POLYALPACA_INSTALL_CMAKEDIR}
        COMPONENT development)
if(POLYALPACA_WITH_CUDA)
  install(TARGETS polyalpaca_cuda EXPORT polyalpacaCudaTargets COMPONENT development)
  install(EXPORT polyalpacaCudaTargets NAMESPACE polyalpaca:: DESTINATION ${POLYALPACA_INSTALL_CMAKEDIR}
          COMPONENT development)
endif()

configure_package_config_file(${PROJECT_SOURCE_DIR}/cmake/polyalpacaConfig.cmake.in
                              ${PROJECT_BINARY_DIR}/polyalpacaConfig.cmake
                              INSTALL_DESTINATION ${POLYALPACA_INSTALL_CMAKEDIR} PATH_VARS CMAKE_INSTALL_INCLUDEDIR)
write_basic_package_version_file(${PROJECT_BINARY_DIR}/polyalpacaConfigVersion.cmake
                                 COMPATIBILITY SameMinorVersion)
install(FILES ${PROJECT_BINARY_DIR}/polyalpacaConfig.cmake ${PROJECT_BINARY_DIR}/polyalpacaConfigVersion.cmake
              ${PROJECT_SOURCE_DIR}/cmake/PolyalpacaOniguruma.cmake ${PROJECT_SOURCE_DIR}/cmake/PolyalpacaIcu.cmake
              ${PROJECT_SOURCE_DIR}/cmake/PolyalpacaTrainer.cmake
              ${PROJECT_SOURCE_DIR}/cmake/PolyalpacaCudaPrograms.cmake
              ${PROJECT_SOURCE_DIR}/cmake/polyalpaca_model_header.cpp ${PROJECT_SOURCE_DIR}/examples/trainer.cpp.in
        DESTINATION ${POLYALPACA_INSTALL_CMAKEDIR} COMPONENT development)
