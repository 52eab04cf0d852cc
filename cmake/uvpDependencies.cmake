# SPDX-License-Identifier: Apache-2.0
# Finds uvp's dependencies; shared by the build and by the installed uvpConfig.cmake.
include(CMakeFindDependencyMacro)

# Debian ships Eigen 3.4.0, whose version file rejects a range; Conan/vcpkg ship 3.4.1-5.x.
if(NOT TARGET Eigen3::Eigen)
  find_package(Eigen3 3.4...<6 QUIET NO_MODULE)
  if(NOT Eigen3_FOUND)
    find_dependency(Eigen3 3.4 NO_MODULE)
  endif()
endif()

# xsimd's version file accepts only its own major, so no version here (8.x and 13.x both work).
# Debian's xsimd 8.1 links a bare `xtl` that it never finds: give it an empty target.
if(NOT TARGET xtl)
  find_package(xtl QUIET NO_MODULE)
  if(NOT TARGET xtl)
    add_library(xtl INTERFACE IMPORTED)
  endif()
endif()
if(NOT TARGET xsimd)
  find_dependency(xsimd NO_MODULE)
endif()

if(UVP_WITH_OPENMP AND NOT TARGET OpenMP::OpenMP_CXX)
  find_package(OpenMP COMPONENTS CXX QUIET)
endif()

if(UVP_USE_BLAS AND NOT TARGET BLAS::BLAS)
  find_dependency(BLAS)
endif()
