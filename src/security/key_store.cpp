// Key store: the backend-independent parts (labels, sealing format, CSR,
// factory). REQ: COM-4, COM-6
#include "security/key_store.hpp"

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>

#include "security/key_store_internal.hpp"
#include "security/ossl.hpp"

namespace cg::security {

namespace detail {

std::string openssl_errors() { return drain_openssl_errors(); }

std::string printable(std::string_view s) {
  std::string out;
  for (unsigned char c : s.substr(0, kMaxLabelLength)) out += (c >= 0x20 && c < 0x7f) ? static_cast<char>(c) : '?';
  if (s.size() > kMaxLabelLength) out += "...";
  return out;
}

void require_label(std::string_view label) {
  if (!is_valid_key_label(label))
    throw KeyStoreError(KeyStoreErrc::InvalidArgument,
                        "invalid key label '" + printable(label) +
                            "': 1 to 64 characters of A-Z a-z 0-9 . _ -, starting with a letter or digit");
}

std::optional<KeyType> key_type_of(const EVP_PKEY* pkey) {
  switch (EVP_PKEY_get_base_id(pkey)) {
    case EVP_PKEY_RSA:
      if (EVP_PKEY_get_bits(pkey) == 3072) return KeyType::Rsa3072;
      return std::nullopt;
    case EVP_PKEY_EC:
      if (EVP_PKEY_get_bits(pkey) == 256) return KeyType::EcP256;
      if (EVP_PKEY_get_bits(pkey) == 384) return KeyType::EcP384;
      return std::nullopt;
    default:
      return std::nullopt;
  }
}

}  // namespace detail

namespace {

constexpr std::uint8_t kSealVersion = 1;
constexpr std::size_t kNonceSize = 12;

void require_purpose(std::string_view purpose) {
  if (!is_valid_key_label(purpose))
    throw KeyStoreError(KeyStoreErrc::InvalidArgument,
                        "invalid seal purpose '" + detail::printable(purpose) +
                            "': 1 to 64 characters of A-Z a-z 0-9 . _ -, starting with a letter or digit");
}

std::vector<std::uint8_t> seal_aad(std::uint8_t sealer, std::string_view purpose) {
  static constexpr std::string_view kDomain = "chargeguard/seal";
  std::vector<std::uint8_t> aad(kDomain.begin(), kDomain.end());
  aad.push_back(kSealVersion);
  aad.push_back(sealer);
  aad.insert(aad.end(), purpose.begin(), purpose.end());
  return aad;
}

std::string_view sealer_name(std::uint8_t id) {
  switch (id) {
    case 1:
      return "file";
    case 2:
      return "pkcs11";
    default:
      return "unknown";
  }
}

void require_subject_part(std::string_view what, std::string_view v) {
  bool ok = !v.empty() && v.size() <= 64;
  for (unsigned char c : v) ok = ok && c >= 0x20 && c != 0x7f;
  if (!ok)
    throw KeyStoreError(KeyStoreErrc::InvalidArgument,
                        "invalid CSR " + std::string(what) + ": 1 to 64 bytes of UTF-8 without control characters");
}

}  // namespace

std::string_view to_string(KeyType t) noexcept {
  switch (t) {
    case KeyType::EcP256:
      return "EC P-256";
    case KeyType::EcP384:
      return "EC P-384";
    case KeyType::Rsa3072:
      return "RSA 3072";
  }
  return "?";
}

bool is_valid_key_label(std::string_view label) noexcept {
  if (label.empty() || label.size() > kMaxLabelLength) return false;
  auto alnum = [](char c) { return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); };
  if (!alnum(label.front())) return false;
  for (char c : label)
    if (!alnum(c) && c != '.' && c != '_' && c != '-') return false;
  return true;
}

SecretBytes& SecretBytes::operator=(SecretBytes&& o) noexcept {
  if (this != &o) {
    if (!b_.empty()) OPENSSL_cleanse(b_.data(), b_.size());
    b_ = std::move(o.b_);
  }
  return *this;
}

SecretBytes::~SecretBytes() {
  if (!b_.empty()) OPENSSL_cleanse(b_.data(), b_.size());
}

void SecretBytes::resize_down(std::size_t n) {
  if (n >= b_.size()) return;
  OPENSSL_cleanse(b_.data() + n, b_.size() - n);
  b_.resize(n);
}

void KeyStore::promote_key(std::string_view candidate, std::string_view active) {
  detail::require_label(candidate);
  detail::require_label(active);
  if (candidate == active)
    throw KeyStoreError(KeyStoreErrc::InvalidArgument, "promote_key: candidate and active are the same label");
  if (!find_key(candidate)) {
    if (find_key(active)) return;  // completed earlier
    throw KeyStoreError(KeyStoreErrc::KeyNotFound, "promote_key: neither '" + std::string(candidate) + "' nor '" +
                                                       std::string(active) + "' exists");
  }
  delete_key(active);
  rename_key(candidate, active);
}

