// The one TLS client policy (COM-1/2/3; the crypto policy of COM-8 extends it):
// used by the OCPP connection, GetLog uploads and syslog forwarding.
#pragma once
#include <openssl/ssl.h>

#include <string>

namespace cg::security {

// TLS 1.2 minimum; TLS 1.2 suites ECDHE with AES-GCM only; TLS 1.3 AES-GCM
// suites; no compression, renegotiation or tickets; peers verified against
// ca_file only (never the system bundle). Returns "" or what failed.
std::string configure_tls_client(SSL_CTX* ctx, const std::string& ca_file);

// Per connection: the peer's host name (or IP literal) is checked against its
// certificate; SNI is sent for names only (RFC 6066).
void set_tls_peer_name(SSL* ssl, const std::string& host);

}  // namespace cg::security
