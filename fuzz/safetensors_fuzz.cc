// libFuzzer target: the input is a whole safetensors file. A ug::Error is the expected outcome for
// bad input; any other exception, crash or sanitizer report is a bug.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "core/error.h"
#include "io/safetensors.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  // A copy in an exactly-sized heap block lets ASan catch any read past the end of the "file".
  std::vector<std::byte> file(size);
  if (size) std::memcpy(file.data(), data, size);
  try {
    ug::SafetensorsHeader h = ug::parse_safetensors(file.data(), file.size(), "fuzz.safetensors");
    // Every accepted tensor must lie inside the file.
    for (const auto& t : h.tensors) {
      const std::byte* end = file.data() + file.size();
      if (t.data < file.data() + h.data_offset || t.data > end || size_t(end - t.data) < t.nbytes)
        std::abort();
    }
  } catch (const ug::Error&) {
  }
  return 0;
}
