// SHA-256 of media contents (OpenSSL): the key of the media embedding cache and the content hash the
// prefix cache sees at soft-token positions. A cryptographic hash, because a server shares these caches
// between clients: a crafted collision must not hand one client another's image.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>

namespace ug {

class Sha256 {
 public:
  Sha256();
  ~Sha256();
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;
  void update(std::span<const uint8_t> bytes);
  void update(std::string_view text);
  std::string digest();  // 32 raw bytes; the object is finished afterwards

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

std::string to_hex(std::string_view bytes);
uint64_t first_u64(std::string_view digest);  // the first 8 bytes, little endian

}  // namespace ug
