# Test rules of the debug allocators (src/alloc), included after the unit tests are defined:
# adapter tests link the real libraries, stack-checking tests export their symbols, and the
# examples (run as tests) and the benchmark are built.
pkg_check_modules(HTR_LUA QUIET IMPORTED_TARGET lua5.4)
pkg_check_modules(HTR_SQLITE QUIET IMPORTED_TARGET sqlite3)

# dladdr names only exported symbols; these tests check `function+0xoff` in reports.
foreach(t test_alloc_layers test_alloc_buffers test_alloc_stacks)
  if(TARGET ${t})
    set_target_properties(${t} PROPERTIES ENABLE_EXPORTS ON)
  endif()
endforeach()

# Adapter tests skip (exit 77) when their library is missing, instead of breaking the build.
if(TARGET test_alloc_lua)
  if(HTR_LUA_FOUND)
    target_link_libraries(test_alloc_lua PRIVATE PkgConfig::HTR_LUA)
  else()
    target_compile_definitions(test_alloc_lua PRIVATE HTR_NO_LUA)
  endif()
  set_tests_properties(unit.test_alloc_lua PROPERTIES SKIP_RETURN_CODE 77)
endif()
if(TARGET test_alloc_sqlite)
  if(HTR_SQLITE_FOUND)
    target_link_libraries(test_alloc_sqlite PRIVATE PkgConfig::HTR_SQLITE)
  else()
    target_compile_definitions(test_alloc_sqlite PRIVATE HTR_NO_SQLITE)
  endif()
  set_tests_properties(unit.test_alloc_sqlite PROPERTIES SKIP_RETURN_CODE 77)
endif()
if(TARGET test_alloc_zstd)
  target_link_libraries(test_alloc_zstd PRIVATE PkgConfig::ZSTD)
endif()

# Examples: built against the installed-style library (libheaptrail.a + the public header).
file(GLOB alloc_examples CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/examples/alloc_*.c)
foreach(src ${alloc_examples})
  get_filename_component(name ${src} NAME_WE)
  if(name STREQUAL "alloc_sqlite" AND NOT HTR_SQLITE_FOUND)
    continue()
  endif()
  add_executable(example_${name} ${src})
  target_compile_options(example_${name} PRIVATE ${HTR_WARN})
  target_link_libraries(example_${name} PRIVATE heaptrail m)
  if(name STREQUAL "alloc_sqlite")
    target_link_libraries(example_${name} PRIVATE PkgConfig::HTR_SQLITE)
  endif()
  set_target_properties(example_${name} PROPERTIES ENABLE_EXPORTS ON)
  add_test(NAME alloc.example_${name} COMMAND example_${name})
  set_tests_properties(alloc.example_${name} PROPERTIES LABELS example TIMEOUT 60)
endforeach()
if(TARGET example_alloc_sqlite)
  set_tests_properties(alloc.example_alloc_sqlite PROPERTIES
    PASS_REGULAR_EXPRESSION "tag sqlite: [0-9]+ bytes in [0-9]+ blocks")
endif()

# The per-layer cost benchmark (bench/results/alloc.md); a quick run doubles as a smoke test.
if(EXISTS ${CMAKE_SOURCE_DIR}/bench/alloc_bench.c)
  add_executable(alloc_bench ${CMAKE_SOURCE_DIR}/bench/alloc_bench.c)
  target_compile_options(alloc_bench PRIVATE ${HTR_WARN})
  target_link_libraries(alloc_bench PRIVATE heaptrail m)
  add_test(NAME alloc.bench_smoke COMMAND alloc_bench --quick)
  set_tests_properties(alloc.bench_smoke PROPERTIES LABELS bench TIMEOUT 120)
endif()
