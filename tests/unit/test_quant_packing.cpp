// quanto's planar packing and the shapes it gives, against the layout read from optimum-quanto's
// tensor/packed.py and the shapes of real quanto checkpoints (QUANTO_FORMAT.md probe values).
#include <gtest/gtest.h>

#include <random>
#include <vector>

#include "quant/packing.h"
#include "quant/quantizer.h"

using namespace qllm;

TEST(QuantPacking, FourBitRowsGoLowNibbleFirstHalf) {
  // 5 rows of 2 columns: rows_packed = 3; packed[p] = Q[p] | Q[p + 3] << 4, last row alone.
  const std::vector<uint8_t> q = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10};
  std::vector<uint8_t> packed(6);
  pack_planar(q.data(), 5, 2, 4, packed.data());
  EXPECT_EQ(packed, (std::vector<uint8_t>{1 | 7 << 4, 2 | 8 << 4, 3 | 9 << 4, 4 | 10 << 4, 5, 6}));
}

TEST(QuantPacking, TwoBitFourPlanes) {
  // 6 rows, 1 column: rows_packed = 2; packed[p] = sum_k Q[p + 2k] << 2k.
  const std::vector<uint8_t> q = {0, 1, 2, 3, 1, 2};
  std::vector<uint8_t> packed(2);
  pack_planar(q.data(), 6, 1, 2, packed.data());
  EXPECT_EQ(packed[0], 0 | 2 << 2 | 1 << 4);
  EXPECT_EQ(packed[1], 1 | 3 << 2 | 2 << 4);
}

TEST(QuantPacking, RoundTripRaggedRowCounts) {
  std::mt19937 rng(7);
  for (int bits : {2, 4})
    for (int64_t rows : {1, 2, 3, 5, 7, 8, 13}) {
      const int64_t cols = 3;
      std::vector<uint8_t> q(rows * cols), back(rows * cols);
      for (auto& v : q) v = static_cast<uint8_t>(rng() % (1u << bits));
      std::vector<uint8_t> packed(packed_rows(rows, bits) * cols);
      pack_planar(q.data(), rows, cols, bits, packed.data());
      unpack_planar(packed.data(), rows, cols, bits, back.data());
      EXPECT_EQ(q, back) << "bits " << bits << " rows " << rows;
    }
}

TEST(QuantPacking, GroupSizeRule) {
  // nn/qmodule.py: 128, stepping down by 32 while it does not divide in_features.
  EXPECT_EQ(quanto_group_size(256), 128);
  EXPECT_EQ(quanto_group_size(768), 128);
  EXPECT_EQ(quanto_group_size(704), 64);
  EXPECT_EQ(quanto_group_size(192), 96);
  EXPECT_EQ(quanto_group_size(896), 128);
  EXPECT_EQ(quanto_group_size(4864), 128);
  EXPECT_EQ(quanto_group_size(160), 32);
  EXPECT_EQ(quanto_group_size(172), std::nullopt);  // stories260K's FFN: per row
  EXPECT_EQ(quanto_group_size(128), std::nullopt);  // in_features <= 128: per row
  EXPECT_EQ(quanto_group_size(64), std::nullopt);
}

TEST(QuantPacking, ShapesOfRealQuantoCheckpoints) {
  auto spec = [](QType q, int64_t n_in) {
    QuantSpec s;
    s.qtype = q;
    s.group_size = quanto_group_size(n_in).value_or(n_in);
    return s;
  };
  using Shape = std::array<int64_t, 2>;
  // q_proj 256x256, k_proj 128x256, down_proj 256x768 (qint4 and qint2), 704 inputs, Qwen2 q_proj.
  EXPECT_EQ(quantized_shape(spec(QType::QInt4, 256), 256, 256), (Shape{256, 128}));
  EXPECT_EQ(n_scale_rows(spec(QType::QInt4, 256), 256, 256), 512);
  EXPECT_EQ(quantized_shape(spec(QType::QInt4, 256), 128, 256), (Shape{128, 128}));
  EXPECT_EQ(n_scale_rows(spec(QType::QInt4, 256), 128, 256), 256);
  EXPECT_EQ(quantized_shape(spec(QType::QInt4, 768), 256, 768), (Shape{768, 128}));
  EXPECT_EQ(n_scale_rows(spec(QType::QInt4, 768), 256, 768), 1536);
  EXPECT_EQ(quantized_shape(spec(QType::QInt2, 768), 256, 768), (Shape{384, 128}));
  EXPECT_EQ(quantized_shape(spec(QType::QInt4, 704), 256, 704), (Shape{1408, 64}));
  EXPECT_EQ(n_scale_rows(spec(QType::QInt4, 704), 256, 704), 2816);
  EXPECT_EQ(quantized_shape(spec(QType::QInt4, 896), 896, 896), (Shape{3136, 128}));
  EXPECT_EQ(n_scale_rows(spec(QType::QInt4, 896), 896, 896), 6272);
  EXPECT_EQ(quantized_shape(spec(QType::QInt8, 896), 128, 896), (Shape{128, 896}));
}
