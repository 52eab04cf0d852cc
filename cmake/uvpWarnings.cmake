# SPDX-License-Identifier: Apache-2.0
# Warning flags for uvp's own targets (tests, examples, benchmarks); never applied to consumers.
option(UVP_WERROR "Treat warnings in uvp's own targets as errors" OFF)
function(uvp_enable_warnings target)
  if(MSVC)
    target_compile_options(${target} PRIVATE /W4)
  else()
    target_compile_options(${target} PRIVATE $<$<COMPILE_LANGUAGE:CXX>:-Wall -Wextra -Wpedantic>)
    if(UVP_WERROR)
      target_compile_options(${target} PRIVATE $<$<COMPILE_LANGUAGE:CXX>:-Werror>)
    endif()
  endif()
endfunction()
