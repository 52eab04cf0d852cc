# SPDX-License-Identifier: Apache-2.0
# install() + export of the header-only target, a config package and uvp.pc.
# Layout: include/uvp/**, share/cmake/uvp/uvp{Config,ConfigVersion,Targets,Dependencies}.cmake,
# share/pkgconfig/uvp.pc, share/doc/uvp/LICENSE (all under CMAKE_INSTALL_*DIR).
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

set(UVP_INSTALL_CMAKEDIR "${CMAKE_INSTALL_DATADIR}/cmake/uvp" CACHE STRING "Where uvpConfig.cmake is installed")

install(TARGETS uvp EXPORT uvpTargets)
# .cuh files are installed too: CUDA users compile them with their own nvcc.
install(DIRECTORY include/uvp DESTINATION ${CMAKE_INSTALL_INCLUDEDIR} FILES_MATCHING PATTERN "*.hpp" PATTERN "*.cuh")
install(EXPORT uvpTargets NAMESPACE uvp:: DESTINATION ${UVP_INSTALL_CMAKEDIR})

# What the exported target really links: OpenMP only if it was found (the option alone is a wish).
if(UVP_WITH_OPENMP AND TARGET OpenMP::OpenMP_CXX)
  set(UVP_CONFIG_WITH_OPENMP ON)
else()
  set(UVP_CONFIG_WITH_OPENMP OFF)
endif()
configure_package_config_file(cmake/uvpConfig.cmake.in
  "${PROJECT_BINARY_DIR}/uvpConfig.cmake"
  INSTALL_DESTINATION ${UVP_INSTALL_CMAKEDIR})
# Header-only: one package serves 32- and 64-bit consumers alike.
write_basic_package_version_file("${PROJECT_BINARY_DIR}/uvpConfigVersion.cmake"
  COMPATIBILITY SameMinorVersion ARCH_INDEPENDENT)
install(FILES
  "${PROJECT_BINARY_DIR}/uvpConfig.cmake"
  "${PROJECT_BINARY_DIR}/uvpConfigVersion.cmake"
  cmake/uvpDependencies.cmake
  DESTINATION ${UVP_INSTALL_CMAKEDIR})

# uvp.pc: relocatable (prefix found from the .pc file's own place), header-only, so in share/.
set(_uvp_pc_dir "${CMAKE_INSTALL_DATADIR}/pkgconfig")
if(IS_ABSOLUTE "${CMAKE_INSTALL_INCLUDEDIR}")
  set(UVP_PC_INCLUDEDIR "${CMAKE_INSTALL_INCLUDEDIR}")
else()
  set(UVP_PC_INCLUDEDIR "\${prefix}/${CMAKE_INSTALL_INCLUDEDIR}")
endif()
if(IS_ABSOLUTE "${_uvp_pc_dir}")
  set(UVP_PC_PREFIX "${CMAKE_INSTALL_PREFIX}")
else()
  # share/pkgconfig -> ../.. ; a deeper DATADIR adds one ".." per level.
  string(REGEX REPLACE "[^/]+" ".." _uvp_pc_up "${_uvp_pc_dir}")
  set(UVP_PC_PREFIX "\${pcfiledir}/${_uvp_pc_up}")
endif()
set(UVP_PC_CFLAGS "")
set(UVP_PC_LIBS "")
if(UVP_CONFIG_WITH_OPENMP AND OpenMP_CXX_FLAGS)
  set(UVP_PC_CFLAGS " ${OpenMP_CXX_FLAGS}")
  set(UVP_PC_LIBS "Libs: ${OpenMP_CXX_FLAGS}")
endif()
if(UVP_USE_BLAS)
  string(APPEND UVP_PC_CFLAGS " -DEIGEN_USE_BLAS -DUVP_USE_BLAS")
  if(NOT UVP_PC_LIBS)
    set(UVP_PC_LIBS "Libs:")
  endif()
  list(JOIN BLAS_LIBRARIES " " _uvp_pc_blas)
  string(APPEND UVP_PC_LIBS " ${_uvp_pc_blas}")
endif()
configure_file(cmake/uvp.pc.in "${PROJECT_BINARY_DIR}/uvp.pc" @ONLY)
install(FILES "${PROJECT_BINARY_DIR}/uvp.pc" DESTINATION ${_uvp_pc_dir})
install(FILES LICENSE DESTINATION ${CMAKE_INSTALL_DATADIR}/doc/uvp)
