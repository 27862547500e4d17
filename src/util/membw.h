// Measures this machine's memory read bandwidth, the ceiling for bandwidth-bound decode.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "util/huge_pages.h"
#include "util/thread_pool.h"

namespace qllm {

// A buffer far larger than the last-level cache, streamed by all pool threads. It is allocated
// and paged in once, so that it can be measured again and again beside the work it bounds: on a
// shared host the bandwidth drifted between 13 and 26 GB/s within minutes, and a bound measured
// once, apart from the runs, said more about the minute than about the code.
// The buffer is in 2 MiB pages where the kernel grants them (util/huge_pages.h), the pages the
// machine reads fastest from: weights left in 4 KiB pages then show as a lower fraction of the
// bound, not as a lower bound.
class ReadBandwidthProbe {
 public:
  // The buffer: 512 MiB, or 4x the last-level cache where that is larger, so that passes read
  // from memory, not cache, also on a server with hundreds of MiB of L3.
  static std::size_t default_bytes();

  explicit ReadBandwidthProbe(ThreadPool& pool, std::size_t bytes = default_bytes());
  // Best of `passes` reads of the whole buffer, in bytes per second.
  double measure(int passes);
  std::size_t bytes() const { return n_ * sizeof(uint64_t); }

 private:
  ThreadPool& pool_;
  std::size_t n_ = 0;  // words
  uint64_t* words() { return reinterpret_cast<uint64_t*>(buf_.data()); }

  HugePageBuffer buf_;
  std::vector<uint64_t> sinks_;  // one cache line per thread
};

// One probe of `bytes`, measured `reps` times.
double measure_read_bandwidth(ThreadPool& pool, std::size_t bytes = ReadBandwidthProbe::default_bytes(),
                              int reps = 5);

}  // namespace qllm
