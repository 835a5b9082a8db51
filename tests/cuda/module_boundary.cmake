# The executable's side of the CUDA module boundary, with a stand-in module: needs neither a GPU
# nor CUDA, so it runs in every build with the app (included from tests/CMakeLists.txt).
add_library(vahanorm_fake_cuda_plugin MODULE ${CMAKE_CURRENT_LIST_DIR}/fake_plugin.cpp)
set_target_properties(vahanorm_fake_cuda_plugin PROPERTIES CXX_VISIBILITY_PRESET hidden)
target_link_libraries(vahanorm_fake_cuda_plugin PRIVATE vahanorm_core vahanorm_warnings -Wl,--exclude-libs,ALL)
add_test(NAME cli.cuda_module_boundary
  COMMAND ${VAHANORM_TEST_PYTHON} ${CMAKE_CURRENT_LIST_DIR}/test_module_boundary.py
    --vahanorm $<TARGET_FILE:vahanorm> --module $<TARGET_FILE:vahanorm_fake_cuda_plugin>)
set_tests_properties(cli.cuda_module_boundary PROPERTIES TIMEOUT 300)
if(VAHANORM_SANITIZE)
  # ASan and UBSan stay on; only the exit-time leak check is off here: after the stand-in module
  # throws a non-std exception through a pool thread, LeakSanitizer's own tracer crashes
  # (SIGSEGV in StopTheWorld) while it scans the threads, before it reports anything.
  set_tests_properties(cli.cuda_module_boundary PROPERTIES
    ENVIRONMENT "ASAN_OPTIONS=detect_leaks=0:abort_on_error=1")
endif()
