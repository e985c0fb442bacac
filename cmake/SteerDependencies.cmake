# The packages steer's targets link. Kept in one place so that steerConfig.cmake asks for
# the same ones (see cmake/steerConfig.cmake.in).
find_package(Torch REQUIRED)
find_package(Eigen3 3.4 REQUIRED NO_MODULE)
find_package(nlohmann_json 3.10 REQUIRED)
find_package(PkgConfig REQUIRED)
pkg_check_modules(PCRE2 REQUIRED IMPORTED_TARGET libpcre2-8)
