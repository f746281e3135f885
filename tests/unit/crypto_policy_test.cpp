// REQ: COM-8 (and COM-1/2 for the TLS side) — tests of security/crypto_policy
// and of the policy as configure_tls_client applies it: real TLS handshakes
// (in memory, over a BIO pair) against servers with weak and good chains.
// Every key and certificate is generated here at test time.
//
// MD2/MD4 signatures cannot be made with OpenSSL 3's default provider (the
// digests live in the legacy provider); they fall under the same rule as MD5
// and SHA-1 (only SHA-2/SHA-3 digests are allowed), which is tested.
#include "security/crypto_policy.hpp"

#include <gtest/gtest.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <algorithm>
#include <fstream>
#include <map>
#include <mutex>
#include <stdexcept>
#include <string>
#include <vector>

#include "security/certificates.hpp"
#include "security/key_store.hpp"
#include "security/tls_client.hpp"
#include "test_pki.hpp"
#include "tls_pair.hpp"
#include "test_util.hpp"

namespace {

namespace fs = std::filesystem;
using namespace cg::security;
using cg::test::pki::ec_key;
using cg::test::pki::issue;
using cg::test::pki::raw_key;
using cg::test::pki::rsa_key;
using cg::test::pki::Spec;

using cg::test::has;

// A self-signed certificate for `key`, signed as `s` says.
X509Ptr self_signed(EVP_PKEY* key, Spec s = {.cn = "T"}) {
  return issue(s, key, nullptr, key);
}

// ---- keys

TEST(CryptoPolicy, RsaKeySizes) {
  PolicyResult r = check_public_key(rsa_key(1024).get());
  EXPECT_EQ(r.error, "RSA key of 1024 bits (minimum 2048)");
  EXPECT_FALSE(r.ok());
  r = check_public_key(rsa_key(2048).get());
  EXPECT_TRUE(r.ok()) << r.error;
  EXPECT_EQ(r.warnings, std::vector<std::string>{"RSA key of 2048 bits (below the 3072-bit goal)"});
  r = check_public_key(rsa_key(3072).get());
  EXPECT_TRUE(r.ok()) << r.error;
  EXPECT_TRUE((r.warnings).empty());
  // RSA-PSS keys (id-RSASSA-PSS) are sized the same way.
  std::unique_ptr<EVP_PKEY_CTX, decltype(&EVP_PKEY_CTX_free)> kctx(
      EVP_PKEY_CTX_new_from_name(nullptr, "RSA-PSS", nullptr), EVP_PKEY_CTX_free);
  EVP_PKEY* raw = nullptr;
  ASSERT_TRUE(kctx && EVP_PKEY_keygen_init(kctx.get()) == 1 &&
              EVP_PKEY_CTX_set_rsa_keygen_bits(kctx.get(), 1024) == 1 && EVP_PKEY_keygen(kctx.get(), &raw) == 1);
  const PrivateKey pss(raw);
  ASSERT_TRUE(EVP_PKEY_is_a(pss.get(), "RSA-PSS"));
  EXPECT_EQ(check_public_key(pss.get()).error, "RSA key of 1024 bits (minimum 2048)");
}

TEST(CryptoPolicy, EcCurves) {
  for (const char* ok : {"P-256", "P-384", "P-521"}) {
    const PolicyResult r = check_public_key(ec_key(ok).get());
    EXPECT_TRUE(r.ok()) << ok << ": " << r.error;
    EXPECT_TRUE((r.warnings).empty());
  }
  for (const char* bad : {"secp224r1", "secp192k1", "prime192v1", "secp256k1", "brainpoolP256r1"}) {
    const PolicyResult r = check_public_key(ec_key(bad).get());
    EXPECT_TRUE(has(r.error, "EC key on curve ")) << bad;
    EXPECT_TRUE(has(r.error, "(allowed: P-256, P-384, P-521)")) << bad;
  }
  EXPECT_EQ(check_public_key(ec_key("secp224r1").get()).error,
            "EC key on curve secp224r1 (allowed: P-256, P-384, P-521)");
}

TEST(CryptoPolicy, OtherKeyTypes) {
  EXPECT_TRUE(check_public_key(raw_key("ED25519").get()).ok());
  EXPECT_TRUE(check_public_key(raw_key("ED448").get()).ok());
  EXPECT_EQ(check_public_key(raw_key("X25519").get()).error, "key type X25519 not allowed");
  EXPECT_EQ(check_public_key(nullptr).error, "no public key");
  // DSA (1024-bit parameters: quick to make; any size is refused).
  std::unique_ptr<EVP_PKEY_CTX, decltype(&EVP_PKEY_CTX_free)> pctx(EVP_PKEY_CTX_new_from_name(nullptr, "DSA", nullptr),
                                                                   EVP_PKEY_CTX_free);
  EVP_PKEY* params = nullptr;
  ASSERT_TRUE(pctx && EVP_PKEY_paramgen_init(pctx.get()) == 1 &&
              EVP_PKEY_CTX_set_dsa_paramgen_bits(pctx.get(), 1024) == 1 && EVP_PKEY_paramgen(pctx.get(), &params) == 1);
  const PrivateKey p(params);
  std::unique_ptr<EVP_PKEY_CTX, decltype(&EVP_PKEY_CTX_free)> kctx(EVP_PKEY_CTX_new(params, nullptr),
                                                                   EVP_PKEY_CTX_free);
  EVP_PKEY* dsa = nullptr;
  ASSERT_TRUE(kctx && EVP_PKEY_keygen_init(kctx.get()) == 1 && EVP_PKEY_keygen(kctx.get(), &dsa) == 1);
  const PrivateKey d(dsa);
  EXPECT_EQ(check_public_key(d.get()).error, "DSA keys are not allowed");
}

TEST(CryptoPolicy, KeysOfTheKeyStore) {
  const fs::path dir = cg::test::make_temp_dir("policy-ks");
  {
    auto store = open_file_key_store({dir / "keys"});
    store->generate_key("ec", KeyType::EcP256);
    store->generate_key("ec384", KeyType::EcP384);
    EXPECT_TRUE(check_public_key(store->private_key("ec").get()).ok());
    EXPECT_TRUE(check_public_key(store->private_key("ec384").get()).ok());
  }
  fs::remove_all(dir);
}

// ---- certificate signatures

TEST(CryptoPolicy, CertificateSignatureDigests) {
  const PrivateKey rsa = rsa_key(3072);
  // (SHA-512/256 with RSA: OpenSSL 3.0 cannot describe that signature (X509_get_signature_info
  // fails), so it is refused as "unknown or invalid"; not tested as allowed.)
  for (const EVP_MD* md : {EVP_sha256(), EVP_sha384(), EVP_sha512(), EVP_sha3_256(), EVP_sha3_512()}) {
    const PolicyResult r = check_certificate(self_signed(rsa.get(), {.cn = "T", .md = md}).get());
    EXPECT_TRUE(r.ok()) << EVP_MD_get0_name(md) << ": " << r.error;
    EXPECT_TRUE((r.warnings).empty()) << EVP_MD_get0_name(md);
  }
  PolicyResult r = check_certificate(self_signed(rsa.get(), {.cn = "T", .md = EVP_sha224()}).get());
  EXPECT_TRUE(r.ok()) << r.error;
  EXPECT_EQ(r.warnings, std::vector<std::string>{"signature digest SHA224 (below the SHA-256 goal)"});

  EXPECT_EQ(check_certificate(self_signed(rsa.get(), {.cn = "T", .md = EVP_sha1()}).get()).error,
            "signature digest SHA1 not allowed");
  // MD5 with RSA can still be made with the default provider.
  EXPECT_EQ(check_certificate(self_signed(rsa.get(), {.cn = "T", .md = EVP_md5()}).get()).error,
            "signature digest MD5 not allowed");
  const PrivateKey ec = ec_key("P-256");
  EXPECT_EQ(check_certificate(self_signed(ec.get(), {.cn = "T", .md = EVP_sha1()}).get()).error,
            "signature digest SHA1 not allowed");
  EXPECT_TRUE(check_certificate(self_signed(ec.get(), {.cn = "T", .md = EVP_sha384()}).get()).ok());
  EXPECT_EQ(check_certificate(nullptr).error, "no certificate");
}

TEST(CryptoPolicy, EdDsaCertificatesNeedNoDigest) {
  for (const char* type : {"ED25519", "ED448"}) {
    const PrivateKey k = raw_key(type);
    const PolicyResult r = check_certificate(self_signed(k.get(), {.cn = "T", .md = nullptr}).get());
    EXPECT_TRUE(r.ok()) << type << ": " << r.error;
  }
}

TEST(CryptoPolicy, RsaPssSignatures) {
  const PrivateKey rsa = rsa_key(3072);
  EXPECT_TRUE(check_certificate(self_signed(rsa.get(), {.cn = "T", .pss = true}).get()).ok());
  EXPECT_TRUE(check_certificate(self_signed(rsa.get(), {.cn = "T", .md = EVP_sha512(), .pss = true}).get()).ok());
  EXPECT_EQ(check_certificate(self_signed(rsa.get(), {.cn = "T", .md = EVP_sha1(), .pss = true}).get()).error,
            "signature digest SHA1 not allowed");
  EXPECT_EQ(check_certificate(
                self_signed(rsa.get(), {.cn = "T", .md = EVP_sha256(), .pss = true, .mgf1_md = EVP_sha1()}).get())
                .error,
            "RSA-PSS MGF1 digest SHA1 not allowed");
}

TEST(CryptoPolicy, CertificateKeyIsChecked) {
  const PrivateKey ca = ec_key("P-256");
  const X509Ptr root = self_signed(ca.get(), {.cn = "Root", .ca = true});
  const PrivateKey weak = rsa_key(1024);
  EXPECT_EQ(check_certificate(issue({.cn = "leaf"}, weak.get(), root.get(), ca.get()).get()).error,
            "RSA key of 1024 bits (minimum 2048)");
  const PrivateKey k224 = ec_key("secp224r1");
  EXPECT_TRUE(has(check_certificate(issue({.cn = "leaf"}, k224.get(), root.get(), ca.get()).get()).error, "secp224r1"));
  const PrivateKey k2048 = rsa_key(2048);
  const PolicyResult r = check_certificate(issue({.cn = "leaf"}, k2048.get(), root.get(), ca.get()).get());
  EXPECT_TRUE(r.ok());
  EXPECT_EQ(r.warnings.size(), 1u);
}

TEST(CryptoPolicy, UnknownSignatureAlgorithmIsRefused) {
  const PrivateKey k = ec_key("P-256");
  const X509Ptr c = self_signed(k.get());
  unsigned char* der = nullptr;
  const int n = i2d_X509(c.get(), &der);
  ASSERT_GT(n, 0);
  std::vector<unsigned char> bytes(der, der + n);
  OPENSSL_free(der);
  // ecdsa-with-SHA256 (1.2.840.10045.4.3.2) -> 1.2.840.10045.4.3.9, in the TBS and outside.
  const std::vector<unsigned char> oid = {0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02};
  int replaced = 0;
  for (auto it = std::search(bytes.begin(), bytes.end(), oid.begin(), oid.end()); it != bytes.end();
       it = std::search(it + 1, bytes.end(), oid.begin(), oid.end())) {
    *(it + 9) = 0x09;
    ++replaced;
  }
  ASSERT_EQ(replaced, 2);
  const unsigned char* p = bytes.data();
  const X509Ptr odd(d2i_X509(nullptr, &p, static_cast<long>(bytes.size())));
  ASSERT_TRUE(odd);
  EXPECT_EQ(check_certificate(odd.get()).error, "signature algorithm 1.2.840.10045.4.3.9 unknown or invalid");
}

TEST(CryptoPolicy, UndecodableExtensionsAreRefused) {
  const PrivateKey k = ec_key("P-256");
  X509Ptr c(X509_new());
  ASSERT_EQ(X509_set_version(c.get(), X509_VERSION_3), 1);
  X509_gmtime_adj(X509_getm_notBefore(c.get()), 0);
  X509_gmtime_adj(X509_getm_notAfter(c.get()), 3600);
  X509_set_pubkey(c.get(), k.get());
  // basicConstraints whose value is not a BasicConstraints SEQUENCE.
  std::unique_ptr<ASN1_OCTET_STRING, decltype(&ASN1_OCTET_STRING_free)> junk(ASN1_OCTET_STRING_new(),
                                                                             ASN1_OCTET_STRING_free);
  ASSERT_EQ(ASN1_OCTET_STRING_set(junk.get(), reinterpret_cast<const unsigned char*>("\x04\x01x"), 3), 1);
  X509_EXTENSION* ext = X509_EXTENSION_create_by_NID(nullptr, NID_basic_constraints, 1, junk.get());
  ASSERT_TRUE(ext);
  ASSERT_EQ(X509_add_ext(c.get(), ext, -1), 1);
  X509_EXTENSION_free(ext);
  ASSERT_GT(X509_sign(c.get(), k.get(), EVP_sha256()), 0);
  // Decoded afresh, as a received certificate would be.
  std::string err;
  const X509Ptr back = parse_pem_certificate(to_pem(c.get()), err);
  ASSERT_TRUE(back) << err;
  EXPECT_EQ(check_certificate(back.get()).error, "certificate extensions cannot be decoded");
}

struct StackFree {  // the stack only
  void operator()(STACK_OF(X509) * s) const noexcept { sk_X509_free(s); }
};
using StackPtr = std::unique_ptr<STACK_OF(X509), StackFree>;

TEST(CryptoPolicy, ChainPositionsAndWarnings) {
  const PrivateKey rk = rsa_key(2048), ik = ec_key("P-256"), lk = ec_key("P-256");
  const X509Ptr root = self_signed(rk.get(), {.cn = "Root", .ca = true});
  const X509Ptr inter = issue({.cn = "Sub", .ca = true, .md = EVP_sha1()}, ik.get(), root.get(), rk.get());
  const X509Ptr leaf = issue({.cn = "Leaf"}, lk.get(), inter.get(), ik.get());
  const StackPtr sk(sk_X509_new_null());
  sk_X509_push(sk.get(), leaf.get());
  PolicyResult r = check_chain(sk.get());
  EXPECT_TRUE(r.ok());
  sk_X509_push(sk.get(), inter.get());
  sk_X509_push(sk.get(), root.get());
  r = check_chain(sk.get());
  EXPECT_EQ(r.error, "certificate 1 (CN=Sub): signature digest SHA1 not allowed");
  sk_X509_set(sk.get(), 1, issue({.cn = "Sub", .ca = true}, ik.get(), root.get(), rk.get()).release());
  X509Ptr owned(sk_X509_value(sk.get(), 1));  // freed at the end
  r = check_chain(sk.get());
  EXPECT_TRUE(r.ok()) << r.error;
  EXPECT_EQ(r.warnings, std::vector<std::string>{"root (CN=Root): RSA key of 2048 bits (below the 3072-bit goal)"});
  EXPECT_EQ(check_chain(nullptr).error, "empty certificate chain");
  const StackPtr empty(sk_X509_new_null());
  EXPECT_EQ(check_chain(empty.get()).error, "empty certificate chain");
}

// ---- TLS: configure_tls_client against real servers

struct Outcome {
  bool ok = false;
  long verify_result = X509_V_OK;
  std::string error;
  int version = 0;
  int group_nid = NID_undef;
  int peer_sig_type = NID_undef;
};

using cg::test::ssl_errors;

// One handshake, client and server in this thread over a BIO pair.
Outcome handshake(SSL_CTX* server_ctx, SSL_CTX* client_ctx) {
  Outcome r;
  auto p = cg::test::tls_handshake(server_ctx, client_ctx);
  r.verify_result = SSL_get_verify_result(p.client.get());
  r.error = p.error.empty() ? cg::test::tls_exchange(p, false) : p.error;
  if (!r.error.empty()) return r;
  r.version = SSL_version(p.client.get());
  r.group_nid = SSL_get_negotiated_group(p.client.get());
  SSL_get_peer_signature_type_nid(p.client.get(), &r.peer_sig_type);
  r.ok = true;
  return r;
}

using SslCtxPtr = std::unique_ptr<SSL_CTX, decltype(&SSL_CTX_free)>;

class TlsClientPolicy : public ::testing::Test {
 protected:
  void SetUp() override { dir_ = cg::test::make_temp_dir("tlspolicy"); }
  void TearDown() override { fs::remove_all(dir_); }

