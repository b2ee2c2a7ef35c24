# Leak-scan rules: the 1M-block scan benchmark (bench/leak_scan_bench.c, results in
# bench/results/leaks.md), built with the unit tests since it links the agent core.
add_executable(leak_scan_bench ${CMAKE_SOURCE_DIR}/bench/leak_scan_bench.c)
target_compile_options(leak_scan_bench PRIVATE ${HTR_WARN})
target_link_libraries(leak_scan_bench PRIVATE htr_check htr_agent htr_trace htr_unwind htr_base)
# A quick run keeps it building and working: 100k blocks, one repetition. Not under the
# sanitizers: the whole-process scan would walk ASan's shadow memory (test_scan skips its
# world scan there too; a program traced by the agent never runs ASan's allocator).
if(NOT HTR_SANITIZE)
  add_test(NAME unit.leak_scan_bench_quick COMMAND leak_scan_bench 100000 1)
  set_tests_properties(unit.leak_scan_bench_quick PROPERTIES LABELS unit TIMEOUT 120)
endif()
