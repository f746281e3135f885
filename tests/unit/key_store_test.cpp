// Key store (security/key_store.hpp): both backends, against a SoftHSM2 token
// set up here in a temporary directory (own SOFTHSM2_CONF and token directory,
// random PINs made at test time). Without SoftHSM2 the PKCS#11 tests fail.
#include "security/key_store.hpp"

#include <gtest/gtest.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <algorithm>
#include <fstream>
#include <iterator>
#include <sstream>

#include "security/tls_client.hpp"
#include "programs.hpp"
#include "softhsm.hpp"
#include "test_util.hpp"
#include "tls_pair.hpp"

namespace {

namespace fs = std::filesystem;
using namespace cg::security;

using X509Ptr = std::unique_ptr<X509, decltype(&X509_free)>;
using SslCtxPtr = std::unique_ptr<SSL_CTX, decltype(&SSL_CTX_free)>;

using cg::test::random_hex;
using cg::test::SoftHsm;

void write_file(const fs::path& p, const std::string& data, mode_t mode) {
  std::ofstream(p, std::ios::binary | std::ios::trunc) << data;
  ::chmod(p.c_str(), mode);
}

std::string read_file(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

// A store of either backend in a fresh state directory. For PKCS#11 the PIN
// file (mode 0600) is in the state directory and the token is SoftHSM's.
struct StoreEnv {
  std::string backend;
  fs::path state;
  SoftHsm::Token token, other_token;

  explicit StoreEnv(std::string b) : backend(std::move(b)), state(cg::test::make_temp_dir("keystore")) {
    if (backend != "pkcs11") return;
    try {
      token = SoftHsm::get().new_token();
      other_token = SoftHsm::get().new_token();
    } catch (...) {
      fs::remove_all(state);
      throw;
    }
    write_file(state / "token.pin", token.user_pin + "\n", 0600);
    write_file(state / "other.pin", other_token.user_pin + "\n", 0600);
  }
  ~StoreEnv() { fs::remove_all(state); }

  std::unique_ptr<KeyStore> open(bool other = false) const {
    if (backend == "file") return open_file_key_store({state / (other ? "other-keys" : "keys")});
    return open_pkcs11_key_store(
        {kSoftHsm2Module, other ? other_token.label : token.label, state / (other ? "other.pin" : "token.pin")});
  }
};

template <typename F>
KeyStoreErrc error_code_of(F&& f, std::string* what = nullptr) {
  try {
    f();
  } catch (const KeyStoreError& e) {
    if (what) *what = e.what();
    return e.code();
  }
  ADD_FAILURE() << "no KeyStoreError thrown";
  return KeyStoreErrc::Backend;
}

// ---- a small PKI and TLS over a BIO pair ------------------------------------

PrivateKey new_ec_key() {
  return PrivateKey(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256"));
}

X509Ptr issue(X509_NAME* subject, EVP_PKEY* pub, EVP_PKEY* ca_key, X509* ca, const char* ext_bc, const char* eku,
              const char* san) {
  X509Ptr c(X509_new(), X509_free);
  X509_set_version(c.get(), X509_VERSION_3);
  ASN1_INTEGER_set_int64(X509_get_serialNumber(c.get()),
                         static_cast<int64_t>(std::hash<std::string>{}(random_hex(8)) >> 2));
  X509_gmtime_adj(X509_getm_notBefore(c.get()), -60);
  X509_gmtime_adj(X509_getm_notAfter(c.get()), 3600);
  X509_set_subject_name(c.get(), subject);
  X509_set_issuer_name(c.get(), ca ? X509_get_subject_name(ca) : subject);
  X509_set_pubkey(c.get(), pub);
  X509V3_CTX v3;
  X509V3_set_ctx(&v3, ca ? ca : c.get(), c.get(), nullptr, nullptr, 0);
  auto add = [&](int nid, const char* value) {
    if (!value) return;
    X509_EXTENSION* e = X509V3_EXT_conf_nid(nullptr, &v3, nid, value);
    X509_add_ext(c.get(), e, -1);
    X509_EXTENSION_free(e);
  };
  add(NID_basic_constraints, ext_bc);
  add(NID_ext_key_usage, eku);
  add(NID_subject_alt_name, san);
  X509_sign(c.get(), ca_key, EVP_sha256());
  return c;
}

struct TestPki {
  PrivateKey ca_key = new_ec_key();
  X509Ptr ca{nullptr, X509_free};
  PrivateKey server_key = new_ec_key();
  X509Ptr server{nullptr, X509_free};

  TestPki() {
    std::unique_ptr<X509_NAME, decltype(&X509_NAME_free)> n(X509_NAME_new(), X509_NAME_free);
    X509_NAME_add_entry_by_txt(n.get(), "CN", MBSTRING_ASC, reinterpret_cast<const unsigned char*>("test CA"), -1, -1,
                               0);
    ca = issue(n.get(), ca_key.get(), ca_key.get(), nullptr, "critical,CA:TRUE", nullptr, nullptr);
    std::unique_ptr<X509_NAME, decltype(&X509_NAME_free)> s(X509_NAME_new(), X509_NAME_free);
    X509_NAME_add_entry_by_txt(s.get(), "CN", MBSTRING_ASC, reinterpret_cast<const unsigned char*>("localhost"), -1, -1,
                               0);
    server =
        issue(s.get(), server_key.get(), ca_key.get(), ca.get(), "critical,CA:FALSE", "serverAuth", "DNS:localhost");
  }

  // The station certificate, issued from the store's CSR.
  X509Ptr sign_csr(const std::string& csr_pem) const {
    std::unique_ptr<BIO, decltype(&BIO_free)> b(BIO_new_mem_buf(csr_pem.data(), static_cast<int>(csr_pem.size())),
                                                BIO_free);
    std::unique_ptr<X509_REQ, decltype(&X509_REQ_free)> req(PEM_read_bio_X509_REQ(b.get(), nullptr, nullptr, nullptr),
                                                            X509_REQ_free);
    if (!req || X509_REQ_verify(req.get(), X509_REQ_get0_pubkey(req.get())) != 1) return X509Ptr(nullptr, X509_free);
    return issue(X509_REQ_get_subject_name(req.get()), X509_REQ_get0_pubkey(req.get()), ca_key.get(), ca.get(),
                 "critical,CA:FALSE", "clientAuth", nullptr);
  }

  void write_ca(const fs::path& file) const {
    std::unique_ptr<BIO, decltype(&BIO_free)> b(BIO_new_file(file.c_str(), "w"), BIO_free);
    PEM_write_bio_X509(b.get(), ca.get());
  }

  SslCtxPtr server_ctx() const {
    SslCtxPtr ctx(SSL_CTX_new(TLS_server_method()), SSL_CTX_free);
    SSL_CTX_use_certificate(ctx.get(), server.get());
    SSL_CTX_use_PrivateKey(ctx.get(), server_key.get());
    X509_STORE_add_cert(SSL_CTX_get_cert_store(ctx.get()), ca.get());
    SSL_CTX_set_verify(ctx.get(), SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, nullptr);
    return ctx;
  }
};

struct Handshake {
  bool ok = false;
  std::string error;
  int version = 0;
  int client_sig_nid = NID_undef;  // what the client signed CertificateVerify with
  std::string client_cn;
};

using cg::test::ssl_errors;

Handshake handshake(SSL_CTX* server_ctx, SSL_CTX* client_ctx) {
  Handshake r;
  auto p = cg::test::tls_handshake(server_ctx, client_ctx);
  // Application data both ways (TLS 1.3: the server has checked the client's
  // certificate and CertificateVerify once its handshake completed).
  r.error = p.error.empty() ? cg::test::tls_exchange(p, true) : p.error;
  if (!r.error.empty()) return r;
  SSL* s = p.server.get();
  X509* peer = SSL_get0_peer_certificate(s);
  if (!peer || SSL_get_verify_result(s) != X509_V_OK) {
    r.error = "server did not verify a client certificate";
    return r;
  }
  char cn[128] = {};
  X509_NAME_get_text_by_NID(X509_get_subject_name(peer), NID_commonName, cn, sizeof cn);
  r.client_cn = cn;
  r.version = SSL_version(p.client.get());
  SSL_get_peer_signature_type_nid(s, &r.client_sig_nid);
  r.ok = true;
  return r;
}

// Files under `dir` that hold a private key: a PEM private-key block, or DER
// that OpenSSL decodes as a private key at any offset.
std::vector<std::string> private_key_traces(const fs::path& dir) {
  const std::string pem_marker = std::string("PRIVATE") + " KEY-----";  // never literal in the source
  std::vector<std::string> found;
  for (const auto& e : fs::recursive_directory_iterator(dir)) {
    if (!e.is_regular_file()) continue;
    const std::string data = read_file(e.path());
    if (data.find(pem_marker) != std::string::npos) {
      found.push_back(e.path().string() + " (PEM)");
      continue;
    }
    const auto* bytes = reinterpret_cast<const unsigned char*>(data.data());
    for (std::size_t i = 0; i < data.size(); ++i) {
      if (bytes[i] != 0x30) continue;
      const unsigned char* p = bytes + i;
      if (EVP_PKEY* k = d2i_AutoPrivateKey(nullptr, &p, static_cast<long>(data.size() - i))) {
        EVP_PKEY_free(k);
        found.push_back(e.path().string() + " (DER at " + std::to_string(i) + ")");
        break;
      }
    }
    ERR_clear_error();
  }
  return found;
}

std::string backend_name(const ::testing::TestParamInfo<std::string>& i) {
  return i.param;
}

// ---- both backends -------------------------------------------------------------

class KeyStoreBackend : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    try {
      env_ = std::make_unique<StoreEnv>(GetParam());
      store_ = env_->open();
    } catch (const std::exception& e) {
      FAIL() << "cannot set up the " << GetParam() << " key store: " << e.what();
    }
  }
  void TearDown() override {
    store_.reset();
    env_.reset();
  }
  bool pkcs11() const { return GetParam() == "pkcs11"; }

  std::unique_ptr<StoreEnv> env_;
  std::unique_ptr<KeyStore> store_;
};

TEST_P(KeyStoreBackend, GenerateFindListDelete) {
  ASSERT_TRUE(store_);
  EXPECT_EQ(store_->backend(), GetParam());
  EXPECT_TRUE(store_->list_keys().empty());
  const KeyInfo a = store_->generate_key("station");
  EXPECT_EQ(a.label, "station");
  EXPECT_EQ(a.type, KeyType::EcP256);
  EXPECT_EQ(a.non_exportable, pkcs11());
  store_->generate_key("station.next", KeyType::EcP384);

  const auto f = store_->find_key("station.next");
  ASSERT_TRUE(f);
  EXPECT_EQ(f->type, KeyType::EcP384);
  EXPECT_EQ(f->non_exportable, pkcs11());
  EXPECT_FALSE(store_->find_key("nothing"));
  EXPECT_EQ(store_->list_keys(), (std::vector<std::string>{"station", "station.next"}));

  EXPECT_EQ(error_code_of([&] { store_->generate_key("station"); }), KeyStoreErrc::KeyExists);
  EXPECT_TRUE(store_->delete_key("station"));
  EXPECT_FALSE(store_->delete_key("station"));
  EXPECT_FALSE(store_->find_key("station"));
  EXPECT_EQ(store_->list_keys(), std::vector<std::string>{"station.next"});
  std::string what;
  EXPECT_EQ(error_code_of([&] { store_->private_key("station"); }, &what), KeyStoreErrc::KeyNotFound);
  EXPECT_NE(what.find("station"), std::string::npos) << what;

  // The label is free again; the new key is a different one.
  const auto old_spki = store_->public_key_der("station.next");
  store_->delete_key("station.next");
  store_->generate_key("station.next", KeyType::EcP384);
  EXPECT_NE(store_->public_key_der("station.next"), old_spki);
}

TEST_P(KeyStoreBackend, RejectsBadLabels) {
  ASSERT_TRUE(store_);
  for (const std::string& bad :
       {std::string(), std::string(65, 'a'), std::string("../x"), std::string(".hidden"), std::string("a b"),
        std::string("a/b"), std::string("\xc3\xa4"), std::string("a\nb")}) {
    EXPECT_EQ(error_code_of([&] { store_->generate_key(bad); }), KeyStoreErrc::InvalidArgument) << bad;
    EXPECT_EQ(error_code_of([&] { store_->find_key(bad); }), KeyStoreErrc::InvalidArgument) << bad;
    EXPECT_EQ(error_code_of([&] { store_->private_key(bad); }), KeyStoreErrc::InvalidArgument) << bad;
    EXPECT_EQ(error_code_of([&] { store_->delete_key(bad); }), KeyStoreErrc::InvalidArgument) << bad;
  }
  EXPECT_NO_THROW(store_->generate_key(std::string(64, 'k')));
  EXPECT_TRUE(store_->list_keys().size() == 1);
}

TEST_P(KeyStoreBackend, RotationPromotesTheNewKey) {
  ASSERT_TRUE(store_);
  store_->generate_key("station");
  const auto old_spki = store_->public_key_der("station");
  store_->generate_key("station.next");
  const auto new_spki = store_->public_key_der("station.next");
  EXPECT_NE(old_spki, new_spki);

  EXPECT_EQ(error_code_of([&] { store_->rename_key("station.next", "station"); }), KeyStoreErrc::KeyExists);
  EXPECT_EQ(error_code_of([&] { store_->rename_key("missing", "other"); }), KeyStoreErrc::KeyNotFound);

  // The old key stays usable until the promotion.
  EXPECT_TRUE(store_->private_key("station"));
  store_->promote_key("station.next", "station");
  EXPECT_EQ(store_->list_keys(), std::vector<std::string>{"station"});
  EXPECT_EQ(store_->public_key_der("station"), new_spki);
  EXPECT_NO_THROW(store_->promote_key("station.next", "station"));  // done already: no-op
  EXPECT_EQ(error_code_of([&] { store_->promote_key("a", "b"); }), KeyStoreErrc::KeyNotFound);

  // Promotion when there was no active key yet (interrupted earlier).
  store_->generate_key("x.next");
  store_->promote_key("x.next", "x");
  EXPECT_EQ(store_->list_keys(), (std::vector<std::string>{"station", "x"}));
}

TEST_P(KeyStoreBackend, KeysAndSealingKeyPersistAcrossReopen) {
  ASSERT_TRUE(store_);
  store_->generate_key("station", KeyType::EcP256);
  const auto spki = store_->public_key_der("station");
  const auto blob = store_->seal("ocpp.basic-auth-password", "persist-me");
  store_.reset();
  store_ = env_->open();
  EXPECT_EQ(store_->public_key_der("station"), spki);
  EXPECT_EQ(store_->unseal("ocpp.basic-auth-password", blob).view(), "persist-me");
}

// FW-5: the anti-rollback floor's counter never goes down and survives a reopen.
TEST_P(KeyStoreBackend, CountersOnlyRiseAndPersist) {
  ASSERT_TRUE(store_);
  EXPECT_FALSE(store_->read_counter("firmware.security-floor"));
  EXPECT_EQ(store_->raise_counter("firmware.security-floor", 3), 3u);
  EXPECT_EQ(store_->read_counter("firmware.security-floor"), 3u);
  EXPECT_EQ(store_->raise_counter("firmware.security-floor", 2), 3u);  // never lowered
  EXPECT_EQ(store_->raise_counter("firmware.security-floor", 3), 3u);  // same value again: fine
  EXPECT_EQ(store_->raise_counter("firmware.security-floor", 0x1'0000'0001ull), 0x1'0000'0001ull);
  EXPECT_FALSE(store_->read_counter("other"));  // counters are separate
  EXPECT_TRUE(store_->list_keys().empty());     // and are not keys
  EXPECT_EQ(error_code_of([&] { store_->raise_counter("../x", 1); }), KeyStoreErrc::InvalidArgument);
  store_.reset();
  store_ = env_->open();
  EXPECT_EQ(store_->read_counter("firmware.security-floor"), 0x1'0000'0001ull);
  EXPECT_EQ(store_->raise_counter("firmware.security-floor", 7), 0x1'0000'0001ull);
}

TEST_P(KeyStoreBackend, CsrHasSubjectAndVerifies) {
  ASSERT_TRUE(store_);
  store_->generate_key("station");
  const std::string pem = make_csr_pem(*store_, "station", {"CS001-0042", "Stadtwerke M\xc3\xbcnchen"});
  std::unique_ptr<BIO, decltype(&BIO_free)> b(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())), BIO_free);
  std::unique_ptr<X509_REQ, decltype(&X509_REQ_free)> req(PEM_read_bio_X509_REQ(b.get(), nullptr, nullptr, nullptr),
                                                          X509_REQ_free);
  ASSERT_TRUE(req) << pem;
  EVP_PKEY* pub = X509_REQ_get0_pubkey(req.get());
  ASSERT_TRUE(pub);
  EXPECT_EQ(X509_REQ_verify(req.get(), pub), 1);
  EXPECT_EQ(X509_REQ_get_signature_nid(req.get()), NID_ecdsa_with_SHA256);

  unsigned char* der = nullptr;
  const int n = i2d_PUBKEY(pub, &der);
  EXPECT_EQ(std::vector<std::uint8_t>(der, der + n), store_->public_key_der("station"));
  OPENSSL_free(der);

  X509_NAME* subj = X509_REQ_get_subject_name(req.get());
  EXPECT_EQ(X509_NAME_entry_count(subj), 2);
  char buf[128] = {};
  X509_NAME_get_text_by_NID(subj, NID_commonName, buf, sizeof buf);
  EXPECT_STREQ(buf, "CS001-0042");
  const int oi = X509_NAME_get_index_by_NID(subj, NID_organizationName, -1);
  ASSERT_GE(oi, 0);
  unsigned char* utf8 = nullptr;
  const int ul = ASN1_STRING_to_UTF8(&utf8, X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subj, oi)));
  EXPECT_EQ(std::string(reinterpret_cast<char*>(utf8), static_cast<std::size_t>(ul)), "Stadtwerke M\xc3\xbcnchen");
  OPENSSL_free(utf8);

  for (const CsrSubject& bad : {CsrSubject{"", "op"}, CsrSubject{"cs", ""}, CsrSubject{std::string(65, 'c'), "op"},
                                CsrSubject{"cs\n1", "op"}, CsrSubject{"cs", "o\x01p"}})
    EXPECT_EQ(error_code_of([&] { make_csr_pem(*store_, "station", bad); }), KeyStoreErrc::InvalidArgument);
  EXPECT_EQ(error_code_of([&] { make_csr_pem(*store_, "missing", {"cs", "op"}); }), KeyStoreErrc::KeyNotFound);
}

