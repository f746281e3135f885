// REQ: NET-4, CR 1.2 — the maintenance web UI's TLS server identity: unique
// per device. The key pair ("web") is generated inside the key store and used
// in place (a PKCS#11 token never lets it out); the certificate is
// self-signed by that key (ECDSA P-256, SHA-256, serverAuth, subjectAltName
// for the listen address, 127.0.0.1 and ::1), stored in
// <state>/web/server.crt and made again (same key) when it has less than 30
// days left or no longer names the listen address. An engineer checks the
// SHA-256 fingerprint the browser shows against `chargeguard web show-cert`
// (or the label). A CPO that runs its own maintenance PKI would install an
// issued certificate here instead; that is not built yet.
#pragma once
#include <filesystem>
#include <string>

#include "security/certificates.hpp"
#include "security/key_store.hpp"

namespace cg::security {

inline constexpr const char* kWebKeyLabel = "web";
inline constexpr int kWebCertificateDays = 397;  // the CA/Browser Forum maximum for server certificates

struct WebIdentity {
  PrivateKey key;
  X509Ptr certificate;
  std::string fingerprint;  // SHA-256, colon-separated upper-case hex as browsers show it
  bool created = false;     // key or certificate made now
};

// Loads, or creates when missing, stale or naming another host. `host`: the
// listen address ("0.0.0.0" / "::" name localhost only). Throws
// KeyStoreError / std::runtime_error naming the problem.
WebIdentity ensure_web_identity(KeyStore& keys, const std::filesystem::path& state_dir, const std::string& host,
                                const std::string& common_name);

// The stored certificate without touching the key store (nullptr when none).
X509Ptr load_web_certificate(const std::filesystem::path& state_dir);
std::string sha256_fingerprint(const X509* cert);

}  // namespace cg::security
