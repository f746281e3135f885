// REQ: COM-8
//
// The crypto policy, see crypto_policy.hpp.
#include "security/crypto_policy.hpp"

#include <openssl/asn1.h>
#include <openssl/ec.h>
#include <openssl/objects.h>
#include <openssl/rsa.h>
#include <openssl/x509_vfy.h>
#include <openssl/x509v3.h>

#include <array>
#include <memory>
#include <string_view>

#include "security/certificates.hpp"

namespace cg::security {
namespace {

constexpr int kRsaMinBits = 2048;
constexpr int kRsaGoalBits = 3072;

// TLS: signature algorithms (IANA names, as OpenSSL spells them) and groups.
constexpr const char* kSigalgs =
    "ecdsa_secp256r1_sha256:ecdsa_secp384r1_sha384:ecdsa_secp521r1_sha512:"
    "rsa_pss_rsae_sha256:rsa_pss_rsae_sha384:rsa_pss_rsae_sha512:"
    "rsa_pss_pss_sha256:rsa_pss_pss_sha384:rsa_pss_pss_sha512:"
    "rsa_pkcs1_sha256:rsa_pkcs1_sha384:rsa_pkcs1_sha512";
constexpr const char* kGroups = "X25519:P-256:P-384";

// Why a certificate was refused: chooses the X509_V_ERR_* of a TLS refusal.
enum class Refusal { None, Key, Digest, Other };

struct Finding {
  PolicyResult result;
  Refusal refusal = Refusal::None;
};

enum class DigestClass { Good, Weak112, Refused };

DigestClass classify_digest(int nid) {
  switch (nid) {
    case NID_sha256:
    case NID_sha384:
    case NID_sha512:
    case NID_sha512_256:
    case NID_sha3_256:
    case NID_sha3_384:
    case NID_sha3_512:
      return DigestClass::Good;
    case NID_sha224:
    case NID_sha512_224:
    case NID_sha3_224:
      return DigestClass::Weak112;
    default:
      return DigestClass::Refused;  // MD2/MD4/MD5, SHA-1, MD5-SHA1, RIPEMD, SM3, …
  }
}

std::string nid_name(int nid) {
  const char* sn = nid == NID_undef ? nullptr : OBJ_nid2sn(nid);
  return sn ? sn : "unknown";
}

// "sha256WithRSAEncryption" or the dotted OID of an unknown algorithm.
std::string object_name(const ASN1_OBJECT* obj) {
  std::array<char, 128> buf{};
  if (!obj || OBJ_obj2txt(buf.data(), static_cast<int>(buf.size()), obj, 0) <= 0) return "unknown";
  return buf.data();
}

// Adds the digest rule for one digest (the signature's or the MGF1 one).
void check_digest(int md_nid, std::string_view what, Finding& f) {
  switch (classify_digest(md_nid)) {
    case DigestClass::Good:
      return;
    case DigestClass::Weak112:
      f.result.warnings.push_back(std::string(what) + " " + nid_name(md_nid) + " (below the SHA-256 goal)");
      return;
    case DigestClass::Refused:
      f.result.error = std::string(what) + " " + nid_name(md_nid) + " not allowed";
      f.refusal = Refusal::Digest;
      return;
  }
}

// RSA-PSS: the MGF1 digest (absent parameters mean MGF1 with SHA-1, RFC 4055).
void check_pss_mgf1(const X509_ALGOR* sigalg, Finding& f) {
  const ASN1_TYPE* param = sigalg->parameter;
  if (!param || param->type != V_ASN1_SEQUENCE) {
    f.result.error = "RSA-PSS signature without parameters (SHA-1 defaults) not allowed";
    f.refusal = Refusal::Digest;
    return;
  }
  const std::unique_ptr<RSA_PSS_PARAMS, decltype(&RSA_PSS_PARAMS_free)> pss(
      static_cast<RSA_PSS_PARAMS*>(ASN1_TYPE_unpack_sequence(ASN1_ITEM_rptr(RSA_PSS_PARAMS), param)),
      RSA_PSS_PARAMS_free);
  if (!pss) {
    f.result.error = "RSA-PSS signature parameters cannot be decoded";
    f.refusal = Refusal::Other;
    return;
  }
  if (!pss->maskGenAlgorithm) return check_digest(NID_sha1, "RSA-PSS MGF1 digest", f);
  if (OBJ_obj2nid(pss->maskGenAlgorithm->algorithm) != NID_mgf1) {
    f.result.error = "RSA-PSS mask generation " + object_name(pss->maskGenAlgorithm->algorithm) + " not allowed";
    f.refusal = Refusal::Other;
    return;
  }
  const ASN1_TYPE* mgf_param = pss->maskGenAlgorithm->parameter;
  const std::unique_ptr<X509_ALGOR, decltype(&X509_ALGOR_free)> mgf_md(
      mgf_param && mgf_param->type == V_ASN1_SEQUENCE
          ? static_cast<X509_ALGOR*>(ASN1_TYPE_unpack_sequence(ASN1_ITEM_rptr(X509_ALGOR), mgf_param))
          : nullptr,
      X509_ALGOR_free);
  if (!mgf_md) {
    f.result.error = "RSA-PSS MGF1 parameters cannot be decoded";
    f.refusal = Refusal::Other;
    return;
  }
  check_digest(OBJ_obj2nid(mgf_md->algorithm), "RSA-PSS MGF1 digest", f);
}

Finding key_finding(const EVP_PKEY* key) {
  Finding f;
  auto refuse = [&f](std::string e) {
    f.result.error = std::move(e);
    f.refusal = Refusal::Key;
    return f;
  };
  if (!key) return refuse("no public key");
  if (EVP_PKEY_is_a(key, "RSA") || EVP_PKEY_is_a(key, "RSA-PSS")) {
    const int bits = EVP_PKEY_get_bits(key);
    if (bits < kRsaMinBits)
      return refuse("RSA key of " + std::to_string(bits) + " bits (minimum " + std::to_string(kRsaMinBits) + ")");
    if (bits < kRsaGoalBits)
      f.result.warnings.push_back("RSA key of " + std::to_string(bits) + " bits (below the " +
                                  std::to_string(kRsaGoalBits) + "-bit goal)");
    return f;
  }
  if (EVP_PKEY_is_a(key, "EC")) {
    std::array<char, 80> name{};
    std::size_t len = 0;
    if (EVP_PKEY_get_group_name(key, name.data(), name.size(), &len) != 1 || len == 0)
      return refuse("EC key without a named curve (explicit curve parameters are not allowed)");
    int nid = OBJ_sn2nid(name.data());
    if (nid == NID_undef) nid = EC_curve_nist2nid(name.data());
    if (nid == NID_X9_62_prime256v1 || nid == NID_secp384r1 || nid == NID_secp521r1) return f;
    return refuse(std::string("EC key on curve ") + name.data() + " (allowed: P-256, P-384, P-521)");
  }
  if (EVP_PKEY_is_a(key, "ED25519") || EVP_PKEY_is_a(key, "ED448")) return f;
  if (EVP_PKEY_is_a(key, "DSA")) return refuse("DSA keys are not allowed");
  const char* type = EVP_PKEY_get0_type_name(key);
  return refuse(std::string("key type ") + (type ? type : "unknown") + " not allowed");
}

Finding certificate_finding(const X509* cert) {
  if (!cert) {
    Finding f;
    f.result.error = "no certificate";
    f.refusal = Refusal::Other;
    return f;
  }
  Finding f = key_finding(X509_get0_pubkey(cert));
  if (!f.result.ok()) return f;

  const ASN1_BIT_STRING* sig = nullptr;
  const X509_ALGOR* sigalg = nullptr;
  X509_get0_signature(&sig, &sigalg, cert);
  const ASN1_OBJECT* sig_oid = nullptr;
  X509_ALGOR_get0(&sig_oid, nullptr, nullptr, sigalg);
  if (X509_get_extension_flags(const_cast<X509*>(cert)) & EXFLAG_INVALID) {
    f.result.error = "certificate extensions cannot be decoded";
    f.refusal = Refusal::Other;
    return f;
  }
  int md_nid = NID_undef, pk_nid = NID_undef, secbits = 0;
  std::uint32_t flags = 0;
  // Takes a non-const X509: it fills the certificate's cached extension data.
  if (X509_get_signature_info(const_cast<X509*>(cert), &md_nid, &pk_nid, &secbits, &flags) != 1) {
    f.result.error = "signature algorithm " + object_name(sig_oid) + " unknown or invalid";
    f.refusal = Refusal::Other;
    return f;
  }
  if (md_nid == NID_undef) {
    if (pk_nid == NID_ED25519 || pk_nid == NID_ED448) return f;
    f.result.error = "signature algorithm " + object_name(sig_oid) + " without a known digest not allowed";
    f.refusal = Refusal::Digest;
    return f;
  }
  check_digest(md_nid, "signature digest", f);
  if (f.result.ok() && OBJ_obj2nid(sig_oid) == NID_rsassaPss) check_pss_mgf1(sigalg, f);
  return f;
}

// Position of certificate i of n in a chain: "leaf", "certificate i", "root".
std::string position(const X509* cert, int i, int n) {
  std::string pos;
  if (i == n - 1 && X509_self_signed(const_cast<X509*>(cert), 0) == 1)
    pos = "root";
  else if (i == 0)
    pos = "leaf";
  else
    pos = "certificate " + std::to_string(i);
  return pos + " (" + subject_text(cert) + ")";
}

// The TLS hook: OpenSSL's own verification, then the policy on the built chain.
int verify_with_policy(X509_STORE_CTX* ctx, void* /*arg*/) {
  const int rc = X509_verify_cert(ctx);
  if (rc <= 0) return rc;
  STACK_OF(X509)* chain = X509_STORE_CTX_get0_chain(ctx);
  const int n = chain ? sk_X509_num(chain) : 0;
  if (n == 0) {
    X509_STORE_CTX_set_error(ctx, X509_V_ERR_APPLICATION_VERIFICATION);
    return 0;
  }
  for (int i = 0; i < n; ++i) {
    X509* cert = sk_X509_value(chain, i);
    const Finding f = certificate_finding(cert);
    if (f.result.ok()) continue;
    int err = X509_V_ERR_APPLICATION_VERIFICATION;
    if (f.refusal == Refusal::Key)
      err = i == 0 ? X509_V_ERR_EE_KEY_TOO_SMALL : X509_V_ERR_CA_KEY_TOO_SMALL;
    else if (f.refusal == Refusal::Digest)
      err = X509_V_ERR_CA_MD_TOO_WEAK;
    X509_STORE_CTX_set_error_depth(ctx, i);
    X509_STORE_CTX_set_current_cert(ctx, cert);
    X509_STORE_CTX_set_error(ctx, err);
    return 0;
  }
  return 1;
}

}  // namespace

PolicyResult check_public_key(const EVP_PKEY* key) {
  return key_finding(key).result;
}

PolicyResult check_certificate(const X509* cert) {
  return certificate_finding(cert).result;
}

PolicyResult check_chain(const STACK_OF(X509) * chain) {
  PolicyResult out;
  const int n = chain ? sk_X509_num(chain) : 0;
  if (n <= 0) {
    out.error = "empty certificate chain";
    return out;
  }
  for (int i = 0; i < n; ++i) {
    const X509* cert = sk_X509_value(chain, i);
    PolicyResult r = check_certificate(cert);
    const std::string pos = position(cert, i, n);
    for (auto& w : r.warnings) out.warnings.push_back(pos + ": " + w);
    if (!r.ok()) {
      out.error = pos + ": " + r.error;
      return out;
    }
  }
  return out;
}

std::string apply_crypto_policy(SSL_CTX* ctx) {
  if (!ctx) return "no TLS context";
  SSL_CTX_set_security_level(ctx, 2);
  if (SSL_CTX_set1_sigalgs_list(ctx, kSigalgs) != 1) return "TLS signature algorithm configuration failed";
  if (SSL_CTX_set1_groups_list(ctx, kGroups) != 1) return "TLS group configuration failed";
  SSL_CTX_set_cert_verify_callback(ctx, verify_with_policy, nullptr);
  return {};
}

}  // namespace cg::security
