// The two big tables of a BPE model, built once per load and then only read: the vocabulary
// (token string -> id) and the merges ((left id, right id) -> rank and result).
//
// Real vocabularies hold 100k+ of each (Qwen2: 151k tokens, 151k merges), and loading them is on
// the path to a model's first token. As std::unordered_map they cost an allocation per entry
// and a chain of cache misses per probe: Qwen2's tokenizer took 220-290 ms to load on a Zen 3
// VM, most of it there. Here both are open-addressing tables, one allocation each, whose slot
// alone answers most lookups, and bulk lookups prefetch: 85-125 ms.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace qllm {

class Vocab {
 public:
  // Room for n tokens of `bytes` bytes in all, so that building does not rehash.
  void reserve(std::size_t n, std::size_t bytes);
  // Adds token -> id. False, with no change, if the token is already present.
  bool insert(std::string_view token, int32_t id);
  // The id of `token`, or -1.
  int32_t find(std::string_view token) const { return find(token, hash(token)); }
  std::size_t size() const { return size_; }
  // f(token, id) for every token.
  template <class F>
  void for_each(F&& f) const {
    for (const Slot& s : slots_)
      if (s.size != kEmpty) f(std::string_view(text_.data() + s.offset, s.size), s.id);
  }

  // ids[k] = find(tokens[k]) for every k. One lookup at a time waits on a cache miss (the tables
  // of a real vocabulary are megabytes); here each slot is prefetched some lookups ahead, so the
  // misses overlap.
  void find_all(std::span<const std::string_view> tokens, std::span<int32_t> ids) const;
  // Starts loading the slot of `token` into the cache, for a lookup or insert soon after.
  void prefetch(std::string_view token) const { prefetch_slot(hash(token)); }

 private:
  static constexpr uint32_t kEmpty = ~uint32_t{0};  // as a size: an empty slot
  static constexpr std::size_t kInline = 16;
  // A token is found in its slot alone, one cache miss, when it has at most kInline bytes (most
  // do); longer ones are compared on in text_.
  struct Slot {
    uint32_t tag = 0;  // the high 32 bits of the hash
    int32_t id = 0;
    uint32_t size = kEmpty, offset = 0;  // the token in text_
    char head[kInline] = {};             // its first kInline bytes, zero-padded
  };
  static uint64_t hash(std::string_view token);
  void prefetch_slot(uint64_t hash) const;
  int32_t find(std::string_view token, uint64_t hash) const;
  // The slot holding `token`, or the empty slot where it would go.
  std::size_t probe(std::string_view token, uint64_t hash) const;
  void rehash(std::size_t n_slots);

  std::string text_;         // every token, back to back
  std::vector<Slot> slots_;  // open addressing, linear probing; a power of two, under 3/4 full
  std::size_t size_ = 0;
};

class MergeTable {
 public:
  struct Merge {
    int32_t rank, id;
  };
  // Room for n merges without rehashing.
  void reserve(std::size_t n);
  // Adds (left, right) -> m unless the pair is present: the first listing of a pair wins, as in
  // the reference implementation. Ids are non-negative.
  void insert(int32_t left, int32_t right, Merge m);
  // The merge of (left, right), or null.
  const Merge* find(int32_t left, int32_t right) const;
  // Starts loading the slot of (left, right) into the cache, for an insert soon after.
  void prefetch(int32_t left, int32_t right) const;
  std::size_t size() const { return size_; }

 private:
  static constexpr uint64_t kEmpty = ~uint64_t{0};  // never a key: ids are non-negative
  struct Slot {
    uint64_t key = kEmpty;
    Merge merge{};
  };
  std::size_t probe(uint64_t key) const;
  void rehash(std::size_t n_slots);

  std::vector<Slot> slots_;  // open addressing, linear probing; a power of two, under 3/4 full
  std::size_t size_ = 0;
};

}  // namespace qllm
