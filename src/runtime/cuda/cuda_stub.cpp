// The CUDA backend's entry points in a build without CUDA: nothing is available, and using it is
// a one-line error rather than a link failure.
#ifndef QLLM_HAVE_CUDA

#include "runtime/cuda/cuda_session.h"
#include "util/error.h"

namespace qllm::cuda {

namespace {
[[noreturn]] void no_cuda() { fail_usage("this qllm was built without CUDA (configure with -DQLLM_CUDA=ON)"); }
}  // namespace

bool device_available() { return false; }
std::string device_description() { return "built without CUDA"; }

struct CudaModel::Impl {};
CudaModel::CudaModel(const Model&) { no_cuda(); }
CudaModel::~CudaModel() = default;
const Model& CudaModel::model() const { no_cuda(); }

struct CudaSession::Impl {};
CudaSession::CudaSession(const CudaModel&, int64_t, bool) { no_cuda(); }
CudaSession::~CudaSession() = default;
void CudaSession::reset() { no_cuda(); }
int CudaSession::pos() const { no_cuda(); }
int64_t CudaSession::n_ctx() const { no_cuda(); }
const Model& CudaSession::model() const { no_cuda(); }
const float* CudaSession::forward(std::span<const int32_t>, bool) { no_cuda(); }
int32_t CudaSession::forward_greedy(std::span<const int32_t>) { no_cuda(); }
MemoryReport CudaSession::memory() const { no_cuda(); }

}  // namespace qllm::cuda

#endif  // !QLLM_HAVE_CUDA
