# SPDX-License-Identifier: Apache-2.0
# Every ```cpp block of docs/**/*.md and README.md is compiled and run by ctest, so the docs cannot
# drift from the headers. Included from tests/CMakeLists.txt.
#
# At configure time each page becomes ONE translation unit (compile time: the headers are parsed
# and the templates instantiated once per page, not once per block):
#
#   #include lines of all the page's blocks            (hoisted; a later #include is then a no-op)
#   namespace uvp_docs_block_1 { <block 1> }           (so blocks may reuse names; main() included)
#   namespace uvp_docs_block_2 { <block 2> }
#   int main(int argc, char** argv)                    (runs the block named by argv[1])
#
# with #line directives, so a compile error points at the .md file and line. The target is
# docs_<page> (docs/nn/lstm.md -> docs_nn_lstm, README.md -> docs_readme,
# docs/README.md -> docs_index); the tests are
# docs_<page>_<n>, n counting the page's ```cpp blocks from 1. Each test runs in its own directory
# of the build tree that holds a link `examples` to the source tree's examples/, so a block reads
# the bundled data as `examples/data/...` (as from the repository root) and writes its files into
# the build tree.
#
# The rule for writers: a ```cpp block is a complete program (includes and int main() ending in
# an explicit return) that runs in well under a second, also under ASan in Debug. Anything else (signatures, fragments, shapes,
# output) goes in a ```text block. Blocks live in a namespace: do not specialise std:: or uvp::
# templates in them.
#
# UVP_DOCS_TESTS (default ON) turns it off; UVP_TEST_FILTER applies to the target names.

option(UVP_DOCS_TESTS "Compile and run every ```cpp block of the docs and the README" ON)

# Splits `md` into its ```cpp blocks. Sets in the caller's scope:
#   <prefix>_COUNT            number of blocks
#   <prefix>_<n>_LINE         1-based line of the block's first code line
#   <prefix>_<n>_CODE         the code (lines joined by "\n", indentation of the fence removed)
# Lines are handled with ; [ ] \ replaced by placeholders so CMake's list splitting cannot cut them.
function(uvp_docs_extract_blocks md prefix)
  file(READ "${md}" text)
  string(REPLACE "\r\n" "\n" text "${text}")
  string(REPLACE "\\" "@UVP_BS@" text "${text}")
  string(REPLACE ";" "@UVP_SC@" text "${text}")
  string(REPLACE "[" "@UVP_LB@" text "${text}")
  string(REPLACE "]" "@UVP_RB@" text "${text}")
  string(REPLACE "\n" ";" lines "${text}")

  set(count 0)
  set(lineno 0)
  set(in_fence FALSE)   # inside any fenced block
  set(in_cpp FALSE)     # inside a ```cpp block
  set(fence "")
  set(indent 0)
  foreach(line IN LISTS lines)
    math(EXPR lineno "${lineno} + 1")
    if(NOT in_fence)
      # An opening fence: up to 3 spaces, 3+ backticks or tildes, then the info string.
      if(line MATCHES "^( ? ? ?)(```+|~~~+)[ \t]*([^ \t`]*)")
        set(in_fence TRUE)
        string(LENGTH "${CMAKE_MATCH_1}" indent)
        set(fence "${CMAKE_MATCH_2}")
        string(TOLOWER "${CMAKE_MATCH_3}" lang)
        if(lang STREQUAL "cpp")
          set(in_cpp TRUE)
          math(EXPR count "${count} + 1")
          math(EXPR first "${lineno} + 1")
          set(${prefix}_${count}_LINE ${first} PARENT_SCOPE)
          set(code "")
          set(code_lines 0)
        endif()
      endif()
      continue()
    endif()
    # A closing fence: the same character, at least as long, nothing else on the line.
    string(SUBSTRING "${fence}" 0 1 fence_char)
    if(line MATCHES "^ ? ? ?(```+|~~~+)[ \t]*$")
      string(SUBSTRING "${CMAKE_MATCH_1}" 0 1 close_char)
      string(LENGTH "${CMAKE_MATCH_1}" close_len)
      string(LENGTH "${fence}" open_len)
      if(close_char STREQUAL fence_char AND NOT close_len LESS open_len)
        if(in_cpp)
          set(${prefix}_${count}_CODE "${code}" PARENT_SCOPE)
        endif()
        set(in_fence FALSE)
        set(in_cpp FALSE)
        continue()
      endif()
    endif()
    if(in_cpp)
      if(indent GREATER 0 AND line MATCHES "^ +")
        string(LENGTH "${CMAKE_MATCH_0}" lead)
        if(lead GREATER indent)
          set(lead ${indent})
        endif()
        string(SUBSTRING "${line}" ${lead} -1 line)
      endif()
      # Placeholders back to the characters they stand for.
      string(REPLACE "@UVP_SC@" ";" line "${line}")
      string(REPLACE "@UVP_LB@" "[" line "${line}")
      string(REPLACE "@UVP_RB@" "]" line "${line}")
      string(REPLACE "@UVP_BS@" "\\" line "${line}")
      if(code_lines GREATER 0)
        string(APPEND code "\n")
      endif()
      string(APPEND code "${line}")
      math(EXPR code_lines "${code_lines} + 1")
    endif()
  endforeach()
  if(in_cpp)  # unterminated block: take it to the end of the file, as Markdown renderers do
    set(${prefix}_${count}_CODE "${code}" PARENT_SCOPE)
  endif()
  set(${prefix}_COUNT ${count} PARENT_SCOPE)
