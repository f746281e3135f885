// REQ: COM-1, COM-2, COM-3, COM-8
//
// The one TLS client policy: used by the OCPP connection, GetLog uploads and
// syslog forwarding. The algorithm rules (COM-8) come from crypto_policy.hpp.
#pragma once
#include <openssl/ssl.h>

#include <string>

#include "core/result.hpp"

namespace cg::security {

// TLS 1.2 minimum; TLS 1.2 suites ECDHE with AES-GCM only; TLS 1.3 AES-GCM
// suites; no compression, renegotiation or tickets; peers verified against
// ca_file only (never the system bundle). The crypto policy
// (apply_crypto_policy): security level 2, signature algorithms ECDSA / RSA-PSS
// / RSA PKCS#1 with SHA-256/384/512, groups X25519, P-256, P-384, and every
// certificate of the peer's verified chain (its root included) checked by
// check_certificate; a refused chain fails the handshake with
// SSL_get_verify_result() != X509_V_OK. The policy hook is installed with
// SSL_CTX_set_cert_verify_callback: callers may still call SSL_CTX_set_verify
// (mode, callback) without removing it, but must not replace the cert verify
// callback. partial_chain: every certificate of ca_file is a trust anchor by
// itself (a confirmed cross-signed successor CSMS root whose signer is gone,
// M05).
Result<void> configure_tls_client(SSL_CTX* ctx, const std::string& ca_file, bool partial_chain = false);

// Per connection: the peer's host name (or IP literal) is checked against its
// certificate; SNI is sent for names only (RFC 6066).
// A TLS server context with the same policy (NET-4, COM-8): TLS 1.2/1.3,
// AEAD suites with forward secrecy, the server's order, no renegotiation, no
// compression, no tickets; the key is used in place (key store).
Result<void> configure_tls_server(SSL_CTX* ctx, EVP_PKEY* key, X509* cert);

void set_tls_peer_name(SSL* ssl, const std::string& host);

// A failed handshake's message, with the certificate check's reason when that
// is what failed: "<message> (certificate: <reason>)".
std::string tls_error_text(const SSL* ssl, std::string message);

}  // namespace cg::security
