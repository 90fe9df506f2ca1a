// Kernel launches of the CUDA backend, with programmatic dependent launch (PDL, compute capability 9.0+).
//
// Why: a batch-1 decode step is ~500 short kernels in a row, and between two of them the GPU drains the first
// kernel's last blocks and then ramps up the next one: a microsecond or two each, a good part of a small kernel's
// time. Launched with PDL, a kernel starts while the one before it finishes; its blocks load what does not depend
// on that kernel (weights) and then wait in pdl_wait() until the previous grid has completed and its writes are
// visible.
//
// The rule every kernel of this backend keeps (also launched without PDL, where both calls do nothing):
// - pdl_wait() in every thread before reading or writing any buffer that another kernel writes or reads (only
//   constant weights may be read before it), and before the thread exits: a grid that completed without waiting
//   would let its successor run before their common predecessor finished.
// - pdl_launch_dependents() at the top: the next kernel may be scheduled as soon as every block of this one has
//   started (it cannot take their place: they are all resident by then).
#pragma once

#include <cuda_runtime.h>

#include <string>
#include <utility>

#include "backend/cuda/cuda_check.h"

namespace ug::cuda {

__device__ __forceinline__ void pdl_wait() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.wait;" ::: "memory");
#endif
}

__device__ __forceinline__ void pdl_launch_dependents() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.launch_dependents;" ::: "memory");
#endif
}

// kernel<<<grid, block, smem, stream>>>(args...) with the PDL attribute when enabled; a launch error names the
// kernel.
template <typename... Params, typename... Args>
void launch_kernel(const char* name, void (*kernel)(Params...), dim3 grid, dim3 block, size_t smem, cudaStream_t stream,
                   Args&&... args) {
  cudaLaunchAttribute attribute{};
  attribute.id = cudaLaunchAttributeProgrammaticStreamSerialization;
  attribute.val.programmaticStreamSerializationAllowed = 1;
  cudaLaunchConfig_t config{};
  config.gridDim = grid;
  config.blockDim = block;
  config.dynamicSmemBytes = smem;
  config.stream = stream;
  config.attrs = &attribute;
  config.numAttrs = dependent_launch_enabled() ? 1 : 0;
  const cudaError_t status = cudaLaunchKernelEx(&config, kernel, std::forward<Args>(args)...);
  if (status != cudaSuccess) throw_cuda_error(status, (std::string("launch of ") + name).c_str(), __FILE__, __LINE__);
}

}  // namespace ug::cuda