endfunction()

# Writes `content` to `path` only when it changed, so an unchanged page is not recompiled.
function(uvp_docs_write_if_changed path content)
  if(EXISTS "${path}")
    file(READ "${path}" old)
    if(old STREQUAL content)
      return()
    endif()
  endif()
  file(WRITE "${path}" "${content}")
endfunction()

# The translation unit of one page; returns the number of blocks in `out_count`.
function(uvp_docs_page_source md out_file out_count)
  uvp_docs_extract_blocks("${md}" blk)
  set(${out_count} ${blk_COUNT} PARENT_SCOPE)
  file(RELATIVE_PATH rel "${PROJECT_SOURCE_DIR}" "${md}")
  set(head "// Generated by tests/docs/docs_snippets.cmake from ${rel}: edit the .md file, not this one.\n")
  set(hoisted "")
  set(bodies "")
  set(calls "")
  if(blk_COUNT GREATER 0)
    foreach(n RANGE 1 ${blk_COUNT})
      set(code "${blk_${n}_CODE}")
      set(line ${blk_${n}_LINE})
      # #include lines go to the top of the file (in the block's order) and become blank lines in
      # the body, which keeps the body's line numbers.
      string(REPLACE ";" "@UVP_SC@" esc "${code}")
      string(REPLACE "[" "@UVP_LB@" esc "${esc}")
      string(REPLACE "]" "@UVP_RB@" esc "${esc}")
      string(REPLACE "\\" "@UVP_BS@" esc "${esc}")
      string(REPLACE "\n" ";" code_lines "${esc}")
      set(body "")
      set(i 0)
      foreach(l IN LISTS code_lines)
        if(l MATCHES "^[ \t]*#[ \t]*include[ \t]*[<\"]")
          math(EXPR at "${line} + ${i}")
          string(APPEND hoisted "#line ${at} \"${md}\"\n${l}\n")
          set(l "")
        endif()
        if(i GREATER 0)
          string(APPEND body "\n")
        endif()
        string(APPEND body "${l}")
        math(EXPR i "${i} + 1")
      endforeach()
      if(NOT code MATCHES "int[ \t\n]+main[ \t\n]*\\(")
        # A fragment: one clear error instead of the compiler's reading of it.
        string(APPEND bodies "#line ${line} \"${md}\"\n#error \"this ```cpp block has no int main(): make it a complete program, or mark it ```text\"\n")
        continue()
      endif()
      string(APPEND bodies "namespace uvp_docs_block_${n} {\n#line ${line} \"${md}\"\n${body}\n}  // namespace uvp_docs_block_${n}\n")
      string(APPEND calls "    case ${n}: return uvp_docs::invoke(&uvp_docs_block_${n}::main, argc - 1, argv + 1);\n")
    endforeach()
  endif()
  string(REPLACE "@UVP_SC@" ";" hoisted "${hoisted}")
  string(REPLACE "@UVP_LB@" "[" hoisted "${hoisted}")
  string(REPLACE "@UVP_RB@" "]" hoisted "${hoisted}")
  string(REPLACE "@UVP_BS@" "\\" hoisted "${hoisted}")
  string(REPLACE "@UVP_SC@" ";" bodies "${bodies}")
  string(REPLACE "@UVP_LB@" "[" bodies "${bodies}")
  string(REPLACE "@UVP_RB@" "]" bodies "${bodies}")
  string(REPLACE "@UVP_BS@" "\\" bodies "${bodies}")
  set(driver "#line 1 \"uvp_docs_driver\"
#include <cstdio>
#include <cstdlib>
#include <exception>
namespace uvp_docs {
inline int invoke(int (*f)(), int, char**) { return f(); }
inline int invoke(int (*f)(int, char**), int argc, char** argv) { return f(argc, argv); }
}  // namespace uvp_docs
// usage: docs_<page> N   (runs the page's N-th ```cpp block; its main gets the remaining arguments)
int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, \"usage: %s BLOCK [ARGS...]\\n\", argv[0]);
    return 2;
  }
  try {
    switch (std::atoi(argv[1])) {
${calls}    default:
      std::fprintf(stderr, \"%s: no block %s in ${rel}\\n\", argv[0], argv[1]);
      return 2;
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, \"${rel} block %s threw: %s\\n\", argv[1], e.what());
    return 1;
  }
}
")
  uvp_docs_write_if_changed("${out_file}" "${head}${hoisted}${bodies}${driver}")
endfunction()

if(UVP_DOCS_TESTS)
  file(GLOB_RECURSE _uvp_docs_pages CONFIGURE_DEPENDS "${PROJECT_SOURCE_DIR}/docs/*.md")
  list(SORT _uvp_docs_pages)
  list(PREPEND _uvp_docs_pages "${PROJECT_SOURCE_DIR}/README.md")
  set(_uvp_docs_gen "${CMAKE_CURRENT_BINARY_DIR}/docs_snippets")
  foreach(_md IN LISTS _uvp_docs_pages)
    # Re-run the configure step when a page changes (new, removed or renumbered blocks).
    set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS "${_md}")
    file(RELATIVE_PATH _rel "${PROJECT_SOURCE_DIR}" "${_md}")
    string(REGEX REPLACE "^docs/" "" _page "${_rel}")
    string(REGEX REPLACE "\\.md$" "" _page "${_page}")
    string(TOLOWER "${_page}" _page)
    if(_rel STREQUAL "docs/README.md")
      set(_page "index")  # README.md (the project's) is docs_readme
    endif()
    string(MAKE_C_IDENTIFIER "docs_${_page}" _target)
    uvp_docs_page_source("${_md}" "${_uvp_docs_gen}/${_target}.cpp" _count)
    if(_count EQUAL 0 OR (UVP_TEST_FILTER AND NOT _target MATCHES "${UVP_TEST_FILTER}"))
      continue()
    endif()
    add_executable(${_target} "${_uvp_docs_gen}/${_target}.cpp")
    target_link_libraries(${_target} PRIVATE uvp::uvp)
    uvp_enable_warnings(${_target})
    # A block's main() lives in a namespace, where falling off its end is not `return 0` but
    # undefined behaviour: make the missing return an error.
    target_compile_options(${_target} PRIVATE $<$<CXX_COMPILER_ID:GNU,Clang,AppleClang>:-Werror=return-type>)
    foreach(_n RANGE 1 ${_count})
      set(_run "${_uvp_docs_gen}/run/${_target}_${_n}")
      file(MAKE_DIRECTORY "${_run}")
      if(NOT EXISTS "${_run}/examples")
        file(CREATE_LINK "${PROJECT_SOURCE_DIR}/examples" "${_run}/examples" SYMBOLIC COPY_ON_ERROR)
      endif()
      add_test(NAME ${_target}_${_n} COMMAND ${_target} ${_n} WORKING_DIRECTORY "${_run}")
      set_tests_properties(${_target}_${_n} PROPERTIES LABELS "docs" TIMEOUT 60)
    endforeach()
  endforeach()
endif()
