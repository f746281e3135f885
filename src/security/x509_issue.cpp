// REQ: COM-2, COM-7
//
// X.509 issuance: keys, names, extensions per profile, PEM encoding. Used by
// the development PKI (dev_pki.cpp decides what to issue and writes the
// files) and by the station's own web UI certificate (web_identity.cpp).
#include <openssl/asn1.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <arpa/inet.h>

#include <algorithm>
#include <array>
#include <utility>
#include <vector>

#include "security/x509_issue.hpp"

namespace cg::security::x509 {

namespace {

using GenNamesPtr = OsslPtr<GENERAL_NAMES, GENERAL_NAMES_free>;
using GenNamePtr = OsslPtr<GENERAL_NAME, GENERAL_NAME_free>;
using OctetPtr = OsslPtr<ASN1_OCTET_STRING, ASN1_OCTET_STRING_free>;
using Ia5Ptr = OsslPtr<ASN1_IA5STRING, ASN1_IA5STRING_free>;

std::string ossl_error(std::string_view step) { return openssl_error(step); }

NamePtr make_name(const std::string& org, const std::string& cn, std::string& err) {
  NamePtr name(X509_NAME_new());
  const auto add = [&](int nid, const std::string& v) {
    return X509_NAME_add_entry_by_NID(name.get(), nid, MBSTRING_UTF8, reinterpret_cast<const unsigned char*>(v.data()),
                                      static_cast<int>(v.size()), -1, 0) == 1;
  };
  if (!name || !add(NID_organizationName, org) || !add(NID_commonName, cn)) {
    err = ossl_error("building subject name CN=" + cn);
    return nullptr;
  }
  return name;
}

// Positive 128-bit random serial (RFC 5280: at most 20 octets, non-zero).
bool set_random_serial(X509* cert, std::string& err) {
  std::array<unsigned char, 16> buf{};
  do {
    if (RAND_bytes(buf.data(), static_cast<int>(buf.size())) != 1) {
      err = ossl_error("generating random serial number");
      return false;
    }
    buf[0] &= 0x7f;  // keep the DER INTEGER positive within 16 octets
  } while (std::all_of(buf.begin(), buf.end(), [](unsigned char b) { return b == 0; }));
  const BnPtr bn(BN_bin2bn(buf.data(), static_cast<int>(buf.size()), nullptr));
  if (!bn || BN_to_ASN1_INTEGER(bn.get(), X509_get_serialNumber(cert)) == nullptr) {
    err = ossl_error("setting serial number");
    return false;
  }
  return true;
}

bool add_ext(X509* cert, X509V3_CTX* ctx, int nid, const char* value, std::string& err) {
  const ExtPtr ext(X509V3_EXT_nconf_nid(nullptr, ctx, nid, value));
  if (!ext || X509_add_ext(cert, ext.get(), -1) != 1) {
    err = ossl_error(std::string("adding extension ") + OBJ_nid2sn(nid));
    return false;
  }
  return true;
}

// subjectAltName DNS:<host> (or IP:<host> for an address literal), IP:127.0.0.1,
// IP:::1. Built from GENERAL_NAME objects, not from a config string, so the host
// can never inject further names.
bool add_server_san(X509* cert, const std::string& host, std::string& err) {
  const GenNamesPtr names(sk_GENERAL_NAME_new_null());
  if (!names) {
    err = ossl_error("building subjectAltName");
    return false;
  }
  std::vector<OctetPtr> ips_seen;
  // Wraps an owned value into a GENERAL_NAME (value freed on failure).
  const auto make_gn = [](int type, auto owned) -> GenNamePtr {
    GenNamePtr gn(GENERAL_NAME_new());
    if (gn) GENERAL_NAME_set0_value(gn.get(), type, owned.release());
    return gn;
  };
  const auto push = [&](GenNamePtr gn) {
    if (!gn || sk_GENERAL_NAME_push(names.get(), gn.get()) <= 0) return false;  // gn frees itself
    static_cast<void>(gn.release());  // owned by names now
    return true;
  };
  const auto push_ip = [&](const std::string& text) {
    OctetPtr ip(a2i_IPADDRESS(text.c_str()));
    if (!ip) return false;
    for (const auto& seen : ips_seen) {
      if (ASN1_OCTET_STRING_cmp(seen.get(), ip.get()) == 0) return true;  // already listed
    }
    OctetPtr copy(ASN1_OCTET_STRING_dup(ip.get()));
    if (!copy || !push(make_gn(GEN_IPADD, std::move(ip)))) return false;
    ips_seen.push_back(std::move(copy));
    return true;
  };
  bool ok = true;
  if (is_ip_literal(host)) {
    ok = push_ip(host);
  } else {
    Ia5Ptr dns(ASN1_IA5STRING_new());
    ok = dns && ASN1_STRING_set(dns.get(), host.data(), static_cast<int>(host.size())) == 1 &&
         push(make_gn(GEN_DNS, std::move(dns)));
  }
  ok = ok && push_ip("127.0.0.1") && push_ip("::1");
  if (!ok || X509_add1_ext_i2d(cert, NID_subject_alt_name, names.get(), 0, X509V3_ADD_DEFAULT) != 1) {
    err = ossl_error("adding subjectAltName");
    return false;
  }
  return true;
}

}  // namespace

bool is_ip_literal(const std::string& s) {
  std::array<unsigned char, 16> buf{};
  return inet_pton(AF_INET, s.c_str(), buf.data()) == 1 || inet_pton(AF_INET6, s.c_str(), buf.data()) == 1;
}

PkeyPtr generate_p256(std::string& err) {
  PkeyPtr key(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256"));
  if (!key) err = ossl_error("generating ECDSA P-256 key");
  return key;
}

X509Ptr issue(const CertSpec& spec, EVP_PKEY* subject_key, X509* issuer, EVP_PKEY* issuer_key, std::string& err) {
  X509Ptr cert(X509_new());
  if (!cert) {
    err = ossl_error("allocating certificate " + spec.cn);
    return nullptr;
  }
  const NamePtr subject = make_name(spec.organization, spec.cn, err);
  if (!subject) return nullptr;
  X509* const c = cert.get();
  const X509_NAME* issuer_name = issuer ? X509_get_subject_name(issuer) : subject.get();
  // Backdate by five minutes so a station clock slightly behind still accepts it.
  if (X509_set_version(c, X509_VERSION_3) != 1 || X509_set_subject_name(c, subject.get()) != 1 ||
      X509_set_issuer_name(c, issuer_name) != 1 || X509_gmtime_adj(X509_getm_notBefore(c), -300) == nullptr ||
      X509_time_adj_ex(X509_getm_notAfter(c), spec.validity_days, 0, nullptr) == nullptr ||
      X509_set_pubkey(c, subject_key) != 1) {
    err = ossl_error("filling in certificate " + spec.cn);
    return nullptr;
  }
  if (!set_random_serial(c, err)) return nullptr;

  X509V3_CTX ctx;
  X509V3_set_ctx(&ctx, issuer ? issuer : c, c, nullptr, nullptr, 0);
  if (X509V3_set_issuer_pkey(&ctx, issuer_key) != 1) {
    err = ossl_error("preparing extensions of " + spec.cn);
    return nullptr;
  }
  bool ok = false;
  if (spec.profile == Profile::RootCa) {
    ok = add_ext(c, &ctx, NID_basic_constraints, "critical,CA:TRUE", err) &&
         add_ext(c, &ctx, NID_key_usage, "critical,keyCertSign,cRLSign", err);
  } else if (spec.profile == Profile::CodeSigning) {
    ok = add_ext(c, &ctx, NID_basic_constraints, "critical,CA:FALSE", err) &&
         add_ext(c, &ctx, NID_key_usage, "critical,digitalSignature", err) &&
         add_ext(c, &ctx, NID_ext_key_usage, "critical,codeSigning", err);
  } else if (spec.profile == Profile::TlsClient) {
    ok = add_ext(c, &ctx, NID_basic_constraints, "critical,CA:FALSE", err) &&
         add_ext(c, &ctx, NID_key_usage, "critical,digitalSignature", err) &&
         add_ext(c, &ctx, NID_ext_key_usage, "clientAuth", err);
  } else {
    ok = add_ext(c, &ctx, NID_basic_constraints, "critical,CA:FALSE", err) &&
         add_ext(c, &ctx, NID_key_usage, "critical,digitalSignature", err) &&
         add_ext(c, &ctx, NID_ext_key_usage, "serverAuth", err) && add_server_san(c, spec.san_host, err);
  }
  // The subject key identifier must exist before the (self-signed) authority key
  // identifier refers to it.
  ok = ok && add_ext(c, &ctx, NID_subject_key_identifier, "hash", err) &&
       add_ext(c, &ctx, NID_authority_key_identifier, "keyid:always", err);
  if (!ok) return nullptr;

  if (X509_sign(c, issuer_key, EVP_sha256()) <= 0) {
    err = ossl_error("signing certificate " + spec.cn);
    return nullptr;
  }
  return cert;
}

// ---- PEM serialisation and files

BioPtr cert_pem(X509* cert, std::string& err) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (!bio || PEM_write_bio_X509(bio.get(), cert) != 1) {
    err = ossl_error("encoding certificate");
    return nullptr;
  }
  return bio;
}

// Unencrypted PKCS#8 ("BEGIN PRIVATE KEY") in a secure-memory BIO (cleared on free).
BioPtr key_pem(EVP_PKEY* key, std::string& err) {
  BioPtr bio(BIO_new(BIO_s_secmem()));
  if (!bio || PEM_write_bio_PrivateKey(bio.get(), key, nullptr, nullptr, 0, nullptr, nullptr) != 1) {
    err = ossl_error("encoding private key");
    return nullptr;
  }
  return bio;
}

}  // namespace cg::security::x509