std::vector<std::uint8_t> KeyStore::public_key_der(std::string_view label) {
  PrivateKey pk = private_key(label);
  unsigned char* der = nullptr;
  const int n = i2d_PUBKEY(pk.get(), &der);
  if (n <= 0)
    throw KeyStoreError(KeyStoreErrc::Backend,
                        "cannot encode the public key of '" + std::string(label) + "': " + detail::openssl_errors());
  std::vector<std::uint8_t> out(der, der + n);
  OPENSSL_free(der);
  return out;
}

std::vector<std::uint8_t> KeyStore::seal(std::string_view purpose, std::string_view plaintext) {
  return seal(purpose,
              std::span<const std::uint8_t>(reinterpret_cast<const std::uint8_t*>(plaintext.data()), plaintext.size()));
}

std::vector<std::uint8_t> KeyStore::seal(std::string_view purpose, std::span<const std::uint8_t> plaintext) {
  require_purpose(purpose);
  if (plaintext.empty() || plaintext.size() > kMaxSealPlaintext)
    throw KeyStoreError(KeyStoreErrc::InvalidArgument,
                        "seal: the secret must be 1 to " + std::to_string(kMaxSealPlaintext) + " bytes");
  std::uint8_t nonce[kNonceSize];
  if (RAND_bytes(nonce, sizeof nonce) != 1) throw KeyStoreError(KeyStoreErrc::Backend, "seal: CSPRNG failure");
  const std::uint8_t sealer = sealer_id();
  const auto aad = seal_aad(sealer, purpose);
  const auto ct = aead_seal(nonce, aad, plaintext);
  if (ct.size() != plaintext.size() + 16)
    throw KeyStoreError(KeyStoreErrc::Backend, "seal: unexpected ciphertext size");
  std::vector<std::uint8_t> blob;
  blob.reserve(2 + kNonceSize + ct.size());
  blob.push_back(kSealVersion);
  blob.push_back(sealer);
  blob.insert(blob.end(), nonce, nonce + kNonceSize);
  blob.insert(blob.end(), ct.begin(), ct.end());
  return blob;
}

SecretBytes KeyStore::unseal(std::string_view purpose, std::span<const std::uint8_t> blob) {
  require_purpose(purpose);
  if (blob.size() <= kSealOverhead || blob.size() > kMaxSealBlob)
    throw KeyStoreError(KeyStoreErrc::UnsealFailed,
                        "unseal: blob of " + std::to_string(blob.size()) + " bytes is outside the allowed size (" +
                            std::to_string(kSealOverhead + 1) + " to " + std::to_string(kMaxSealBlob) + ")");
  if (blob[0] != kSealVersion)
    throw KeyStoreError(KeyStoreErrc::UnsealFailed, "unseal: unsupported blob version " + std::to_string(blob[0]));
  if (blob[1] != sealer_id())
    throw KeyStoreError(KeyStoreErrc::UnsealFailed, "unseal: blob was sealed by the " +
                                                        std::string(sealer_name(blob[1])) + " key store, this is the " +
                                                        std::string(backend()) + " key store");
  const auto aad = seal_aad(blob[1], purpose);
  return aead_open(blob.subspan(2, kNonceSize), aad, blob.subspan(2 + kNonceSize));
}

std::string make_csr_pem(KeyStore& store, std::string_view label, const CsrSubject& subject) {
  require_subject_part("common name", subject.common_name);
  require_subject_part("organization", subject.organization);
  PrivateKey pk = store.private_key(label);
  const auto type = detail::key_type_of(pk.get());
  const EVP_MD* md = (type && *type == KeyType::EcP384) ? EVP_sha384() : EVP_sha256();

  ReqPtr req(X509_REQ_new());
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (!req || !bio) throw KeyStoreError(KeyStoreErrc::Backend, "CSR: out of memory");
  X509_NAME* name = X509_REQ_get_subject_name(req.get());
  auto add = [&](int nid, const std::string& v) {
    return X509_NAME_add_entry_by_NID(name, nid, MBSTRING_UTF8, reinterpret_cast<const unsigned char*>(v.data()),
                                      static_cast<int>(v.size()), -1, 0) == 1;
  };
  const bool ok = X509_REQ_set_version(req.get(), X509_REQ_VERSION_1) == 1 &&
                  add(NID_organizationName, subject.organization) && add(NID_commonName, subject.common_name) &&
                  X509_REQ_set_pubkey(req.get(), pk.get()) == 1 && X509_REQ_sign(req.get(), pk.get(), md) > 0 &&
                  PEM_write_bio_X509_REQ(bio.get(), req.get()) == 1;
  if (!ok)
    throw KeyStoreError(KeyStoreErrc::Backend, "cannot build or sign the CSR with key '" + std::string(label) +
                                                   "': " + detail::openssl_errors());
  char* data = nullptr;
  const long n = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<std::size_t>(n));
}

std::unique_ptr<KeyStore> open_key_store(const KeyStoreConfig& cfg) {
  if (const auto* f = std::get_if<FileKeyStoreOptions>(&cfg)) return open_file_key_store(*f);
  return open_pkcs11_key_store(std::get<Pkcs11KeyStoreOptions>(cfg));
}

}  // namespace cg::security
