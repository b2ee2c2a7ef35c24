# Agent behaviour tests: fixtures run under LD_PRELOAD=libheaptrail-preload.so, their traces
# decoded by agent_check (tests/unit/fixtures/agent/). Unit tests test_agent_*.c and
# test_trace_writer*.c are globbed by tests/CMakeLists.txt.
if(TARGET heaptrail-preload)
  set(agent_fx ${CMAKE_SOURCE_DIR}/tests/unit/fixtures/agent)
  set(agent_fx_bin ${CMAKE_CURRENT_BINARY_DIR}/agent-fixtures)
  foreach(fx agent_basic agent_threads agent_exit agent_churn)
    add_executable(${fx} ${agent_fx}/${fx}.c)
    target_compile_options(${fx} PRIVATE -O1 -g)
    set_target_properties(${fx} PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${agent_fx_bin})
  endforeach()
  target_link_libraries(agent_threads PRIVATE Threads::Threads)
  target_link_libraries(agent_churn PRIVATE Threads::Threads)
  add_library(agent_dso SHARED ${agent_fx}/agent_dso.c)
  set_target_properties(agent_dso PROPERTIES LIBRARY_OUTPUT_DIRECTORY ${agent_fx_bin}
                        C_VISIBILITY_PRESET default)
  add_library(agent_dtor_lib SHARED ${agent_fx}/agent_dtor_lib.c)
  set_target_properties(agent_dtor_lib PROPERTIES LIBRARY_OUTPUT_DIRECTORY ${agent_fx_bin}
                        C_VISIBILITY_PRESET default)
  add_executable(agent_dtor_main ${agent_fx}/agent_dtor_main.c)
  target_link_libraries(agent_dtor_main PRIVATE agent_dtor_lib)
  set_target_properties(agent_dtor_main PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${agent_fx_bin})
  add_executable(agent_cxx ${agent_fx}/agent_cxx.cpp)
  target_compile_options(agent_cxx PRIVATE -O1 -g)
  set_target_properties(agent_cxx PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${agent_fx_bin})
  # Agent control through libheaptrail.a (htr_leak_check_now, htr_check_heap).
  add_executable(agent_ctl ${agent_fx}/agent_ctl.c)
  target_compile_options(agent_ctl PRIVATE -O1 -g)
  target_link_libraries(agent_ctl PRIVATE heaptrail)
  set_target_properties(agent_ctl PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${agent_fx_bin})
  add_executable(agent_check ${agent_fx}/agent_check.c)
  target_compile_options(agent_check PRIVATE ${HTR_WARN})
  target_include_directories(agent_check PRIVATE ${CMAKE_SOURCE_DIR}/src)
  target_link_libraries(agent_check PRIVATE PkgConfig::ZSTD)
  set_target_properties(agent_check PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${agent_fx_bin})
  foreach(scenario ondemand checkheap leaksignal basic dtor stack record_none cxx threads exit abort term handler short_threads vfork dlopen lostfree mmap diskfull oom exec exec_children)
    add_test(NAME agent.run.${scenario}
             COMMAND sh ${agent_fx}/agent_tests.sh ${scenario} $<TARGET_FILE:heaptrail-preload>
                     ${agent_fx_bin} ${CMAKE_CURRENT_BINARY_DIR}/agent-work)
    set_tests_properties(agent.run.${scenario} PROPERTIES LABELS agent TIMEOUT 120)
  endforeach()
  add_dependencies(agent_check heaptrail-preload agent_dso agent_dtor_main agent_basic agent_threads agent_exit agent_cxx agent_ctl)
endif()
