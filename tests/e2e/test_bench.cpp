// `qllm bench --json` on the shared stories260K checkpoint (F32, tied embeddings): the report's
// structure and the byte counts it derives from the checkpoint. Speeds are only checked to be
// measured (positive, one entry per run), never compared with a figure.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "testing.h"

using nlohmann::json;

TEST(BenchCli, Stories260KJson) {
  const auto dir = qllm::test::data_dir() / "models" / "stories260K";
  if (!std::filesystem::exists(dir / "model.safetensors")) GTEST_SKIP() << "no " << dir;
  auto r = qllm::test::run_qllm("bench '" + dir.string() + "' -p 4 -n 3 -r 2 -t 1 --json");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const json j = json::parse(r.out);
  EXPECT_EQ(j["threads"], 1);
  EXPECT_EQ(j["model_file_bytes"], std::filesystem::file_size(dir / "model.safetensors"));
  // A generated token reads every weight once: the 260,032 F32 parameters (1,040,128 bytes,
  // test_inspect.cpp) with the tied embedding read as the head, less at most the 511 embedding
  // rows the lookup skips.
  const double weights = j["weight_bytes_per_token"];
  EXPECT_LE(weights, 4.0 * 260032);
  EXPECT_GE(weights, 4.0 * (260032 - 511 * 64));
  EXPECT_GE(j["bytes_per_token"].get<double>(), weights);  // plus the KV cache
  for (const char* test : {"pp", "tg"}) {
    EXPECT_EQ(j[test]["runs"].size(), 2u) << test;
    EXPECT_GT(j[test]["tokens_per_s"].get<double>(), 0.0) << test;
  }
  EXPECT_EQ(j["pp"]["n"], 4);
  EXPECT_EQ(j["tg"]["n"], 3);
  EXPECT_GT(j["memory_bandwidth_bytes_per_s"].get<double>(), 0.0);
  EXPECT_NEAR(j["tg_fraction_of_bandwidth_bound"].get<double>(),
              j["tg"]["tokens_per_s"].get<double>() / j["tg_bandwidth_bound_tokens_per_s"].get<double>(), 1e-9);
  // The checkpoint's 1 MiB fits in any last-level cache sysfs reports.
  if (j["last_level_cache_bytes"].get<double>() > 0) {
    EXPECT_TRUE(j["bytes_per_token_fit_in_cache"]);
  }
  // Everything the runs touched stays resident: at least the whole file, which decode reads.
  EXPECT_GE(j["peak_rss_bytes"].get<double>(), j["model_file_bytes"].get<double>());
}

TEST(BenchCli, RejectsBadCounts) {
  auto r = qllm::test::run_qllm("bench /nonexistent -r 0");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("error:"), std::string::npos) << r.err;
}
