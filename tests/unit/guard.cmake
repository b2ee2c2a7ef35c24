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
  if(HTR_MISUSE_RUNNER)
    add_test(NAME misuse.heaptrail.${name}
             COMMAND ${misuse_check} ${HTR_MISUSE_RUNNER} $<TARGET_FILE:${target}> ${src})
    set_tests_properties(misuse.heaptrail.${name} PROPERTIES LABELS "misuse"
                         TIMEOUT 120 SKIP_RETURN_CODE 77)
  endif()
endforeach()
