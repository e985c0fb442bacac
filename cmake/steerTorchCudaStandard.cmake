# Included before find_package(Torch), by steer's own build and by the installed
# steerConfig.cmake (docs/building.md, "C++20 projects").
#
# Torch's CUDA module gives the CUDA language the project's C++ standard (CMAKE_CUDA_STANDARD
# defaults to CMAKE_CXX_STANDARD) and compiles a test program with nvcc. CMake before 3.25.2
# knows no nvcc flag for C++20, so a project configured with CMAKE_CXX_STANDARD=20 stopped in
# Torch's check: 'requires the language dialect "CUDA20" ... does not support this'. steer
# compiles no CUDA code; with such a CMake and no CUDA standard of the project's own, CUDA gets
# C++17 (nvcc's default), which is all Torch's check needs. C++ code keeps the project's standard.
if(NOT DEFINED CMAKE_CUDA_STANDARD AND CMAKE_VERSION VERSION_LESS 3.25.2
   AND CMAKE_CXX_STANDARD GREATER 17)
  set(CMAKE_CUDA_STANDARD 17)
endif()
