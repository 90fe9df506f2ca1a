// NumPy .npy files (format v1/v2/v3, little-endian, C order): reading the reference fixtures and
// writing debug dumps. numpy has no bfloat16, so '<u2' arrays are read as raw BF16 bit patterns.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "core/dtype.h"

namespace ug {

struct NpyArray {
  std::vector<int64_t> shape;
  DType dtype = DType::F32;      // f4 F32, f8 F64, f2 F16, i8 I64, i4 I32, i2 I16, i1 I8, u1 U8,
                                 // b1 BOOL, <u2 BF16 (raw bits)
  std::vector<std::byte> bytes;  // numel * dtype_size bytes, C order
  int64_t numel() const;
};

// Throws ug::Error naming the file on: bad magic/version, malformed header, unsupported or
// big-endian dtype, fortran order, truncated or over-long data.
NpyArray read_npy(const std::string& path);
// Same, from bytes in memory (path only names the source in errors).
NpyArray parse_npy(const std::byte* data, size_t size, const std::string& path);

std::vector<float> npy_as_f32(const NpyArray& a);    // any float, BF16 or integer/bool dtype
std::vector<int64_t> npy_as_i64(const NpyArray& a);  // integer and bool dtypes only

void write_npy(const std::string& path, const float* data, const std::vector<int64_t>& shape);
void write_npy(const std::string& path, const int64_t* data, const std::vector<int64_t>& shape);
void write_npy(const std::string& path, const uint8_t* data, const std::vector<int64_t>& shape);

}  // namespace ug
