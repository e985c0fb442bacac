// Umbrella header of steer::vec, the vector-algebra layer (Eigen only, no LibTorch).
#pragma once

#include "steer/vec/types.hpp"
#include "steer/vec/difference.hpp"
#include "steer/vec/normalize.hpp"
#include "steer/vec/project.hpp"
#include "steer/vec/pca.hpp"
#include "steer/vec/probe.hpp"
#include "steer/vec/separation.hpp"
#include "steer/vec/accumulator.hpp"
