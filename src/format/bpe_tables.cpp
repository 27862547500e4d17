#include "format/bpe_tables.h"

#include <algorithm>
#include <bit>
#include <cstring>
#include <functional>
#include <limits>
#include <stdexcept>

namespace qllm {
namespace {

// Slots for n entries, under 3/4 full: a hit takes about 1.5 probes with linear probing, and
// neighbouring slots share cache lines.
std::size_t slots_for(std::size_t n) { return std::bit_ceil(std::max<std::size_t>(16, n + n / 3 + 1)); }

uint64_t merge_key(int32_t left, int32_t right) {
  return (static_cast<uint64_t>(static_cast<uint32_t>(left)) << 32) | static_cast<uint32_t>(right);
}

// Keys of nearby pairs differ in few bits: a multiply spreads them over the slot index.
std::size_t merge_slot(uint64_t key, std::size_t mask) {
  const uint64_t mix = key * 0x9e3779b97f4a7c15ull;
  return static_cast<std::size_t>(mix ^ (mix >> 32)) & mask;
}

}  // namespace

uint64_t Vocab::hash(std::string_view token) { return std::hash<std::string_view>{}(token); }

void Vocab::reserve(std::size_t n, std::size_t bytes) {
  text_.reserve(bytes);
  if (slots_for(n) > slots_.size()) rehash(slots_for(n));
}

std::size_t Vocab::probe(std::string_view token, uint64_t hash) const {
  const std::size_t mask = slots_.size() - 1;
  const auto tag = static_cast<uint32_t>(hash >> 32);
  const std::size_t head = std::min(token.size(), kInline);
  for (std::size_t i = hash & mask;; i = (i + 1) & mask) {
    const Slot& s = slots_[i];
    if (s.size == kEmpty) return i;
    if (s.tag == tag && s.size == token.size() && std::memcmp(s.head, token.data(), head) == 0 &&
        std::memcmp(text_.data() + s.offset + head, token.data() + head, token.size() - head) == 0)
      return i;
  }
}

void Vocab::rehash(std::size_t n_slots) {
  std::vector<Slot> old(n_slots);
  old.swap(slots_);
  for (const Slot& s : old) {
    if (s.size == kEmpty) continue;
    // Tokens are distinct: each goes to the first empty slot from its hash.
    std::size_t i = hash(std::string_view(text_.data() + s.offset, s.size)) & (n_slots - 1);
    while (slots_[i].size != kEmpty) i = (i + 1) & (n_slots - 1);
    slots_[i] = s;
  }
}

bool Vocab::insert(std::string_view token, int32_t id) {
  if (slots_for(size_ + 1) > slots_.size()) rehash(slots_for(size_ + 1));
  const uint64_t h = hash(token);
  Slot& s = slots_[probe(token, h)];
  if (s.size != kEmpty) return false;
  // Offsets and sizes are 32-bit: the loaders cap a vocabulary file far below 4 GiB.
  if (text_.size() + token.size() >= kEmpty) throw std::length_error("vocabulary larger than 4 GiB");
  s.tag = static_cast<uint32_t>(h >> 32);
  s.id = id;
  s.size = static_cast<uint32_t>(token.size());
  s.offset = static_cast<uint32_t>(text_.size());
  std::memcpy(s.head, token.data(), std::min(token.size(), kInline));
  text_.append(token);
  ++size_;
  return true;
}

void Vocab::prefetch_slot(uint64_t hash) const {
  if (!slots_.empty()) __builtin_prefetch(&slots_[hash & (slots_.size() - 1)]);
}

void Vocab::find_all(std::span<const std::string_view> tokens, std::span<int32_t> ids) const {
  // 16 misses in flight: about what a core's miss buffers hold.
  constexpr std::size_t kAhead = 16;
  uint64_t hashes[kAhead];
  const std::size_t n = tokens.size();
  for (std::size_t k = 0; k < std::min(n, kAhead); ++k) prefetch_slot(hashes[k] = hash(tokens[k]));
  for (std::size_t k = 0; k < n; ++k) {
    const uint64_t h = hashes[k % kAhead];
    if (k + kAhead < n) prefetch_slot(hashes[k % kAhead] = hash(tokens[k + kAhead]));
    ids[k] = find(tokens[k], h);
  }
}

int32_t Vocab::find(std::string_view token, uint64_t hash) const {
  if (slots_.empty()) return -1;
  const Slot& s = slots_[probe(token, hash)];
  return s.size == kEmpty ? -1 : s.id;
}

void MergeTable::reserve(std::size_t n) {
  if (slots_for(n) > slots_.size()) rehash(slots_for(n));
}

std::size_t MergeTable::probe(uint64_t key) const {
  const std::size_t mask = slots_.size() - 1;
  for (std::size_t i = merge_slot(key, mask);; i = (i + 1) & mask)
    if (slots_[i].key == key || slots_[i].key == kEmpty) return i;
}

void MergeTable::rehash(std::size_t n_slots) {
  std::vector<Slot> old(n_slots);
  old.swap(slots_);
  for (const Slot& s : old)
    if (s.key != kEmpty) slots_[probe(s.key)] = s;
}

void MergeTable::insert(int32_t left, int32_t right, Merge m) {
  if (slots_for(size_ + 1) > slots_.size()) rehash(slots_for(size_ + 1));
  const uint64_t key = merge_key(left, right);
  Slot& s = slots_[probe(key)];
  if (s.key != kEmpty) return;
  s = {key, m};
  ++size_;
}

void MergeTable::prefetch(int32_t left, int32_t right) const {
  if (!slots_.empty()) __builtin_prefetch(&slots_[merge_slot(merge_key(left, right), slots_.size() - 1)]);
}

const MergeTable::Merge* MergeTable::find(int32_t left, int32_t right) const {
  if (slots_.empty()) return nullptr;
  const Slot& s = slots_[probe(merge_key(left, right))];
  return s.key == kEmpty ? nullptr : &s.merge;
}

}  // namespace qllm
