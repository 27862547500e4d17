#include "kernels/cuda/cublas_loader.h"

#include <dlfcn.h>

#include <string>

#include "kernels/cuda/cuda_check.h"

namespace qllm::cuda {
namespace {

template <typename F>
void bind(void* lib, const char* name, F* out) {
  *out = reinterpret_cast<F>(dlsym(lib, name));
  if (*out == nullptr) throw CudaError(std::string("cuBLAS lacks ") + name);
}

Cublas open_cublas() {
  // The library the build found, else its major version on the loader's search path.
  void* lib = dlopen(QLLM_CUBLAS_LIBRARY, RTLD_NOW | RTLD_LOCAL);
  if (lib == nullptr) lib = dlopen(QLLM_CUBLAS_SONAME, RTLD_NOW | RTLD_LOCAL);
  if (lib == nullptr) throw CudaError(std::string("cannot open cuBLAS: ") + dlerror());
  Cublas c{};
  bind(lib, "cublasCreate_v2", &c.create);
  bind(lib, "cublasDestroy_v2", &c.destroy);
  bind(lib, "cublasSetStream_v2", &c.set_stream);
  bind(lib, "cublasSgemm_v2", &c.sgemm);
  bind(lib, "cublasGemmEx", &c.gemm_ex);
  return c;  // the library stays open for the life of the process
}

}  // namespace

const Cublas& cublas() {
  static const Cublas c = open_cublas();
  return c;
}

}  // namespace qllm::cuda
