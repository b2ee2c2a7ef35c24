# Guard (issue 4) test rules: builds the misuse programs of tests/programs/misuse/ (each states
# its verdict in its first comment) and checks the verdicts with check_misuse.sh: under
# memcheck now, under heaptrail when HTR_MISUSE_RUNNER names a runner (a command prefix that
# runs a program under the agent and prints the text report).
file(GLOB misuse_srcs CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/tests/programs/misuse/*.c
     ${CMAKE_SOURCE_DIR}/tests/programs/misuse/*.cc)
find_program(HTR_VALGRIND valgrind)
set(HTR_MISUSE_RUNNER "" CACHE STRING
    "command prefix that runs a program under heaptrail and prints its misuse report")
set(misuse_check ${CMAKE_SOURCE_DIR}/tests/programs/misuse/check_misuse.sh)

foreach(src ${misuse_srcs})
  get_filename_component(name ${src} NAME_WE)
  set(target misuse_${name})
  add_executable(${target} ${src})
  # The bugs must survive compilation as written: no optimisation, no warnings about them.
  target_compile_options(${target} PRIVATE -O0 -g -w)
  target_link_libraries(${target} PRIVATE Threads::Threads)
  set_target_properties(${target} PROPERTIES OUTPUT_NAME ${name}
                        RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/tests/misuse)
  file(STRINGS ${src} has_memcheck REGEX "^ \\* memcheck:")
  # memcheck cannot run sanitizer builds
  if(HTR_VALGRIND AND has_memcheck AND NOT HTR_SANITIZE)
    add_test(NAME misuse.memcheck.${name}
             COMMAND ${misuse_check} ${HTR_VALGRIND} $<TARGET_FILE:${target}> ${src})
    set_tests_properties(misuse.memcheck.${name} PROPERTIES LABELS "misuse;valgrind"
                         TIMEOUT 120 SKIP_RETURN_CODE 77)
  endif()
  if(HTR_MISUSE_RUNNER AND NOT HTR_SANITIZE)
    add_test(NAME misuse.heaptrail.${name}
             COMMAND ${misuse_check} ${HTR_MISUSE_RUNNER} $<TARGET_FILE:${target}> ${src})
    set_tests_properties(misuse.heaptrail.${name} PROPERTIES LABELS "misuse"
                         TIMEOUT 120 SKIP_RETURN_CODE 77)
  endif()
endforeach()

# The guard test harness: an LD_PRELOAD stand-in for the agent that wires the guard as the
# hooks will, so the heaptrail side of every verdict is checked now (misuse.guard.*).
add_library(htr_guard_shim SHARED ${CMAKE_SOURCE_DIR}/tests/programs/misuse/harness/guard_shim.c)
target_compile_options(htr_guard_shim PRIVATE ${HTR_WARN})
target_link_libraries(htr_guard_shim PRIVATE htr_check htr_render htr_symbols htr_agent htr_unwind
                      htr_base ${CMAKE_DL_LIBS})
target_link_options(htr_guard_shim PRIVATE -Wl,--exclude-libs,ALL)
set(guard_shim_runner
    "${CMAKE_SOURCE_DIR}/tests/programs/misuse/harness/guard_shim_run.sh $<TARGET_FILE:htr_guard_shim>")
if(NOT HTR_SANITIZE)
  foreach(src ${misuse_srcs})
    get_filename_component(name ${src} NAME_WE)
    add_test(NAME misuse.guard.${name}
             COMMAND ${misuse_check} ${guard_shim_runner} $<TARGET_FILE:misuse_${name}> ${src})
    set_tests_properties(misuse.guard.${name} PROPERTIES LABELS "misuse" TIMEOUT 120
                         SKIP_RETURN_CODE 77)
  endforeach()
endif()

# No false reports on a real program: the system python3 (not a pyenv shim script).
find_program(HTR_SYS_PYTHON3 python3 PATHS /usr/bin NO_DEFAULT_PATH)
if(HTR_SYS_PYTHON3 AND NOT HTR_SANITIZE)
  add_test(NAME misuse.guard.python3
           COMMAND sh -c "${guard_shim_runner} --redzone=16 --quarantine=64M ${HTR_SYS_PYTHON3} \
${CMAKE_SOURCE_DIR}/tests/programs/misuse/harness/python_workload.py > python3.out 2>&1; \
status=$?; cat python3.out; [ $status -eq 0 ] && grep -q '^done' python3.out && \
grep -q 'ERROR SUMMARY: 0 errors from 0 contexts' python3.out")
  set_tests_properties(misuse.guard.python3 PROPERTIES LABELS "misuse" TIMEOUT 300)
endif()