TEST_P(KeyStoreBackend, SealUnsealRoundtrip) {
  ASSERT_TRUE(store_);
  const std::string secret = "Tr0ub4dor&3-basic-auth";
  const auto b1 = store_->seal("ocpp.basic-auth-password", secret);
  const auto b2 = store_->seal("ocpp.basic-auth-password", secret);
  EXPECT_NE(b1, b2);  // fresh nonce each time
  EXPECT_EQ(b1.size(), secret.size() + kSealOverhead);
  EXPECT_EQ(b1[0], 1);
  EXPECT_EQ(b1[1], pkcs11() ? 2 : 1);
  const std::string blob_text(b1.begin(), b1.end());
  EXPECT_EQ(blob_text.find(secret), std::string::npos);
  EXPECT_EQ(store_->unseal("ocpp.basic-auth-password", b1).view(), secret);
  EXPECT_EQ(store_->unseal("ocpp.basic-auth-password", b2).view(), secret);

  const std::string big(kMaxSealPlaintext, 'x');
  EXPECT_EQ(store_->unseal("p", store_->seal("p", big)).view(), big);
  EXPECT_EQ(error_code_of([&] { store_->seal("p", big + "x"); }), KeyStoreErrc::InvalidArgument);
  EXPECT_EQ(error_code_of([&] { store_->seal("p", ""); }), KeyStoreErrc::InvalidArgument);
  EXPECT_EQ(error_code_of([&] { store_->seal("bad purpose", "x"); }), KeyStoreErrc::InvalidArgument);
}

