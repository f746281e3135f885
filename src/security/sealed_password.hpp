// REQ: COM-4 (credentials at rest), COM-6 (A01 password rotation), CR 1.5 / 4.1
//
// The CSMS Basic-auth password (security profiles 1 and 2), sealed by the key
// store: the state directory holds only the sealed blob, never the plaintext.
//
//   <state_dir>/csms-password.sealed           the password in use (source of truth)
//   <state_dir>/csms-password.previous.sealed  the last password known to work, kept
//                                              while a new one (A01) has not yet
//                                              connected; removed on the first
//                                              successful connection with the new one
//
// Each file: one line, base64 of the blob of KeyStore::seal("csms-basic-auth", …);
// mode 0600, replaced atomically (temp file, fsync, rename, fsync of the directory).
// Why files and not the SQLite meta table: the password must be readable before
// (and independently of) the database, a file is the unit that a re-provisioning
// deletes, and the tests can check it on its own; both are crash-safe.
#pragma once
#include "core/result.hpp"
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "security/key_store.hpp"

namespace cg::security {

inline constexpr const char* kCsmsPasswordPurpose = "csms-basic-auth";
inline constexpr const char* kSealedPasswordFile = "csms-password.sealed";
inline constexpr const char* kPreviousSealedPasswordFile = "csms-password.previous.sealed";

// SecurityCtrlr.BasicAuthPassword as set over OCPP (A01; digest §1.3): 16-40
// characters of the OCPP 2.0.1 ed. 3 set a-z A-Z 0-9 * - _ = : + | @ . (the
// restricted set always interoperates). A refusal carries its reason
// (InvalidLength, InvalidCharacters) and what is allowed; never the value.
Result<void> check_basic_auth_password(std::string_view pw);
inline constexpr std::size_t kMinBasicAuthPassword = 16;
inline constexpr std::size_t kMaxBasicAuthPassword = 40;

class SealedPassword {
 public:
  SealedPassword(KeyStore& store, std::filesystem::path state_dir);

  bool has_current() const;
  bool has_previous() const;  // a rotation is not yet confirmed by a connection

  // Seals and stores a new password durably. When there is a current password
  // and no previous one yet, the current blob is kept first as the previous one
  // (the fallback); while a rotation is unconfirmed the previous one is kept.
  void store(std::string_view plaintext);
  // Unseals (throws KeyStoreError: KeyNotFound when absent, UnsealFailed when damaged).
  SecretBytes current() const;
  SecretBytes previous() const;
  // The current password connected: the previous one is discarded.
  void confirm();
  // The current password was refused and the previous one connected: it
  // becomes current again.
  void roll_back();

  std::filesystem::path current_file() const { return dir_ / kSealedPasswordFile; }
  std::filesystem::path previous_file() const { return dir_ / kPreviousSealedPasswordFile; }

 private:
  std::vector<std::uint8_t> read_blob(const std::filesystem::path& f) const;
  void write_blob(const std::filesystem::path& f, std::span<const std::uint8_t> blob) const;
  void remove_file(const std::filesystem::path& f) const;

  KeyStore& store_;
  std::filesystem::path dir_;
};

}  // namespace cg::security
