// REQ: LOG-2, COM-4, CHG-2 — device secrets are never kept next to what they protect.
//
// The keys that protect data of the state directory — the audit log's MAC key
// (LOG-2: without it nobody can rewrite a record and re-MAC the chain) and the
// key of the badge-id hashes (CHG-2) — are 32 random bytes (OpenSSL's CSPRNG)
// sealed by the key store (KeyStore::seal, AES-256-GCM; with PKCS#11 under an
// AES key that never leaves the token), each for its own purpose. Only the
// sealed blob is a file: one line of base64, mode 0600, replaced atomically.
// Someone who can read the state directory but not use the key store learns
// nothing of the key. A plain key file of a release before this one is sealed
// at the first start and then overwritten and removed.
#pragma once
#include <filesystem>
#include <span>
#include <string_view>
#include <vector>

#include "security/key_store.hpp"
#include "security/secret_file.hpp"

namespace cg::security {

// Purposes (KeyStore::seal binds the purpose into the blob).
inline constexpr const char* kAuditMacKeyPurpose = "audit-mac-key";
inline constexpr const char* kTokenHashKeyPurpose = "token-hash-key";

// Loads the secret sealed in `sealed_file`; when there is none, takes the
// legacy plain file (32 bytes) if given and present, or makes a new secret,
// seals it and stores it durably before returning. A legacy file is removed
// once the sealed one is on disk. Throws KeyStoreError (UnsealFailed for a
// damaged blob or one of another store, Backend for I/O); a key is never
// replaced by a new one, because what it protects depends on it.
Secret32 load_or_create_sealed_secret(KeyStore& store, const std::filesystem::path& sealed_file,
                                      std::string_view purpose, const std::filesystem::path& legacy_plain_file = {});

// Loads only (tools beside the daemon never create a key). KeyNotFound when
// there is no sealed file (and no legacy plain one).
Secret32 load_sealed_secret(KeyStore& store, const std::filesystem::path& sealed_file, std::string_view purpose,
                            const std::filesystem::path& legacy_plain_file = {});

// A sealed blob in a file: one line of base64, at most 2 * kMaxSealBlob characters.
std::vector<std::uint8_t> read_sealed_file(const std::filesystem::path& f);
void write_sealed_file(const std::filesystem::path& f, std::span<const std::uint8_t> blob);

}  // namespace cg::security