  // A server for localhost: leaf (+ chain) and key; security level 0 so that
  // it can present weak certificates at all.
  static SslCtxPtr server(const X509* leaf, EVP_PKEY* key, std::vector<const X509*> chain = {}) {
    SslCtxPtr ctx(SSL_CTX_new(TLS_server_method()), SSL_CTX_free);
    SSL_CTX_set_security_level(ctx.get(), 0);
    EXPECT_EQ(SSL_CTX_use_certificate(ctx.get(), const_cast<X509*>(leaf)), 1) << ssl_errors();
    for (const X509* c : chain) EXPECT_EQ(SSL_CTX_add1_chain_cert(ctx.get(), const_cast<X509*>(c)), 1);
    EXPECT_EQ(SSL_CTX_use_PrivateKey(ctx.get(), key), 1) << ssl_errors();
    return ctx;
  }

  // The station's client, as the OCPP connection configures it.
  SslCtxPtr client(const X509* root) {
    const fs::path ca = dir_ / "ca.pem";
    std::ofstream(ca, std::ios::trunc) << to_pem(root);
    SslCtxPtr ctx(SSL_CTX_new(TLS_client_method()), SSL_CTX_free);
    EXPECT_TRUE(configure_tls_client(ctx.get(), ca.string()).ok());
    return ctx;
  }

