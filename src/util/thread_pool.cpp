#include "util/thread_pool.h"

#include <algorithm>
#include <cstdlib>
#include <memory>

#if defined(__x86_64__)
#include <immintrin.h>
#define QLLM_PAUSE() _mm_pause()
#else
#define QLLM_PAUSE() ((void)0)
#endif

namespace qllm {
namespace {
// About 50-100 us of spinning before a worker sleeps: longer than the gap between the ops of
// one decode step, much shorter than the gap between requests.
constexpr int kSpinIterations = 20000;
// The caller waiting for a chunk another thread claimed yields after this many spins, in case
// that thread shares its core with other processes.
constexpr int kWaitSpinsBeforeYield = 2000;
}  // namespace

ThreadPool::ThreadPool(int n_threads) {
  if (n_threads <= 0) n_threads = static_cast<int>(std::thread::hardware_concurrency());
  n_threads_ = std::clamp(n_threads, 1, 1 << 16);
  for (int i = 1; i < n_threads_; ++i) threads_.emplace_back([this] { worker(); });
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard lock(mutex_);
    stop_.store(true);
    state_.fetch_add(uint64_t{1} << kIndexBits);
  }
  wake_.notify_all();
  for (auto& t : threads_) t.join();
}

void ThreadPool::chunk(int index, int64_t* begin, int64_t* end) const {
  // Split into n_chunks_ chunks of whole `align` blocks, the remainder spread over the first.
  const int64_t blocks = (n_ + align_ - 1) / align_;
  const int64_t per = blocks / n_chunks_, extra = blocks % n_chunks_;
  const int64_t b = index * per + (index < extra ? index : extra);
  const int64_t e = b + per + (index < extra ? 1 : 0);
  *begin = std::min(n_, b * align_);
  *end = std::min(n_, e * align_);
}

void ThreadPool::work_on(uint64_t gen) {
  uint64_t s = state_.load(std::memory_order_acquire);
  for (;;) {
    if ((s >> kIndexBits) != gen) return;  // a later job: ours is finished
    const int index = static_cast<int>(s & ((uint64_t{1} << kIndexBits) - 1));
    if (index >= n_chunks_) return;
    if (!state_.compare_exchange_weak(s, s + 1, std::memory_order_acq_rel, std::memory_order_acquire))
      continue;
    // Claimed: the job cannot change until done_ counts this chunk.
    int64_t b, e;
    chunk(index, &b, &e);
    if (b < e) thunk_(fn_, b, e);
    done_.fetch_add(1, std::memory_order_acq_rel);
    s = state_.load(std::memory_order_acquire);
  }
}

void ThreadPool::run(int64_t n, int64_t align, int chunks_per_thread, Thunk thunk, void* fn) {
  if (n <= 0) return;
  align = align < 1 ? 1 : align;
  if (n_threads_ == 1 || n <= align) {
    thunk(fn, 0, n);
    return;
  }
  thunk_ = thunk;
  fn_ = fn;
  n_ = n;
  align_ = align;
  const int per_thread = std::clamp(chunks_per_thread, 1, kMaxChunksPerThread);
  n_chunks_ = static_cast<int>(std::min<int64_t>(int64_t{n_threads_} * per_thread, (n + align - 1) / align));
  done_.store(0, std::memory_order_relaxed);
  const uint64_t gen = (state_.load(std::memory_order_relaxed) >> kIndexBits) + 1;
  state_.store(gen << kIndexBits, std::memory_order_seq_cst);
  if (sleepers_.load(std::memory_order_seq_cst) > 0) {
    std::lock_guard lock(mutex_);
    wake_.notify_all();
  }
  work_on(gen);
  for (int spin = 0; done_.load(std::memory_order_acquire) != n_chunks_; ++spin) {
    if (spin < kWaitSpinsBeforeYield) QLLM_PAUSE();
    else std::this_thread::yield();
  }
  // Close the finished job before the next run() rewrites n_chunks_ and the callable: a worker
  // that read this generation's state just before could otherwise compare its stale index with
  // the next job's larger n_chunks_, claim it, and run the next job's chunk twice.
  state_.store((gen << kIndexBits) | kClosedIndex, std::memory_order_seq_cst);
}

void ThreadPool::worker() {
  uint64_t seen = state_.load(std::memory_order_acquire) >> kIndexBits;
  for (;;) {
    uint64_t g = state_.load(std::memory_order_acquire) >> kIndexBits;
    for (int spin = 0; g == seen && spin < kSpinIterations; ++spin) {
      QLLM_PAUSE();
      g = state_.load(std::memory_order_acquire) >> kIndexBits;
    }
    if (g == seen) {
      std::unique_lock lock(mutex_);
      sleepers_.fetch_add(1, std::memory_order_seq_cst);
      // stop_ too: a worker that starts after the destructor bumped the generation reads that
      // generation as `seen` and would otherwise wait forever.
      wake_.wait(lock, [&] {
        return stop_.load() || (state_.load(std::memory_order_seq_cst) >> kIndexBits) != seen;
      });
      sleepers_.fetch_sub(1, std::memory_order_relaxed);
      g = state_.load(std::memory_order_acquire) >> kIndexBits;
    }
    seen = g;
    if (stop_.load()) return;
    work_on(g);
  }
}

namespace {
std::unique_ptr<ThreadPool>& global_slot() {
  static std::unique_ptr<ThreadPool> pool;
  return pool;
}
}  // namespace

ThreadPool& ThreadPool::global() {
  auto& p = global_slot();
  if (!p) {
    const char* env = std::getenv("QLLM_THREADS");
    p = std::make_unique<ThreadPool>(env ? std::atoi(env) : 0);
  }
  return *p;
}

void ThreadPool::set_global_threads(int n_threads) {
  auto& p = global_slot();
  if (!p || p->size() != (n_threads <= 0 ? static_cast<int>(std::thread::hardware_concurrency()) : n_threads))
    p = std::make_unique<ThreadPool>(n_threads);
}

}  // namespace qllm
