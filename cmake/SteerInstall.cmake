# install(): headers, the exported targets Steer::steer and Steer::vec, and a relocatable
# package configuration for find_package(steer CONFIG). Each target has its own export file,
# so that the component `vec` loads Steer::vec without reading anything that names torch.
include(CMakePackageConfigHelpers)

set(STEER_CMAKE_INSTALL_DIR ${CMAKE_INSTALL_LIBDIR}/cmake/steer)

install(DIRECTORY ${PROJECT_SOURCE_DIR}/include/steer
  DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(TARGETS steer_vec EXPORT steerVecTargets)
install(EXPORT steerVecTargets
  NAMESPACE Steer::
  DESTINATION ${STEER_CMAKE_INSTALL_DIR})
install(TARGETS steer EXPORT steerTargets)
install(EXPORT steerTargets
  NAMESPACE Steer::
  DESTINATION ${STEER_CMAKE_INSTALL_DIR})

configure_package_config_file(
  ${PROJECT_SOURCE_DIR}/cmake/steerConfig.cmake.in
  ${PROJECT_BINARY_DIR}/steerConfig.cmake
  INSTALL_DESTINATION ${STEER_CMAKE_INSTALL_DIR})
write_basic_package_version_file(
  ${PROJECT_BINARY_DIR}/steerConfigVersion.cmake
  COMPATIBILITY SameMinorVersion
  ARCH_INDEPENDENT)
install(FILES
  ${PROJECT_BINARY_DIR}/steerConfig.cmake
  ${PROJECT_BINARY_DIR}/steerConfigVersion.cmake
  ${PROJECT_SOURCE_DIR}/cmake/steerTorchCudaStandard.cmake
  DESTINATION ${STEER_CMAKE_INSTALL_DIR})
