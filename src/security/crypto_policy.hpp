// REQ: COM-8 (forbidden algorithms), COM-1/2 (TLS), digest §1.4, §1.5
//
// The one crypto policy: which keys and signature algorithms the station
// accepts. Used by the TLS client policy (tls_client.cpp), by certificate
// checks (certificates.hpp: installed roots, the station's own certificate, the
// CSMS chain) and, later, by firmware signature checks.
//
// Keys:
//   RSA (also RSA-PSS keys)  refused below 2048 bits; warned below 3072 (the goal)
//   EC                       named curves P-256, P-384, P-521 only; any other
//                            curve (secp224r1, secp256k1, brainpool, …) is
//                            refused by name, explicit parameters OpenSSL cannot
//                            match to a named curve are refused
//   Ed25519, Ed448           accepted
//   DSA and anything else    refused
// Certificate signatures: the digest must be SHA-224/256/384/512, SHA-512/224,
// SHA-512/256 or SHA3 (and one OpenSSL can describe: X509_get_signature_info);
// SHA-224-class digests are warned (112 bits, below the SHA-256 goal).
// MD2/MD4/MD5/SHA-1 and signatures without a known digest are refused, except
// Ed25519/Ed448 (which have none). RSA-PSS: the PSS hash and the MGF1 hash are
// both checked. Self-signed roots get the same rule (a SHA-1 root is refused:
// simpler and stricter than "roots' signatures do not matter").
//
// Limits: the policy looks at algorithms and sizes only; validity, chaining,
// names and purposes are certificates.hpp's verify_chain. It does not check RSA
// public exponents or EC points beyond what OpenSSL's decoders do.
//
// Errors: a PolicyResult whose `error` names the first refusal (e.g. "RSA key
// of 1024 bits (minimum 2048)", "signature digest SHA1 not allowed");
// `warnings` lists what is accepted but below the goal. Nothing throws.
#pragma once
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <string>
#include <vector>

namespace cg::security {

struct PolicyResult {
  std::string error;                  // empty: accepted
  std::vector<std::string> warnings;  // accepted, but below the goal (e.g. RSA-2048)
  bool ok() const { return error.empty(); }
};

// A public (or private) key: type and size.
PolicyResult check_public_key(const EVP_PKEY* key);

// One certificate: its public key and the algorithm of its signature.
PolicyResult check_certificate(const X509* cert);

// Every certificate of a chain (leaf first). The error (and each warning) is
// prefixed with the certificate's position and subject, e.g.
// "leaf (CN=CS001,O=Op): RSA key of 1024 bits (minimum 2048)",
// "certificate 1 (CN=Sub CA): …", "root (CN=Root): …" (the last one, when self-signed).
// An empty or null chain is an error.
PolicyResult check_chain(const STACK_OF(X509) * chain);

// TLS side, for a client context (called by configure_tls_client):
//  - OpenSSL security level 2 (≥112-bit keys, no SHA-1 in the handshake);
//  - signature algorithms: ECDSA with SHA-256/384/512, RSA-PSS (rsae and pss)
//    with SHA-256/384/512, RSA PKCS#1 with SHA-256/384/512 (TLS 1.2);
//  - key exchange groups X25519, P-256, P-384;
//  - a certificate verification hook (SSL_CTX_set_cert_verify_callback, so a
//    later SSL_CTX_set_verify(…, nullptr) does not remove it): after OpenSSL
//    built and verified the peer chain, every certificate of it (the trust
//    anchor included) must pass check_certificate. A refusal fails the
//    handshake with a verify result of X509_V_ERR_EE_KEY_TOO_SMALL (leaf key),
//    X509_V_ERR_CA_KEY_TOO_SMALL (CA key), X509_V_ERR_CA_MD_TOO_WEAK (signature
//    digest) or X509_V_ERR_APPLICATION_VERIFICATION (anything else), so
//    SSL_get_verify_result() != X509_V_OK as for any other certificate failure.
// Returns "" or what could not be set.
std::string apply_crypto_policy(SSL_CTX* ctx);

}  // namespace cg::security
