# The packages steer's targets link. Kept in one place so that steerConfig.cmake asks for
# the same ones (see cmake/steerConfig.cmake.in).
include(${CMAKE_CURRENT_LIST_DIR}/steerTorchCudaStandard.cmake)
find_package(Torch REQUIRED)
find_package(Eigen3 3.4 REQUIRED NO_MODULE)
find_package(nlohmann_json 3.10 REQUIRED)
find_package(PkgConfig REQUIRED)
pkg_check_modules(PCRE2 REQUIRED IMPORTED_TARGET libpcre2-8)

# When steer is added with add_subdirectory(), the targets it links must be visible to the
# parent project too: imported targets are local to this directory unless promoted.
if(NOT STEER_IS_TOP_LEVEL)
  get_directory_property(steer_imported_targets IMPORTED_TARGETS)
  foreach(target IN LISTS steer_imported_targets)
    get_target_property(already_global ${target} IMPORTED_GLOBAL)
    if(NOT already_global)
      set_target_properties(${target} PROPERTIES IMPORTED_GLOBAL TRUE)
    endif()
  endforeach()
endif()
