// A persistent pool of worker threads for data-parallel loops.
//
// parallel_for(n, fn) splits [0, n) into one contiguous chunk per thread and returns when all
// are done. Chunks are claimed, not assigned: the caller and the workers take the next
// unclaimed chunk until none is left, so a worker that is slow to wake (or descheduled on a
// busy machine) costs nothing but its share. Workers spin briefly before sleeping, because a
// decode step issues hundreds of loops of a few microseconds each and a sleeping wake-up costs
// more than the work. Calls never allocate: the callable is passed by reference.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <thread>
#include <vector>

namespace qllm {

class ThreadPool {
 public:
  // n_threads <= 0 means the number of online cores.
  explicit ThreadPool(int n_threads = 0);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int size() const { return n_threads_; }

  // Calls fn(begin, end) on disjoint chunks covering [0, n), chunks_per_thread (at most
  // kMaxChunksPerThread) chunks per thread, fewer if n is small. Chunk boundaries are multiples
  // of `align` (except the last) so kernels can split on block boundaries. Loops of milliseconds
  // take several chunks per thread, so that a thread the machine slows down hands its
  // unstarted chunks to the others. Not reentrant: fn must not call parallel_for on the same
  // pool.
  static constexpr int kMaxChunksPerThread = 8;
  template <typename Fn>
  void parallel_for(int64_t n, Fn&& fn, int64_t align = 1, int chunks_per_thread = 1) {
    run(n, align, chunks_per_thread, &invoke<std::remove_reference_t<Fn>>, &fn);
  }

  // Calls fn(thread_index) once for each index in [0, size()), each on some pool thread.
  template <typename Fn>
  void for_each_thread(Fn&& fn) {
    parallel_for(n_threads_, [&](int64_t b, int64_t e) {
      for (int64_t i = b; i < e; ++i) fn(static_cast<int>(i));
    });
  }

  // The process-wide pool; its size comes from QLLM_THREADS or the core count.
  static ThreadPool& global();
  // Resizes the global pool (e.g. from a -t option); call before heavy use.
  static void set_global_threads(int n_threads);

 private:
  using Thunk = void (*)(void* fn, int64_t begin, int64_t end);
  template <typename Fn>
  static void invoke(void* fn, int64_t b, int64_t e) {
    (*static_cast<Fn*>(fn))(b, e);
  }
  void run(int64_t n, int64_t align, int chunks_per_thread, Thunk thunk, void* fn);
  void worker();
  // Claims and runs chunks of job `gen` until none is left.
  void work_on(uint64_t gen);
  void chunk(int index, int64_t* begin, int64_t* end) const;

  // state_ = generation << kIndexBits | next unclaimed chunk. One word, so a claim (CAS) can
  // only succeed for the job the claimer saw published.
  static constexpr int kIndexBits = 20;
  // Index of a finished job: no chunk index reaches it (n_chunks_ <= 8 * threads <= 2^19).
  static constexpr uint64_t kClosedIndex = (uint64_t{1} << kIndexBits) - 1;
  int n_threads_ = 1;
  std::vector<std::thread> threads_;
  // The current job, written before state_ publishes its generation.
  Thunk thunk_ = nullptr;
  void* fn_ = nullptr;
  int64_t n_ = 0, align_ = 1;
  int n_chunks_ = 0;
  std::atomic<uint64_t> state_{0};
  std::atomic<int> done_{0};
  std::atomic<int> sleepers_{0};
  std::atomic<bool> stop_{false};
  std::mutex mutex_;
  std::condition_variable wake_;
};

}  // namespace qllm
