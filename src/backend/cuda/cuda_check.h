// Error handling of the CUDA backend: every CUDA runtime / cuBLASLt status that is not success becomes a
// ug::Error naming file:line, the call as written and the library's own error string. Nothing is retried
// or routed to the CPU (DESIGN.md rule 5).
#pragma once

#include <cublasLt.h>
#include <cuda_runtime_api.h>

#include <string>

namespace ug::cuda {

[[noreturn]] void throw_cuda_error(cudaError_t status, const char* call, const char* file, int line);
[[noreturn]] void throw_cublas_error(cublasStatus_t status, const char* call, const char* file, int line);
// An argument the backend does not support: "cuda <op>: <what>" (what names the field and its value).
[[noreturn]] void throw_unsupported(const char* op, const std::string& what);

// True when a CUDA device is usable (cudaGetDeviceCount succeeds and reports at least one).
bool device_available();

// True when kernels are launched with programmatic dependent launch (launch.cuh): the current device is compute
// capability 9.0 or newer and the environment does not say UG_PDL=0 (for A/B measurements). Read once per process.
bool dependent_launch_enabled();

// True when the current device runs this build's sm_90a code (compute capability exactly 9.0: Hopper), so that
// kernels on warpgroup MMA (wgmma) may be launched. Read once per process.
bool wgmma_available();

}  // namespace ug::cuda

#define UG_CUDA_CHECK(call)                                                                             \
  do {                                                                                                  \
    cudaError_t ug_status_ = (call);                                                                    \
    if (ug_status_ != cudaSuccess) ::ug::cuda::throw_cuda_error(ug_status_, #call, __FILE__, __LINE__); \
  } while (0)

#define UG_CUBLAS_CHECK(call)                                                                                       \
  do {                                                                                                              \
    cublasStatus_t ug_status_ = (call);                                                                             \
    if (ug_status_ != CUBLAS_STATUS_SUCCESS) ::ug::cuda::throw_cublas_error(ug_status_, #call, __FILE__, __LINE__); \
  } while (0)

// After a <<<...>>> launch: a bad configuration is reported here, naming the kernel.
#define UG_CUDA_CHECK_LAUNCH(kernel_name)                                                     \
  do {                                                                                        \
    cudaError_t ug_status_ = cudaPeekAtLastError();                                           \
    if (ug_status_ != cudaSuccess)                                                            \
      ::ug::cuda::throw_cuda_error(ug_status_, "launch of " kernel_name, __FILE__, __LINE__); \
  } while (0)

// Argument check of a backend entry point; the message is built only on failure.
#define UG_CUDA_REQUIRE(cond, op, what)                   \
  do {                                                    \
    if (!(cond)) ::ug::cuda::throw_unsupported(op, what); \
  } while (0)
