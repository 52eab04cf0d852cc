# SPDX-License-Identifier: Apache-2.0
# Consumer tests, run by ctest (label "consumer"), included from tests/CMakeLists.txt:
#   uvp_consumer_install            cmake --install of this build tree into a temporary prefix
#   uvp_consumer_find_package       tests/consumer as a separate project, find_package(uvp CONFIG
#                                   REQUIRED) on that prefix: configure, build, run
#   uvp_consumer_pkg_config         the same main.cpp built with only `pkg-config --cflags --libs uvp`
#   uvp_consumer_add_subdirectory   the same consumer, add_subdirectory of the source tree
#   uvp_consumer_find_package_cuda  (UVP_WITH_CUDA) a .cu consumer of the `cuda` component
#   uvp_consumer_find_package_mpi   (UVP_HAVE_MPI) a consumer of the `mpi` component, run on 2 ranks
#   uvp_cuda_header_guard           a .cuh included by the host compiler stops with a clear #error
#   uvp_packaging_consistency       conanfile.py and ports/uvp agree with the CMake install
set(_uvp_consumer_src "${CMAKE_CURRENT_LIST_DIR}")
set(_uvp_consumer_work "${CMAKE_CURRENT_BINARY_DIR}/consumer")
set(_uvp_consumer_prefix "${_uvp_consumer_work}/prefix")
get_property(_uvp_multi_config GLOBAL PROPERTY GENERATOR_IS_MULTI_CONFIG)

# A list in one add_test() argument must keep its semicolons.
function(_uvp_consumer_escape out value)
  string(REPLACE ";" "$<SEMICOLON>" value "${value}")
  set(${out} "${value}" PARENT_SCOPE)
endfunction()

# The nested projects use this build's generator, compiler and build type, and find uvp's
# dependencies where this build found them.
set(_uvp_consumer_build
  --build-generator "${CMAKE_GENERATOR}"
  --build-makeprogram "${CMAKE_MAKE_PROGRAM}")
if(CMAKE_GENERATOR_PLATFORM)
  list(APPEND _uvp_consumer_build --build-generator-platform "${CMAKE_GENERATOR_PLATFORM}")
endif()
if(CMAKE_GENERATOR_TOOLSET)
  list(APPEND _uvp_consumer_build --build-generator-toolset "${CMAKE_GENERATOR_TOOLSET}")
endif()
if(_uvp_multi_config)
  list(APPEND _uvp_consumer_build --build-config "$<CONFIG>")
endif()

set(_uvp_consumer_options
  "-DCMAKE_CXX_COMPILER=${CMAKE_CXX_COMPILER}"
  "-DUVP_CONSUMER_EXPECTED_VERSION=${PROJECT_VERSION}")
if(NOT _uvp_multi_config AND CMAKE_BUILD_TYPE)
  list(APPEND _uvp_consumer_options "-DCMAKE_BUILD_TYPE=${CMAKE_BUILD_TYPE}")
endif()
# The same language level and flags (a sanitizer build builds its consumers with the sanitizer).
foreach(_var IN ITEMS CMAKE_CXX_STANDARD CMAKE_CXX_FLAGS CMAKE_EXE_LINKER_FLAGS
                      CMAKE_CXX_COMPILER_LAUNCHER CMAKE_TOOLCHAIN_FILE Eigen3_DIR xsimd_DIR xtl_DIR)
  if(${_var})
    _uvp_consumer_escape(_value "${${_var}}")
    list(APPEND _uvp_consumer_options "-D${_var}=${_value}")
  endif()
endforeach()

set(_uvp_consumer_run --test-command "${CMAKE_CTEST_COMMAND}" --output-on-failure)
if(_uvp_multi_config)
  list(APPEND _uvp_consumer_run -C "$<CONFIG>")
endif()