TEST_P(KeyStoreBackend, UnsealFailsClosedOnTampering) {
  ASSERT_TRUE(store_);
  const auto blob = store_->seal("ocpp.basic-auth-password", "secret-password");
  for (std::size_t i = 0; i < blob.size(); ++i) {
    auto t = blob;
    t[i] ^= 0x01;
    std::string what;
    EXPECT_EQ(error_code_of([&] { store_->unseal("ocpp.basic-auth-password", t); }, &what), KeyStoreErrc::UnsealFailed)
        << "byte " << i;
    EXPECT_EQ(what.find("secret-password"), std::string::npos);
  }
  auto shorter = blob;
  shorter.pop_back();
  EXPECT_EQ(error_code_of([&] { store_->unseal("ocpp.basic-auth-password", shorter); }), KeyStoreErrc::UnsealFailed);
  auto longer = blob;
  longer.push_back(0);
  EXPECT_EQ(error_code_of([&] { store_->unseal("ocpp.basic-auth-password", longer); }), KeyStoreErrc::UnsealFailed);
  EXPECT_EQ(error_code_of([&] { store_->unseal("ocpp.basic-auth-password", std::vector<std::uint8_t>{}); }),
            KeyStoreErrc::UnsealFailed);
  EXPECT_EQ(error_code_of([&] { store_->unseal("x", std::vector<std::uint8_t>(kSealOverhead, 1)); }),
            KeyStoreErrc::UnsealFailed);
  EXPECT_EQ(error_code_of([&] { store_->unseal("x", std::vector<std::uint8_t>(kMaxSealBlob + 1, 1)); }),
            KeyStoreErrc::UnsealFailed);
  EXPECT_EQ(store_->unseal("ocpp.basic-auth-password", blob).view(), "secret-password");
}

