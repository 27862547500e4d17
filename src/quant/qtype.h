// How a weight matrix is stored: float, or one of optimum-quanto's quantized types.
//
// One enum and one constexpr table, as for DType. The quanto names are those written to
// quanto_qmap.json; float types have no quanto name ("none").
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

namespace qllm {

enum class QType : uint8_t { F32, F16, BF16, QInt8, QInt4, QInt2, QFloat8 };

struct QTypeInfo {
  QType qtype;
  std::string_view name;         // qllm's spelling (CLI, reports)
  std::string_view quanto_name;  // quanto_qmap.json spelling; "none" for float
  int bits;                      // bits per weight, scales excluded
  bool affine;                   // group-wise scale and shift (quanto WeightQBitsTensor)
};

inline constexpr QTypeInfo kQTypes[] = {
    {QType::F32, "f32", "none", 32, false},          {QType::F16, "f16", "none", 16, false},
    {QType::BF16, "bf16", "none", 16, false},        {QType::QInt8, "int8", "qint8", 8, false},
    {QType::QInt4, "int4", "qint4", 4, true},        {QType::QInt2, "int2", "qint2", 2, true},
    {QType::QFloat8, "float8", "qfloat8_e4m3fn", 8, false},
};

constexpr const QTypeInfo& qtype_info(QType q) { return kQTypes[static_cast<int>(q)]; }
constexpr std::string_view qtype_name(QType q) { return qtype_info(q).name; }
constexpr bool is_float_qtype(QType q) { return q == QType::F32 || q == QType::F16 || q == QType::BF16; }

inline std::optional<QType> qtype_from_name(std::string_view s) {
  for (const auto& q : kQTypes)
    if (q.name == s) return q.qtype;
  return std::nullopt;
}
// "qfloat8" is accepted as quanto's alias of qfloat8_e4m3fn.
inline std::optional<QType> qtype_from_quanto_name(std::string_view s) {
  if (s == "qfloat8") return QType::QFloat8;
  for (const auto& q : kQTypes)
    if (q.quanto_name == s && q.quanto_name != "none") return q.qtype;
  return std::nullopt;
}

}  // namespace qllm
