// quanto_qmap.json: the exact bytes Python's json.dump(qmap, f, indent=4) writes, and errors.
#include <gtest/gtest.h>

#include "format/quanto_qmap.h"
#include "util/error.h"

using namespace qllm;

namespace {
// What json.dump({"a.q_proj": {"weights": "qint4", "activations": "none"},
//                 "lm_head": {"weights": "qfloat8_e4m3fn", "activations": "none"}}, f, indent=4)
// writes (Python 3, default separators, no trailing newline).
constexpr const char* kPython =
    "{\n"
    "    \"a.q_proj\": {\n"
    "        \"weights\": \"qint4\",\n"
    "        \"activations\": \"none\"\n"
    "    },\n"
    "    \"lm_head\": {\n"
    "        \"weights\": \"qfloat8_e4m3fn\",\n"
    "        \"activations\": \"none\"\n"
    "    }\n"
    "}";
}  // namespace

TEST(QuantQmap, RoundTripIsByteExact) {
  auto q = parse_quanto_qmap("x.json", kPython);
  ASSERT_EQ(q.entries.size(), 2u);
  EXPECT_EQ(q.entries[0].module, "a.q_proj");
  EXPECT_EQ(q.entries[0].weights, QType::QInt4);
  EXPECT_EQ(q.entries[1].weights, QType::QFloat8);
  EXPECT_EQ(quanto_qmap_json(q), kPython);
  EXPECT_EQ(q.weight_map().at("lm_head"), QType::QFloat8);
}

TEST(QuantQmap, KeepsFileOrderAndAcceptsAliases) {
  auto q = parse_quanto_qmap("x.json", R"({"z": {"weights": "qint8", "activations": "none"},
      "a": {"weights": "qfloat8", "activations": "qint8"}, "m": {"weights": "none"}})");
  ASSERT_EQ(q.entries.size(), 3u);
  EXPECT_EQ(q.entries[0].module, "z");
  EXPECT_EQ(q.entries[1].weights, QType::QFloat8);
  EXPECT_EQ(q.entries[1].activations, "qint8");
  EXPECT_FALSE(q.entries[2].weights.has_value());
  EXPECT_EQ(q.weight_map().size(), 2u);
}

TEST(QuantQmap, EmptyMapIsBraces) { EXPECT_EQ(quanto_qmap_json({}), "{}"); }

TEST(QuantQmap, RejectsBadInputNamingTheProblem) {
  auto msg = [](const char* json) {
    try {
      parse_quanto_qmap("q.json", json);
    } catch (const FormatError& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_NE(msg("{").find("invalid JSON"), std::string::npos);
  EXPECT_NE(msg("[]").find("expected a JSON object"), std::string::npos);
  EXPECT_NE(msg(R"({"m": {"weights": "qfloat8_e5m2"}})").find("unsupported weights qtype 'qfloat8_e5m2'"),
            std::string::npos);
  EXPECT_NE(msg(R"({"m": {"weights": "qint3"}})").find("qint8, qint4, qint2, qfloat8_e4m3fn"), std::string::npos);
  EXPECT_NE(msg(R"({"m": {"activations": "none"}})").find("missing string \"weights\""),
            std::string::npos);
  EXPECT_NE(msg(R"({"m": 3})").find("module 'm'"), std::string::npos);
}