TEST_P(KeyStoreBackend, UnsealFailsForAnotherPurposeOrStore) {
  ASSERT_TRUE(store_);
  const auto blob = store_->seal("ocpp.basic-auth-password", "secret-password");
  std::string what;
  EXPECT_EQ(error_code_of([&] { store_->unseal("ocpp.basic-auth-passwore", blob); }, &what),
            KeyStoreErrc::UnsealFailed);
  EXPECT_NE(what.find("another purpose"), std::string::npos) << what;

  // Another store of the same kind has another sealing key.
  auto other = env_->open(true);
  EXPECT_EQ(error_code_of([&] { other->unseal("ocpp.basic-auth-password", blob); }), KeyStoreErrc::UnsealFailed);
  const auto other_blob = other->seal("ocpp.basic-auth-password", "secret-password");
  EXPECT_EQ(error_code_of([&] { store_->unseal("ocpp.basic-auth-password", other_blob); }), KeyStoreErrc::UnsealFailed);

  // A blob of the other backend names both.
  auto foreign = blob;
  foreign[1] = pkcs11() ? 1 : 2;
  EXPECT_EQ(error_code_of([&] { store_->unseal("ocpp.basic-auth-password", foreign); }, &what),
            KeyStoreErrc::UnsealFailed);
  EXPECT_NE(what.find("sealed by the"), std::string::npos) << what;
}

