# SPDX-License-Identifier: Apache-2.0
# vcpkg port of uvp, a header-only library: CMake install of the headers, the config package
# (share/uvp after the fixup) and uvp.pc. Nothing is compiled, so only the release half runs.
set(VCPKG_BUILD_TYPE release)

# As an overlay port inside uvp's own repository (vcpkg install uvp --overlay-ports=<repo>/ports),
# it packages the checkout it lives in. In a registry the files stand alone and the sources come
# from the release tag (fill in SHA512 when one is published).
if(EXISTS "${CMAKE_CURRENT_LIST_DIR}/../../include/uvp/version.hpp")
  get_filename_component(SOURCE_PATH "${CMAKE_CURRENT_LIST_DIR}/../.." ABSOLUTE)
else()
  vcpkg_from_github(
    OUT_SOURCE_PATH SOURCE_PATH
    REPO uvp-dev/uvp
    REF "v${VERSION}"
    SHA512 0
    HEAD_REF main
  )
endif()

# Feature `cuda` only brings the CUDA toolkit for consumers: the .cuh headers are always installed
# and compiled by the consumer's nvcc, so nothing CUDA is built here. Feature `mpi` likewise brings
# MPI (vcpkg's `mpi` port) for `COMPONENTS mpi`; the uvp/mpi/*.hpp headers are always installed.
# Nothing installed depends on it: UVP_WITH_MPI=ON only makes the configure step fail early unless
# find_package(MPI) finds the MPI that consumers' `COMPONENTS mpi` will find; OFF never looks (AUTO,
# the top-level default, would), so a system MPI cannot leak into the build.
vcpkg_check_features(OUT_FEATURE_OPTIONS FEATURE_OPTIONS
  FEATURES
    openmp UVP_WITH_OPENMP
    mpi    UVP_WITH_MPI
)

vcpkg_cmake_configure(
  SOURCE_PATH "${SOURCE_PATH}"
  OPTIONS
    ${FEATURE_OPTIONS}
    -DUVP_INSTALL=ON
    -DUVP_WITH_CUDA=OFF
    -DUVP_BUILD_TESTS=OFF
    -DUVP_BUILD_EXAMPLES=OFF
    -DUVP_BUILD_BENCHMARKS=OFF
    -DUVP_HEADER_CHECK=OFF
)
vcpkg_cmake_install()
vcpkg_cmake_config_fixup(PACKAGE_NAME uvp CONFIG_PATH share/cmake/uvp)

# Header-only: no libraries; the license goes to share/uvp/copyright instead of share/doc.
file(REMOVE_RECURSE "${CURRENT_PACKAGES_DIR}/lib" "${CURRENT_PACKAGES_DIR}/share/doc")
# uvp.pc sits in share/pkgconfig (arch-independent) unless OpenMP adds a `Libs:` line, which
# vcpkg wants in lib/pkgconfig. Both are two levels below the prefix, as uvp.pc's ${pcfiledir}
# based prefix expects.
if("openmp" IN_LIST FEATURES)
  file(MAKE_DIRECTORY "${CURRENT_PACKAGES_DIR}/lib/pkgconfig")
  file(RENAME "${CURRENT_PACKAGES_DIR}/share/pkgconfig/uvp.pc" "${CURRENT_PACKAGES_DIR}/lib/pkgconfig/uvp.pc")
  file(REMOVE_RECURSE "${CURRENT_PACKAGES_DIR}/share/pkgconfig")
endif()
vcpkg_fixup_pkgconfig()

file(INSTALL "${CMAKE_CURRENT_LIST_DIR}/usage" DESTINATION "${CURRENT_PACKAGES_DIR}/share/${PORT}")
vcpkg_install_copyright(FILE_LIST "${SOURCE_PATH}/LICENSE")
