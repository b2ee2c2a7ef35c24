# Guard (issue 4) test rules: builds the misuse programs of tests/programs/misuse/ (each states
# its verdict in its first comment) and checks the verdicts with check_misuse.sh, under memcheck
# and under the real agent: `heaptrail run` (misuse.heaptrail.*; the misuse checks are on by
# default), or HTR_MISUSE_RUNNER (a command prefix that runs a program under heaptrail and
# prints the text report).
file(GLOB misuse_srcs CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/tests/programs/misuse/*.c
     ${CMAKE_SOURCE_DIR}/tests/programs/misuse/*.cc)
find_program(HTR_VALGRIND valgrind)
set(HTR_MISUSE_RUNNER "" CACHE STRING
    "command prefix that runs a program under heaptrail and prints its misuse report (default: heaptrail run)")
if(HTR_MISUSE_RUNNER)
  set(misuse_runner "${HTR_MISUSE_RUNNER}")
elseif(TARGET heaptrail-cli AND TARGET heaptrail-preload)
  set(misuse_runner "$<TARGET_FILE:heaptrail-cli> run")
else()
  set(misuse_runner "")
endif()
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
  if(misuse_runner AND NOT HTR_SANITIZE)
    add_test(NAME misuse.heaptrail.${name}
             COMMAND ${misuse_check} "${misuse_runner}" $<TARGET_FILE:${target}> ${src})
    set_tests_properties(misuse.heaptrail.${name} PROPERTIES LABELS "misuse"
                         TIMEOUT 120 SKIP_RETURN_CODE 77)
  endif()
endforeach()

# No false reports on a real program: the system python3 (not a pyenv shim script) under the
# real agent with the issue's defaults spelled out; PYTHONMALLOC=malloc so that every object
# goes through malloc. Passes when the run is clean: status 0, the script's "done", and no
# misuse report (the summary line, when printed, says 0 errors).
find_program(HTR_SYS_PYTHON3 python3 PATHS /usr/bin NO_DEFAULT_PATH)
if(HTR_SYS_PYTHON3 AND misuse_runner AND NOT HTR_SANITIZE)
  add_test(NAME misuse.guard.python3
           COMMAND sh -c "PYTHONMALLOC=malloc ${misuse_runner} --redzone=16 --quarantine=64M \
${HTR_SYS_PYTHON3} ${CMAKE_SOURCE_DIR}/tests/programs/misuse/harness/python_workload.py \
> python3.out 2>&1; status=$?; cat python3.out; [ $status -eq 0 ] && grep -q '^done' python3.out && \
! grep -q -e '== Invalid ' -e '== Mismatched ' python3.out && \
! grep 'ERROR SUMMARY' python3.out | grep -v -q 'ERROR SUMMARY: 0 errors from 0 contexts'")
  set_tests_properties(misuse.guard.python3 PROPERTIES LABELS "misuse" TIMEOUT 300)
endif()
