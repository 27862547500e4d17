// The pool runs every index of every job exactly once, also when jobs of different sizes follow
// each other quickly and there are more threads than cores (stragglers from one job must never
// claim work of the next).
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <mutex>
#include <vector>

#include "util/thread_pool.h"

using qllm::ThreadPool;

TEST(ThreadPool, EveryIndexOnceAcrossManyJobsOfChangingSize) {
  for (int threads : {2, 3, 16}) {
    ThreadPool pool(threads);
    std::vector<std::atomic<int>> hits(4096);
    for (int job = 0; job < 3000; ++job) {
      // Alternate small and large jobs so n_chunks changes from one job to the next.
      const int64_t n = (job % 3 == 0) ? 2 : (job % 3 == 1) ? 37 : 4096;
      for (int64_t i = 0; i < n; ++i) hits[i].store(0, std::memory_order_relaxed);
      // Some jobs split into several chunks per thread, so the chunk count changes too.
      const int per_thread = job % 4 == 0 ? ThreadPool::kMaxChunksPerThread : 1;
      pool.parallel_for(n, [&](int64_t b, int64_t e) {
        for (int64_t i = b; i < e; ++i) hits[i].fetch_add(1, std::memory_order_relaxed);
      }, 1, per_thread);
      for (int64_t i = 0; i < n; ++i)
        ASSERT_EQ(hits[i].load(), 1) << "threads " << threads << " job " << job << " index " << i;
    }
  }
}

TEST(ThreadPool, ChunksRespectAlignment) {
  ThreadPool pool(3);
  std::vector<std::pair<int64_t, int64_t>> chunks(3, {-1, -1});
  std::atomic<int> k{0};
  pool.parallel_for(100, [&](int64_t b, int64_t e) { chunks[k++] = {b, e}; }, 16);
  int64_t covered = 0;
  for (auto [b, e] : chunks) {
    if (b < 0) continue;
    EXPECT_EQ(b % 16, 0);
    if (e != 100) {
      EXPECT_EQ(e % 16, 0);
    }
    covered += e - b;
  }
  EXPECT_EQ(covered, 100);
}

TEST(ThreadPool, SeveralChunksPerThreadAreAlignedAndDisjoint) {
  ThreadPool pool(3);
  std::mutex m;
  std::vector<std::pair<int64_t, int64_t>> chunks;
  pool.parallel_for(1000, [&](int64_t b, int64_t e) {
    std::lock_guard lock(m);
    chunks.emplace_back(b, e);
  }, 16, ThreadPool::kMaxChunksPerThread);
  // 63 blocks of 16 over 3 threads x 8 chunks: 24 chunks of 2-3 blocks.
  EXPECT_EQ(chunks.size(), 24u);
  std::sort(chunks.begin(), chunks.end());
  int64_t next = 0;
  for (auto [b, e] : chunks) {
    EXPECT_EQ(b, next);
    EXPECT_EQ(b % 16, 0);
    if (e != 1000) {
      EXPECT_EQ(e % 16, 0);
    }
    next = e;
  }
  EXPECT_EQ(next, 1000);
}
