// QLLM_CUDA_CHECK / QLLM_CUBLAS_CHECK: every CUDA and cuBLAS call goes through one of these, so a
// failure names the call, the file and the line (llm.c cudaCheck, CTranslate2 CUDA_CHECK).
// They throw CudaError: a failing GPU is a run-time condition the CLI reports in one line.
#pragma once

#include <cuda_runtime_api.h>

#include <stdexcept>
#include <string>

namespace qllm::cuda {

class CudaError : public std::runtime_error {
 public:
  explicit CudaError(const std::string& m) : std::runtime_error(m) {}
};

[[noreturn]] inline void throw_cuda(const char* what, const char* detail, const char* file, int line) {
  throw CudaError(std::string("CUDA: ") + what + " failed: " + detail + " (" + file + ":" +
                  std::to_string(line) + ")");
}

}  // namespace qllm::cuda

#define QLLM_CUDA_CHECK(call)                                                               \
  do {                                                                                      \
    const cudaError_t qllm_err_ = (call);                                                   \
    if (qllm_err_ != cudaSuccess)                                                           \
      ::qllm::cuda::throw_cuda(#call, cudaGetErrorString(qllm_err_), __FILE__, __LINE__);   \
  } while (0)

// After a kernel launch: reports a bad launch configuration at the launch site.
#define QLLM_CUDA_CHECK_LAUNCH() QLLM_CUDA_CHECK(cudaGetLastError())

#define QLLM_CUBLAS_CHECK(call)                                                             \
  do {                                                                                      \
    const int qllm_st_ = static_cast<int>(call);                                            \
    if (qllm_st_ != 0)                                                                      \
      ::qllm::cuda::throw_cuda(#call, ("cublas status " + std::to_string(qllm_st_)).c_str(), \
                               __FILE__, __LINE__);                                         \
  } while (0)
