// BPE over one pre-tokenized word.
//
// The word starts as one symbol per character (a character missing from the vocabulary
// becomes its <0xNN> byte tokens under byte_fallback, else the unknown token). Then the pair
// with the lowest merge rank is merged, leftmost first on ties, until no adjacent pair has a
// merge. A heap of candidate pairs keeps this O(n log n); entries made stale by an earlier
// merge are recognised and skipped when popped.
#include <queue>

#include "format/tokenizer_impl.h"
#include "format/utf8.h"

namespace qllm {
namespace {

struct Symbol {
  int32_t id;
  int32_t prev, next;  // neighbours in the linked list, -1 at the ends
  bool alive;
};

struct Candidate {
  int32_t rank, pos;  // pos: index of the left symbol
  int32_t left_id, right_id;
  bool operator>(const Candidate& o) const { return rank != o.rank ? rank > o.rank : pos > o.pos; }
};

void initial_symbols(const BpeModel& m, std::string_view word, std::vector<Symbol>& syms) {
  auto push = [&](int32_t id) {
    int32_t n = static_cast<int32_t>(syms.size());
    syms.push_back({id, n - 1, -1, true});
    if (n > 0) syms[n - 1].next = n;
  };
  bool last_unk = false;
  for (std::size_t i = 0; i < word.size();) {
    std::size_t b = i;
    utf8::next(word, i);
    const std::string_view ch = word.substr(b, i - b);
    if (const int32_t id = m.vocab.find(ch); id >= 0) {
      push(id);
      last_unk = false;
      continue;
    }
    if (m.byte_fallback) {
      bool all = true;
      for (char c : ch) all = all && m.byte_ids[static_cast<unsigned char>(c)] >= 0;
      if (all) {
        for (char c : ch) push(m.byte_ids[static_cast<unsigned char>(c)]);
        last_unk = false;
        continue;
      }
    }
    // Unknown character: the unknown token (consecutive ones fused if asked), or dropped when
    // the model has none, as in the reference.
    if (m.unk_id && !(m.fuse_unk && last_unk)) push(*m.unk_id);
    last_unk = m.unk_id.has_value();
  }
}

void merge_word(const BpeModel& m, std::vector<Symbol>& syms) {
  std::priority_queue<Candidate, std::vector<Candidate>, std::greater<>> heap;
  auto consider = [&](int32_t pos) {
    int32_t nx = syms[pos].next;
    if (nx < 0) return;
    if (const MergeTable::Merge* mg = m.merges.find(syms[pos].id, syms[nx].id))
      heap.push({mg->rank, pos, syms[pos].id, syms[nx].id});
  };
  for (int32_t i = 0; i + 1 < static_cast<int32_t>(syms.size()); ++i) consider(i);
  while (!heap.empty()) {
    Candidate c = heap.top();
    heap.pop();
    Symbol& left = syms[c.pos];
    // Stale: the left symbol was merged away or changed, or its right neighbour changed.
    if (!left.alive || left.id != c.left_id || left.next < 0 || syms[left.next].id != c.right_id)
      continue;
    int32_t r = left.next;
    left.id = m.merges.find(c.left_id, c.right_id)->id;
    left.next = syms[r].next;
    syms[r].alive = false;
    if (left.next >= 0) syms[left.next].prev = c.pos;
    if (left.prev >= 0) consider(left.prev);
    consider(c.pos);
  }
}

}  // namespace

bool BpeCache::get(std::string_view word, std::vector<int32_t>& out) const {
  if (word.size() > kMaxWordBytes) return false;
  std::lock_guard lock(mu_);
  auto it = map_.find(std::string(word));
  if (it == map_.end()) return false;
  out.insert(out.end(), it->second.begin(), it->second.end());
  return true;
}

void BpeCache::put(std::string_view word, const std::vector<int32_t>& ids) const {
  if (word.size() > kMaxWordBytes) return;
  std::lock_guard lock(mu_);
  if (map_.size() >= kMaxEntries) map_.clear();
  map_.emplace(std::string(word), ids);
}

void bpe_encode(const TokenizerData& d, std::string_view word, std::vector<int32_t>& out) {
  const BpeModel& m = d.bpe;
  if (m.ignore_merges) {
    if (const int32_t id = m.vocab.find(word); id >= 0) {
      out.push_back(id);
      return;
    }
  }
  if (d.cache.get(word, out)) return;
  std::vector<Symbol> syms;
  syms.reserve(word.size());
  initial_symbols(m, word, syms);
  merge_word(m, syms);
  std::vector<int32_t> ids;
  for (const auto& s : syms)
    if (s.alive) ids.push_back(s.id);
  d.cache.put(word, ids);
  out.insert(out.end(), ids.begin(), ids.end());
}

}  // namespace qllm
