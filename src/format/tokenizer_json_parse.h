// Parsing tokenizer.json text, with its two big members kept out of the nlohmann DOM.
//
// model.vocab (one entry per token) and model.merges (about as many) are nearly all of a
// tokenizer.json: Qwen2's is 11 MB with 151k of each. nlohmann's lexer took 608 M instructions
// (0.2 s) on it and its DOM costs a std::map node or a std::string per entry, so the text is
// parsed by simdjson (validating; 97 M instructions), the two members go to the flat RawBpe
// below, and the rest (a few kB) becomes the usual nlohmann DOM. Only JSON syntax is checked
// here: the loader validates RawBpe exactly as it would the DOM members.
#pragma once

#include <cstdint>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace qllm {

// model.vocab and model.merges as written, in file order.
struct RawBpe {
  bool has_vocab = false;  // model.vocab was an object; the DOM then has no "vocab"
  // (token, id) with the id as written (the loader reports one that is not a valid id).
  std::vector<std::pair<std::string, nlohmann::json>> vocab;

  struct Merge {
    enum class Kind : uint8_t {
      Text,  // "a b": text[offset, offset + size_a), split later
      Pair,  // ["a", "b"]: a at offset, b right after it
      Bad,   // anything else
    };
    uint32_t offset, size_a, size_b;  // the file is at most 1 GiB
    Kind kind;
    std::string_view a(const std::string& text) const { return {text.data() + offset, size_a}; }
    std::string_view b(const std::string& text) const {
      return {text.data() + offset + size_a, size_b};
    }
  };
  bool has_merges = false;  // model.merges was an array; the DOM then has no "merges"
  std::string merge_text;   // the strings of all merges, back to back
  std::vector<Merge> merges;
};

// Parses `text` (the contents of `path`) into `doc`, except model.vocab when it is an object
// and model.merges when it is an array: those go to `raw`. Where a key repeats, the last one
// wins, as in nlohmann's DOM. Throws FormatError for invalid JSON.
void parse_tokenizer_json(const std::filesystem::path& path, const std::string& text,
                          nlohmann::json& doc, RawBpe& raw);

}  // namespace qllm
