// The tokenizer's flat tables (format/bpe_tables.h) against std::unordered_map, on inputs the
// real vocabularies of the tokenizer tests do not reach: growth without reserve(), tokens that
// share their first 16 bytes, the empty token, repeated keys.
#include <gtest/gtest.h>

#include <random>
#include <string>
#include <unordered_map>
#include <vector>

#include "format/bpe_tables.h"

using namespace qllm;

namespace {

// Distinct tokens of 0 to 40 bytes; every 7th is a long shared prefix plus a number, so many
// agree in the 16 bytes kept in a slot.
std::vector<std::string> tokens(std::size_t n) {
  std::mt19937 rng(7);
  std::unordered_map<std::string, int> seen;
  std::vector<std::string> out;
  while (out.size() < n) {
    std::string t;
    if (out.size() % 7 == 3) {
      t = "a_shared_prefix_of_twenty_" + std::to_string(rng() % 100000);
    } else {
      t.resize(rng() % 12);
      for (char& c : t) c = static_cast<char>(rng() % 256);
    }
    if (seen.emplace(t, 0).second) out.push_back(t);
  }
  return out;
}

}  // namespace

TEST(Vocab, GrowsWithoutReserveAndFindsEveryToken) {
  const auto toks = tokens(50000);
  Vocab v;
  std::unordered_map<std::string, int32_t> ref;
  for (std::size_t i = 0; i < toks.size(); ++i) {
    ASSERT_TRUE(v.insert(toks[i], static_cast<int32_t>(i * 3)));
    ref.emplace(toks[i], static_cast<int32_t>(i * 3));
  }
  EXPECT_EQ(v.size(), toks.size());
  for (const auto& [t, id] : ref) ASSERT_EQ(v.find(t), id) << "token of " << t.size() << " bytes";
  // Bulk lookups agree with single ones, misses included.
  std::vector<std::string_view> q;
  for (const auto& t : toks) q.push_back(t);
  q.push_back("a_shared_prefix_of_twenty_not_there");
  q.push_back("a_shared_prefix_of_twenty_");
  std::vector<int32_t> ids(q.size());
  v.find_all(q, ids);
  for (std::size_t k = 0; k < q.size(); ++k) {
    auto it = ref.find(std::string(q[k]));
    ASSERT_EQ(ids[k], it == ref.end() ? -1 : it->second) << k;
  }
  // for_each visits each token once, with its id.
  std::size_t visited = 0;
  v.for_each([&](std::string_view t, int32_t id) {
    ++visited;
    EXPECT_EQ(ref.at(std::string(t)), id);
  });
  EXPECT_EQ(visited, ref.size());
}

TEST(Vocab, RefusesARepeatedTokenAndKeepsTheFirstId) {
  Vocab v;
  v.reserve(4, 64);
  EXPECT_EQ(v.find("x"), -1);
  EXPECT_TRUE(v.insert("", 5));
  EXPECT_TRUE(v.insert("x", 1));
  EXPECT_FALSE(v.insert("x", 2));
  EXPECT_FALSE(v.insert("", 6));
  EXPECT_EQ(v.find("x"), 1);
  EXPECT_EQ(v.find(""), 5);
  EXPECT_EQ(v.size(), 2u);
}

TEST(MergeTable, FirstListingOfAPairWins) {
  MergeTable m;
  std::mt19937 rng(3);
  std::unordered_map<uint64_t, MergeTable::Merge> ref;
  for (int32_t rank = 0; rank < 40000; ++rank) {
    const auto a = static_cast<int32_t>(rng() % 500), b = static_cast<int32_t>(rng() % 500);
    const MergeTable::Merge mg{rank, static_cast<int32_t>(rng() % 100000)};
    m.insert(a, b, mg);
    ref.emplace((uint64_t(a) << 32) | uint32_t(b), mg);  // emplace keeps the first too
  }
  EXPECT_EQ(m.size(), ref.size());
  for (int32_t a = 0; a < 500; ++a)
    for (int32_t b = 0; b < 500; ++b) {
      const MergeTable::Merge* got = m.find(a, b);
      auto it = ref.find((uint64_t(a) << 32) | uint32_t(b));
      ASSERT_EQ(got != nullptr, it != ref.end()) << a << " " << b;
      if (got) {
        EXPECT_EQ(got->rank, it->second.rank);
        EXPECT_EQ(got->id, it->second.id);
      }
    }
}
