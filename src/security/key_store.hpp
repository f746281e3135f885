// REQ: COM-4, COM-6, COM-10 (device keys), CR 1.5 / 1.9 / 4.1
//
// The station's key store: key pairs generated inside the store and used in
// place (TLS client authentication, CSR signing), and sealing of small secrets
// (the OCPP BasicAuthPassword) with a key that never leaves the store.
//
// Two backends behind one interface:
//   pkcs11  a PKCS#11 token (SoftHSM2 in the tests, a secure element or HSM in
//           the field). Keys are token objects with CKA_SENSITIVE=true and
//           CKA_EXTRACTABLE=false; signing goes through libp11, sealing uses an
//           AES-256 secret key of the token with CKM_AES_GCM. The user PIN comes
//           from a PIN file (mode 0600), never from the configuration text.
//   file    for development: keys as PKCS#8 files (mode 0600) in a directory
//           (mode 0700); sealing uses AES-256-GCM with a 32-byte key file.
//
// Labels: 1 … 64 characters of [A-Za-z0-9._-], the first a letter or digit.
// Errors are KeyStoreError exceptions whose message names the problem (module,
// token, PIN file, label); PINs and key material never appear in messages.
//
// Rotation (certificate renewal A02/A03): generate_key("station.next"), build
// the CSR with it, connect with the new certificate; on success
// promote_key("station.next", "station") (deletes the old key, relabels the
// new one; calling it again after an interruption completes it), on failure
// delete_key("station.next") and keep using "station".
//
// Lifetime: an EVP_PKEY from private_key() stays usable after the KeyStore is
// destroyed (an SSL_CTX may keep it); for PKCS#11 it keeps the module loaded.
// A KeyStore serializes its own operations; it must not be used across fork().
#pragma once
#include <openssl/evp.h>

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace cg::security {

enum class KeyStoreErrc {
  InvalidArgument,  // bad label, purpose, subject, size
  ModuleNotFound,   // PKCS#11 module missing or not loadable
  TokenNotFound,    // no (or more than one) token with that label
  WrongPin,         // PIN refused by the token
  PinLocked,        // the token locked the user PIN
  PinFile,          // PIN file missing, unreadable, too open (not 0600) or empty
  StoreDirectory,   // file backend: directory missing, not ours or not 0700
  KeyNotFound,
  KeyExists,
  UnsealFailed,  // damaged or tampered blob, other purpose, other store
  Backend,       // any other failure of the token or of OpenSSL
};

class KeyStoreError : public std::runtime_error {
 public:
  KeyStoreError(KeyStoreErrc code, const std::string& what) : std::runtime_error(what), code_(code) {}
  KeyStoreErrc code() const noexcept { return code_; }

 private:
  KeyStoreErrc code_;
};

enum class KeyType { EcP256, EcP384, Rsa3072 };
std::string_view to_string(KeyType t) noexcept;

struct KeyInfo {
  std::string label;
  KeyType type = KeyType::EcP256;
  // True when the store guarantees the private key cannot be read out
  // (PKCS#11: CKA_TOKEN, CKA_SENSITIVE, !CKA_EXTRACTABLE, CKA_ALWAYS_SENSITIVE,
  // CKA_NEVER_EXTRACTABLE). Always false for the file backend.
  bool non_exportable = false;
};

struct EvpPkeyFree {
  void operator()(EVP_PKEY* k) const noexcept { EVP_PKEY_free(k); }
};
// Owns one reference; pass .get() to SSL_CTX_use_PrivateKey / X509_REQ_sign
// (they take their own reference).
using PrivateKey = std::unique_ptr<EVP_PKEY, EvpPkeyFree>;

// Bytes wiped (OPENSSL_cleanse) on destruction: unsealed secrets.
class SecretBytes {
 public:
  SecretBytes() = default;
  explicit SecretBytes(std::size_t n) : b_(n) {}
  SecretBytes(const SecretBytes&) = delete;
  SecretBytes& operator=(const SecretBytes&) = delete;
  SecretBytes(SecretBytes&& o) noexcept : b_(std::move(o.b_)) {}
  SecretBytes& operator=(SecretBytes&& o) noexcept;
  ~SecretBytes();
  std::uint8_t* data() noexcept { return b_.data(); }
  const std::uint8_t* data() const noexcept { return b_.data(); }
  std::size_t size() const noexcept { return b_.size(); }
  void resize_down(std::size_t n);  // shrinks only, wiping the cut-off bytes
  std::string_view view() const noexcept { return {reinterpret_cast<const char*>(b_.data()), b_.size()}; }
  std::span<const std::uint8_t> span() const noexcept { return b_; }

 private:
  std::vector<std::uint8_t> b_;
};

// Limits of parsed inputs.
inline constexpr std::size_t kMaxLabelLength = 64;
inline constexpr std::size_t kMaxSealPlaintext = 4096;
inline constexpr std::size_t kSealOverhead = 1 + 1 + 12 + 16;  // version, sealer, nonce, tag
inline constexpr std::size_t kMaxSealBlob = kMaxSealPlaintext + kSealOverhead;
inline constexpr std::size_t kMaxPinFileSize = 256;

// [A-Za-z0-9._-], 1 … 64 characters, the first one a letter or digit.
bool is_valid_key_label(std::string_view label) noexcept;

class KeyStore {
 public:
  virtual ~KeyStore() = default;
  KeyStore() = default;
  KeyStore(const KeyStore&) = delete;
  KeyStore& operator=(const KeyStore&) = delete;

  virtual std::string_view backend() const noexcept = 0;  // "pkcs11" or "file"

  // Generates a key pair inside the store. KeyExists when the label is taken.
  virtual KeyInfo generate_key(std::string_view label, KeyType type = KeyType::EcP256) = 0;
  virtual std::optional<KeyInfo> find_key(std::string_view label) = 0;
  virtual std::vector<std::string> list_keys() = 0;  // sorted labels of key pairs
  // Removes the key pair; false when there was none.
  virtual bool delete_key(std::string_view label) = 0;
  // Relabels a key pair: KeyNotFound for `from`, KeyExists for `to`.
  virtual void rename_key(std::string_view from, std::string_view to) = 0;
  // Rotation: deletes `active` (if present) and relabels `candidate` as `active`.
  // When `candidate` is gone but `active` exists, the promotion is complete
  // already and nothing happens; when both are missing: KeyNotFound.
  void promote_key(std::string_view candidate, std::string_view active);

  // The private key for use in place (OpenSSL signs through the store).
  // KeyNotFound when there is no such key.
  virtual PrivateKey private_key(std::string_view label) = 0;
  // SubjectPublicKeyInfo (DER) of the key pair.
  std::vector<std::uint8_t> public_key_der(std::string_view label);

  // A monotonic counter kept by the store (e.g. the firmware anti-rollback
  // floor, FW-5), so that restoring an old copy of the state directory does
  // not lower it where the store lives elsewhere (PKCS#11: a private token
  // data object "cg-counter.<label>"; file backend: write-once files
  // "counter.<label>.<value>" in the key directory, no better than the state).
  // read_counter: nullopt when never written. raise_counter never lowers the
  // value; it returns the value held afterwards. Labels as for keys.
  virtual std::optional<std::uint64_t> read_counter(std::string_view label) = 0;
  virtual std::uint64_t raise_counter(std::string_view label, std::uint64_t value) = 0;

  // Seals a small secret (1 … kMaxSealPlaintext bytes) for one purpose (same
  // charset and length as labels, e.g. "ocpp.basic-auth-password"). The blob
  // is: version (1), sealer (1 = file, 2 = pkcs11), 12-byte random nonce,
  // AES-256-GCM ciphertext and 16-byte tag; the AAD binds version, sealer and
  // purpose. The sealing key is created in the store on first use.
  std::vector<std::uint8_t> seal(std::string_view purpose, std::span<const std::uint8_t> plaintext);
  std::vector<std::uint8_t> seal(std::string_view purpose, std::string_view plaintext);
  // Fails closed (UnsealFailed) on any damage, other purpose or other store.
  SecretBytes unseal(std::string_view purpose, std::span<const std::uint8_t> blob);

 protected:
  virtual std::uint8_t sealer_id() const noexcept = 0;
  // AES-256-GCM with the store's sealing key; returns ciphertext || 16-byte tag.
  virtual std::vector<std::uint8_t> aead_seal(std::span<const std::uint8_t> nonce, std::span<const std::uint8_t> aad,
                                              std::span<const std::uint8_t> plaintext) = 0;
  // Throws UnsealFailed when the tag does not verify or there is no sealing key.
  virtual SecretBytes aead_open(std::span<const std::uint8_t> nonce, std::span<const std::uint8_t> aad,
                                std::span<const std::uint8_t> ciphertext_and_tag) = 0;
};

struct FileKeyStoreOptions {
  std::filesystem::path dir;  // created with mode 0700 when missing (parent must exist)
};

struct Pkcs11KeyStoreOptions {
  std::string module_path;         // e.g. /usr/lib/softhsm/libsofthsm2.so
  std::string token_label;         // CKA token label, 1 … 32 characters
  std::filesystem::path pin_file;  // user PIN on the first line; mode 0600 (no group/other bits)
};

using KeyStoreConfig = std::variant<FileKeyStoreOptions, Pkcs11KeyStoreOptions>;

// Debian's SoftHSM2 module (development and tests).
inline constexpr const char* kSoftHsm2Module = "/usr/lib/softhsm/libsofthsm2.so";

std::unique_ptr<KeyStore> open_file_key_store(const FileKeyStoreOptions& opt);
std::unique_ptr<KeyStore> open_pkcs11_key_store(const Pkcs11KeyStoreOptions& opt);
std::unique_ptr<KeyStore> open_key_store(const KeyStoreConfig& cfg);

// PKCS#10 request for the key pair `label`, subject CN=common_name, O=organization
// (each 1 … 64 UTF-8 bytes, no control characters), signed in place with
// SHA-256 (SHA-384 for P-384). Returns PEM.
struct CsrSubject {
  std::string common_name;   // the station serial number
  std::string organization;  // the operator name
};
std::string make_csr_pem(KeyStore& store, std::string_view label, const CsrSubject& subject);

}  // namespace cg::security
