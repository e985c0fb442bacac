// Prompt files (steer/io/prompts.hpp) by extension and by explicit format: llama.cpp's
// cvector-generator text files (one prompt per line, escapes unescaped, lines that start with
// '['), JSON lists, JSON Lines, pairs, and the errors for each. Torch-free: the header needs
// nlohmann/json alone.
#include <filesystem>
#include <string>
#include <utility>
#include <vector>

#include <gtest/gtest.h>
#include <steer/io/prompts.hpp>

#include "test_support.hpp"

using steer::io::PromptFormat;
using steer::io::read_pairs;
using steer::io::read_prompts;
using steer::test::write_bytes;
using Strings = std::vector<std::string>;

namespace {

// A file `name` of the running test in a fresh directory of its own.
std::string scratch(const std::string& name) {
  const auto* test = ::testing::UnitTest::GetInstance()->current_test_info();
  const auto dir = std::filesystem::path(::testing::TempDir()) / "steer-prompts-test" /
                   (std::string(test->test_suite_name()) + "." + test->name());
  std::filesystem::create_directories(dir);
  return (dir / name).string();
}

std::string file_with(const std::string& name, const std::string& bytes) {
  const auto path = scratch(name);
  write_bytes(path, bytes);
  return path;
}

// llama.cpp's examples/cvector-generator/positive.txt starts like this: each line a Mistral
// instruction, the first character '['.
const std::string kLlamaPositive =
    "[INST] Act like a person who is extremely happy. [/INST]\n"
    "[INST] Act like a person who is extremely happy. [/INST] \n";

TEST(PromptTextFiles, ALineStartingWithABracketIsAPromptNotJson) {
  const auto path = file_with("positive.txt", kLlamaPositive);
  EXPECT_EQ(read_prompts(path), (Strings{"[INST] Act like a person who is extremely happy. [/INST]",
                                         "[INST] Act like a person who is extremely happy. [/INST] "}));
  // Even a line that is valid JSON is a prompt in a .txt file.
  EXPECT_EQ(read_prompts(file_with("json-looking.txt", "[\"a\", \"b\"]\n{\"prompt\": 1}\n")),
            (Strings{"[\"a\", \"b\"]", "{\"prompt\": 1}"}));
}

TEST(PromptTextFiles, EscapesAreUnescapedAsLlamaCppDoes) {
  // cvector-generator's README: a prompt of several lines is written with \n.
  const auto path = file_with(
      "chatml.txt",
      "<|im_start|>system\\nAct like a person who is extremely happy.<|im_end|>\n"
      "tab\\there, quote \\\" and \\' , backslash \\\\n stays a backslash and an n\n"
      "hex \\x41\\x62, short hex \\x4 and \\xzz, unknown \\q, trailing \\\n");
  EXPECT_EQ(read_prompts(path),
            (Strings{"<|im_start|>system\nAct like a person who is extremely happy.<|im_end|>",
                     "tab\there, quote \" and ' , backslash \\n stays a backslash and an n",
                     "hex Ab, short hex \\x4 and \\xzz, unknown \\q, trailing \\"}));
}

TEST(PromptTextFiles, BlankLinesAndCarriageReturnsAreDropped) {
  EXPECT_EQ(read_prompts(file_with("crlf.txt", "first\r\n\r\n   \n\tsecond\\r\r\n")),
            (Strings{"first", "\tsecond\r"}));
  EXPECT_STEER_ERROR(read_prompts(file_with("blank.txt", "\n  \n")),
                     "read_prompts: '", "blank.txt' holds no prompts");
}

TEST(PromptJsonFiles, JsonListsAndJsonLinesStillRead) {
  const auto json = file_with(
      "prompts.json", R"([{"instruction": "Write a poem", "category": null}, "Say\nhi", {"text": "x"}])");
  EXPECT_EQ(read_prompts(json), (Strings{"Write a poem", "Say\nhi", "x"}));
  const auto jsonl = file_with("prompts.jsonl",
                               "{\"prompt\": \"[INST] one [/INST]\"}\n\n\"two\\\\n\"\r\n"
                               "{\"instruction\": \"three\", \"category\": \"c\"}\n");
  EXPECT_EQ(read_prompts(jsonl), (Strings{"[INST] one [/INST]", "two\\n", "three"}));

  const auto pairs = file_with("pairs.json", R"([["Love", "Hate"], {"positive": "Kind", "negative": "Cruel"}])");
  EXPECT_EQ(read_pairs(pairs), (std::vector<std::pair<std::string, std::string>>{
                                   {"Love", "Hate"}, {"Kind", "Cruel"}}));
  const auto pairs_lines = file_with("pairs.jsonl", "[\"Love\", \"Hate\"]\n{\"positive\": \"Kind\", "
                                                    "\"negative\": \"Cruel\"}\n");
  EXPECT_EQ(read_pairs(pairs_lines), read_pairs(pairs));
}

TEST(PromptJsonFiles, ErrorsNameTheFileAndTheEntry) {
  EXPECT_STEER_ERROR(read_prompts(file_with("bad.jsonl", "\"one\"\n\n{\"prompt\": 3}\n")),
                     "read_prompts: line 3 of '", "bad.jsonl' is {\"prompt\":3}; expected a string "
                     "or an object with a string \"instruction\", \"prompt\" or \"text\"");
  EXPECT_STEER_ERROR(read_prompts(file_with("broken.jsonl", "\"one\"\n[\"unterminated\n")),
                     "read_prompts: line 2 of '", "broken.jsonl' is not valid JSON: ");
  EXPECT_STEER_ERROR(read_prompts(file_with("object.json", "{\"prompt\": \"x\"}")),
                     "object.json' holds a JSON object; expected a list of prompts");
  // llama.cpp's positive.txt renamed .json is JSON by its name, and fails as such.
  EXPECT_STEER_ERROR(read_prompts(file_with("positive.json", kLlamaPositive)),
                     "read_prompts: '", "positive.json' is not valid JSON");
  EXPECT_STEER_ERROR(read_pairs(file_with("pairs.txt", "Love\nHate\n")),
                     "read_pairs: '", "pairs.txt' is read as text, but pairs are a JSON list "
                     "(.json) or JSON Lines (.jsonl)");
  EXPECT_STEER_ERROR(read_pairs(file_with("pairs.jsonl", "[\"Love\"]\n")),
                     "read_pairs: line 1 of '", "pairs.jsonl' is [\"Love\"]; expected "
                     "[\"positive\", \"negative\"]");
  EXPECT_STEER_ERROR(read_prompts(scratch("missing.txt")), "read_prompts: cannot open '");
  const auto dir = scratch("a-directory.txt");
  std::filesystem::create_directories(dir);
  EXPECT_STEER_ERROR(read_prompts(dir), "read_prompts: '", "a-directory.txt' is a directory; "
                     "expected a prompt file (.json, .jsonl or .txt)");
}

TEST(PromptFileNames, OtherNamesAreTextUnlessTheyLookLikeJson) {
  EXPECT_EQ(read_prompts(file_with("prompts", "one\\ttwo\nthree\n")), (Strings{"one\ttwo", "three"}));
  const auto ambiguous = file_with("prompts.list", kLlamaPositive);
  EXPECT_STEER_ERROR(read_prompts(ambiguous), "read_prompts: cannot tell whether '",
                     "prompts.list' holds JSON, JSON Lines or text lines: it starts with '[' and "
                     "its name ends in none of .json, .jsonl, .txt");
  // An explicit format reads any name.
  EXPECT_EQ(read_prompts(ambiguous, PromptFormat::text).size(), 2u);
  const auto json = file_with("prompts.data", "[\"a\", {\"text\": \"b\"}]");
  EXPECT_EQ(read_prompts(json, PromptFormat::json), (Strings{"a", "b"}));
  EXPECT_EQ(read_prompts(json, PromptFormat::text), (Strings{"[\"a\", {\"text\": \"b\"}]"}));
  EXPECT_EQ(read_pairs(file_with("pairs.data", "[[\"a\", \"b\"]]")).size(), 1u);
}

}  // namespace
