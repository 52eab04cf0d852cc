# SPDX-License-Identifier: Apache-2.0
# install() + export of the header-only target, a config package and uvp.pc.
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

set(UVP_INSTALL_CMAKEDIR "${CMAKE_INSTALL_DATADIR}/cmake/uvp" CACHE STRING "Where uvpConfig.cmake is installed")

install(TARGETS uvp EXPORT uvpTargets)
install(DIRECTORY include/uvp DESTINATION ${CMAKE_INSTALL_INCLUDEDIR} FILES_MATCHING PATTERN "*.hpp" PATTERN "*.cuh")
install(EXPORT uvpTargets NAMESPACE uvp:: DESTINATION ${UVP_INSTALL_CMAKEDIR})

configure_package_config_file(cmake/uvpConfig.cmake.in
  "${PROJECT_BINARY_DIR}/uvpConfig.cmake"
  INSTALL_DESTINATION ${UVP_INSTALL_CMAKEDIR})
write_basic_package_version_file("${PROJECT_BINARY_DIR}/uvpConfigVersion.cmake"
  COMPATIBILITY SameMinorVersion ARCH_INDEPENDENT)
install(FILES
  "${PROJECT_BINARY_DIR}/uvpConfig.cmake"
  "${PROJECT_BINARY_DIR}/uvpConfigVersion.cmake"
  cmake/uvpDependencies.cmake
  DESTINATION ${UVP_INSTALL_CMAKEDIR})

configure_file(cmake/uvp.pc.in "${PROJECT_BINARY_DIR}/uvp.pc" @ONLY)
install(FILES "${PROJECT_BINARY_DIR}/uvp.pc" DESTINATION ${CMAKE_INSTALL_DATADIR}/pkgconfig)
install(FILES LICENSE DESTINATION ${CMAKE_INSTALL_DATADIR}/doc/uvp)
