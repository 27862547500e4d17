// Element types of safetensors files, spelled as on disk.
//
// One enum and one parallel constexpr table (name, bytes per element) so that every reader,
// writer and report agrees on the spelling and the size.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

namespace qllm {

enum class DType : uint8_t { F64, F32, F16, BF16, I64, I32, I16, I8, U8, BOOL, F8_E4M3, F8_E5M2 };

struct DTypeInfo {
  DType dtype;
  std::string_view name;  // safetensors header spelling
  std::size_t size;       // bytes per element
  bool is_float;
};

inline constexpr DTypeInfo kDTypes[] = {
    {DType::F64, "F64", 8, true},       {DType::F32, "F32", 4, true},
    {DType::F16, "F16", 2, true},       {DType::BF16, "BF16", 2, true},
    {DType::I64, "I64", 8, false},      {DType::I32, "I32", 4, false},
    {DType::I16, "I16", 2, false},      {DType::I8, "I8", 1, false},
    {DType::U8, "U8", 1, false},        {DType::BOOL, "BOOL", 1, false},
    {DType::F8_E4M3, "F8_E4M3", 1, true}, {DType::F8_E5M2, "F8_E5M2", 1, true},
};

constexpr const DTypeInfo& dtype_info(DType t) { return kDTypes[static_cast<int>(t)]; }
constexpr std::string_view dtype_name(DType t) { return dtype_info(t).name; }
constexpr std::size_t dtype_size(DType t) { return dtype_info(t).size; }

inline std::optional<DType> dtype_from_name(std::string_view name) {
  for (const auto& d : kDTypes)
    if (d.name == name) return d.dtype;
  return std::nullopt;
}

// The torch spelling used in config.json ("float32", "bfloat16", "float16").
std::optional<DType> dtype_from_torch_name(std::string_view name);
std::string_view dtype_torch_name(DType t);

}  // namespace qllm
