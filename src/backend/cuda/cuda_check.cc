// Host-side error helpers (a .cc: core/error.h pulls in fmt, which nvcc cannot compile).
#include "backend/cuda/cuda_check.h"

#include "backend/cuda/env_knob.h"
#include "core/error.h"

namespace ug::cuda {

void throw_cuda_error(cudaError_t status, const char* call, const char* file, int line) {
  // Consume the runtime's last error (a failed call leaves it set): reported once here, it must not resurface at
  // the next unrelated launch check (those peek at it). A sticky error keeps failing every call anyway.
  (void)cudaGetLastError();
  throw Error(std::string(file) + ":" + std::to_string(line) + ": " + call + " failed: " + cudaGetErrorName(status) +
              " (" + cudaGetErrorString(status) + ")");
}

void throw_cublas_error(cublasStatus_t status, const char* call, const char* file, int line) {
  throw Error(std::string(file) + ":" + std::to_string(line) + ": " + call + " failed: cuBLAS status " +
              std::to_string(int(status)) + " (" + cublasLtGetStatusName(status) + ": " +
              cublasLtGetStatusString(status) + ")");
}

void throw_unsupported(const char* op, const std::string& what) {
  throw Error(std::string("cuda ") + op + ": " + what);
}

bool device_available() {
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess) {
    (void)cudaGetLastError();  // clear the sticky-free error so later calls start clean
    return false;
  }
  return n > 0;
}

namespace {
// The current device's compute capability (major x 10 + minor), 0 when none can be queried.
int compute_capability() {
  int device = 0, major = 0, minor = 0;
  if (cudaGetDevice(&device) != cudaSuccess ||
      cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device) != cudaSuccess ||
      cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, device) != cudaSuccess) {
    (void)cudaGetLastError();
    return 0;
  }
  return major * 10 + minor;
}
}  // namespace

bool dependent_launch_enabled() {
  static const bool enabled = [] { return !env_knob_off("UG_PDL") && compute_capability() >= 90; }();
  return enabled;
}

bool wgmma_available() {
  static const bool available = compute_capability() == 90;
  return available;
}

}  // namespace ug::cuda
