// A second translation unit including the tokenizer headers: the test binary links only if
// every definition in them is inline (no ODR violations, no per-TU static state).
#include "steer/chat_template.hpp"
#include "steer/tokenizer.hpp"

int64_t steer_tokenizer_second_tu_count(const steer::Tokenizer& tokenizer, const std::string& text) {
  return static_cast<int64_t>(tokenizer.encode(text).size());
}