  // A client with the same trust and OpenSSL's security level 2, without the policy hook.
  SslCtxPtr plain_client(const X509* root) {
    SslCtxPtr ctx(SSL_CTX_new(TLS_client_method()), SSL_CTX_free);
    SSL_CTX_set_security_level(ctx.get(), 2);
    X509_STORE_add_cert(SSL_CTX_get_cert_store(ctx.get()), const_cast<X509*>(root));
    SSL_CTX_set_verify(ctx.get(), SSL_VERIFY_PEER, nullptr);
    return ctx;
  }

  static X509Ptr server_cert(EVP_PKEY* key, const X509* issuer, EVP_PKEY* issuer_key, const EVP_MD* md = EVP_sha256()) {
    return issue({.cn = "localhost", .md = md, .eku = "serverAuth", .san = "DNS:localhost"}, key, issuer, issuer_key);
  }

  fs::path dir_;
  PrivateKey root_key = ec_key("P-256");
  X509Ptr root = issue({.cn = "CSMS Root", .ca = true}, root_key.get(), nullptr, root_key.get());
};

TEST_F(TlsClientPolicy, GoodP256ServerConnects) {
  const PrivateKey k = ec_key("P-256");
  const X509Ptr leaf = server_cert(k.get(), root.get(), root_key.get());
  const auto s = server(leaf.get(), k.get());
  const Outcome o = handshake(s.get(), client(root.get()).get());
  ASSERT_TRUE(o.ok) << o.error;
  EXPECT_EQ(o.verify_result, X509_V_OK);
  EXPECT_EQ(o.version, TLS1_3_VERSION);
  EXPECT_EQ(o.group_nid, NID_X25519);
}

TEST_F(TlsClientPolicy, Rsa1024ServerIsRefused) {
  const PrivateKey k = rsa_key(1024);
  const X509Ptr leaf = server_cert(k.get(), root.get(), root_key.get());
  const auto s = server(leaf.get(), k.get());
  const Outcome o = handshake(s.get(), client(root.get()).get());
  EXPECT_FALSE(o.ok);
  EXPECT_EQ(o.verify_result, X509_V_ERR_EE_KEY_TOO_SMALL) << X509_verify_cert_error_string(o.verify_result);
}

TEST_F(TlsClientPolicy, Sha1SignedServerIsRefused) {
  const PrivateKey k = ec_key("P-256");
  const X509Ptr leaf = server_cert(k.get(), root.get(), root_key.get(), EVP_sha1());
  const auto s = server(leaf.get(), k.get());
  const Outcome o = handshake(s.get(), client(root.get()).get());
  EXPECT_FALSE(o.ok);
  EXPECT_NE(o.verify_result, X509_V_OK);
  EXPECT_EQ(o.verify_result, X509_V_ERR_CA_MD_TOO_WEAK) << X509_verify_cert_error_string(o.verify_result);
}

// What OpenSSL's security level does not look at, the policy hook does: the
// trust anchor's own signature, and curves other than P-256/384/521.
TEST_F(TlsClientPolicy, Sha1SelfSignedRootIsRefusedByTheHook) {
  const X509Ptr sha1_root =
      issue({.cn = "CSMS Root", .ca = true, .md = EVP_sha1()}, root_key.get(), nullptr, root_key.get());
  const PrivateKey k = ec_key("P-256");
  const X509Ptr leaf = server_cert(k.get(), sha1_root.get(), root_key.get());
  const auto s = server(leaf.get(), k.get());
  const Outcome plain = handshake(s.get(), plain_client(sha1_root.get()).get());
  EXPECT_TRUE(plain.ok) << "without the hook OpenSSL accepts it: " << plain.error;
  const Outcome o = handshake(s.get(), client(sha1_root.get()).get());
  EXPECT_FALSE(o.ok);
  EXPECT_EQ(o.verify_result, X509_V_ERR_CA_MD_TOO_WEAK) << X509_verify_cert_error_string(o.verify_result);
}

TEST_F(TlsClientPolicy, Secp256k1CaIsRefusedByTheHook) {
  const PrivateKey ck = ec_key("secp256k1");
  const X509Ptr k1_root = issue({.cn = "K1 Root", .ca = true}, ck.get(), nullptr, ck.get());
  const PrivateKey k = ec_key("P-256");
  const X509Ptr leaf = server_cert(k.get(), k1_root.get(), ck.get());
  const auto s = server(leaf.get(), k.get());
  EXPECT_TRUE(handshake(s.get(), plain_client(k1_root.get()).get()).ok);
  const Outcome o = handshake(s.get(), client(k1_root.get()).get());
  EXPECT_FALSE(o.ok);
  EXPECT_EQ(o.verify_result, X509_V_ERR_CA_KEY_TOO_SMALL) << X509_verify_cert_error_string(o.verify_result);
}

TEST_F(TlsClientPolicy, HookSurvivesALaterSetVerify) {
  // The syslog forwarder calls SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nullptr) after configure_tls_client.
  const X509Ptr sha1_root =
      issue({.cn = "CSMS Root", .ca = true, .md = EVP_sha1()}, root_key.get(), nullptr, root_key.get());
  const PrivateKey k = ec_key("P-256");
  const X509Ptr leaf = server_cert(k.get(), sha1_root.get(), root_key.get());
  const auto s = server(leaf.get(), k.get());
  auto c = client(sha1_root.get());
  SSL_CTX_set_verify(c.get(), SSL_VERIFY_PEER, nullptr);
  const Outcome o = handshake(s.get(), c.get());
  EXPECT_FALSE(o.ok);
  EXPECT_EQ(o.verify_result, X509_V_ERR_CA_MD_TOO_WEAK);
}

TEST_F(TlsClientPolicy, WeakIntermediateIsRefused) {
  const PrivateKey ik = rsa_key(1024);
  const X509Ptr inter = issue({.cn = "Sub", .ca = true}, ik.get(), root.get(), root_key.get());
  const PrivateKey k = ec_key("P-256");
  const X509Ptr leaf = server_cert(k.get(), inter.get(), ik.get());
  const auto s = server(leaf.get(), k.get(), {inter.get()});
  const Outcome o = handshake(s.get(), client(root.get()).get());
  EXPECT_FALSE(o.ok);
  EXPECT_EQ(o.verify_result, X509_V_ERR_CA_KEY_TOO_SMALL) << X509_verify_cert_error_string(o.verify_result);
}

TEST_F(TlsClientPolicy, RsaServersWithTls12Pkcs1AndTls13Pss) {
  const PrivateKey k = rsa_key(3072);
  const X509Ptr leaf = server_cert(k.get(), root.get(), root_key.get());
  // TLS 1.2, RSA PKCS#1 with SHA-256 only on the server side.
  auto s12 = server(leaf.get(), k.get());
  SSL_CTX_set_max_proto_version(s12.get(), TLS1_2_VERSION);
  ASSERT_EQ(SSL_CTX_set1_sigalgs_list(s12.get(), "RSA+SHA256"), 1);
  Outcome o = handshake(s12.get(), client(root.get()).get());
  ASSERT_TRUE(o.ok) << o.error;
  EXPECT_EQ(o.version, TLS1_2_VERSION);
  EXPECT_EQ(o.peer_sig_type, NID_rsaEncryption);
  // TLS 1.3: RSA-PSS; an RSA-2048 server is accepted (warning level only).
  const PrivateKey k2 = rsa_key(2048);
  const X509Ptr leaf2 = server_cert(k2.get(), root.get(), root_key.get());
  const auto s13 = server(leaf2.get(), k2.get());
  o = handshake(s13.get(), client(root.get()).get());
  ASSERT_TRUE(o.ok) << o.error;
  EXPECT_EQ(o.version, TLS1_3_VERSION);
  EXPECT_EQ(o.peer_sig_type, NID_rsassaPss);
}

TEST_F(TlsClientPolicy, SignatureAlgorithmsAndGroupsAreRestricted) {
  const PrivateKey k = ec_key("P-256");
  const X509Ptr leaf = server_cert(k.get(), root.get(), root_key.get());
  // ECDSA with SHA-224 is fine for OpenSSL's level 2, not in our list.
  auto s = server(leaf.get(), k.get());
  SSL_CTX_set_max_proto_version(s.get(), TLS1_2_VERSION);
  ASSERT_EQ(SSL_CTX_set1_sigalgs_list(s.get(), "ECDSA+SHA224"), 1);
  EXPECT_TRUE(handshake(s.get(), plain_client(root.get()).get()).ok);
  EXPECT_FALSE(handshake(s.get(), client(root.get()).get()).ok);
  // Groups: P-521 only is refused; P-384 is accepted.
  auto s521 = server(leaf.get(), k.get());
  ASSERT_EQ(SSL_CTX_set1_groups_list(s521.get(), "P-521"), 1);
  EXPECT_FALSE(handshake(s521.get(), client(root.get()).get()).ok);
  auto s384 = server(leaf.get(), k.get());
  ASSERT_EQ(SSL_CTX_set1_groups_list(s384.get(), "P-384"), 1);
  const Outcome o = handshake(s384.get(), client(root.get()).get());
  ASSERT_TRUE(o.ok) << o.error;
  EXPECT_EQ(o.group_nid, NID_secp384r1);
}

}  // namespace
