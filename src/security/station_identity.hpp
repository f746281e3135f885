// REQ: COM-1 (profile 3), COM-4 (device identity), COM-6 (A02/A03 renewal), COM-10
//
// The station's own TLS client identity for security profile 3: a key pair in
// the key store (never exported) and its certificate chain in the state
// directory (certificates are public; the chain is what the TLS client sends).
//
//   key "station"       + <state_dir>/identity/station.pem       the identity in use
//   key "station.next"  + <state_dir>/identity/station.next.pem  a renewal candidate
//                                                                 (A02/A03) until it
//                                                                 connected once
//
// A chain file holds the leaf first, then its sub-CAs (PEM, at most
// kMaxChainCertificates certificates, 64 KiB); mode 0644 in a 0700 directory,
// replaced durably (temp file, fsync, rename, fsync of the directory).
//
// Rotation: begin_renewal() makes a fresh "station.next" key (a stale one is
// removed first); accept_candidate() stores its certificate after check();
// promote() makes it the identity in use (key first, then file; recover()
// completes an interrupted promotion at start-up); discard_candidate() removes
// key, file and the stored request. Every certificate stored here passed check(): chain to one of
// the given roots at the current time, the crypto policy (COM-8) on the whole
// chain, the leaf's public key equal to the key pair's, a TLS-client leaf
// (not a CA), and CN = serial number, O = organization.
#pragma once
#include "core/result.hpp"
#include <openssl/ssl.h>

#include <chrono>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "security/certificates.hpp"
#include "security/key_store.hpp"

namespace cg::security {

inline constexpr const char* kStationKeyLabel = "station";
inline constexpr const char* kStationNextKeyLabel = "station.next";
inline constexpr std::size_t kMaxChainCertificates = 5;

// What a TLS client context needs: the key (used in place) and the chain.
struct TlsClientIdentity {
  PrivateKey key;
  CertChain chain;  // leaf first
};
// Installs the identity into a client context: leaf, sub-CAs (self-signed
// certificates in the chain are not sent), key; checks that key and leaf
// belong together.
Result<void> use_client_identity(SSL_CTX* ctx, const TlsClientIdentity& id);

struct CertificateSummary {
  std::string common_name, organization, issuer, serial_hex, sha256_fingerprint;
  // Millisecond precision: what clock::format_rfc3339 prints.
  std::chrono::time_point<std::chrono::system_clock, std::chrono::milliseconds> not_before, not_after;
};
CertificateSummary summarize(const X509* cert);

class StationIdentity {
 public:
  StationIdentity(KeyStore& store, std::filesystem::path state_dir);

  // Completes a promotion that a crash interrupted (the key was relabelled but
  // not the file). Call once at start-up before anything else.
  void recover();

  bool has_key(std::string_view label);
  bool has_certificate(std::string_view label) const;
  // Key and chain of `label`; throws KeyStoreError / std::runtime_error naming
  // what is missing or does not match.
  std::shared_ptr<const TlsClientIdentity> load(std::string_view label);
  std::optional<CertificateSummary> summary(std::string_view label) const;

  // Checks a chain for the key pair `label` (see the header comment). `roots`
  // are the operator CA certificates that issue station certificates. A
  // refusal (Errc::Rejected) says why, for the CSMS-facing statusInfo and the
  // audit record.
  Result<void> check(const CertChain& chain, std::string_view label, std::string_view serial,
                    std::string_view organization, const std::vector<const X509*>& roots);
  // Stores a checked chain for `label` (durably).
  void store_chain(std::string_view label, const CertChain& chain);

  // A02/A03
  void begin_renewal(KeyType type = KeyType::EcP256);
  bool renewal_key_exists() { return has_key(kStationNextKeyLabel); }
  bool has_candidate() const { return has_certificate(kStationNextKeyLabel); }
  void promote();
  void discard_candidate();
  // The renewal's certificate signing request (public), kept next to the
  // chains as station.next.csr so that a restart while the CSMS signs does not
  // lose the renewal: the key stays, the same request is sent again, and a
  // CertificateSigned for it is still accepted. Removed with the candidate.
  void store_csr(std::string_view pem);
  std::optional<std::string> load_csr() const;  // nothing when absent, unreadable or not a CSR

  std::filesystem::path chain_file(std::string_view label) const;
  KeyStore& store() { return store_; }

 private:
  KeyStore& store_;
  std::filesystem::path dir_;
};

// Reads the operator CA certificates (PEM file with one or more roots).
// Throws std::runtime_error naming the file when none can be read.
CertChain load_roots(const std::filesystem::path& file);

}  // namespace cg::security
