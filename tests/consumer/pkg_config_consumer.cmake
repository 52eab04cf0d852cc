# SPDX-License-Identifier: Apache-2.0
# cmake -P script (ctest uvp_consumer_pkg_config): builds main.cpp with nothing but the flags
# `pkg-config --cflags --libs uvp` gives for an installed uvp, then runs it.
# -DPKG_CONFIG=<pkg-config> -DPREFIX=<install prefix> -DCXX=<compiler> -DSOURCE=<main.cpp>
# -DOUTPUT=<executable> -DEXPECTED_VERSION=<x.y.z>
foreach(_var IN ITEMS PKG_CONFIG PREFIX CXX SOURCE OUTPUT EXPECTED_VERSION)
  if(NOT DEFINED ${_var})
    message(FATAL_ERROR "pkg_config_consumer.cmake: -D${_var}=... is required")
  endif()
endforeach()

set(ENV{PKG_CONFIG_PATH} "${PREFIX}/share/pkgconfig:$ENV{PKG_CONFIG_PATH}")
execute_process(COMMAND "${PKG_CONFIG}" --modversion uvp
  OUTPUT_VARIABLE _version OUTPUT_STRIP_TRAILING_WHITESPACE RESULT_VARIABLE _rc)
if(NOT _rc EQUAL 0 OR NOT _version STREQUAL EXPECTED_VERSION)
  message(FATAL_ERROR "pkg-config --modversion uvp: '${_version}' (exit ${_rc}), expected ${EXPECTED_VERSION}")
endif()
execute_process(COMMAND "${PKG_CONFIG}" --cflags --libs uvp
  OUTPUT_VARIABLE _flags OUTPUT_STRIP_TRAILING_WHITESPACE RESULT_VARIABLE _rc)
if(NOT _rc EQUAL 0)
  message(FATAL_ERROR "pkg-config --cflags --libs uvp failed (exit ${_rc})")
endif()
message(STATUS "pkg-config --cflags --libs uvp: ${_flags}")
separate_arguments(_flags UNIX_COMMAND "${_flags}")

execute_process(COMMAND "${CXX}" -std=c++17 ${_flags} "-DUVP_CONSUMER_EXPECTED_VERSION=\"${_version}\""
                        "${SOURCE}" -o "${OUTPUT}" RESULT_VARIABLE _rc)
if(NOT _rc EQUAL 0)
  message(FATAL_ERROR "compiling ${SOURCE} with pkg-config's flags failed (exit ${_rc})")
endif()
execute_process(COMMAND "${OUTPUT}" RESULT_VARIABLE _rc)
if(NOT _rc EQUAL 0)
  message(FATAL_ERROR "${OUTPUT} failed (exit ${_rc})")
endif()
