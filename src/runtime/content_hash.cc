#include "runtime/content_hash.h"

#include "core/error.h"

#if UG_HAVE_OPENSSL
#include <openssl/evp.h>
#endif

namespace ug {

#if UG_HAVE_OPENSSL
struct Sha256::Impl {
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  ~Impl() { EVP_MD_CTX_free(ctx); }
};

Sha256::Sha256() : impl_(std::make_unique<Impl>()) {
  UG_CHECK(impl_->ctx && EVP_DigestInit_ex(impl_->ctx, EVP_sha256(), nullptr) == 1, "OpenSSL SHA-256 init failed");
}
Sha256::~Sha256() = default;

void Sha256::update(std::span<const uint8_t> bytes) {
  UG_CHECK(EVP_DigestUpdate(impl_->ctx, bytes.data(), bytes.size()) == 1, "OpenSSL SHA-256 update failed");
}

std::string Sha256::digest() {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  UG_CHECK(EVP_DigestFinal_ex(impl_->ctx, out, &n) == 1, "OpenSSL SHA-256 final failed");
  return std::string(reinterpret_cast<const char*>(out), n);
}
#else
struct Sha256::Impl {};
Sha256::Sha256() { fail("content hashing: this build has no OpenSSL (install libssl-dev and rebuild)"); }
Sha256::~Sha256() = default;
void Sha256::update(std::span<const uint8_t>) {}
std::string Sha256::digest() { return {}; }
#endif

void Sha256::update(std::string_view text) {
  update(std::span(reinterpret_cast<const uint8_t*>(text.data()), text.size()));
}

std::string to_hex(std::string_view bytes) {
  static const char* digits = "0123456789abcdef";
  std::string out;
  for (unsigned char c : bytes) {
    out += digits[c >> 4];
    out += digits[c & 15];
  }
  return out;
}

uint64_t first_u64(std::string_view digest) {
  uint64_t v = 0;
  for (size_t i = 0; i < 8 && i < digest.size(); ++i) v |= uint64_t(uint8_t(digest[i])) << (8 * i);
  return v;
}

}  // namespace ug
