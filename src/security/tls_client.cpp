#include "security/tls_client.hpp"

#include <arpa/inet.h>
#include <openssl/x509v3.h>

#include "security/crypto_policy.hpp"

namespace cg::security {
namespace {
constexpr const char* kTls12Ciphers =
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:"
    "ECDHE-RSA-AES128-GCM-SHA256:ECDHE-RSA-AES256-GCM-SHA384";
constexpr const char* kTls13Suites = "TLS_AES_256_GCM_SHA384:TLS_AES_128_GCM_SHA256";

bool is_ip_literal(const std::string& host) {
  unsigned char buf[16];
  return inet_pton(AF_INET, host.c_str(), buf) == 1 || inet_pton(AF_INET6, host.c_str(), buf) == 1;
}
}  // namespace

Result<void> configure_tls_client(SSL_CTX* c, const std::string& ca_file, bool partial_chain) {
  SSL_CTX_set_min_proto_version(c, TLS1_2_VERSION);
  SSL_CTX_set_options(c, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_TICKET);
  if (SSL_CTX_set_cipher_list(c, kTls12Ciphers) != 1 || SSL_CTX_set_ciphersuites(c, kTls13Suites) != 1)
    return fail(Errc::Internal, "TLS cipher configuration failed");
  // COM-8: security level 2, signature algorithms, groups, and the policy on the peer's chain.
  if (auto err = apply_crypto_policy(c); !err.empty()) return fail(Errc::Internal, err);
  if (SSL_CTX_load_verify_locations(c, ca_file.c_str(), nullptr) != 1)
    return fail(Errc::Unavailable, "cannot load CA file " + ca_file);
  if (partial_chain) X509_STORE_set_flags(SSL_CTX_get_cert_store(c), X509_V_FLAG_PARTIAL_CHAIN);
  SSL_CTX_set_verify(c, SSL_VERIFY_PEER, nullptr);
  return {};
}

Result<void> configure_tls_server(SSL_CTX* c, EVP_PKEY* key, X509* cert) {
  SSL_CTX_set_min_proto_version(c, TLS1_2_VERSION);
  SSL_CTX_set_options(c, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_TICKET |
                             SSL_OP_CIPHER_SERVER_PREFERENCE);
  // No resumption: a maintenance login is a handful of connections, and no
  // ticket key or session cache outlives a connection.
  SSL_CTX_set_session_cache_mode(c, SSL_SESS_CACHE_OFF);
  SSL_CTX_set_num_tickets(c, 0);
  if (SSL_CTX_set_cipher_list(c, kTls12Ciphers) != 1 || SSL_CTX_set_ciphersuites(c, kTls13Suites) != 1)
    return fail(Errc::Internal, "TLS cipher configuration failed");
  if (auto err = apply_crypto_policy(c); !err.empty()) return fail(Errc::Internal, err);
  if (SSL_CTX_use_certificate(c, cert) != 1 || SSL_CTX_use_PrivateKey(c, key) != 1 ||
      SSL_CTX_check_private_key(c) != 1)
    return fail(Errc::Internal, "the server certificate does not match its key");
  SSL_CTX_set_verify(c, SSL_VERIFY_NONE, nullptr);  // browsers present no client certificate
  return {};
}

void set_tls_peer_name(SSL* ssl, const std::string& host) {
  X509_VERIFY_PARAM* p = SSL_get0_param(ssl);
  X509_VERIFY_PARAM_set_hostflags(p, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
  if (is_ip_literal(host)) {
    X509_VERIFY_PARAM_set1_ip_asc(p, host.c_str());
  } else {
    SSL_set_tlsext_host_name(ssl, host.c_str());
    X509_VERIFY_PARAM_set1_host(p, host.c_str(), 0);
  }
}

std::string tls_error_text(const SSL* ssl, std::string message) {
  const long vr = ssl ? SSL_get_verify_result(ssl) : X509_V_OK;
  if (vr != X509_V_OK) message += " (certificate: " + std::string(X509_verify_cert_error_string(vr)) + ")";
  return message;
}

}  // namespace cg::security
