// A small test PKI for the unit tests of security/certificates and
// security/crypto_policy: keys and certificates generated at test time with
// OpenSSL (nothing is stored in the repository), with any key type, digest,
// validity, extensions and issuer a test needs.
#pragma once
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <map>
#include <mutex>
#include <stdexcept>
#include <string>
#include <vector>

#include "security/certificates.hpp"
#include "security/key_store.hpp"

namespace cg::test::pki {


using security::PrivateKey;
using security::X509Ptr;

struct Spec {
  std::string cn;
  std::string org;
  bool ca = false;
  const EVP_MD* md = EVP_sha256();  // nullptr: Ed25519/Ed448 signatures
  bool pss = false;                 // RSA-PSS signature (salt = digest length)
  const EVP_MD* mgf1_md = nullptr;  // PSS only; nullptr: same as md
  long not_before_s = -3600;        // offsets from now
  long not_after_s = 86400;
  std::string eku;                    // e.g. "serverAuth"; empty: none
  std::string san;                    // e.g. "DNS:localhost"; empty: none
  std::string basic_constraints;      // empty: "critical,CA:TRUE" / "critical,CA:FALSE"
  std::string key_usage;              // empty: keyCertSign,cRLSign for CAs, digitalSignature otherwise
  std::vector<unsigned char> serial;  // big-endian; empty: random 16 bytes
};

inline PrivateKey keep(EVP_PKEY* k, const char* what) {
  if (!k) throw std::runtime_error(std::string("key generation failed: ") + what);
  return PrivateKey(k);
}
inline PrivateKey share_key(EVP_PKEY* k) {
  EVP_PKEY_up_ref(k);
  return PrivateKey(k);
}

// RSA keys are cached per size (generation is slow, above all under ASan).
inline PrivateKey rsa_key(int bits) {
  static std::mutex mu;
  static std::map<int, PrivateKey> cache;
  std::lock_guard lk(mu);
  auto& k = cache[bits];
  if (!k) k = keep(EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", static_cast<size_t>(bits)), "RSA");
  return share_key(k.get());
}

inline PrivateKey ec_key(const char* curve) {
  return keep(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", curve), curve);
}

// "ED25519", "ED448", "X25519", …
inline PrivateKey raw_key(const char* type) {
  return keep(EVP_PKEY_Q_keygen(nullptr, nullptr, type), type);
}

inline X509Ptr issue(const Spec& s, EVP_PKEY* key, const X509* issuer, EVP_PKEY* issuer_key) {
  X509Ptr c(X509_new());
  auto check = [](bool ok, const char* step) {
    if (!ok) {
      ERR_print_errors_fp(stderr);
      throw std::runtime_error(std::string("test certificate: ") + step);
    }
  };
  check(c && X509_set_version(c.get(), X509_VERSION_3) == 1, "version");
  std::vector<unsigned char> serial = s.serial;
  if (serial.empty()) {
    serial.resize(16);
    check(RAND_bytes(serial.data(), 16) == 1, "serial");
    serial[0] = (serial[0] & 0x7f) | 0x01;
  }
  {
    std::unique_ptr<BIGNUM, decltype(&BN_free)> bn(BN_bin2bn(serial.data(), static_cast<int>(serial.size()), nullptr),
                                                   BN_free);
    check(bn && BN_to_ASN1_INTEGER(bn.get(), X509_get_serialNumber(c.get())) != nullptr, "serial");
  }
  X509_gmtime_adj(X509_getm_notBefore(c.get()), s.not_before_s);
  X509_gmtime_adj(X509_getm_notAfter(c.get()), s.not_after_s);
  X509_NAME* name = X509_get_subject_name(c.get());
  auto add_entry = [&](const char* field, const std::string& v) {
    check(X509_NAME_add_entry_by_txt(name, field, MBSTRING_UTF8, reinterpret_cast<const unsigned char*>(v.data()),
                                     static_cast<int>(v.size()), -1, 0) == 1,
          "name");
  };
  if (!s.org.empty()) add_entry("O", s.org);
  add_entry("CN", s.cn);
  check(X509_set_issuer_name(c.get(), issuer ? X509_get_subject_name(issuer) : name) == 1, "issuer");
  check(X509_set_pubkey(c.get(), key) == 1, "pubkey");
  X509V3_CTX v3;
  X509V3_set_ctx(&v3, issuer ? const_cast<X509*>(issuer) : c.get(), c.get(), nullptr, nullptr, 0);
  auto add = [&](int nid, const std::string& value) {
    if (value.empty()) return;
    X509_EXTENSION* e = X509V3_EXT_conf_nid(nullptr, &v3, nid, value.c_str());
    check(e && X509_add_ext(c.get(), e, -1) == 1, OBJ_nid2sn(nid));
    X509_EXTENSION_free(e);
  };
  add(NID_basic_constraints, !s.basic_constraints.empty() ? s.basic_constraints
                             : s.ca                       ? "critical,CA:TRUE"
                                                          : "critical,CA:FALSE");
  add(NID_key_usage, !s.key_usage.empty() ? s.key_usage
                     : s.ca               ? "critical,keyCertSign,cRLSign"
                                          : "critical,digitalSignature");
  add(NID_ext_key_usage, s.eku);
  add(NID_subject_alt_name, s.san);
  add(NID_subject_key_identifier, "hash");
  add(NID_authority_key_identifier, "keyid:always");
  if (s.pss) {
    std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> mctx(EVP_MD_CTX_new(), EVP_MD_CTX_free);
    EVP_PKEY_CTX* pctx = nullptr;
    check(mctx && EVP_DigestSignInit(mctx.get(), &pctx, s.md, nullptr, issuer_key) == 1, "PSS init");
    check(EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) == 1, "PSS padding");
    check(EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_DIGEST) == 1, "PSS salt");
    if (s.mgf1_md) check(EVP_PKEY_CTX_set_rsa_mgf1_md(pctx, s.mgf1_md) == 1, "PSS MGF1");
    check(X509_sign_ctx(c.get(), mctx.get()) > 0, "PSS sign");
  } else {
    check(X509_sign(c.get(), issuer_key, s.md) > 0, "sign");
  }
  return c;
}

}  // namespace cg::test::pki
