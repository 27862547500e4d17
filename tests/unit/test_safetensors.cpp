#include <gtest/gtest.h>

#include "format/safetensors.h"
#include "testing.h"

using namespace qllm;

TEST(Safetensors, ReadsStories260K) {
  auto set = TensorSet::open(test::data_dir() / "models" / "stories260K");
  auto all = set.all();
  EXPECT_EQ(all.size(), 47u);
  uint64_t params = 0;
  for (const auto& t : all) {
    EXPECT_EQ(t.dtype(), DType::F32) << t.name();
    params += t.numel();
  }
  EXPECT_EQ(params, 260032u);
  auto emb = set.get("model.embed_tokens.weight");
  EXPECT_EQ(emb.shape(), (std::vector<int64_t>{512, 64}));
}
