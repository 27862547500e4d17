// cuBLAS, opened with dlopen by the first GPU session instead of linked into qllm: as a link
// dependency its static initializers ran before main() in every command, CPU-only ones
// included (0.07 s and 220 MB resident for `qllm --help` with CUDA 13).
#pragma once

#include <cublas_v2.h>

namespace qllm::cuda {

// The entry points qllm calls, with cuBLAS's own signatures.
struct Cublas {
  decltype(&cublasCreate_v2) create;
  decltype(&cublasDestroy_v2) destroy;
  decltype(&cublasSetStream_v2) set_stream;
  decltype(&cublasSgemm_v2) sgemm;
  // cublasGemmEx is also overloaded by an inline C++ wrapper, so its type is spelled out.
  cublasStatus_t (*gemm_ex)(cublasHandle_t, cublasOperation_t, cublasOperation_t, int, int, int,
                            const void*, const void*, cudaDataType, int, const void*, cudaDataType,
                            int, const void*, void*, cudaDataType, int, cublasComputeType_t,
                            cublasGemmAlgo_t);
};

// Opens the library on first use. Throws CudaError naming it if it cannot be opened or lacks
// one of the entry points.
const Cublas& cublas();

}  // namespace qllm::cuda
