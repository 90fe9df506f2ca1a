#include "backend/cuda/tensor_map.h"

#include <cuda_runtime_api.h>
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <string>

#include "backend/cuda/cuda_check.h"

namespace ug::cuda {
namespace {

using EncodeTiled = CUresult (*)(CUtensorMap*, CUtensorMapDataType, cuuint32_t, void*, const cuuint64_t*,
                                 const cuuint64_t*, const cuuint32_t*, const cuuint32_t*, CUtensorMapInterleave,
                                 CUtensorMapSwizzle, CUtensorMapL2promotion, CUtensorMapFloatOOBfill);

EncodeTiled encode_tiled() {
  static const EncodeTiled fn = [] {
    void* f = nullptr;
    cudaDriverEntryPointQueryResult found{};
    const cudaError_t status =
        cudaGetDriverEntryPointByVersion("cuTensorMapEncodeTiled", &f, 12000, cudaEnableDefault, &found);
    UG_CUDA_REQUIRE(status == cudaSuccess && found == cudaDriverEntryPointSuccess && f, "tensor map",
                    "the driver has no cuTensorMapEncodeTiled (CUDA 12.0+ driver needed)");
    return reinterpret_cast<EncodeTiled>(f);
  }();
  return fn;
}

std::string list(std::span<const uint64_t> v) { return fmt::format("[{}]", fmt::join(v, ", ")); }

}  // namespace

CUtensorMap bf16_tensor_map_sw128(const void* base, std::span<const uint64_t> dims,
                                  std::span<const uint64_t> byte_strides, std::span<const uint32_t> box,
                                  const char* what) {
  const size_t rank = dims.size();
  const std::string where = std::string("tensor map of ") + what;
  UG_CUDA_REQUIRE(rank >= 1 && rank <= 5 && byte_strides.size() + 1 == rank && box.size() == rank, where.c_str(),
                  "rank " + std::to_string(rank) + " with " + std::to_string(byte_strides.size()) + " strides and " +
                      std::to_string(box.size()) + " box dims (expected rank 1-5, rank - 1 strides, rank box dims)");
  UG_CUDA_REQUIRE(base && reinterpret_cast<uintptr_t>(base) % 16 == 0, where.c_str(),
                  "base must be set and 16-byte aligned");
  UG_CUDA_REQUIRE(box[0] * 2 == 128, where.c_str(),
                  "box rows of " + std::to_string(box[0]) + " bf16 values (the 128-byte swizzle needs 64)");
  for (uint64_t s : byte_strides)
    UG_CUDA_REQUIRE(s % 16 == 0, where.c_str(), "byte strides " + list(byte_strides) + " must be multiples of 16");
  cuuint64_t dims_c[5], strides_c[4];  // the driver's integer types (unsigned long long)
  cuuint32_t box_c[5], element_strides[5] = {1, 1, 1, 1, 1};
  for (size_t i = 0; i < rank; ++i) {
    dims_c[i] = dims[i];
    box_c[i] = box[i];
    if (i + 1 < rank) strides_c[i] = byte_strides[i];
  }
  CUtensorMap map{};
  const CUresult r =
      encode_tiled()(&map, CU_TENSOR_MAP_DATA_TYPE_BFLOAT16, cuuint32_t(rank), const_cast<void*>(base), dims_c,
                     strides_c, box_c, element_strides, CU_TENSOR_MAP_INTERLEAVE_NONE, CU_TENSOR_MAP_SWIZZLE_128B,
                     CU_TENSOR_MAP_L2_PROMOTION_L2_256B, CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE);
  UG_CUDA_REQUIRE(r == CUDA_SUCCESS, where.c_str(),
                  "cuTensorMapEncodeTiled failed (error " + std::to_string(int(r)) + ") for dims " + list(dims) +
                      ", byte strides " + list(byte_strides));
  return map;
}

}  // namespace ug::cuda
