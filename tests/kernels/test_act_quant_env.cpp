// QLLM_ACT_QUANT (dispatch.h): a bad value is a FormatError, not a crash; the policy is read
// once, so a failed read is retried and a good value then sticks. Its own executable because
// the value is process-wide.
#include <gtest/gtest.h>

#include <cstdlib>

#include "kernels/cpu/dispatch.h"
#include "util/error.h"

namespace qllm {
namespace {

TEST(ActQuantEnv, BadValueThrowsThenGoodValueIsRead) {
  ASSERT_EQ(setenv("QLLM_ACT_QUANT", "sometimes", 1), 0);
  EXPECT_THROW(act_quant_policy(), FormatError);
  ASSERT_EQ(setenv("QLLM_ACT_QUANT", "never", 1), 0);
  EXPECT_EQ(act_quant_policy(), ActQuant::Never);
  ASSERT_EQ(setenv("QLLM_ACT_QUANT", "always", 1), 0);
  EXPECT_EQ(act_quant_policy(), ActQuant::Never);  // read once
}

}  // namespace
}  // namespace qllm
