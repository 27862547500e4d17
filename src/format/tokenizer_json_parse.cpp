// Parsing of tokenizer.json; see tokenizer_json_parse.h.
#include "format/tokenizer_json_parse.h"

#include <simdjson.h>

#include "util/error.h"

namespace qllm {
namespace {

using nlohmann::json;
namespace dom = simdjson::dom;
using Kind = RawBpe::Merge::Kind;

// The same value as nlohmann's own parser would give: non-negative integers are unsigned.
// Recursion is bounded by simdjson's depth limit (1024).
json to_json(dom::element e) {
  switch (e.type()) {
    case dom::element_type::OBJECT: {
      // The object and array are named: value_unsafe() of a temporary result would dangle.
      dom::object object = e.get_object().value_unsafe();
      json o = json::object();
      for (dom::key_value_pair f : object)
        o[std::string(f.key)] = to_json(f.value);  // a repeated key: the last one wins
      return o;
    }
    case dom::element_type::ARRAY: {
      dom::array array = e.get_array().value_unsafe();
      json a = json::array();
      for (dom::element x : array) a.push_back(to_json(x));
      return a;
    }
    case dom::element_type::INT64: {
      int64_t v = e.get_int64().value_unsafe();
      return v >= 0 ? json(static_cast<uint64_t>(v)) : json(v);
    }
    case dom::element_type::UINT64:
      return json(e.get_uint64().value_unsafe());
    case dom::element_type::DOUBLE:
      return json(e.get_double().value_unsafe());
    case dom::element_type::STRING:
      return json(std::string(e.get_string().value_unsafe()));
    case dom::element_type::BOOL:
      return json(e.get_bool().value_unsafe());
    case dom::element_type::NULL_VALUE:
      break;
  }
  return json(nullptr);
}

void read_vocab(dom::object vocab, RawBpe& raw) {
  raw.has_vocab = true;
  raw.vocab.clear();
  raw.vocab.reserve(vocab.size());
  for (dom::key_value_pair f : vocab) raw.vocab.emplace_back(std::string(f.key), to_json(f.value));
}

void read_merges(dom::array merges, RawBpe& raw) {
  raw.has_merges = true;
  raw.merge_text.clear();
  raw.merges.clear();
  raw.merges.reserve(merges.size());
  auto append = [&](std::string_view s) {
    raw.merge_text.append(s);
    return static_cast<uint32_t>(s.size());
  };
  for (dom::element e : merges) {
    auto offset = static_cast<uint32_t>(raw.merge_text.size());
    if (e.is_string()) {
      raw.merges.push_back({offset, append(e.get_string().value_unsafe()), 0, Kind::Text});
      continue;
    }
    dom::array pair;
    if (e.get_array().get(pair) || pair.size() != 2 || !pair.at(0).is_string() ||
        !pair.at(1).is_string()) {
      raw.merges.push_back({offset, 0, 0, Kind::Bad});
      continue;
    }
    uint32_t size_a = append(pair.at(0).get_string().value_unsafe());
    uint32_t size_b = append(pair.at(1).get_string().value_unsafe());
    raw.merges.push_back({offset, size_a, size_b, Kind::Pair});
  }
}

// model: vocab and merges of the right type to `raw`, everything else to the DOM.
json read_model(dom::object model, RawBpe& raw) {
  json m = json::object();
  for (dom::key_value_pair f : model) {
    dom::object vocab;
    dom::array merges;
    if (f.key == "vocab" && !f.value.get_object().get(vocab)) {
      read_vocab(vocab, raw);
      m.erase("vocab");
    } else if (f.key == "merges" && !f.value.get_array().get(merges)) {
      read_merges(merges, raw);
      m.erase("merges");
    } else {
      if (f.key == "vocab") raw.has_vocab = false;  // a repeated key replaces the earlier one
      if (f.key == "merges") raw.has_merges = false;
      m[std::string(f.key)] = to_json(f.value);
    }
  }
  return m;
}

}  // namespace

void parse_tokenizer_json(const std::filesystem::path& path, const std::string& text, json& doc,
                          RawBpe& raw) {
  dom::parser parser;
  dom::element root;
  if (auto err = parser.parse(text).get(root))
    fail(path, "invalid JSON: {}", simdjson::error_message(err));
  dom::object top;
  if (root.get_object().get(top)) {
    doc = to_json(root);  // not an object: the loader says so
    return;
  }
  doc = json::object();
  for (dom::key_value_pair f : top) {
    dom::object model;
    if (f.key == "model" && !f.value.get_object().get(model)) {
      raw = {};  // a repeated "model" replaces the earlier one
      doc["model"] = read_model(model, raw);
    } else {
      if (f.key == "model") raw = {};
      doc[std::string(f.key)] = to_json(f.value);
    }
  }
}

}  // namespace qllm
