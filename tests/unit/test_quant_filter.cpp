// include/exclude patterns with Python fnmatch semantics (as optimum-quanto's quantize() uses
// them), and the minimal config.json edit.
#include <gtest/gtest.h>

#include "quant/module_filter.h"
#include "quant/quantize_model.h"

using namespace qllm;

TEST(QuantFilter, PythonFnmatchSemantics) {
  // Python: fnmatch.fnmatchcase("model.layers.0.mlp.up_proj", "*.mlp.*") is True ('*' crosses dots).
  EXPECT_TRUE(fnmatch_module("*.mlp.*", "model.layers.0.mlp.up_proj"));
  EXPECT_TRUE(fnmatch_module("lm_head", "lm_head"));
  EXPECT_FALSE(fnmatch_module("lm_head", "model.lm_head"));
  EXPECT_TRUE(fnmatch_module("model.layers.?.self_attn.[qk]_proj", "model.layers.3.self_attn.k_proj"));
  EXPECT_FALSE(fnmatch_module("model.layers.?.self_attn.[!qk]_proj", "model.layers.3.self_attn.k_proj"));
  EXPECT_FALSE(fnmatch_module("LM_HEAD", "lm_head"));  // fnmatchcase: case-sensitive
  EXPECT_TRUE(fnmatch_module("a\\b", "a\\b"));          // backslash is an ordinary character
}

TEST(QuantFilter, IncludeThenExcludeAndUnmatchedPatterns) {
  ModuleFilter f({"model.layers.0.*", "nothing"}, {"*.down_proj", "lm_head"});
  EXPECT_TRUE(f.selected("model.layers.0.mlp.up_proj"));
  EXPECT_FALSE(f.selected("model.layers.0.mlp.down_proj"));
  EXPECT_FALSE(f.selected("model.layers.1.mlp.up_proj"));
  auto u = f.unmatched_patterns();
  EXPECT_EQ(u, (std::vector<std::string>{"--include nothing", "--exclude lm_head"}));
  ModuleFilter all({}, {});
  EXPECT_TRUE(all.selected("anything"));
}

TEST(QuantFilter, MinimalJsonBoolEdit) {
  EXPECT_EQ(set_json_bool_minimal("{\n  \"a\": 1,\n  \"tie_word_embeddings\": true\n}", "tie_word_embeddings", false),
            "{\n  \"a\": 1,\n  \"tie_word_embeddings\": false\n}");
  // A nested key of the same name is left alone and the top-level one is added.
  EXPECT_EQ(set_json_bool_minimal("{\n  \"text_config\": {\"tie_word_embeddings\": true}\n}", "tie_word_embeddings",
                                  false),
            "{\n  \"text_config\": {\"tie_word_embeddings\": true},\n  \"tie_word_embeddings\": false\n}");
  EXPECT_EQ(set_json_bool_minimal("{}", "k", true), "{\n  \"k\": true\n}");
}
