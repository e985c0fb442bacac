// Second translation unit of odr_test: uses the same inline functions as the first.
#include <steer/steer.hpp>

std::string version_from_second_unit() { return steer::version(); }

std::string error_from_second_unit() {
  try {
    steer::parse_dtype("x");
  } catch (const steer::Error& e) {
    return e.what();
  }
  return "no error";
}
