// steer's version, as the CMake package states it.
#pragma once

#define STEER_VERSION_MAJOR 0
#define STEER_VERSION_MINOR 1
#define STEER_VERSION_PATCH 0

namespace steer {

/// "MAJOR.MINOR.PATCH"
inline const char* version() { return "0.1.0"; }

}  // namespace steer