INSTANTIATE_TEST_SUITE_P(KeyStore, KeyStoreBackend, ::testing::Values("file", "pkcs11"), backend_name);

// ---- TLS 1.2 and 1.3 client authentication with the store's key ------------------

using TlsParam = std::tuple<std::string, KeyType>;

class KeyStoreTls : public ::testing::TestWithParam<TlsParam> {};

TEST_P(KeyStoreTls, ClientAuthWithStoreKey) {
  const auto [backend, type] = GetParam();
  std::unique_ptr<StoreEnv> env;
  std::unique_ptr<KeyStore> store;
  try {
    env = std::make_unique<StoreEnv>(backend);
    store = env->open();
  } catch (const std::exception& e) {
    FAIL() << "cannot set up the " << backend << " key store: " << e.what();
  }
  const TestPki pki;
  pki.write_ca(env->state / "ca.pem");
  store->generate_key("station", type);
  const X509Ptr cert = pki.sign_csr(make_csr_pem(*store, "station", {"CS001", "Test Operator"}));
  ASSERT_TRUE(cert);

  for (const int version : {TLS1_3_VERSION, TLS1_2_VERSION}) {
    SCOPED_TRACE(version == TLS1_3_VERSION ? "TLS 1.3" : "TLS 1.2");
    SslCtxPtr client(SSL_CTX_new(TLS_client_method()), SSL_CTX_free);
    ASSERT_TRUE(configure_tls_client(client.get(), (env->state / "ca.pem").string()).ok());
    SSL_CTX_set_max_proto_version(client.get(), version);
    ASSERT_EQ(SSL_CTX_use_certificate(client.get(), cert.get()), 1);
    {
      PrivateKey key = store->private_key("station");
      ASSERT_EQ(SSL_CTX_use_PrivateKey(client.get(), key.get()), 1) << ssl_errors();
    }
    ASSERT_EQ(SSL_CTX_check_private_key(client.get()), 1) << ssl_errors();
    const SslCtxPtr server = pki.server_ctx();
    const Handshake h = handshake(server.get(), client.get());
    ASSERT_TRUE(h.ok) << h.error;
    EXPECT_EQ(h.version, version);
    EXPECT_EQ(h.client_cn, "CS001");
    if (type != KeyType::Rsa3072)
      EXPECT_EQ(h.client_sig_nid, NID_X9_62_id_ecPublicKey);
    else if (version == TLS1_3_VERSION)
      EXPECT_EQ(h.client_sig_nid, NID_rsassaPss);
    else
      EXPECT_TRUE(h.client_sig_nid == NID_rsassaPss || h.client_sig_nid == NID_rsaEncryption) << h.client_sig_nid;
  }

  // The SSL_CTX keeps the key usable after the store is gone (reconnects).
  SslCtxPtr client(SSL_CTX_new(TLS_client_method()), SSL_CTX_free);
  ASSERT_TRUE(configure_tls_client(client.get(), (env->state / "ca.pem").string()).ok());
  SSL_CTX_use_certificate(client.get(), cert.get());
  SSL_CTX_use_PrivateKey(client.get(), store->private_key("station").get());
  store.reset();
  const SslCtxPtr server = pki.server_ctx();
  for (int i = 0; i < 2; ++i) {
    const Handshake h = handshake(server.get(), client.get());
    EXPECT_TRUE(h.ok) << h.error;
  }

  // PKCS#11: the signature is made on the token. Once the key is deleted there,
  // the EVP_PKEY the SSL_CTX holds can no longer sign.
  if (backend == "pkcs11") {
    store = env->open();
    ASSERT_TRUE(store->delete_key("station"));
    const Handshake h = handshake(server.get(), client.get());
    EXPECT_FALSE(h.ok);
    EXPECT_NE(h.error.find("client handshake failed"), std::string::npos) << h.error;
  }
}

