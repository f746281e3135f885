// REQ: AUTH-8 — password storage: Argon2id (libargon2, the reference
// implementation packaged by Debian), salted with 16 bytes from the OpenSSL
// CSPRNG, stored as the standard encoded string
// ($argon2id$v=19$m=…,t=…,p=…$salt$hash) so that parameters can be raised
// later and old hashes still verify (needs_rehash tells when to re-hash).
//
// Parameters (docs/architecture.md, "Accounts"): m = 19 MiB, t = 2, p = 1, the
// OWASP minimum for Argon2id; ≈ 30–60 ms on one core of a station controller
// class CPU. Memory bounds the number of hashes computed at once: the web
// front end runs them on one worker thread (web/auth_worker), so a login flood
// costs at most one hash's memory and one core, never the control loop.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>

namespace cg::security {

struct Argon2Params {
  std::uint32_t t_cost = 2;         // passes
  std::uint32_t m_cost_kib = 19456;  // memory, KiB
  std::uint32_t parallelism = 1;     // lanes
};

inline constexpr std::size_t kMaxPasswordBytes = 128;  // longer input is refused before hashing
inline constexpr std::size_t kMaxEncodedHash = 256;

// Throws std::runtime_error when libargon2 fails (out of memory).
std::string hash_password(std::string_view password, const Argon2Params& params = {});

// Constant-time comparison inside libargon2. False for a malformed hash or a
// password longer than kMaxPasswordBytes.
bool verify_password(std::string_view encoded, std::string_view password);

// True when `encoded` was made with parameters other than `params`.
bool needs_rehash(std::string_view encoded, const Argon2Params& params = {});

// A hash of a random password with `params`: verifying against it costs what a
// real account costs, so an unknown user name takes as long as a wrong password.
std::string decoy_hash(const Argon2Params& params = {});

}  // namespace cg::security
