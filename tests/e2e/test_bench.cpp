// `qllm bench --json` on the shared stories260K checkpoint (F32, tied embeddings): the report's
// structure and the byte counts it derives from the checkpoint. Speeds are only checked to be
// measured (positive, one entry per run), never compared with a figure.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "testing.h"

using nlohmann::json;

class BenchStories : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!std::filesystem::exists(dir_ / "model.safetensors")) GTEST_SKIP() << "no " << dir_;
  }
  // `qllm bench` on the checkpoint with `args`, its JSON report.
  json bench_json(const std::string& args) const {
    auto r = qllm::test::run_qllm("bench '" + dir_.string() + "' " + args + " --json");
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return r.exit_code == 0 ? json::parse(r.out) : json::object();
  }
  const std::filesystem::path dir_ = qllm::test::data_dir() / "models" / "stories260K";
};

TEST_F(BenchStories, Json) {
  const json j = bench_json("-p 4 -n 3 -r 2 -t 1");
  ASSERT_FALSE(j.empty());
  EXPECT_EQ(j["threads"], 1);
  EXPECT_EQ(j["model_file_bytes"], std::filesystem::file_size(dir_ / "model.safetensors"));
  // A generated token reads every weight once: the 260,032 F32 parameters (1,040,128 bytes,
  // test_inspect.cpp) with the tied embedding read as the head, less at most the 511 embedding
  // rows the lookup skips.
  const double weights = j["weight_bytes_per_token"];
  EXPECT_LE(weights, 4.0 * 260032);
  EXPECT_GE(weights, 4.0 * (260032 - 511 * 64));
  EXPECT_GE(j["bytes_per_token"].get<double>(), weights);  // plus the KV cache
  // The mapping that holds them, the whole file, is resident after the runs. At 1 MiB it is
  // smaller than a 2 MiB page, so none of it is in one.
  EXPECT_GE(j["weight_resident_bytes"].get<double>(), weights);
  EXPECT_EQ(j["weight_huge_page_bytes"].get<double>(), 0.0);
  for (const char* test : {"pp", "tg"}) {
    EXPECT_EQ(j[test]["runs"].size(), 2u) << test;
    EXPECT_GT(j[test]["tokens_per_s"].get<double>(), 0.0) << test;
  }
  EXPECT_EQ(j["pp"]["n"], 4);
  EXPECT_EQ(j["tg"]["n"], 3);
  // The bandwidth is measured beside each generation run, and each run's fraction of the bound
  // is its speed over the bound at that bandwidth.
  ASSERT_EQ(j["memory_bandwidth_runs"].size(), 2u);
  ASSERT_EQ(j["tg_fraction_runs"].size(), 2u);
  double bw_sum = 0, fraction_sum = 0;
  for (int r = 0; r < 2; ++r) {
    const double bw = j["memory_bandwidth_runs"][r];
    EXPECT_GT(bw, 0.0);
    EXPECT_NEAR(j["tg_fraction_runs"][r].get<double>(),
                j["tg"]["runs"][r].get<double>() * j["bytes_per_token"].get<double>() / bw, 1e-9);
    bw_sum += bw;
    fraction_sum += j["tg_fraction_runs"][r].get<double>();
  }
  EXPECT_NEAR(j["memory_bandwidth_bytes_per_s"].get<double>(), bw_sum / 2, 1e-6 * bw_sum);
  EXPECT_NEAR(j["tg_fraction_of_bandwidth_bound"].get<double>(), fraction_sum / 2, 1e-9);
  EXPECT_NEAR(j["tg_bandwidth_bound_tokens_per_s"].get<double>(),
              j["memory_bandwidth_bytes_per_s"].get<double>() / j["bytes_per_token"].get<double>(), 1e-6);
  // The checkpoint's 1 MiB fits in any last-level cache sysfs reports.
  if (j["last_level_cache_bytes"].get<double>() > 0) {
    EXPECT_TRUE(j["bytes_per_token_fit_in_cache"]);
  }
  // Everything the runs touched stays resident: at least the whole file, which decode reads.
  // The bandwidth probe's buffer, 512 MiB or more, is allocated after the peak is read, so the
  // peak stays far below it (a margin for the sanitizers' own memory).
  EXPECT_GE(j["peak_rss_bytes"].get<double>(), j["model_file_bytes"].get<double>());
  EXPECT_LT(j["peak_rss_bytes"].get<double>(), 400.0 * 1048576);
}

// Prompts only: one bandwidth measurement, and no generation figures.
TEST_F(BenchStories, PromptOnlyJson) {
  const json j = bench_json("-p 4 -n 0 -r 1 -t 1");
  ASSERT_FALSE(j.empty());
  EXPECT_GT(j["memory_bandwidth_bytes_per_s"].get<double>(), 0.0);
  EXPECT_FALSE(j.contains("tg"));
  EXPECT_FALSE(j.contains("memory_bandwidth_runs"));
  EXPECT_EQ(j["pp"]["runs"].size(), 1u);
}

TEST(BenchCli, RejectsBadCounts) {
  auto r = qllm::test::run_qllm("bench /nonexistent -r 0");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("error:"), std::string::npos) << r.err;
}