std::string tls_name(const ::testing::TestParamInfo<TlsParam>& i) {
  const KeyType t = std::get<1>(i.param);
  return std::get<0>(i.param) + (t == KeyType::EcP256 ? "_P256" : t == KeyType::EcP384 ? "_P384" : "_RSA3072");
}

INSTANTIATE_TEST_SUITE_P(KeyStore, KeyStoreTls,
                         ::testing::Combine(::testing::Values("file", "pkcs11"),
                                            ::testing::Values(KeyType::EcP256, KeyType::EcP384, KeyType::Rsa3072)),
                         tls_name);

// ---- PKCS#11 specifics -----------------------------------------------------------------

TEST(KeyStorePkcs11, PrivateKeyNeverInStateDirectory) {
  StoreEnv env("pkcs11");
  const TestPki pki;
  {
    auto store = env.open();
    for (const auto& [label, type] : {std::pair{"station", KeyType::EcP256}, std::pair{"rsa", KeyType::Rsa3072}}) {
      const KeyInfo ki = store->generate_key(label, type);
      EXPECT_TRUE(ki.non_exportable) << label;  // sensitive, never extractable, on the token
      ASSERT_TRUE(pki.sign_csr(make_csr_pem(*store, label, {"CS001", "Operator"})));
    }
    store->seal("ocpp.basic-auth-password", "secret-password");
  }
  EXPECT_EQ(private_key_traces(env.state), std::vector<std::string>{});
  // SoftHSM keeps the private objects encrypted under the user PIN.
  EXPECT_EQ(private_key_traces(SoftHsm::get().token_dir()), std::vector<std::string>{});

  // The scan does find keys where they are: the file backend's PEM and raw DER.
  auto files = open_file_key_store({env.state / "dev-keys"});
  files->generate_key("station");
  EXPECT_EQ(private_key_traces(env.state).size(), 1u);
  PrivateKey pk = files->private_key("station");
  unsigned char* der = nullptr;
  const int n = i2d_PrivateKey(pk.get(), &der);
  write_file(env.state / "control.bin", "junk" + std::string(reinterpret_cast<char*>(der), static_cast<std::size_t>(n)),
             0600);
  OPENSSL_clear_free(der, static_cast<std::size_t>(n));
  fs::remove_all(env.state / "dev-keys");
  const auto traces = private_key_traces(env.state);
  ASSERT_EQ(traces.size(), 1u);
  EXPECT_NE(traces[0].find("DER at 4"), std::string::npos) << traces[0];
}

