// Measures this machine's memory read bandwidth, the ceiling for bandwidth-bound decode.
#pragma once

#include "util/thread_pool.h"

namespace qllm {

// Best of `reps` passes of all pool threads streaming through a buffer of `bytes` (much larger
// than the last-level cache), in bytes per second.
double measure_read_bandwidth(ThreadPool& pool, std::size_t bytes = std::size_t{512} << 20, int reps = 5);

}  // namespace qllm
