# Extra build rules of the unwind module: the call-chain fixtures test_unwind walks (built
# without and with frame pointers, and as two dlopen'ed libraries), and the benchmark.
# include()d from tests/CMakeLists.txt, so paths are relative to ${CMAKE_SOURCE_DIR}.

set(unwind_fx_dir ${CMAKE_SOURCE_DIR}/tests/unit/fixtures/unwind)
set(unwind_nofp_flags -O2 -fomit-frame-pointer)
set(unwind_fp_flags -O2 -fno-omit-frame-pointer -mno-omit-leaf-frame-pointer)

# name: target; prefix: symbol prefix; kind: OBJECT or SHARED; flags: a list variable name.
function(unwind_chain name prefix kind flags)
  add_library(${name} ${kind} ${unwind_fx_dir}/chain.c)
  target_compile_definitions(${name} PRIVATE CHAIN_PREFIX=${prefix} ${ARGN})
  target_compile_options(${name} PRIVATE ${HTR_WARN} ${${flags}})
  target_include_directories(${name} PRIVATE ${CMAKE_SOURCE_DIR}/src ${unwind_fx_dir})
  set_target_properties(${name} PROPERTIES C_VISIBILITY_PRESET default)
endfunction()

unwind_chain(unwind_chain_nofp nofp_ OBJECT unwind_nofp_flags CHAIN_JUNK_RBP)
unwind_chain(unwind_chain_fp fp_ OBJECT unwind_fp_flags)
unwind_chain(unwind_fx_a liba_ SHARED unwind_nofp_flags)
unwind_chain(unwind_fx_b libb_ SHARED unwind_nofp_flags CHAIN_VARIANT=1)

if(TARGET test_unwind)
  target_link_libraries(test_unwind PRIVATE unwind_chain_nofp unwind_chain_fp
                        Threads::Threads ${CMAKE_DL_LIBS})
  target_include_directories(test_unwind PRIVATE ${unwind_fx_dir})
  target_compile_definitions(test_unwind PRIVATE
    UNWIND_FX_A="$<TARGET_FILE:unwind_fx_a>" UNWIND_FX_B="$<TARGET_FILE:unwind_fx_b>")
  # dladdr1() must see the fixtures' symbols to check each pc against its function.
  set_target_properties(test_unwind PROPERTIES ENABLE_EXPORTS ON)
  add_dependencies(test_unwind unwind_fx_a unwind_fx_b)
endif()

# The benchmark: not a test. The same source twice, without and with frame pointers.
foreach(variant nofp fp)
  add_executable(unwind_bench_${variant} ${CMAKE_SOURCE_DIR}/bench/unwind_bench.c)
  target_compile_options(unwind_bench_${variant} PRIVATE ${HTR_WARN} ${unwind_${variant}_flags})
  target_include_directories(unwind_bench_${variant} PRIVATE ${CMAKE_SOURCE_DIR}/src)
  target_link_libraries(unwind_bench_${variant} PRIVATE htr_unwind htr_base)
endforeach()
target_compile_definitions(unwind_bench_fp PRIVATE BENCH_FRAME_POINTERS=1)

# test_unwind_nomalloc interposes malloc & co.: its definitions must be in the dynamic
# symbol table so libunwind's and libc's calls reach them.
if(TARGET test_unwind_nomalloc)
  set_target_properties(test_unwind_nomalloc PROPERTIES ENABLE_EXPORTS ON)
  target_link_libraries(test_unwind_nomalloc PRIVATE Threads::Threads ${CMAKE_DL_LIBS})
  # The sanitizers own malloc; replacing it under them proves nothing and crashes.
  if(HTR_SANITIZE)
    set_tests_properties(unit.test_unwind_nomalloc PROPERTIES DISABLED TRUE)
  endif()
endif()
