# SPDX-License-Identifier: Apache-2.0
# cmake -P script (ctest uvp_packaging_consistency): the Conan recipe and the vcpkg port, which
# cannot be exercised here, agree with the CMake install on version, names, options and paths.
# -DSOURCE_DIR=<uvp source tree> -DVERSION=<project version> -DCMAKEDIR=<UVP_INSTALL_CMAKEDIR>
set(_errors "")
function(_require_text file text)
  file(READ "${SOURCE_DIR}/${file}" _content)
  string(FIND "${_content}" "${text}" _at)
  if(_at EQUAL -1)
    set(_errors "${_errors}\n  ${file}: does not contain ${text}" PARENT_SCOPE)
  endif()
endfunction()

file(READ "${SOURCE_DIR}/ports/uvp/vcpkg.json" _manifest)
string(JSON _name GET "${_manifest}" name)
string(JSON _version GET "${_manifest}" version)
if(NOT _name STREQUAL "uvp")
  string(APPEND _errors "\n  ports/uvp/vcpkg.json: name is '${_name}', expected uvp")
endif()
if(NOT _version STREQUAL VERSION)
  string(APPEND _errors "\n  ports/uvp/vcpkg.json: version is ${_version}, expected ${VERSION} (include/uvp/version.hpp)")
endif()
foreach(_feature IN ITEMS cuda openmp)
  string(JSON _type ERROR_VARIABLE _missing TYPE "${_manifest}" features ${_feature})
  if(NOT _missing STREQUAL "NOTFOUND")
    string(APPEND _errors "\n  ports/uvp/vcpkg.json: no feature '${_feature}'")
  endif()
endforeach()

_require_text(ports/uvp/portfile.cmake "vcpkg_cmake_config_fixup(PACKAGE_NAME uvp CONFIG_PATH ${CMAKEDIR})")
_require_text(ports/uvp/portfile.cmake "openmp UVP_WITH_OPENMP")
foreach(_text IN ITEMS "find_package(uvp CONFIG REQUIRED)" "uvp::uvp" "COMPONENTS cuda" "uvp::cuda")
  _require_text(ports/uvp/usage "${_text}")
endforeach()
foreach(_text IN ITEMS "package_type = \"header-library\"" "\"openmp\": [True, False]" "\"cuda\": [True, False]"
                       "\"cmake_file_name\", \"uvp\"" "\"cmake_target_name\", \"uvp::uvp\""
                       "\"pkg_config_name\", \"uvp\"" "self.info.clear()" "uvp::cuda")
  _require_text(conanfile.py "${_text}")
endforeach()

if(_errors)
  message(FATAL_ERROR "packaging files disagree with the CMake install:${_errors}")
endif()
message(STATUS "packaging files agree: uvp ${VERSION}, ${CMAKEDIR}, features/options cuda + openmp")
