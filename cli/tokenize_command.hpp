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
  return "usage: steer tokenize --model DIR (--text TEXT | -f FILE) [--chat] [--tokens]\n"
         "\n"
         "Prints the token ids of the text as a JSON list, special tokens (BOS) included as the\n"
         "model's tokenizer adds them; the ids steer generate and steer extract use.\n"
         "\n"
         "  --model DIR         model directory (tools/export_model.py)\n"
         "  --text TEXT         the text\n"
         "  -f, --text-file F   the text from file F ('-': stdin), one trailing newline\n"
         "                      removed\n"
         "  --chat              wrap the text as a user message in the chat template\n"
         "  --tokens            print {\"ids\": [...], \"tokens\": [...]} with the vocabulary's\n"
         "                      token strings\n"
         "  -h, --help          this text\n"
         "\n"
         "example: steer tokenize --model models/smollm2-135m-instruct --text \"Hello world\"";
}

inline int run_tokenize(int argc, char** argv) {
  Args args(argc, argv, tokenize_usage(), 2);
  args.hint_on_error("see 'steer tokenize --help'").alias('f', "text-file");
  const auto model_dir = args.required("model");
  const auto text_given = args.optional("text");
  const auto text_file = args.optional("text-file");
  const bool chat = args.flag("chat");
  const bool tokens = args.flag("tokens");
  args.finish();
  usage_check(text_given.has_value() != text_file.has_value(),
              text_given ? "give either --text or --text-file, not both"
                         : "give the text: --text TEXT, or -f/--text-file FILE ('-' for stdin)");
  const auto text = text_given ? *text_given : read_text_argument("text-file", *text_file);

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