TEST(KeyStorePkcs11, WrongPinIsAClearError) {
  StoreEnv env("pkcs11");
  const std::string wrong = random_hex(12);
  write_file(env.state / "wrong.pin", wrong + "\n", 0600);
  std::string what;
  EXPECT_EQ(error_code_of(
                [&] {
                  open_pkcs11_key_store({kSoftHsm2Module, env.token.label, env.state / "wrong.pin"});
                },
                &what),
            KeyStoreErrc::WrongPin);
  EXPECT_NE(what.find("wrong PIN"), std::string::npos) << what;
  EXPECT_NE(what.find(env.token.label), std::string::npos) << what;
  EXPECT_EQ(what.find(wrong), std::string::npos) << "the message shows the PIN";
  EXPECT_EQ(what.find(env.token.user_pin), std::string::npos) << "the message shows the PIN";
  // The right PIN still works afterwards.
  EXPECT_NO_THROW(env.open());
}

TEST(KeyStorePkcs11, ConfigurationErrorsNameTheProblem) {
  StoreEnv env("pkcs11");
  std::string what;
  EXPECT_EQ(error_code_of(
                [&] {
                  open_pkcs11_key_store({"/nonexistent/libpkcs11.so", env.token.label, env.state / "token.pin"});
                },
                &what),
            KeyStoreErrc::ModuleNotFound);
  EXPECT_NE(what.find("/nonexistent/libpkcs11.so"), std::string::npos) << what;
  write_file(env.state / "not-a-module.so", "text", 0600);
  EXPECT_EQ(
      error_code_of(
          [&] {
            open_pkcs11_key_store({(env.state / "not-a-module.so").string(), env.token.label, env.state / "token.pin"});
          },
          &what),
      KeyStoreErrc::ModuleNotFound);
  EXPECT_NE(what.find("cannot load"), std::string::npos) << what;

  EXPECT_EQ(error_code_of(
                [&] {
                  open_pkcs11_key_store({kSoftHsm2Module, "no-such-token", env.state / "token.pin"});
                },
                &what),
            KeyStoreErrc::TokenNotFound);
  EXPECT_NE(what.find("no-such-token"), std::string::npos) << what;
  EXPECT_NE(what.find(env.token.label), std::string::npos) << "lists the tokens present: " << what;

  EXPECT_EQ(error_code_of(
                [&] {
                  open_pkcs11_key_store({kSoftHsm2Module, env.token.label, env.state / "missing.pin"});
                },
                &what),
            KeyStoreErrc::PinFile);
  EXPECT_NE(what.find("missing.pin"), std::string::npos) << what;

  write_file(env.state / "open.pin", env.token.user_pin + "\n", 0644);
  EXPECT_EQ(error_code_of(
                [&] {
                  open_pkcs11_key_store({kSoftHsm2Module, env.token.label, env.state / "open.pin"});
                },
                &what),
            KeyStoreErrc::PinFile);
  EXPECT_NE(what.find("0600"), std::string::npos) << what;
  EXPECT_EQ(what.find(env.token.user_pin), std::string::npos);

  write_file(env.state / "empty.pin", "\n", 0600);
  EXPECT_EQ(error_code_of([&] {
              open_pkcs11_key_store({kSoftHsm2Module, env.token.label, env.state / "empty.pin"});
            }),
            KeyStoreErrc::PinFile);
  write_file(env.state / "huge.pin", std::string(kMaxPinFileSize + 1, '1'), 0600);
  EXPECT_EQ(error_code_of([&] {
              open_pkcs11_key_store({kSoftHsm2Module, env.token.label, env.state / "huge.pin"});
            }),
            KeyStoreErrc::PinFile);

  auto store = open_key_store(Pkcs11KeyStoreOptions{kSoftHsm2Module, env.token.label, env.state / "token.pin"});
  EXPECT_EQ(store->backend(), "pkcs11");
}

