// load_linear() on quanto's serialized keys: shapes and dtypes validated into a problem list
// (never a crash), integer zero-point shifts (quanto AffineOptimizer(zeropoint=True):
// W = scale * (q - zp)), group size taken from the scale count.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>

#include "format/convert.h"
#include "format/safetensors_writer.h"
#include "kernels/cpu/matmul.h"
#include "quant/load_linear.h"
#include "quant/packing.h"
#include "testing.h"

using namespace qllm;

namespace {

template <typename T>
TensorToWrite tensor(std::string name, DType dt, std::vector<int64_t> shape, std::vector<T> v) {
  return {std::move(name), dt, std::move(shape), [v](std::span<std::byte> out) {
            std::memcpy(out.data(), v.data(), out.size());
          }};
}

}  // namespace

TEST(QuantLoadLinear, Int4WithIntegerZeroPoints) {
  // W [2, 8], group size 4 -> 4 groups; q = i % 16, zero-points 0..3, scales 0.5 .. 2.
  const int64_t n_out = 2, n_in = 8, G = 4, n_groups = 4;
  std::vector<uint8_t> q(n_groups * G);
  for (std::size_t i = 0; i < q.size(); ++i) q[i] = static_cast<uint8_t>((i * 7) % 16);
  std::vector<uint8_t> packed(packed_rows(n_groups, 4) * G);
  pack_planar(q.data(), n_groups, G, 4, packed.data());
  const std::vector<float> scale = {0.5f, 1.0f, 1.5f, 2.0f};
  const std::vector<uint8_t> zp = {0, 1, 2, 3};
  const auto dir = test::temp_dir("load-linear");
  write_safetensors(dir / "model.safetensors",
                    {tensor("m.weight._data._data", DType::U8, {2, G}, packed),
                     tensor("m.weight._scale", DType::F32, {n_groups, 1}, scale),
                     tensor("m.weight._shift", DType::U8, {n_groups, 1}, zp),
                     tensor("m.input_scale", DType::F32, {}, std::vector<float>{1.0f})});
  const TensorSet ts = TensorSet::open(dir);
  const std::map<std::string, QType> qmap = {{"m", QType::QInt4}};
  std::vector<std::string> problems;
  Linear l = load_linear(ts, &qmap, {"m", n_out, n_in, false, false}, &problems);
  ASSERT_TRUE(problems.empty()) << problems[0];
  EXPECT_EQ(l.w.qtype, QType::QInt4);
  EXPECT_EQ(l.w.group_size, G);
  std::vector<float> row(n_in);
  for (int64_t o = 0; o < n_out; ++o) {
    ref::dequantize_row(l.w, o, row.data());
    for (int64_t i = 0; i < n_in; ++i) {
      const int64_t g = o * 2 + i / G;
      EXPECT_EQ(row[i], scale[g] * (static_cast<float>(q[g * G + i % G]) - zp[g])) << o << "," << i;
    }
  }
}

TEST(QuantLoadLinear, BadShapesAndDtypesAreProblemsNotCrashes) {
  const auto dir = test::temp_dir("load-linear-bad");
  write_safetensors(dir / "model.safetensors",
                    {tensor("a.weight._data", DType::I8, {4, 8}, std::vector<int8_t>(32, 1)),
                     tensor("a.weight._scale", DType::F32, {4}, std::vector<float>(4, 1.0f)),
                     tensor("b.weight._data", DType::I16, {4, 8}, std::vector<int16_t>(32, 1)),
                     tensor("c.weight._data._data", DType::U8, {2, 8}, std::vector<uint8_t>(16, 0)),
                     tensor("c.weight._scale", DType::F32, {3, 1}, std::vector<float>(3, 1.0f)),
                     tensor("c.weight._shift", DType::F32, {3, 1}, std::vector<float>(3, 0.0f)),
                     tensor("d.weight._data", DType::I8, {4, 8}, std::vector<int8_t>(32, 1)),
                     tensor("d.weight._scale", DType::F32, {4, 1}, std::vector<float>{1.0f, NAN, 1.0f, 1.0f})});
  const TensorSet ts = TensorSet::open(dir);
  auto problem = [&](const char* name, const std::map<std::string, QType>* qmap) {
    std::vector<std::string> p;
    Linear l = load_linear(ts, qmap, {name, 4, 8, false, false}, &p);
    EXPECT_EQ(l.w.data, nullptr) << name;
    return p.empty() ? std::string("no problem") : p[0];
  };
  EXPECT_NE(problem("a", nullptr).find("tensor 'a.weight._scale': wrong shape (expected [4, 1], got [4])"),
            std::string::npos);
  EXPECT_NE(problem("b", nullptr).find("unsupported dtype I16"), std::string::npos);
  EXPECT_NE(problem("c", nullptr).find("whole groups"), std::string::npos);
  EXPECT_NE(problem("d", nullptr).find("non-finite value nan at index 1"), std::string::npos);
  const std::map<std::string, QType> says_int4 = {{"d", QType::QInt4}};
  EXPECT_NE(problem("d", &says_int4).find("quanto_qmap.json says qint4 but the weights are qint8"),
            std::string::npos);
  EXPECT_NE(problem("e", &says_int4).find("tensor 'e.weight': missing"), std::string::npos);
}
