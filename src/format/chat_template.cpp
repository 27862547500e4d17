#include "format/chat_template.h"

#include "format/tokenizer_regex.h"

namespace qllm {
namespace {

constexpr std::string_view kStart = "<|im_start|>", kEnd = "<|im_end|>";

// Undoes the escapes of a Jinja string literal (\n, \t, \', \", \\).
std::string jinja_unescape(std::string_view s) {
  std::string out;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '\\' || i + 1 == s.size()) {
      out += s[i];
      continue;
    }
    char c = s[++i];
    out += c == 'n' ? '\n' : c == 't' ? '\t' : c;
  }
  return out;
}

// The text of the first match of `pattern` in `text`, if any.
std::optional<std::string> first_match(std::string_view text, const std::string& pattern) {
  auto m = TokenRegex(pattern).find_all(text);
  if (m.empty()) return std::nullopt;
  return std::string(text.substr(m[0].first, m[0].second - m[0].first));
}

std::optional<std::string> find_default_system(std::string_view t) {
  // {% set system_message = '...' %}: the literal between the quotes.
  if (auto m = first_match(t, R"(set\s+system_message\s*=\s*'(?:[^'\\]|\\.)*')")) {
    auto q = m->find('\'');
    return jinja_unescape(std::string_view(*m).substr(q + 1, m->size() - q - 2));
  }
  if (auto m = first_match(t, R"(set\s+system_message\s*=\s*"(?:[^"\\]|\\.)*")")) {
    auto q = m->find('"');
    return jinja_unescape(std::string_view(*m).substr(q + 1, m->size() - q - 2));
  }
  // A literal system turn: '<|im_start|>system\n' directly followed by text up to <|im_end|>,
  // all inside one string literal (so not a message's content).
  if (auto m = first_match(t, R"(<\|im_start\|>system(?:\n|\\n)[^'"{}]+<\|im_end\|>)")) {
    std::string_view v(*m);
    v.remove_prefix(kStart.size() + 6);  // "system"
    v.remove_prefix(v[0] == '\n' ? 1 : 2);
    v.remove_suffix(kEnd.size());
    return jinja_unescape(v);
  }
  return std::nullopt;
}

void turn(std::string& out, std::string_view role, std::string_view content) {
  out.append(kStart).append(role).append("\n").append(content).append(kEnd).append("\n");
}

}  // namespace

bool ChatTemplate::supports(std::string_view tmpl) {
  return tmpl.find(kStart) != std::string_view::npos && tmpl.find(kEnd) != std::string_view::npos;
}

ChatTemplate::ChatTemplate(std::string_view tmpl)
    : default_system_(find_default_system(tmpl)),
      prompt_after_user_(tmpl.find("add_generation_prompt") == std::string_view::npos) {}

std::string ChatTemplate::render(
    const std::vector<std::pair<std::string, std::string>>& messages) const {
  std::string out;
  std::size_t first = 0;
  std::optional<std::string> system = default_system_;
  if (!messages.empty() && messages[0].first == "system") {
    system = messages[0].second;
    first = 1;
  }
  if (prompt_after_user_) {
    // Qwen2's original template: user turns open the assistant turn themselves; assistant
    // turns only close it; other roles are not rendered.
    if (system) turn(out, "system", *system);
    for (std::size_t i = first; i < messages.size(); ++i) {
      const auto& [role, content] = messages[i];
      if (role == "user") {
        turn(out, "user", content);
        out.append(kStart).append("assistant\n");
      } else if (role == "assistant") {
        out.append(content).append(kEnd).append("\n");
      }
    }
    return out;
  }
  if (system && !messages.empty()) turn(out, "system", *system);
  for (std::size_t i = first; i < messages.size(); ++i)
    turn(out, messages[i].first, messages[i].second);
  out.append(kStart).append("assistant\n");
  return out;
}

}  // namespace qllm
