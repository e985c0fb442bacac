// `steer tokenize`: the token ids of a text (as the other subcommands feed it to the model).
#pragma once

#include <iostream>
#include <string>

#include <nlohmann/json.hpp>
#include <steer/steer.hpp>

#include "args.hpp"
#include "common.hpp"

namespace steer::cli {

inline std::string tokenize_usage() {
  return "usage: steer tokenize --model DIR --text TEXT [--chat] [--tokens]\n"
         "\n"
         "Prints the token ids of the text as a JSON list, special tokens (BOS) included as the\n"
         "model's tokenizer adds them; the ids steer generate and steer extract use.\n"
         "\n"
         "  --model DIR         model directory (tools/export_model.py)\n"
         "  --text TEXT         the text\n"
         "  --chat              wrap the text as a user message in the chat template\n"
         "  --tokens            print {\"ids\": [...], \"tokens\": [...]} with the vocabulary's\n"
         "                      token strings\n"
         "\n"
         "example: steer tokenize --model models/smollm2-135m-instruct --text \"Hello world\"";
}

inline int run_tokenize(int argc, char** argv) {
  Args args(argc, argv, tokenize_usage(), 2);
  args.hint_on_error("see 'steer tokenize --help'");
  const auto model_dir = args.required("model");
  const auto text = args.required("text");
  const bool chat = args.flag("chat");
  const bool tokens = args.flag("tokens");
  args.finish();

  const auto model = Model::load(model_dir);
  const auto ids = prompt_ids(model, text, chat);
  if (!tokens) {
    std::cout << Json(ids).dump() << "\n";
    return 0;
  }
  Json strings = Json::array();
  for (const auto id : ids) strings.push_back(model.tokenizer().id_to_token(id));
  std::cout << Json{{"ids", ids}, {"tokens", strings}}.dump(-1, ' ', /*ensure_ascii=*/false,
                                                            Json::error_handler_t::replace)
            << "\n";
  return 0;
}

}  // namespace steer::cli
