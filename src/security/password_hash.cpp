#include "security/password_hash.hpp"

#include <argon2.h>
#include <openssl/rand.h>

#include <array>
#include <mutex>
#include <stdexcept>
#include <vector>

namespace cg::security {
namespace {
constexpr std::size_t kSaltBytes = 16;
constexpr std::size_t kHashBytes = 32;

std::string params_prefix(const Argon2Params& p) {
  return "$argon2id$v=19$m=" + std::to_string(p.m_cost_kib) + ",t=" + std::to_string(p.t_cost) +
         ",p=" + std::to_string(p.parallelism) + "$";
}
}  // namespace

std::string hash_password(std::string_view password, const Argon2Params& p) {
  if (password.size() > kMaxPasswordBytes) throw std::runtime_error("password too long");
  std::array<unsigned char, kSaltBytes> salt{};
  if (RAND_bytes(salt.data(), static_cast<int>(salt.size())) != 1) throw std::runtime_error("CSPRNG failed");
  const std::size_t len = argon2_encodedlen(p.t_cost, p.m_cost_kib, p.parallelism, kSaltBytes, kHashBytes, Argon2_id);
  std::vector<char> out(len);
  const int rc = argon2id_hash_encoded(p.t_cost, p.m_cost_kib, p.parallelism, password.data(), password.size(),
                                       salt.data(), salt.size(), kHashBytes, out.data(), out.size());
  if (rc != ARGON2_OK) throw std::runtime_error(std::string("argon2id: ") + argon2_error_message(rc));
  return std::string(out.data());
}

bool verify_password(std::string_view encoded, std::string_view password) {
  if (password.size() > kMaxPasswordBytes || encoded.size() > kMaxEncodedHash) return false;
  if (encoded.substr(0, 10) != "$argon2id$") return false;
  const std::string enc(encoded);  // argon2id_verify wants a NUL-terminated string
  return argon2id_verify(enc.c_str(), password.data(), password.size()) == ARGON2_OK;
}

bool needs_rehash(std::string_view encoded, const Argon2Params& p) {
  return encoded.substr(0, params_prefix(p).size()) != params_prefix(p);
}

std::string decoy_hash(const Argon2Params& p) {
  static std::mutex mu;
  static std::string decoy;
  static std::string decoy_prefix;
  std::lock_guard lock(mu);
  if (decoy.empty() || decoy_prefix != params_prefix(p)) {
    std::array<unsigned char, 24> pw{};
    if (RAND_bytes(pw.data(), static_cast<int>(pw.size())) != 1) throw std::runtime_error("CSPRNG failed");
    decoy = hash_password(std::string_view(reinterpret_cast<const char*>(pw.data()), pw.size()), p);
    decoy_prefix = params_prefix(p);
  }
  return decoy;
}

}  // namespace cg::security
