// TMA descriptors (CUtensorMap, sm_90): what lets one thread ask the copy engine for a whole tile of a matrix in
// global memory, landing in shared memory already in the 128-byte swizzle layout the warpgroup MMA reads
// (wgmma.cuh's sw128_offset), with rows past the tensor's end filled with zeros. Host code; the descriptor travels
// to the kernel as a __grid_constant__ parameter.
//
// Why the driver entry point: cuTensorMapEncodeTiled is a driver API function, and going through
// cudaGetDriverEntryPointByVersion keeps libcuda out of the link line (the binary still starts on a machine
// without a GPU driver; only CUDA calls fail there).
#pragma once

#include <cuda.h>

#include <cstdint>
#include <span>

namespace ug::cuda {

// A descriptor of a bf16 tensor at `base` (16-byte aligned) with dims[0] contiguous elements per row (the
// innermost dimension first, as the driver counts them), byte_strides[i] between consecutive indices of dims[i + 1]
// (multiples of 16), loaded in boxes of box[i] elements per dimension (box[0] x 2 bytes = 128: one swizzle row) with
// the 128-byte swizzle; out-of-range elements of a box read as zeros. `what` names the operand in errors.
CUtensorMap bf16_tensor_map_sw128(const void* base, std::span<const uint64_t> dims,
                                  std::span<const uint64_t> byte_strides, std::span<const uint32_t> box,
                                  const char* what);

}  // namespace ug::cuda