// ---- file backend specifics -------------------------------------------------------------

TEST(KeyStoreFile, ModesOfDirectoryAndFiles) {
  const fs::path tmp = cg::test::make_temp_dir("keystore-file");
  {
    auto store = open_key_store(FileKeyStoreOptions{tmp / "keys"});
    EXPECT_EQ(store->backend(), "file");
    store->generate_key("station");
    store->seal("p", "x");
    struct stat st {};
    ASSERT_EQ(::stat((tmp / "keys").c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, 0700u);
    for (const auto& e : fs::directory_iterator(tmp / "keys")) {
      ASSERT_EQ(::stat(e.path().c_str(), &st), 0);
      EXPECT_EQ(st.st_mode & 0777, 0600u) << e.path();
    }
    // A key file others can read is refused, not used.
    ::chmod((tmp / "keys" / "station.pem").c_str(), 0644);
    std::string what;
    EXPECT_EQ(error_code_of([&] { store->private_key("station"); }, &what), KeyStoreErrc::StoreDirectory);
    EXPECT_NE(what.find("0600"), std::string::npos) << what;
  }
  ::chmod((tmp / "keys").c_str(), 0755);
  std::string what;
  EXPECT_EQ(error_code_of([&] { open_file_key_store({tmp / "keys"}); }, &what), KeyStoreErrc::StoreDirectory);
  EXPECT_NE(what.find("0700"), std::string::npos) << what;
  EXPECT_EQ(error_code_of([&] { open_file_key_store({tmp / "no" / "parent"}); }), KeyStoreErrc::StoreDirectory);
  fs::remove_all(tmp);
}

// A counter record torn by a power loss (its content is not its name's value)
// is ignored, so the value read is the last one written completely.
TEST(KeyStoreFile, TornCounterRecordIsIgnored) {
  const fs::path tmp = cg::test::make_temp_dir("keystore-counter");
  {
    auto store = open_key_store(FileKeyStoreOptions{tmp / "keys"});
    store->raise_counter("floor", 4);
    cg::test::write_file_mode(tmp / "keys" / "counter.floor.9", "", 0600);
    cg::test::write_file_mode(tmp / "keys" / "counter.floor.8", "7\n", 0600);
    EXPECT_EQ(store->read_counter("floor"), 4u);
    EXPECT_EQ(store->raise_counter("floor", 9), 9u);  // the torn record is not in the way
    EXPECT_EQ(store->read_counter("floor"), 9u);
  }
  fs::remove_all(tmp);
}

TEST(KeyStore, LabelRules) {
  EXPECT_TRUE(is_valid_key_label("station"));
  EXPECT_TRUE(is_valid_key_label("station.next-2_a"));
  EXPECT_TRUE(is_valid_key_label(std::string(64, 'a')));
  EXPECT_FALSE(is_valid_key_label(std::string(65, 'a')));
  EXPECT_FALSE(is_valid_key_label(""));
  EXPECT_FALSE(is_valid_key_label(".x"));
  EXPECT_FALSE(is_valid_key_label("-x"));
  EXPECT_FALSE(is_valid_key_label("a:b"));
  EXPECT_FALSE(is_valid_key_label(std::string("a\0b", 3)));
}

}  // namespace
