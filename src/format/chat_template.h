// Chat templates of the ChatML family, rendered without a Jinja engine.
//
// A template is taken as ChatML when it writes both "<|im_start|>" and "<|im_end|>"; each turn
// is then "<|im_start|>{role}\n{content}<|im_end|>\n" and the generation prompt is
// "<|im_start|>assistant\n". What varies between such templates is read from the template
// text itself:
//   - a default system prompt, used when the first message is not a system message:
//     `{% set system_message = '...' %}` (Qwen2 base) or a literal
//     '<|im_start|>system\n...<|im_end|>' (Qwen2-Instruct, Qwen2.5);
//   - whether the generation prompt is driven by add_generation_prompt, or (Qwen2's original
//     template, which has no such variable) written after every user turn, with only user
//     and assistant turns rendered and the system block always present.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace qllm {

class ChatTemplate {
 public:
  static bool supports(std::string_view tmpl);
  // `tmpl` must satisfy supports().
  explicit ChatTemplate(std::string_view tmpl);

  // Renders {role, content} messages followed by the generation prompt.
  std::string render(const std::vector<std::pair<std::string, std::string>>& messages) const;

  const std::optional<std::string>& default_system() const { return default_system_; }

 private:
  std::optional<std::string> default_system_;
  bool prompt_after_user_ = false;
};

}  // namespace qllm
