// SAX parsing of tokenizer.json; see tokenizer_json_sax.h.
#include "format/tokenizer_json_sax.h"

#include "util/error.h"

namespace qllm {
namespace {

using nlohmann::json;

// Hands every event to nlohmann's own DOM builder (the one json::parse uses), except those of
// the value of model.vocab or model.merges, which it collects into RawBpe.
class Handler final : public nlohmann::json_sax<json> {
 public:
  Handler(json& doc, RawBpe& raw) : dom_(doc), raw_(raw) {}

  std::string error;  // set when parsing stopped at a syntax error

  bool null() override { return streaming() ? item(json::value_t::null) : to_dom() && dom_.null(); }
  bool boolean(bool v) override {
    return streaming() ? item(json::value_t::boolean) : to_dom() && dom_.boolean(v);
  }
  bool number_integer(number_integer_t v) override {
    return streaming() ? item(json::value_t::number_integer, v)
                       : to_dom() && dom_.number_integer(v);
  }
  bool number_unsigned(number_unsigned_t v) override {
    return streaming() ? item(json::value_t::number_unsigned, v)
                       : to_dom() && dom_.number_unsigned(v);
  }
  bool number_float(number_float_t v, const string_t& s) override {
    return streaming() ? item(json::value_t::number_float, v) : to_dom() && dom_.number_float(v, s);
  }
  bool string(string_t& s) override {
    return streaming() ? item(json::value_t::string, nullptr, &s) : to_dom() && dom_.string(s);
  }
  bool binary(binary_t& b) override {  // not produced by JSON text
    return streaming() ? item(json::value_t::binary) : to_dom() && dom_.binary(b);
  }
  bool start_object(std::size_t n) override {
    if (streaming()) return item(json::value_t::object);
    if (pending_ == Member::Vocab) return begin();
    ++depth_;
    return to_dom() && dom_.start_object(n);
  }
  bool start_array(std::size_t n) override {
    if (streaming()) return item(json::value_t::array);
    if (pending_ == Member::Merges) return begin();
    ++depth_;
    return to_dom() && dom_.start_array(n);
  }
  bool end_object() override {
    if (streaming()) return close();
    --depth_;
    return dom_.end_object();
  }
  bool end_array() override {
    if (streaming()) return close();
    --depth_;
    return dom_.end_array();
  }
  bool key(string_t& k) override {
    if (streaming()) {
      if (skip_ == 0) token_ = k;  // a vocab token; its id comes next
      return true;
    }
    if (depth_ == 1) {
      in_model_ = k == "model";
      if (in_model_) raw_ = {};  // a repeated "model" replaces the earlier one
    }
    if (depth_ == 2 && in_model_ && (k == "vocab" || k == "merges")) {
      claim(k == "vocab" ? Member::Vocab : Member::Merges, k);
      return true;
    }
    return dom_.key(k);
  }
  bool parse_error(std::size_t, const std::string&, const nlohmann::detail::exception& e) override {
    error = e.what();
    return false;
  }

 private:
  enum class Member { None, Vocab, Merges };

  bool streaming() const { return member_ != Member::None; }

  // The key of a member to stream: held back until its value shows whether it has the type
  // that is streamed. Anything else (a wrong type, to be reported by the loader) goes to the DOM.
  void claim(Member m, const std::string& k) {
    pending_ = m;
    pending_key_ = k;
    // A repeated key replaces the earlier value, as in the DOM.
    if (m == Member::Vocab) {
      raw_.has_vocab = false;
      raw_.vocab.clear();
    } else {
      raw_.has_merges = false;
      raw_.merge_text.clear();
      raw_.merges.clear();
    }
  }
  bool to_dom() {
    if (pending_ == Member::None) return true;
    pending_ = Member::None;
    return dom_.key(pending_key_);
  }
  bool begin() {
    member_ = pending_;
    pending_ = Member::None;
    (member_ == Member::Vocab ? raw_.has_vocab : raw_.has_merges) = true;
    return true;
  }

  // A value inside the streamed member: `v` holds a number, `s` a string. A container where
  // none belongs is recorded as a bad entry and its contents are skipped.
  bool item(json::value_t type, json v = nullptr, const std::string* s = nullptr) {
    bool nested = type == json::value_t::object || type == json::value_t::array;
    if (skip_ > 0) {
      skip_ += nested;
      return true;
    }
    if (member_ == Member::Vocab) {
      raw_.vocab.emplace_back(std::move(token_), std::move(v));
    } else if (!in_pair_) {
      auto offset = static_cast<uint32_t>(raw_.merge_text.size());
      if (s) {
        raw_.merge_text += *s;
        raw_.merges.push_back({offset, static_cast<uint32_t>(s->size()), 0, Kind::Text});
      } else if (type == json::value_t::array) {
        in_pair_ = true;
        pair_ = {offset, 0, 0, Kind::Pair};
        pair_strings_ = 0;
        return true;
      } else {
        raw_.merges.push_back({offset, 0, 0, Kind::Bad});
      }
    } else if (s && pair_strings_ < 2) {
      raw_.merge_text += *s;
      (pair_strings_++ == 0 ? pair_.size_a : pair_.size_b) = static_cast<uint32_t>(s->size());
    } else {
      pair_.kind = Kind::Bad;  // a third string, or not a string
    }
    if (nested) skip_ = 1;
    return true;
  }
  bool close() {
    if (skip_ > 0) {
      --skip_;
    } else if (in_pair_) {
      in_pair_ = false;
      if (pair_strings_ != 2) pair_.kind = Kind::Bad;
      if (pair_.kind == Kind::Bad) raw_.merge_text.resize(pair_.offset);
      raw_.merges.push_back(pair_);
    } else {
      member_ = Member::None;  // the end of model.vocab or model.merges
    }
    return true;
  }

  using Kind = RawBpe::Merge::Kind;

  nlohmann::detail::json_sax_dom_parser<json> dom_;
  RawBpe& raw_;
  int depth_ = 0;          // containers open in the DOM
  bool in_model_ = false;  // the last top-level key was "model"
  Member pending_ = Member::None;
  std::string pending_key_;
  Member member_ = Member::None;  // the member being streamed
  std::string token_;             // model.vocab: the key whose value comes next
  int skip_ = 0;                  // depth inside a nested value being skipped
  bool in_pair_ = false;          // model.merges: inside an [a, b] entry
  RawBpe::Merge pair_{};
  int pair_strings_ = 0;
};

}  // namespace

void parse_tokenizer_json(const std::filesystem::path& path, const std::string& text, json& doc,
                          RawBpe& raw) {
  Handler h(doc, raw);
  if (!json::sax_parse(text, &h)) fail(path, "invalid JSON: {}", h.error);
}

}  // namespace qllm
