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
}  // namespace

ThreadPool::ThreadPool(int n_threads) {
  if (n_threads <= 0) n_threads = static_cast<int>(std::thread::hardware_concurrency());
  n_threads_ = n_threads < 1 ? 1 : n_threads;
  for (int i = 1; i < n_threads_; ++i) threads_.emplace_back([this, i] { worker(i); });
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard lock(mutex_);
    stop_.store(true);
    generation_.fetch_add(1);
  }
  wake_.notify_all();
  for (auto& t : threads_) t.join();
}

void ThreadPool::chunk(int index, int64_t* begin, int64_t* end) const {
  // Split into n_threads_ chunks of whole `align` blocks, the remainder spread over the first.
  const int64_t blocks = (n_ + align_ - 1) / align_;
  const int64_t per = blocks / n_threads_, extra = blocks % n_threads_;
  const int64_t b = index * per + (index < extra ? index : extra);
  const int64_t e = b + per + (index < extra ? 1 : 0);
  *begin = std::min(n_, b * align_);
  *end = std::min(n_, e * align_);
}

void ThreadPool::run(int64_t n, int64_t align, Thunk thunk, void* fn) {
  if (n <= 0) return;
  if (n_threads_ == 1 || n <= align) {
    thunk(fn, 0, n);
    return;
  }
  thunk_ = thunk;
  fn_ = fn;
  n_ = n;
  align_ = align < 1 ? 1 : align;
  pending_.store(n_threads_ - 1, std::memory_order_relaxed);
  {
    std::lock_guard lock(mutex_);
    generation_.fetch_add(1, std::memory_order_release);
  }
  wake_.notify_all();
  int64_t b, e;
  chunk(0, &b, &e);
  if (b < e) thunk(fn, b, e);
  while (pending_.load(std::memory_order_acquire) != 0) QLLM_PAUSE();
}

void ThreadPool::worker(int index) {
  uint64_t seen = 0;
  for (;;) {
    uint64_t g = generation_.load(std::memory_order_acquire);
    for (int spin = 0; g == seen && spin < kSpinIterations; ++spin) {
      QLLM_PAUSE();
      g = generation_.load(std::memory_order_acquire);
    }
    if (g == seen) {
      std::unique_lock lock(mutex_);
      wake_.wait(lock, [&] { return generation_.load(std::memory_order_acquire) != seen; });
      g = generation_.load(std::memory_order_acquire);
    }
    seen = g;
    if (stop_.load()) return;
    int64_t b, e;
    chunk(index, &b, &e);
    if (b < e) thunk_(fn_, b, e);
    pending_.fetch_sub(1, std::memory_order_acq_rel);
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
