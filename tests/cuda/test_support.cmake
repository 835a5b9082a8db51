# vahanorm_cuda_test_support: device operations outside the Backend interface that only the
# parity tests and the GPU benchmark use (device_ops.hpp: flat transform, 2x2 downsampling,
# concentration statistics, pinned allocation). Included from cuda/CMakeLists.txt, whose nvcc
# flags (VN_NVCC_FLAGS) and architectures it shares.
add_library(vahanorm_cuda_test_support STATIC
  ${CMAKE_CURRENT_LIST_DIR}/downsample.cu
  ${CMAKE_CURRENT_LIST_DIR}/device_ops.cpp)
set_target_properties(vahanorm_cuda_test_support PROPERTIES
  CUDA_STANDARD 17
  CUDA_STANDARD_REQUIRED ON
  CUDA_EXTENSIONS OFF
  CUDA_RUNTIME_LIBRARY Static)
target_link_libraries(vahanorm_cuda_test_support
  PUBLIC vahanorm_cuda
  PRIVATE CUDA::cudart_static vahanorm_warnings)
target_compile_options(vahanorm_cuda_test_support PRIVATE
  "$<$<COMPILE_LANGUAGE:CUDA>:${VN_NVCC_FLAGS}>"
  "$<$<AND:$<COMPILE_LANGUAGE:CUDA>,$<BOOL:${VAHANORM_WERROR}>>:${VN_NVCC_WERROR}>")