if(UVP_INSTALL)
  add_test(NAME uvp_consumer_clean
    COMMAND "${CMAKE_COMMAND}" -E rm -rf "${_uvp_consumer_prefix}" "${_uvp_consumer_work}/find_package"
            "${_uvp_consumer_work}/find_package_cuda" "${_uvp_consumer_work}/find_package_mpi")
  set_tests_properties(uvp_consumer_clean PROPERTIES FIXTURES_SETUP uvp_consumer_clean LABELS consumer)

  set(_uvp_install_cmd "${CMAKE_COMMAND}" --install "${PROJECT_BINARY_DIR}" --prefix "${_uvp_consumer_prefix}")
  if(_uvp_multi_config)
    list(APPEND _uvp_install_cmd --config "$<CONFIG>")
  endif()
  add_test(NAME uvp_consumer_install COMMAND ${_uvp_install_cmd})
  set_tests_properties(uvp_consumer_install PROPERTIES
    FIXTURES_REQUIRED uvp_consumer_clean FIXTURES_SETUP uvp_installed LABELS consumer)

  # Only the temporary prefix (and where the dependencies live) is searched: the consumer must
  # find the installed uvp, never this build or source tree.
  _uvp_consumer_escape(_uvp_prefix_path "${_uvp_consumer_prefix};${CMAKE_PREFIX_PATH}")
  set(_uvp_find_package_options ${_uvp_consumer_options}
    -DUVP_CONSUMER_MODE=find_package
    "-DCMAKE_PREFIX_PATH=${_uvp_prefix_path}"
    "-DUVP_CONSUMER_EXPECTED_PREFIX=${_uvp_consumer_prefix}"
    -DCMAKE_FIND_USE_PACKAGE_REGISTRY=OFF)
  add_test(NAME uvp_consumer_find_package
    COMMAND "${CMAKE_CTEST_COMMAND}" --build-and-test "${_uvp_consumer_src}" "${_uvp_consumer_work}/find_package"
            ${_uvp_consumer_build} --build-options ${_uvp_find_package_options} ${_uvp_consumer_run})
  set_tests_properties(uvp_consumer_find_package PROPERTIES
    FIXTURES_REQUIRED uvp_installed LABELS consumer TIMEOUT 600)

  # uvp.pc alone is enough to build the same consumer (GCC/Clang command line).
  find_package(PkgConfig QUIET)
  if(PKG_CONFIG_EXECUTABLE AND CMAKE_CXX_COMPILER_ID MATCHES "GNU|Clang")
    add_test(NAME uvp_consumer_pkg_config
      COMMAND "${CMAKE_COMMAND}" "-DPKG_CONFIG=${PKG_CONFIG_EXECUTABLE}" "-DPREFIX=${_uvp_consumer_prefix}"
              "-DCXX=${CMAKE_CXX_COMPILER}" "-DSOURCE=${_uvp_consumer_src}/main.cpp"
              "-DOUTPUT=${_uvp_consumer_work}/pkg_config_consumer" "-DEXPECTED_VERSION=${PROJECT_VERSION}"
              -P "${_uvp_consumer_src}/pkg_config_consumer.cmake")
    set_tests_properties(uvp_consumer_pkg_config PROPERTIES
      FIXTURES_REQUIRED uvp_installed LABELS consumer TIMEOUT 300)
  endif()

  if(UVP_WITH_CUDA AND CMAKE_CUDA_COMPILER)
    _uvp_consumer_escape(_uvp_cuda_archs "${CMAKE_CUDA_ARCHITECTURES}")
    add_test(NAME uvp_consumer_find_package_cuda
      COMMAND "${CMAKE_CTEST_COMMAND}" --build-and-test "${_uvp_consumer_src}" "${_uvp_consumer_work}/find_package_cuda"
              ${_uvp_consumer_build} --build-options ${_uvp_find_package_options}
              -DUVP_CONSUMER_CUDA=ON "-DCMAKE_CUDA_COMPILER=${CMAKE_CUDA_COMPILER}"
              "-DCMAKE_CUDA_ARCHITECTURES=${_uvp_cuda_archs}" ${_uvp_consumer_run})
    set_tests_properties(uvp_consumer_find_package_cuda PROPERTIES
      FIXTURES_REQUIRED uvp_installed LABELS "consumer;cuda" TIMEOUT 600)
  endif()

  # The mpi component of the installed config, with the MPI this build found; only its program is
  # built and run (main.cpp is the plain consumer's).
  if(UVP_HAVE_MPI)
    set(_uvp_mpi_options "")
    foreach(_var IN ITEMS MPI_CXX_COMPILER MPIEXEC_EXECUTABLE)
      if(${_var})
        list(APPEND _uvp_mpi_options "-D${_var}=${${_var}}")
      endif()
    endforeach()
    add_test(NAME uvp_consumer_find_package_mpi
      COMMAND "${CMAKE_CTEST_COMMAND}" --build-and-test "${_uvp_consumer_src}" "${_uvp_consumer_work}/find_package_mpi"
              ${_uvp_consumer_build} --build-target uvp_consumer_mpi
              --build-options ${_uvp_find_package_options} -DUVP_CONSUMER_MPI=ON ${_uvp_mpi_options}
              ${_uvp_consumer_run} -R "^uvp_consumer_mpi$" --no-tests=error)
    set_tests_properties(uvp_consumer_find_package_mpi PROPERTIES
      FIXTURES_REQUIRED uvp_installed LABELS "consumer;mpi" TIMEOUT 600)
  endif()
endif()

add_test(NAME uvp_consumer_add_subdirectory
  COMMAND "${CMAKE_CTEST_COMMAND}" --build-and-test "${_uvp_consumer_src}" "${_uvp_consumer_work}/add_subdirectory"
          ${_uvp_consumer_build} --build-options ${_uvp_consumer_options}
          -DUVP_CONSUMER_MODE=add_subdirectory "-DUVP_SOURCE_DIR=${PROJECT_SOURCE_DIR}"
          ${_uvp_consumer_run})
set_tests_properties(uvp_consumer_add_subdirectory PROPERTIES LABELS consumer TIMEOUT 600)

# The .cuh headers refuse a host compiler with a message saying what to do.
if(CMAKE_CXX_COMPILER_ID MATCHES "GNU|Clang")
  add_test(NAME uvp_cuda_header_guard
    COMMAND "${CMAKE_CXX_COMPILER}" -fsyntax-only "-I${PROJECT_SOURCE_DIR}/include"
            "${_uvp_consumer_src}/cuda_guard.cpp")
  set_tests_properties(uvp_cuda_header_guard PROPERTIES LABELS consumer
    PASS_REGULAR_EXPRESSION "is CUDA code: include it only from \\.cu files compiled by nvcc")
endif()

add_test(NAME uvp_packaging_consistency
  COMMAND "${CMAKE_COMMAND}" "-DSOURCE_DIR=${PROJECT_SOURCE_DIR}" "-DVERSION=${PROJECT_VERSION}"
          "-DCMAKEDIR=${CMAKE_INSTALL_DATADIR}/cmake/uvp" -P "${_uvp_consumer_src}/packaging_consistency.cmake")
set_tests_properties(uvp_packaging_consistency PROPERTIES LABELS consumer)
