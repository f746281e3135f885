// Issuing one X.509 certificate of a given profile, and PEM encoding: the
// development PKI's (dev_pki.cpp) and the web UI's self-signed certificate
// (web_identity.cpp).
#pragma once
#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include <string>

#include "security/ossl.hpp"

namespace cg::security::x509 {

enum class Profile {
  RootCa,       // CA:TRUE critical; keyUsage keyCertSign, cRLSign
  TlsServer,    // CA:FALSE; digitalSignature; serverAuth; subjectAltName for san_host
  TlsClient,    // CA:FALSE; digitalSignature; clientAuth
  CodeSigning,  // CA:FALSE; digitalSignature; codeSigning (firmware signer)
};

struct CertSpec {
  Profile profile;
  std::string cn;
  std::string organization;
  int validity_days;
  std::string san_host;  // TlsServer only
};

// An IPv4 or IPv6 address literal.
bool is_ip_literal(const std::string& s);

PkeyPtr generate_p256(std::string& err);

// Issues a certificate for subject_key (SHA-256, 128-bit random serial,
// backdated five minutes, subject/authority key identifiers). issuer ==
// nullptr: self-signed root (issuer_key must then be subject_key).
X509Ptr issue(const CertSpec& spec, EVP_PKEY* subject_key, X509* issuer, EVP_PKEY* issuer_key, std::string& err);

// Certificate PEM in a memory BIO.
BioPtr cert_pem(X509* cert, std::string& err);
// Unencrypted PKCS#8 ("BEGIN PRIVATE KEY") in a secure-memory BIO (cleared on free).
BioPtr key_pem(EVP_PKEY* key, std::string& err);

}  // namespace cg::security::x509
