// The umbrella header: includes steer's public headers, nothing else.
#pragma once

#include "steer/chat_template.hpp"
#include "steer/call_layout.hpp"
#include "steer/error.hpp"
#include "steer/hook_point.hpp"
#include "steer/hooks.hpp"
#include "steer/io/safetensors.hpp"
#include "steer/model.hpp"
#include "steer/model_config.hpp"
#include "steer/positions.hpp"
#include "steer/tokenizer.hpp"
#include "steer/version.hpp"
