// The umbrella header: includes steer's public headers, nothing else.
#pragma once

#include "steer/call_layout.hpp"
#include "steer/chat_template.hpp"
#include "steer/eigen_bridge.hpp"
#include "steer/error.hpp"
#include "steer/generate.hpp"
#include "steer/hook_point.hpp"
#include "steer/hooks.hpp"
#include "steer/io/gguf.hpp"
#include "steer/io/safetensors.hpp"
#include "steer/io/vector_file.hpp"
#include "steer/model.hpp"
#include "steer/model_config.hpp"
#include "steer/positions.hpp"
#include "steer/steering_vector.hpp"
#include "steer/tokenizer.hpp"
#include "steer/version.hpp"
