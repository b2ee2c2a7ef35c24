# Symbolizer test rules: the C++ fixture library (-O2 -g, so inlining and line tables are
# real), a detached copy of its debug info for the build-id fallback cases, and copies
# without DWARF (.symtab left), without anything but .dynsym, and one pointing at the
# detached file through .gnu_debuglink.
add_library(symfix SHARED ${CMAKE_SOURCE_DIR}/tests/unit/fixtures/symbols/symfix.cpp)
target_compile_options(symfix PRIVATE -O2 -g -fno-omit-frame-pointer)
# The fixture exports its cases; the project-wide hidden default would hide them.
set_target_properties(symfix PROPERTIES CXX_VISIBILITY_PRESET default
                      VISIBILITY_INLINES_HIDDEN OFF)
target_link_options(symfix PRIVATE -Wl,--build-id)
add_custom_command(TARGET symfix POST_BUILD
  COMMAND ${CMAKE_OBJCOPY} --only-keep-debug $<TARGET_FILE:symfix>
          ${CMAKE_CURRENT_BINARY_DIR}/symfix.debug
  COMMAND ${CMAKE_OBJCOPY} --strip-debug $<TARGET_FILE:symfix>
          ${CMAKE_CURRENT_BINARY_DIR}/symfix-nodebug.so
  COMMAND ${CMAKE_OBJCOPY} --strip-all $<TARGET_FILE:symfix>
          ${CMAKE_CURRENT_BINARY_DIR}/symfix-stripped.so
  COMMAND ${CMAKE_OBJCOPY} --strip-debug --add-gnu-debuglink=symfix.debug
          $<TARGET_FILE:symfix> ${CMAKE_CURRENT_BINARY_DIR}/symfix-linked.so
  WORKING_DIRECTORY ${CMAKE_CURRENT_BINARY_DIR}
  COMMENT "Detaching symfix debug info, making stripped copies")

# dwz's shared DWARF (.gnu_debugaltlink), as Debian's -dbgsym packages ship it: two copies
# share one common file, recorded under a name inside the test's work dir.
find_program(HTR_DWZ dwz)
set(symfix_dwz_alt ${CMAKE_CURRENT_BINARY_DIR}/symfix-work/alt/symfix-common.debug)
if(HTR_DWZ)
  add_custom_command(TARGET symfix POST_BUILD
    COMMAND ${CMAKE_COMMAND} -E copy $<TARGET_FILE:symfix> symfix-dwz-a.so
    COMMAND ${CMAKE_COMMAND} -E copy $<TARGET_FILE:symfix> symfix-dwz-b.so
    COMMAND ${HTR_DWZ} -m symfix-common.debug -M ${symfix_dwz_alt} symfix-dwz-a.so symfix-dwz-b.so
    WORKING_DIRECTORY ${CMAKE_CURRENT_BINARY_DIR}
    COMMENT "dwz: sharing symfix's DWARF through an alt file")
  target_compile_definitions(test_symbols PRIVATE SYMFIX_DWZ=1
    SYMFIX_DWZ_FILE="${CMAKE_CURRENT_BINARY_DIR}/symfix-dwz-a.so"
    SYMFIX_DWZ_COMMON="${CMAKE_CURRENT_BINARY_DIR}/symfix-common.debug"
    SYMFIX_DWZ_ALT="${symfix_dwz_alt}")
else()
  message(STATUS "dwz not found: the .gnu_debugaltlink case of test_symbols is skipped")
  target_compile_definitions(test_symbols PRIVATE SYMFIX_DWZ=0)
endif()

# The same fixture from clang, loaded by the test with dlopen: clang emits no
# .debug_aranges, so CUs are found through their own ranges. -Bsymbolic keeps its calls
# and its symfix_last inside it rather than bound to the gcc copy already loaded.
find_program(HTR_CLANGXX NAMES clang++ clang++-14)
set(symfix_clang ${CMAKE_CURRENT_BINARY_DIR}/libsymfix-clang.so)
if(HTR_CLANGXX)
  add_custom_command(OUTPUT ${symfix_clang}
    COMMAND ${HTR_CLANGXX} -O2 -g -fPIC -shared -Wl,-Bsymbolic -Wno-unknown-attributes
            -I${CMAKE_SOURCE_DIR}/tests/unit/fixtures/symbols
            ${CMAKE_SOURCE_DIR}/tests/unit/fixtures/symbols/symfix.cpp -o ${symfix_clang}
    DEPENDS ${CMAKE_SOURCE_DIR}/tests/unit/fixtures/symbols/symfix.cpp
            ${CMAKE_SOURCE_DIR}/tests/unit/fixtures/symbols/symfix.h
    COMMENT "Building the symfix fixture with clang")
  add_custom_target(symfix_clang DEPENDS ${symfix_clang})
  add_dependencies(test_symbols symfix_clang)
  target_compile_definitions(test_symbols PRIVATE SYMFIX_CLANG_FILE="${symfix_clang}")
else()
  message(STATUS "clang++ not found: the clang case of test_symbols is skipped")
endif()

target_include_directories(test_symbols PRIVATE ${CMAKE_SOURCE_DIR}/tests/unit/fixtures/symbols)
target_link_libraries(test_symbols PRIVATE symfix)
target_compile_definitions(test_symbols PRIVATE
  SYMFIX_DEBUG_FILE="${CMAKE_CURRENT_BINARY_DIR}/symfix.debug"
  SYMFIX_NODEBUG_FILE="${CMAKE_CURRENT_BINARY_DIR}/symfix-nodebug.so"
  SYMFIX_STRIPPED_FILE="${CMAKE_CURRENT_BINARY_DIR}/symfix-stripped.so"
  SYMFIX_LINKED_FILE="${CMAKE_CURRENT_BINARY_DIR}/symfix-linked.so"
  SYMFIX_WORK_DIR="${CMAKE_CURRENT_BINARY_DIR}/symfix-work")

# Speed guard: one generated CU with 1000 functions and 2000 inlined calls. Symbolizing by
# walking the CU per pc (dwarf_getscopes) costs ~0.5 ms a pc there; the per-CU index, microseconds.
add_custom_command(OUTPUT ${CMAKE_CURRENT_BINARY_DIR}/symbig.c
  COMMAND python3 ${CMAKE_SOURCE_DIR}/tests/unit/fixtures/symbols/gen_bigcu.py
          ${CMAKE_CURRENT_BINARY_DIR}/symbig.c 1000
  DEPENDS ${CMAKE_SOURCE_DIR}/tests/unit/fixtures/symbols/gen_bigcu.py
  COMMENT "Generating the symbolizer speed fixture")
add_library(symbig SHARED ${CMAKE_CURRENT_BINARY_DIR}/symbig.c)
target_compile_options(symbig PRIVATE -O2 -g)
target_link_libraries(test_symbols_speed PRIVATE symbig)
