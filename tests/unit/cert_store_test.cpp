// REQ: COM-7, COM-6, COM-2, COM-8 — tests of security/cert_store (OCPP
// M03/M04/M05). Every key and certificate is generated here at test time; none
// is stored in the repository.
#include "security/cert_store.hpp"

#include <gtest/gtest.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <fstream>
#include <map>
#include <random>
#include <set>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "security/key_store.hpp"
#include "test_util.hpp"

// ---- a small test PKI (same generator as certificates_test.cpp, reduced)

namespace {

namespace fs = std::filesystem;
using namespace cg::security;
using Clock = std::chrono::system_clock;

struct Spec {
  std::string cn;
  std::string org = "Test Operator";
  bool ca = true;
  const EVP_MD* md = EVP_sha256();
  long not_before_s = -3600;  // offsets from now
  long not_after_s = 30L * 86400;
  std::string eku;
  std::string key_usage;              // empty: keyCertSign,cRLSign for CAs, digitalSignature otherwise
  std::vector<unsigned char> serial;  // big-endian; empty: random 16 bytes
};

PrivateKey keep(EVP_PKEY* k) {
  if (!k) throw std::runtime_error("key generation failed");
  return PrivateKey(k);
}
PrivateKey ec_key() {
  return keep(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256"));
}
// RSA keys are cached per size (generation is slow, above all under ASan).
EVP_PKEY* rsa_key(int bits) {
  static std::map<int, PrivateKey> cache;
  auto& k = cache[bits];
  if (!k) k = keep(EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", static_cast<size_t>(bits)));
  return k.get();
}

X509Ptr issue(const Spec& s, EVP_PKEY* key, const X509* issuer, EVP_PKEY* issuer_key) {
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
  add(NID_basic_constraints, s.ca ? "critical,CA:TRUE" : "critical,CA:FALSE");
  add(NID_key_usage, !s.key_usage.empty() ? s.key_usage
                     : s.ca               ? "critical,keyCertSign,cRLSign"
                                          : "critical,digitalSignature");
  add(NID_ext_key_usage, s.eku);
  add(NID_subject_key_identifier, "hash");
  add(NID_authority_key_identifier, "keyid:always");
  check(X509_sign(c.get(), issuer_key, s.md) > 0, "sign");
  return c;
}

// A self-signed root with its key.
struct Root {
  PrivateKey key;
  X509Ptr cert;
};
Root make_root(const std::string& cn, Spec s = {}) {
  Root r{ec_key(), nullptr};
  s.cn = cn;
  r.cert = issue(s, r.key.get(), nullptr, r.key.get());
  return r;
}
// `subject` (with subject.key) cross-signed by `by`: same name and key as
// subject.cert, issuer = by.
X509Ptr cross_sign(const Root& subject, const Root& by) {
  return issue({.cn = subject_attribute(subject.cert.get(), NID_commonName)}, subject.key.get(), by.cert.get(),
               by.key.get());
}

std::string fp(const X509* c) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  X509_digest(c, EVP_sha256(), md, &n);
  static const char* d = "0123456789abcdef";
  std::string s;
  for (unsigned i = 0; i < n; ++i) s += d[md[i] >> 4], s += d[md[i] & 15];
  return s;
}

std::string upper(std::string s) {
  for (char& c : s) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return s;
}

using cg::test::has;

bool any_has(const std::vector<std::string>& texts, const std::string& part) {
  return std::any_of(texts.begin(), texts.end(), [&](const std::string& t) { return has(t, part); });
}

std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void spit(const fs::path& p, const std::string& data) { cg::test::write_file(p, data); }

unsigned mode_of(const fs::path& p) {
  struct stat st {};
  EXPECT_EQ(::lstat(p.c_str(), &st), 0) << p;
  return st.st_mode & 07777;
}

InstallContext tls(bool additional_root_check = false) {
  return InstallContext{.security_profile = 2, .additional_root_check = additional_root_check};
}

std::vector<std::string> fps(const std::vector<X509Ptr>& certs) {
  std::vector<std::string> out;
  for (const auto& c : certs) out.push_back(fp(c.get()));
  return out;
}

// ---- fixture: a fresh state directory

class CertStoreTest : public ::testing::Test {
 protected:
  void SetUp() override { dir = cg::test::make_temp_dir("certstore"); }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(dir, ec);
  }

  fs::path certs() const { return dir / "certs"; }
  fs::path file_of(CertificateType t, const X509* c) const {
    return certs() / std::string(to_string(t)) / (fp(c) + ".pem");
  }
  fs::path pem_file(const std::string& name, const std::vector<const X509*>& list) {
    std::string text;
    for (const X509* c : list) text += to_pem(c);
    spit(dir / name, text);
    return dir / name;
  }
  // The bundle holds exactly the CSMS roots, in list order.
  void expect_bundle(const CertStore& store, const std::vector<const X509*>& expected) {
    const std::string text = slurp(store.csms_bundle_file());
    std::vector<std::string> in_bundle;
    if (!text.empty()) {
      std::string err;
      const CertChain chain = parse_pem_chain(text, 40, err);
      EXPECT_EQ(err, "");
      for (const auto& c : chain) in_bundle.push_back(fp(c.get()));
    }
    EXPECT_EQ(in_bundle, fps(store.roots(CertificateType::CSMSRootCertificate)));
    std::vector<std::string> want;
    for (const X509* c : expected) want.push_back(fp(c));
    std::sort(want.begin(), want.end());
    std::sort(in_bundle.begin(), in_bundle.end());
    EXPECT_EQ(in_bundle, want);
    EXPECT_EQ(mode_of(store.csms_bundle_file()), 0644u);
  }
  // A store whose only CSMS root is `csms` (seeded).
  CertStore seeded(const Root& csms) {
    CertStore s(dir);
    const SeedResult r = s.seed(CertificateType::CSMSRootCertificate, pem_file("ca.pem", {csms.cert.get()}));
    EXPECT_EQ(r.status, SeedStatus::Seeded) << r.reason;
    return s;
  }

  fs::path dir;
};

// ---- types

TEST(CertStoreTypes, OcppSpellingsRoundTrip) {
  EXPECT_EQ(to_string(CertificateType::CSMSRootCertificate), "CSMSRootCertificate");
  EXPECT_EQ(to_string(CertificateType::ManufacturerRootCertificate), "ManufacturerRootCertificate");
  EXPECT_EQ(to_string(CertificateType::V2GRootCertificate), "V2GRootCertificate");
  EXPECT_EQ(to_string(CertificateType::MORootCertificate), "MORootCertificate");
  for (const CertificateType t : kCertificateTypes) EXPECT_EQ(parse_certificate_type(to_string(t)), t);
  EXPECT_FALSE(parse_certificate_type("csmsRootCertificate"));
  EXPECT_FALSE(parse_certificate_type("CentralSystemRootCertificate"));
  EXPECT_FALSE(parse_certificate_type("V2GCertificateChain"));
  EXPECT_FALSE(parse_certificate_type(""));
  EXPECT_EQ(to_string(InstallStatus::Rejected), "Rejected");
  EXPECT_EQ(to_string(DeleteStatus::NotFound), "NotFound");
}

// ---- opening

TEST_F(CertStoreTest, OpensAnEmptyStoreWithPrivateDirectories) {
  CertStore s(dir);
  EXPECT_EQ(s.count(), 0u);
  EXPECT_TRUE(s.problems().empty());
  EXPECT_EQ(mode_of(certs()), 0700u);
  for (const CertificateType t : kCertificateTypes) EXPECT_EQ(mode_of(certs() / std::string(to_string(t))), 0700u);
  EXPECT_EQ(s.csms_bundle_file(), certs() / "csms-roots.pem");
  EXPECT_FALSE(fs::exists(s.csms_bundle_file())) << "no CSMS root: no bundle";
  EXPECT_FALSE(s.csms_root_pending());
  EXPECT_TRUE(s.list().empty());
}

// ---- seeding

TEST_F(CertStoreTest, SeedImportsEveryRootOfTheFileOnce) {
  const Root a = make_root("Root A"), b = make_root("Root B");
  {
    CertStore s(dir);
    const SeedResult r = s.seed(CertificateType::CSMSRootCertificate, pem_file("ca.pem", {a.cert.get(), b.cert.get()}));
    ASSERT_EQ(r.status, SeedStatus::Seeded) << r.reason;
    EXPECT_EQ(r.imported.size(), 2u);
    EXPECT_TRUE(r.skipped.empty());
    EXPECT_EQ(s.count(), 2u);
    EXPECT_EQ(s.count(CertificateType::CSMSRootCertificate), 2u);
    for (const Root* x : {&a, &b}) {
      const fs::path f = file_of(CertificateType::CSMSRootCertificate, x->cert.get());
      ASSERT_TRUE(fs::is_regular_file(f)) << f;
      EXPECT_EQ(mode_of(f), 0644u);
      EXPECT_EQ(slurp(f), to_pem(x->cert.get()));
    }
    expect_bundle(s, {a.cert.get(), b.cert.get()});
    // Second call: the store is the source now.
    const SeedResult again = s.seed(CertificateType::CSMSRootCertificate, pem_file("other.pem", {a.cert.get()}));
    EXPECT_EQ(again.status, SeedStatus::NotNeeded);
  }
  // Also after a restart, and with a different file.
  CertStore s(dir);
  const Root c = make_root("Root C");
  EXPECT_EQ(s.seed(CertificateType::CSMSRootCertificate, pem_file("new.pem", {c.cert.get()})).status,
            SeedStatus::NotNeeded);
  EXPECT_EQ(s.count(), 2u);
  EXPECT_TRUE(s.problems().empty());
}

TEST_F(CertStoreTest, SeedSkipsWhatIsNotARootWithAReason) {
  const Root good = make_root("Good Root");
  const Root expired = make_root("Expired Root", {.not_before_s = -10 * 86400, .not_after_s = -86400});
  const PrivateKey leaf_key = ec_key();
  const X509Ptr leaf = issue({.cn = "leaf", .ca = false}, leaf_key.get(), good.cert.get(), good.key.get());
  const Root sub_key_holder = make_root("Sub CA");
  const X509Ptr sub = cross_sign(sub_key_holder, good);  // a CA, not self-signed
  CertStore s(dir);
  const SeedResult r =
      s.seed(CertificateType::CSMSRootCertificate,
             pem_file("ca.pem", {leaf.get(), expired.cert.get(), good.cert.get(), sub.get(), good.cert.get()}));
  ASSERT_EQ(r.status, SeedStatus::Seeded) << r.reason;
  ASSERT_EQ(r.imported.size(), 1u);
  EXPECT_EQ(r.imported[0].fingerprint, fp(good.cert.get()));
  ASSERT_EQ(r.skipped.size(), 4u);
  EXPECT_TRUE(has(r.skipped[0], "certificate 1 (CN=leaf,O=Test Operator): not a CA certificate"));
  EXPECT_TRUE(has(r.skipped[1], "certificate 2 (CN=Expired Root,O=Test Operator): the certificate has expired"));
  EXPECT_TRUE(has(r.skipped[2], "certificate 4 (CN=Sub CA,O=Test Operator): not a self-signed root certificate"));
  EXPECT_TRUE(has(r.skipped[3], "certificate 5"));
  EXPECT_TRUE(has(r.skipped[3], "appears twice"));
  EXPECT_EQ(s.count(), 1u);

  // V2G/MO roots need not be self-signed.
  EXPECT_EQ(s.seed(CertificateType::V2GRootCertificate, pem_file("v2g.pem", {sub.get()})).status, SeedStatus::Seeded);
}

TEST_F(CertStoreTest, SeedFailsWithoutAnAcceptableCertificate) {
  CertStore s(dir);
  const SeedResult missing = s.seed(CertificateType::CSMSRootCertificate, dir / "nope.pem");
  EXPECT_EQ(missing.status, SeedStatus::Failed);
  EXPECT_TRUE(has(missing.reason, "nope.pem"));
  const Root expired = make_root("Expired Root", {.not_before_s = -10 * 86400, .not_after_s = -86400});
  const SeedResult none = s.seed(CertificateType::CSMSRootCertificate, pem_file("ca.pem", {expired.cert.get()}));
  EXPECT_EQ(none.status, SeedStatus::Failed);
  EXPECT_TRUE(has(none.reason, "no acceptable certificate"));
  EXPECT_EQ(none.skipped.size(), 1u);
  EXPECT_EQ(s.count(), 0u);
  // Not marked: a corrected file is imported later.
  const Root good = make_root("Good Root");
  EXPECT_EQ(s.seed(CertificateType::CSMSRootCertificate, pem_file("ca2.pem", {good.cert.get()})).status,
            SeedStatus::Seeded);
}

TEST_F(CertStoreTest, SeedIsNotNeededWhenTheTypeHoldsCertificates) {
  const Root pinned = make_root("Pinned Manufacturer Root"), other = make_root("Config Manufacturer Root");
  CertStore s(dir);
  ASSERT_TRUE(s.install_local(CertificateType::ManufacturerRootCertificate, to_pem(pinned.cert.get())).accepted());
  const SeedResult r = s.seed(CertificateType::ManufacturerRootCertificate, pem_file("m.pem", {other.cert.get()}));
  EXPECT_EQ(r.status, SeedStatus::NotNeeded);
  EXPECT_TRUE(has(r.reason, "already holds ManufacturerRootCertificate"));
  EXPECT_EQ(fps(s.roots(CertificateType::ManufacturerRootCertificate)), std::vector{fp(pinned.cert.get())});
}

TEST_F(CertStoreTest, SeedIsOneTimeEvenWhenTheTypeBecameEmpty) {
  // (V2G roots: the last CSMS or manufacturer root cannot be deleted.)
  const Root m = make_root("V2G Root");
  {
    CertStore s(dir);
    ASSERT_EQ(s.seed(CertificateType::V2GRootCertificate, pem_file("m.pem", {m.cert.get()})).status,
              SeedStatus::Seeded);
    const RemoveResult r = s.remove(hash_data(m.cert.get(), m.cert.get()), nullptr);
    ASSERT_EQ(r.status, DeleteStatus::Accepted) << r.reason;
  }
  CertStore s(dir);
  EXPECT_EQ(s.seed(CertificateType::V2GRootCertificate, pem_file("m.pem", {m.cert.get()})).status,
            SeedStatus::NotNeeded);
  EXPECT_EQ(s.count(CertificateType::V2GRootCertificate), 0u);
}

TEST_F(CertStoreTest, AnInterruptedSeedIsCompletedByTheNextOne) {
  const Root a = make_root("Root A"), b = make_root("Root B");
  {
    CertStore s(dir);
    ASSERT_EQ(s.seed(CertificateType::CSMSRootCertificate, pem_file("ca.pem", {a.cert.get()})).status,
              SeedStatus::Seeded);
  }
  // As if the process died after the first of two files: "seeding", not "seeded".
  spit(certs() / "state", "cg-cert-store-state 1\nseeding CSMSRootCertificate\n");
  CertStore s(dir);
  const SeedResult r = s.seed(CertificateType::CSMSRootCertificate, pem_file("ca.pem", {a.cert.get(), b.cert.get()}));
  ASSERT_EQ(r.status, SeedStatus::Seeded) << r.reason;
  ASSERT_EQ(r.imported.size(), 1u);
  EXPECT_EQ(r.imported[0].fingerprint, fp(b.cert.get()));
  EXPECT_EQ(s.count(), 2u);
  EXPECT_EQ(s.seed(CertificateType::CSMSRootCertificate, pem_file("ca.pem", {a.cert.get()})).status,
            SeedStatus::NotNeeded);
}

// ---- install: general rules

TEST_F(CertStoreTest, RejectsRootsOverSecurityProfile1) {
  const Root csms = make_root("CSMS Root"), v2g = make_root("V2G Root");
  CertStore s = seeded(csms);
  for (const int profile : {1, 0}) {
    const InstallResult r = s.install(CertificateType::V2GRootCertificate, to_pem(v2g.cert.get()),
                                      {.security_profile = profile, .additional_root_check = false});
    EXPECT_EQ(r.status, InstallStatus::Rejected);
    EXPECT_EQ(r.reason, "root certificates are not installed over an unencrypted connection (security profile 1)");
    ASSERT_TRUE(r.certificate);
    EXPECT_EQ(r.certificate->fingerprint, fp(v2g.cert.get()));
    EXPECT_EQ(r.certificate->subject, "CN=V2G Root,O=Test Operator");
    EXPECT_FALSE(r.changed);
  }
  EXPECT_EQ(s.count(), 1u);
  for (const int profile : {2, 3})
    EXPECT_TRUE(s.install(CertificateType::V2GRootCertificate, to_pem(v2g.cert.get()),
                          {.security_profile = profile, .additional_root_check = false})
                    .accepted());
}

TEST_F(CertStoreTest, RejectsALeafACaWithoutKeyCertSignAndBadValidity) {
  const Root csms = make_root("CSMS Root");
  CertStore s = seeded(csms);
  const PrivateKey k = ec_key();
  const X509Ptr leaf = issue({.cn = "leaf", .ca = false}, k.get(), nullptr, k.get());
  InstallResult r = s.install(CertificateType::V2GRootCertificate, to_pem(leaf.get()), tls());
  EXPECT_EQ(r.status, InstallStatus::Rejected);
  EXPECT_EQ(r.reason, "not a CA certificate (basicConstraints CA:TRUE is missing)");

  const X509Ptr no_certsign =
      issue({.cn = "odd CA", .key_usage = "critical,digitalSignature"}, k.get(), nullptr, k.get());
  r = s.install(CertificateType::V2GRootCertificate, to_pem(no_certsign.get()), tls());
  EXPECT_EQ(r.status, InstallStatus::Rejected);
  EXPECT_EQ(r.reason, "keyUsage does not allow certificate signing (keyCertSign)");

  const Root expired = make_root("Expired", {.not_before_s = -10 * 86400, .not_after_s = -60});
  r = s.install(CertificateType::V2GRootCertificate, to_pem(expired.cert.get()), tls());
  EXPECT_EQ(r.status, InstallStatus::Rejected);
  EXPECT_TRUE(has(r.reason, "the certificate has expired (notAfter 20"));

  const Root future = make_root("Future", {.not_before_s = 3600, .not_after_s = 86400});
  r = s.install(CertificateType::V2GRootCertificate, to_pem(future.cert.get()), tls());
  EXPECT_EQ(r.status, InstallStatus::Rejected);
  EXPECT_TRUE(has(r.reason, "the certificate is not yet valid (notBefore 20"));
  // `now` is the caller's clock: two hours later it is valid.
  InstallContext later = tls();
  later.now = Clock::now() + std::chrono::hours(2);
  EXPECT_TRUE(s.install(CertificateType::V2GRootCertificate, to_pem(future.cert.get()), later).accepted());
  EXPECT_EQ(s.count(), 2u);
}

TEST_F(CertStoreTest, RejectsRootsRefusedByTheCryptoPolicy) {
  const Root csms = make_root("CSMS Root");
  CertStore s = seeded(csms);
  const PrivateKey k = ec_key();
  const X509Ptr sha1 = issue({.cn = "SHA1 Root", .md = EVP_sha1()}, k.get(), nullptr, k.get());
  InstallResult r = s.install(CertificateType::CSMSRootCertificate, to_pem(sha1.get()), tls());
  EXPECT_EQ(r.status, InstallStatus::Rejected);
  EXPECT_TRUE(has(r.reason, "crypto policy: "));
  EXPECT_TRUE(has(r.reason, "SHA1"));

  const X509Ptr rsa1024 = issue({.cn = "Small Root"}, rsa_key(1024), nullptr, rsa_key(1024));
  r = s.install(CertificateType::CSMSRootCertificate, to_pem(rsa1024.get()), tls());
  EXPECT_EQ(r.status, InstallStatus::Rejected);
  EXPECT_EQ(r.reason, "crypto policy: RSA key of 1024 bits (minimum 2048)");

  // RSA-2048: accepted with a warning (below the 3072 goal).
  const X509Ptr rsa2048 = issue({.cn = "RSA Root"}, rsa_key(2048), nullptr, rsa_key(2048));
  r = s.install(CertificateType::CSMSRootCertificate, to_pem(rsa2048.get()), tls());
  EXPECT_TRUE(r.accepted()) << r.reason;
  EXPECT_FALSE(r.warnings.empty());
  EXPECT_EQ(s.count(), 2u);
}

TEST_F(CertStoreTest, RejectsAnythingButExactlyOneCertificate) {
  const Root csms = make_root("CSMS Root"), other = make_root("Other Root");
  CertStore s = seeded(csms);
  InstallResult r =
      s.install(CertificateType::V2GRootCertificate, to_pem(other.cert.get()) + to_pem(csms.cert.get()), tls());
  EXPECT_EQ(r.status, InstallStatus::Rejected);
  EXPECT_TRUE(has(r.reason, "not exactly one PEM certificate: more than 1 certificates"));
  EXPECT_FALSE(r.certificate);
  r = s.install(CertificateType::V2GRootCertificate, "hello", tls());
  EXPECT_EQ(r.status, InstallStatus::Rejected);
  EXPECT_TRUE(has(r.reason, "not exactly one PEM certificate"));
  r = s.install(CertificateType::V2GRootCertificate, "", tls());
  EXPECT_EQ(r.status, InstallStatus::Rejected);
  // OCPP caps the field at 5500 characters.
  r = s.install(CertificateType::V2GRootCertificate, to_pem(other.cert.get()) + std::string(5500, '\n'), tls());
  EXPECT_EQ(r.status, InstallStatus::Rejected);
  EXPECT_TRUE(has(r.reason, "(OCPP maximum 5500)"));
  EXPECT_EQ(s.count(), 1u);
}

TEST_F(CertStoreTest, ReinstallingTheSameCertificateIsAcceptedWithoutChange) {
  const Root csms = make_root("CSMS Root"), v2g = make_root("V2G Root");
  CertStore s = seeded(csms);
  InstallResult r = s.install(CertificateType::V2GRootCertificate, to_pem(v2g.cert.get()), tls());
  ASSERT_TRUE(r.accepted()) << r.reason;
  EXPECT_TRUE(r.changed);
  EXPECT_EQ(r.reason, "installed");
  r = s.install(CertificateType::V2GRootCertificate, to_pem(v2g.cert.get()), tls());
  EXPECT_TRUE(r.accepted());
  EXPECT_FALSE(r.changed);
  EXPECT_EQ(r.reason, "already installed");
  // Also with the additional root check (the seeded root is not "signed by itself" as a successor).
  r = s.install(CertificateType::CSMSRootCertificate, to_pem(csms.cert.get()), tls(true));
  EXPECT_TRUE(r.accepted());
  EXPECT_FALSE(r.changed);
  EXPECT_FALSE(s.csms_root_pending());
  EXPECT_EQ(s.count(), 2u);
  // The same certificate as another type is another entry.
  r = s.install(CertificateType::MORootCertificate, to_pem(v2g.cert.get()), tls());
  EXPECT_TRUE(r.accepted());
  EXPECT_TRUE(r.changed);
  EXPECT_EQ(s.count(), 3u);
}

TEST_F(CertStoreTest, V2gAndMoRootsAreStored) {
  const Root csms = make_root("CSMS Root"), v2g = make_root("V2G Root"), mo = make_root("MO Root");
  CertStore s = seeded(csms);
  EXPECT_TRUE(s.install(CertificateType::V2GRootCertificate, to_pem(v2g.cert.get()), tls()).accepted());
  EXPECT_TRUE(s.install(CertificateType::MORootCertificate, to_pem(mo.cert.get()), tls()).accepted());
  EXPECT_EQ(fps(s.roots(CertificateType::V2GRootCertificate)), std::vector{fp(v2g.cert.get())});
  EXPECT_EQ(fps(s.roots(CertificateType::MORootCertificate)), std::vector{fp(mo.cert.get())});
  EXPECT_TRUE(fs::is_regular_file(file_of(CertificateType::MORootCertificate, mo.cert.get())));
  expect_bundle(s, {csms.cert.get()});  // not CSMS roots
}

// ---- install: CSMS roots

TEST_F(CertStoreTest, WithoutAdditionalCheckASelfSignedCsmsRootIsAddedNextToTheOthers) {
  const Root csms = make_root("CSMS Root"), second = make_root("Second CSMS Root");
  CertStore s = seeded(csms);
  InstallResult r = s.install(CertificateType::CSMSRootCertificate, to_pem(second.cert.get()), tls());
  ASSERT_TRUE(r.accepted()) << r.reason;
  EXPECT_TRUE(r.fallback.empty());
  EXPECT_FALSE(s.csms_root_pending());
  EXPECT_EQ(s.count(CertificateType::CSMSRootCertificate), 2u);
  expect_bundle(s, {csms.cert.get(), second.cert.get()});
  // A cross-signed (not self-signed) CA is no root here.
  const Root third = make_root("Third Root");
  r = s.install(CertificateType::CSMSRootCertificate, to_pem(cross_sign(third, csms).get()), tls());
  EXPECT_EQ(r.status, InstallStatus::Rejected);
  EXPECT_EQ(r.reason, "not a self-signed root certificate");
}

TEST_F(CertStoreTest, AdditionalCheckKeepsTheOldRootAsFallbackUntilConfirmed) {
  const Root old_root = make_root("Old CSMS Root"), new_root = make_root("New CSMS Root");
  const X509Ptr successor = cross_sign(new_root, old_root);
  // The CSMS's server certificate under the new root.
  const PrivateKey server_key = ec_key();
  const X509Ptr server = issue({.cn = "csms.example.com", .ca = false, .eku = "serverAuth"}, server_key.get(),
                               successor.get(), new_root.key.get());
  CertChain server_chain;
  server_chain.push_back(share(server.get()));

  CertStore s = seeded(old_root);
  InstallResult r = s.install(CertificateType::CSMSRootCertificate, to_pem(successor.get()), tls(true));
  ASSERT_TRUE(r.accepted()) << r.reason;
  EXPECT_TRUE(r.changed);
  ASSERT_EQ(r.fallback.size(), 1u);
  EXPECT_EQ(r.fallback[0].fingerprint, fp(old_root.cert.get()));
  const auto pending = s.csms_root_pending();
  ASSERT_TRUE(pending);
  EXPECT_EQ(pending->new_root.fingerprint, fp(successor.get()));
  ASSERT_EQ(pending->fallback.size(), 1u);
  EXPECT_EQ(pending->fallback[0].subject, "CN=Old CSMS Root,O=Test Operator");
  // Both trusted; the server chain verifies through the new root to the old one.
  EXPECT_EQ(s.count(CertificateType::CSMSRootCertificate), 2u);
  expect_bundle(s, {old_root.cert.get(), successor.get()});
  std::vector<const X509*> anchors;
  const auto roots = s.roots(CertificateType::CSMSRootCertificate);
  for (const auto& c : roots) anchors.push_back(c.get());
  EXPECT_EQ(verify_chain(server_chain, anchors), "");
  for (const auto& e : s.list()) {
    if (e.fingerprint == fp(successor.get())) {
      EXPECT_EQ(e.role, RootRole::PendingCsmsRoot);
    }
    if (e.fingerprint == fp(old_root.cert.get())) {
      EXPECT_EQ(e.role, RootRole::FallbackCsmsRoot);
    }
  }
  // One change at a time.
  const Root newer = make_root("Newer CSMS Root");
  r = s.install(CertificateType::CSMSRootCertificate, to_pem(cross_sign(newer, new_root).get()), tls(true));
  EXPECT_EQ(r.status, InstallStatus::Rejected);
  EXPECT_TRUE(has(r.reason, "waiting for the first connection"));

  // A connection through the old root does not confirm.
  ConfirmResult c = s.confirm_csms_root(old_root.cert.get());
  EXPECT_FALSE(c.confirmed);
  EXPECT_EQ(c.reason, "the verified chain does not contain the new CSMS root");
  EXPECT_FALSE(s.confirm_csms_root(static_cast<const X509*>(nullptr)).confirmed);
  EXPECT_TRUE(s.csms_root_pending());

  // A verified chain through the new root does: the fallback is deleted.
  const auto vr = verify_chain_detailed(server_chain, anchors);
  ASSERT_TRUE(vr.ok());
  struct StackFree {  // the stack only
    void operator()(STACK_OF(X509) * p) const noexcept { sk_X509_free(p); }
  };
  std::unique_ptr<STACK_OF(X509), StackFree> sk(sk_X509_new_null());
  for (const auto& x : vr.chain) sk_X509_push(sk.get(), x.get());
  c = s.confirm_csms_root(sk.get());
  EXPECT_TRUE(c.confirmed) << c.reason;
  ASSERT_EQ(c.removed.size(), 1u);
  EXPECT_EQ(c.removed[0].fingerprint, fp(old_root.cert.get()));
  EXPECT_FALSE(s.csms_root_pending());
  EXPECT_FALSE(fs::exists(file_of(CertificateType::CSMSRootCertificate, old_root.cert.get())));
  expect_bundle(s, {successor.get()});
  EXPECT_EQ(s.confirm_csms_root(successor.get()).reason, "no CSMS root change is pending");
  EXPECT_TRUE(s.csms_bundle_needs_partial_chain()) << "the successor's signer is gone";

  // Limitation (header): the cross-signed root alone is no anchor without
  // partial chains; its self-signed form is accepted as its successor.
  anchors = {successor.get()};
  EXPECT_NE(verify_chain(server_chain, anchors), "");
  r = s.install(CertificateType::CSMSRootCertificate, to_pem(new_root.cert.get()), tls(true));
  ASSERT_TRUE(r.accepted()) << r.reason;
  EXPECT_TRUE(s.confirm_csms_root(new_root.cert.get()).confirmed);
  EXPECT_EQ(fps(s.roots(CertificateType::CSMSRootCertificate)), std::vector{fp(new_root.cert.get())});
  EXPECT_FALSE(s.csms_bundle_needs_partial_chain()) << "self-signed roots only";
  EXPECT_EQ(verify_chain(server_chain, {s.roots(CertificateType::CSMSRootCertificate)[0].get()}), "");
}

TEST_F(CertStoreTest, AdditionalCheckMakesOnlyTheSignerTheFallback) {
  // Another CSMS root (another network profile's CSMS) is not replaced by the successor.
  const Root old_root = make_root("Old CSMS Root"), other = make_root("Other CSMS Root"),
             new_root = make_root("New CSMS Root");
  CertStore s = seeded(old_root);
  ASSERT_TRUE(s.install(CertificateType::CSMSRootCertificate, to_pem(other.cert.get()), tls()).accepted());
  const X509Ptr successor = cross_sign(new_root, old_root);
  const InstallResult r = s.install(CertificateType::CSMSRootCertificate, to_pem(successor.get()), tls(true));
  ASSERT_TRUE(r.accepted()) << r.reason;
  ASSERT_EQ(r.fallback.size(), 1u);
  EXPECT_EQ(r.fallback[0].fingerprint, fp(old_root.cert.get()));
  EXPECT_FALSE(s.csms_bundle_needs_partial_chain()) << "the successor's signer is still there";
  const ConfirmResult c = s.confirm_csms_root(successor.get());
  ASSERT_TRUE(c.confirmed) << c.reason;
  ASSERT_EQ(c.removed.size(), 1u);
  EXPECT_EQ(c.removed[0].fingerprint, fp(old_root.cert.get()));
  expect_bundle(s, {other.cert.get(), successor.get()});
}

TEST_F(CertStoreTest, ALocalCsmsRootMustBeSelfSigned) {
  const Root a = make_root("Root A"), b = make_root("Root B");
  CertStore s = seeded(a);
  const InstallResult r = s.install_local(CertificateType::CSMSRootCertificate, to_pem(cross_sign(b, a).get()),
                                          LocalInstallMode::Add);
  EXPECT_EQ(r.status, InstallStatus::Rejected);
  EXPECT_TRUE(has(r.reason, "self-signed")) << r.reason;
}

TEST_F(CertStoreTest, AdditionalCheckRejectsARootNotSignedByTheInstalledOne) {
  const Root old_root = make_root("Old CSMS Root"), stranger = make_root("Stranger Root"), other = make_root("Other");
  CertStore s = seeded(old_root);
  InstallResult r = s.install(CertificateType::CSMSRootCertificate, to_pem(stranger.cert.get()), tls(true));
  EXPECT_EQ(r.status, InstallStatus::Rejected);
  EXPECT_EQ(r.reason, "the new CSMS root is not signed by the installed CSMS root (AdditionalRootCertificateCheck)");
  r = s.install(CertificateType::CSMSRootCertificate, to_pem(cross_sign(stranger, other).get()), tls(true));
  EXPECT_EQ(r.status, InstallStatus::Rejected);
  EXPECT_FALSE(s.csms_root_pending());
  EXPECT_EQ(s.count(), 1u);
  expect_bundle(s, {old_root.cert.get()});
}

TEST_F(CertStoreTest, DeletingThePendingRootCancelsTheChange) {
  const Root old_root = make_root("Old CSMS Root"), new_root = make_root("New CSMS Root");
  const X509Ptr successor = cross_sign(new_root, old_root);
  CertStore s = seeded(old_root);
  ASSERT_TRUE(s.install(CertificateType::CSMSRootCertificate, to_pem(successor.get()), tls(true)).accepted());
  const RemoveResult r = s.remove(hash_data(successor.get(), old_root.cert.get()), nullptr);
  ASSERT_EQ(r.status, DeleteStatus::Accepted) << r.reason;
  EXPECT_TRUE(has(r.reason, "cancelled"));
  EXPECT_FALSE(s.csms_root_pending());
  expect_bundle(s, {old_root.cert.get()});
  // A new change can start.
  EXPECT_TRUE(s.install(CertificateType::CSMSRootCertificate, to_pem(successor.get()), tls(true)).accepted());
  EXPECT_TRUE(s.csms_root_pending());
  // Deleting the only fallback ends the pending state (the new root stays).
  const RemoveResult f = s.remove(hash_data(old_root.cert.get(), old_root.cert.get()), nullptr);
  ASSERT_EQ(f.status, DeleteStatus::Accepted) << f.reason;
  EXPECT_FALSE(s.csms_root_pending());
  expect_bundle(s, {successor.get()});
}

TEST_F(CertStoreTest, APendingChangeSurvivesARestart) {
  const Root old_root = make_root("Old CSMS Root"), new_root = make_root("New CSMS Root");
  const X509Ptr successor = cross_sign(new_root, old_root);
  {
    CertStore s = seeded(old_root);
    ASSERT_TRUE(s.install(CertificateType::CSMSRootCertificate, to_pem(successor.get()), tls(true)).accepted());
  }
  CertStore s(dir);
  EXPECT_TRUE(s.problems().empty());
  const auto p = s.csms_root_pending();
  ASSERT_TRUE(p);
  EXPECT_EQ(p->new_root.fingerprint, fp(successor.get()));
  ASSERT_EQ(p->fallback.size(), 1u);
  EXPECT_EQ(p->fallback[0].fingerprint, fp(old_root.cert.get()));
  EXPECT_TRUE(s.confirm_csms_root(successor.get()).confirmed);
  CertStore again(dir);
  EXPECT_FALSE(again.csms_root_pending());
  EXPECT_EQ(fps(again.roots(CertificateType::CSMSRootCertificate)), std::vector{fp(successor.get())});
}

// ---- install: manufacturer roots

TEST_F(CertStoreTest, ManufacturerRootsOnlyAsSuccessorsOfThePinnedOne) {
  const Root csms = make_root("CSMS Root"), m = make_root("Manufacturer Root"), m2 = make_root("Manufacturer Root 2");
  CertStore s = seeded(csms);
  InstallResult r = s.install(CertificateType::ManufacturerRootCertificate, to_pem(m.cert.get()), tls());
  EXPECT_EQ(r.status, InstallStatus::Rejected);
  EXPECT_EQ(r.reason, "no manufacturer root is pinned; install one locally");

  ASSERT_TRUE(s.install_local(CertificateType::ManufacturerRootCertificate, to_pem(m.cert.get())).accepted());
  // A self-signed new root from the CSMS: refused.
  r = s.install(CertificateType::ManufacturerRootCertificate, to_pem(m2.cert.get()), tls());
  EXPECT_EQ(r.status, InstallStatus::Rejected);
  EXPECT_EQ(r.reason, "the new manufacturer root is not signed by the pinned manufacturer root");
  // Signed by another root: refused.
  r = s.install(CertificateType::ManufacturerRootCertificate, to_pem(cross_sign(m2, csms).get()), tls());
  EXPECT_EQ(r.status, InstallStatus::Rejected);
  // Cross-signed by the pinned root: accepted, next to it.
  const X509Ptr successor = cross_sign(m2, m);
  r = s.install(CertificateType::ManufacturerRootCertificate, to_pem(successor.get()), tls());
  ASSERT_TRUE(r.accepted()) << r.reason;
  EXPECT_EQ(s.count(CertificateType::ManufacturerRootCertificate), 2u);
  // Then its self-signed form (same name and key).
  r = s.install(CertificateType::ManufacturerRootCertificate, to_pem(m2.cert.get()), tls());
  ASSERT_TRUE(r.accepted()) << r.reason;
  EXPECT_EQ(s.count(CertificateType::ManufacturerRootCertificate), 3u);
  expect_bundle(s, {csms.cert.get()});
}

TEST_F(CertStoreTest, RefusesToDeleteTheLastManufacturerRoot) {
  // Without one, no successor can be installed over OCPP and firmware cannot be checked.
  const Root csms = make_root("CSMS Root"), m = make_root("Manufacturer Root"), m2 = make_root("Manufacturer Root 2");
  CertStore s = seeded(csms);
  ASSERT_TRUE(s.install_local(CertificateType::ManufacturerRootCertificate, to_pem(m.cert.get())).accepted());
  RemoveResult r = s.remove(hash_data(m.cert.get(), m.cert.get()), nullptr);
  EXPECT_EQ(r.status, DeleteStatus::Failed);
  EXPECT_EQ(r.reason, "the last manufacturer root cannot be deleted (install its successor first)");
  const X509Ptr successor = cross_sign(m2, m);
  ASSERT_TRUE(s.install(CertificateType::ManufacturerRootCertificate, to_pem(successor.get()), tls()).accepted());
  r = s.remove(hash_data(m.cert.get(), m.cert.get()), nullptr);
  ASSERT_EQ(r.status, DeleteStatus::Accepted) << r.reason;
  EXPECT_EQ(s.count(CertificateType::ManufacturerRootCertificate), 1u);
}

TEST_F(CertStoreTest, InstallLocalPinsOrAddsButStillChecks) {
  const Root csms = make_root("CSMS Root"), m = make_root("Manufacturer Root"), m2 = make_root("Manufacturer Root 2");
  CertStore s = seeded(csms);
  ASSERT_TRUE(s.install_local(CertificateType::ManufacturerRootCertificate, to_pem(m.cert.get())).accepted());
  InstallResult r = s.install_local(CertificateType::ManufacturerRootCertificate, to_pem(m2.cert.get()));
  ASSERT_TRUE(r.accepted()) << r.reason;
  ASSERT_EQ(r.removed.size(), 1u);
  EXPECT_EQ(r.removed[0].fingerprint, fp(m.cert.get()));
  EXPECT_EQ(fps(s.roots(CertificateType::ManufacturerRootCertificate)), std::vector{fp(m2.cert.get())});
  r = s.install_local(CertificateType::ManufacturerRootCertificate, to_pem(m.cert.get()), LocalInstallMode::Add);
  ASSERT_TRUE(r.accepted()) << r.reason;
  EXPECT_EQ(s.count(CertificateType::ManufacturerRootCertificate), 2u);
  // Validity and policy still apply.
  const Root expired = make_root("Expired", {.not_before_s = -10 * 86400, .not_after_s = -60});
  r = s.install_local(CertificateType::ManufacturerRootCertificate, to_pem(expired.cert.get()));
  EXPECT_EQ(r.status, InstallStatus::Rejected);
  EXPECT_TRUE(has(r.reason, "expired"));
  const PrivateKey k = ec_key();
  const X509Ptr leaf = issue({.cn = "leaf", .ca = false}, k.get(), nullptr, k.get());
  EXPECT_EQ(s.install_local(CertificateType::CSMSRootCertificate, to_pem(leaf.get())).status, InstallStatus::Rejected);
  EXPECT_EQ(s.count(CertificateType::ManufacturerRootCertificate), 2u);
}

TEST_F(CertStoreTest, InstallLocalReplaceOfTheCsmsRootEndsAPendingChange) {
  const Root old_root = make_root("Old CSMS Root"), new_root = make_root("New CSMS Root"), admin = make_root("Admin");
  CertStore s = seeded(old_root);
  ASSERT_TRUE(s.install(CertificateType::CSMSRootCertificate, to_pem(cross_sign(new_root, old_root).get()), tls(true))
                  .accepted());
  const InstallResult r = s.install_local(CertificateType::CSMSRootCertificate, to_pem(admin.cert.get()));
  ASSERT_TRUE(r.accepted()) << r.reason;
  EXPECT_EQ(r.removed.size(), 2u);
  EXPECT_FALSE(s.csms_root_pending());
  expect_bundle(s, {admin.cert.get()});
  CertStore again(dir);
  EXPECT_FALSE(again.csms_root_pending());
  EXPECT_EQ(again.count(), 1u);
}

// ---- capacity

TEST_F(CertStoreTest, AtMostTenPerTypeAndFortyInAll) {
  const Root csms = make_root("CSMS Root");
  CertStore s = seeded(csms);
  const PrivateKey k = ec_key();  // one key for all: only names and serials differ
  auto root = [&](const std::string& cn) { return issue({.cn = cn}, k.get(), nullptr, k.get()); };
  for (int i = 0; i < 10; ++i)
    ASSERT_TRUE(s.install(CertificateType::V2GRootCertificate, to_pem(root("V2G " + std::to_string(i)).get()), tls())
                    .accepted());
  InstallResult r = s.install(CertificateType::V2GRootCertificate, to_pem(root("V2G 10").get()), tls());
  EXPECT_EQ(r.status, InstallStatus::Rejected);
  EXPECT_EQ(r.reason, "certificate store full: at most 10 certificates of type V2GRootCertificate");
  for (int i = 0; i < 10; ++i) {
    ASSERT_TRUE(
        s.install(CertificateType::MORootCertificate, to_pem(root("MO " + std::to_string(i)).get()), tls()).accepted());
    ASSERT_TRUE(s.install_local(CertificateType::ManufacturerRootCertificate,
                                to_pem(root("M " + std::to_string(i)).get()), LocalInstallMode::Add)
                    .accepted());
  }
  for (int i = 1; i < 10; ++i)
    ASSERT_TRUE(s.install(CertificateType::CSMSRootCertificate, to_pem(root("CSMS " + std::to_string(i)).get()), tls())
                    .accepted());
  EXPECT_EQ(s.count(), 40u);
  r = s.install(CertificateType::MORootCertificate, to_pem(root("MO 10").get()), tls());
  EXPECT_EQ(r.status, InstallStatus::Rejected);
  EXPECT_EQ(r.reason, "certificate store full: at most 40 certificates in all");
  EXPECT_TRUE(has(r.reason, "certificate store full"));
  // A re-install is still Accepted (nothing is added).
  EXPECT_TRUE(s.install(CertificateType::CSMSRootCertificate, to_pem(csms.cert.get()), tls()).accepted());
  // Freeing one makes room.
  ASSERT_EQ(s.remove(hash_data(csms.cert.get(), csms.cert.get()), nullptr).status, DeleteStatus::Accepted);
  EXPECT_TRUE(s.install(CertificateType::CSMSRootCertificate, to_pem(csms.cert.get()), tls()).accepted());
  EXPECT_EQ(s.count(), 40u);
  EXPECT_EQ(CertStore(dir).count(), 40u);
}

// ---- delete (M04)

TEST_F(CertStoreTest, DeletesByHashDataInUpperCaseWithLeadingZeros) {
  const Root csms = make_root("CSMS Root");
  const Root v2g = make_root("V2G Root", {.serial = {0x00, 0x0a, 0xbc, 0xde, 0xf0}});
  CertStore s = seeded(csms);
  ASSERT_TRUE(s.install(CertificateType::V2GRootCertificate, to_pem(v2g.cert.get()), tls()).accepted());
  CertificateHashData h = hash_data(v2g.cert.get(), v2g.cert.get());
  EXPECT_EQ(h.serial_number, "abcdef0");
  h.issuer_name_hash = upper(h.issuer_name_hash);
  h.issuer_key_hash = upper(h.issuer_key_hash);
  h.serial_number = "000ABCDEF0";
  const RemoveResult r = s.remove(h, nullptr);
  ASSERT_EQ(r.status, DeleteStatus::Accepted) << r.reason;
  ASSERT_EQ(r.removed.size(), 1u);
  EXPECT_EQ(r.removed[0].type, CertificateType::V2GRootCertificate);
  EXPECT_EQ(r.removed[0].fingerprint, fp(v2g.cert.get()));
  EXPECT_EQ(r.removed[0].subject, "CN=V2G Root,O=Test Operator");
  EXPECT_FALSE(fs::exists(file_of(CertificateType::V2GRootCertificate, v2g.cert.get())));
  EXPECT_EQ(s.count(), 1u);
  EXPECT_EQ(s.remove(h, nullptr).status, DeleteStatus::NotFound);
  EXPECT_EQ(CertStore(dir).count(), 1u);
}

TEST_F(CertStoreTest, DeletesWithSha384AndSha512AndEveryTypeHoldingTheCertificate) {
  const Root csms = make_root("CSMS Root"), other = make_root("Other Root");
  CertStore s = seeded(csms);
  ASSERT_TRUE(s.install(CertificateType::V2GRootCertificate, to_pem(other.cert.get()), tls()).accepted());
  ASSERT_TRUE(s.install(CertificateType::MORootCertificate, to_pem(other.cert.get()), tls()).accepted());
  RemoveResult r = s.remove(hash_data(other.cert.get(), other.cert.get(), HashAlgorithm::SHA384), nullptr);
  ASSERT_EQ(r.status, DeleteStatus::Accepted) << r.reason;
  EXPECT_EQ(r.removed.size(), 2u);
  ASSERT_TRUE(s.install(CertificateType::V2GRootCertificate, to_pem(other.cert.get()), tls()).accepted());
  r = s.remove(hash_data(other.cert.get(), other.cert.get(), HashAlgorithm::SHA512), nullptr);
  EXPECT_EQ(r.status, DeleteStatus::Accepted);
  EXPECT_EQ(s.count(), 1u);
}

TEST_F(CertStoreTest, NeverDeletesTheStationCertificate) {
  const Root csms = make_root("CSMS Root"), op = make_root("Operator CA");
  CertStore s = seeded(csms);
  const PrivateKey k = ec_key();
  const X509Ptr station =
      issue({.cn = "CS001", .ca = false, .eku = "clientAuth"}, k.get(), op.cert.get(), op.key.get());
  CertificateHashData h = hash_data(station.get(), op.cert.get());
  h.issuer_name_hash = upper(h.issuer_name_hash);
  h.serial_number = "00" + upper(h.serial_number);
  RemoveResult r = s.remove(h, station.get());
  EXPECT_EQ(r.status, DeleteStatus::Failed);
  EXPECT_EQ(r.reason, "the station's own certificate cannot be deleted");
  // The issuer key hash is not needed to recognise it.
  h.issuer_key_hash = std::string(64, 'a');
  EXPECT_EQ(s.remove(h, station.get()).reason, "the station's own certificate cannot be deleted");
  // Without the station certificate: it is simply not in the store.
  EXPECT_EQ(s.remove(h, nullptr).status, DeleteStatus::NotFound);
  // Another certificate's hash data with the station certificate given: normal delete rules.
  EXPECT_EQ(s.remove(hash_data(csms.cert.get(), csms.cert.get()), station.get()).reason,
            "the last CSMS root cannot be deleted");
  EXPECT_EQ(s.count(), 1u);
}

TEST_F(CertStoreTest, RefusesToDeleteTheLastCsmsRoot) {
  const Root a = make_root("Root A"), b = make_root("Root B");
  CertStore s = seeded(a);
  RemoveResult r = s.remove(hash_data(a.cert.get(), a.cert.get()), nullptr);
  EXPECT_EQ(r.status, DeleteStatus::Failed);
  EXPECT_EQ(r.reason, "the last CSMS root cannot be deleted");
  EXPECT_TRUE(r.removed.empty());
  EXPECT_TRUE(fs::exists(file_of(CertificateType::CSMSRootCertificate, a.cert.get())));
  ASSERT_TRUE(s.install(CertificateType::CSMSRootCertificate, to_pem(b.cert.get()), tls()).accepted());
  r = s.remove(hash_data(a.cert.get(), a.cert.get()), nullptr);
  ASSERT_EQ(r.status, DeleteStatus::Accepted) << r.reason;
  expect_bundle(s, {b.cert.get()});
  EXPECT_EQ(s.remove(hash_data(b.cert.get(), b.cert.get()), nullptr).status, DeleteStatus::Failed);
}

TEST_F(CertStoreTest, NotFoundForUnknownHashDataOrAlgorithm) {
  const Root a = make_root("Root A"), b = make_root("Root B");
  CertStore s = seeded(a);
  EXPECT_EQ(s.remove(hash_data(b.cert.get(), b.cert.get()), nullptr).status, DeleteStatus::NotFound);
  CertificateHashData h = hash_data(a.cert.get(), a.cert.get());
  h.serial_number = "1";
  EXPECT_EQ(s.remove(h, nullptr).status, DeleteStatus::NotFound);
  h = hash_data(a.cert.get(), a.cert.get());
  h.hash_algorithm = "MD5";
  const RemoveResult r = s.remove(h, nullptr);
  EXPECT_EQ(r.status, DeleteStatus::NotFound);
  EXPECT_EQ(r.reason, "unknown hash algorithm");
  EXPECT_EQ(s.remove(CertificateHashData{}, nullptr).status, DeleteStatus::NotFound);
  EXPECT_EQ(s.count(), 1u);
}

TEST_F(CertStoreTest, CrossSignedRootsMatchWithTheirIssuerOrTheirOwnKey) {
  const Root csms = make_root("CSMS Root"), m = make_root("Manufacturer Root"), m2 = make_root("Manufacturer Root 2");
  const X509Ptr successor = cross_sign(m2, m);
  CertStore s = seeded(csms);
  ASSERT_TRUE(s.install_local(CertificateType::ManufacturerRootCertificate, to_pem(m.cert.get())).accepted());
  ASSERT_TRUE(s.install(CertificateType::ManufacturerRootCertificate, to_pem(successor.get()), tls()).accepted());
  // Listed with the installed issuer.
  for (const auto& e : s.list({CertificateType::ManufacturerRootCertificate}))
    if (e.fingerprint == fp(successor.get())) {
      EXPECT_TRUE(same_hash_data(e.hash_data, hash_data(successor.get(), m.cert.get())));
    }
  // Issuer gone: listed (and deleted) with its own key.
  ASSERT_EQ(s.remove(hash_data(m.cert.get(), m.cert.get()), nullptr).status, DeleteStatus::Accepted);
  const auto entries = s.list({CertificateType::ManufacturerRootCertificate});
  ASSERT_EQ(entries.size(), 1u);
  EXPECT_TRUE(same_hash_data(entries[0].hash_data, hash_data(successor.get(), successor.get())));
  // It matches, but it is the last manufacturer root.
  const RemoveResult r = s.remove(entries[0].hash_data, nullptr);
  EXPECT_EQ(r.status, DeleteStatus::Failed);
  EXPECT_EQ(r.reason, "the last manufacturer root cannot be deleted (install its successor first)");
  EXPECT_EQ(s.count(CertificateType::ManufacturerRootCertificate), 1u);

  // With the issuer installed, its hash data deletes too.
  ASSERT_TRUE(s.install_local(CertificateType::ManufacturerRootCertificate, to_pem(m.cert.get()), LocalInstallMode::Add)
                  .accepted());
  EXPECT_EQ(s.remove(hash_data(successor.get(), m.cert.get(), HashAlgorithm::SHA512), nullptr).status,
            DeleteStatus::Accepted);
  EXPECT_EQ(s.count(CertificateType::ManufacturerRootCertificate), 1u);
}

// ---- list (M03) and count

TEST_F(CertStoreTest, ListsByTypeThenSubjectWithAFilter) {
  const Root c_b = make_root("B CSMS"), c_a = make_root("A CSMS"), mo = make_root("MO Root"), v_z = make_root("Z V2G"),
             v_y = make_root("Y V2G"), m = make_root("Manufacturer");
  CertStore s = seeded(c_b);
  ASSERT_TRUE(s.install(CertificateType::MORootCertificate, to_pem(mo.cert.get()), tls()).accepted());
  ASSERT_TRUE(s.install(CertificateType::V2GRootCertificate, to_pem(v_z.cert.get()), tls()).accepted());
  ASSERT_TRUE(s.install(CertificateType::CSMSRootCertificate, to_pem(c_a.cert.get()), tls()).accepted());
  ASSERT_TRUE(s.install(CertificateType::V2GRootCertificate, to_pem(v_y.cert.get()), tls()).accepted());
  ASSERT_TRUE(s.install_local(CertificateType::ManufacturerRootCertificate, to_pem(m.cert.get())).accepted());

  auto subjects = [](const std::vector<CertificateEntry>& l) {
    std::vector<std::string> out;
    for (const auto& e : l) out.push_back(std::string(to_string(e.type)) + " " + e.subject);
    return out;
  };
  const auto all = s.list();
  EXPECT_EQ(subjects(all), (std::vector<std::string>{
                               "CSMSRootCertificate CN=A CSMS,O=Test Operator",
                               "CSMSRootCertificate CN=B CSMS,O=Test Operator",
                               "ManufacturerRootCertificate CN=Manufacturer,O=Test Operator",
                               "V2GRootCertificate CN=Y V2G,O=Test Operator",
                               "V2GRootCertificate CN=Z V2G,O=Test Operator",
                               "MORootCertificate CN=MO Root,O=Test Operator",
                           }));
  for (const auto& e : all) {
    EXPECT_EQ(e.hash_data.hash_algorithm, "SHA256");
    EXPECT_TRUE(same_hash_data(e.hash_data, hash_data(e.certificate.get(), e.certificate.get())));
    EXPECT_EQ(e.fingerprint, fp(e.certificate.get()));
    EXPECT_EQ(e.role, RootRole::Installed);
  }
  EXPECT_EQ(subjects(s.list({CertificateType::MORootCertificate, CertificateType::V2GRootCertificate})),
            (std::vector<std::string>{
                "V2GRootCertificate CN=Y V2G,O=Test Operator",
                "V2GRootCertificate CN=Z V2G,O=Test Operator",
                "MORootCertificate CN=MO Root,O=Test Operator",
            }));
  EXPECT_EQ(s.list({CertificateType::ManufacturerRootCertificate}).size(), 1u);
  EXPECT_EQ(s.count(), 6u);
  EXPECT_EQ(s.count(CertificateType::V2GRootCertificate), 2u);
  EXPECT_EQ(fps(s.roots(CertificateType::CSMSRootCertificate)), (std::vector{fp(c_a.cert.get()), fp(c_b.cert.get())}));
  expect_bundle(s, {c_a.cert.get(), c_b.cert.get()});
  // Same after a restart.
  CertStore again(dir);
  EXPECT_EQ(subjects(again.list()), subjects(all));
}

// ---- persistence, junk, recovery

TEST_F(CertStoreTest, ReopensFromDiskSkippingJunkAndRemovingLeftovers) {
  const Root csms = make_root("CSMS Root"), v2g = make_root("V2G Root"), other = make_root("Other");
  {
    CertStore s = seeded(csms);
    ASSERT_TRUE(s.install(CertificateType::V2GRootCertificate, to_pem(v2g.cert.get()), tls()).accepted());
  }
  const fs::path csms_dir = certs() / "CSMSRootCertificate";
  const std::string zeros(64, '0');
  spit(certs() / "junk.txt", "x");
  spit(csms_dir / "README", "x");
  spit(csms_dir / (zeros + ".pem"), "not a certificate");
  spit(csms_dir / (std::string(64, 'a') + ".pem"), to_pem(other.cert.get()));  // wrong name
  fs::create_symlink(file_of(CertificateType::CSMSRootCertificate, csms.cert.get()),
                     csms_dir / (fp(other.cert.get()) + ".pem"));
  fs::create_directory(csms_dir / "sub");
  spit(csms_dir / (fp(other.cert.get()) + "x.pem"), to_pem(other.cert.get()));
  // Leftovers of write_file_durably after a kill -9.
  spit(certs() / "state.tmp", "cg-cert-store-state 1\n");
  spit(certs() / "csms-roots.pem.tmp", "");
  spit(csms_dir / (fp(other.cert.get()) + ".pem.tmp"), to_pem(other.cert.get()));
  // A stale bundle.
  spit(certs() / "csms-roots.pem", to_pem(other.cert.get()));

  CertStore s(dir);
  EXPECT_EQ(s.count(), 2u);
  EXPECT_EQ(fps(s.roots(CertificateType::CSMSRootCertificate)), std::vector{fp(csms.cert.get())});
  EXPECT_EQ(fps(s.roots(CertificateType::V2GRootCertificate)), std::vector{fp(v2g.cert.get())});
  expect_bundle(s, {csms.cert.get()});
  const auto& p = s.problems();
  EXPECT_TRUE(any_has(p, "certs/junk.txt: skipped"));
  EXPECT_TRUE(any_has(p, "certs/CSMSRootCertificate/README: skipped (not <sha256 fingerprint>.pem)"));
  EXPECT_TRUE(any_has(p, "certs/CSMSRootCertificate/" + zeros + ".pem: skipped ("));
  EXPECT_TRUE(any_has(p, "the file name is not the certificate's SHA-256 fingerprint"));
  EXPECT_TRUE(any_has(p, fp(other.cert.get()) + ".pem: skipped (not a regular file)"));
  EXPECT_TRUE(any_has(p, "certs/CSMSRootCertificate/sub: skipped"));
  EXPECT_TRUE(any_has(p, "certs/state.tmp: removed a leftover temporary file"));
  EXPECT_TRUE(any_has(p, "certs/csms-roots.pem.tmp: removed a leftover temporary file"));
  EXPECT_TRUE(any_has(p, ".pem.tmp: removed a leftover temporary file"));
  EXPECT_EQ(p.size(), 10u);
  EXPECT_FALSE(fs::exists(certs() / "state.tmp"));
  EXPECT_FALSE(fs::exists(csms_dir / (fp(other.cert.get()) + ".pem.tmp")));
  EXPECT_TRUE(fs::exists(certs() / "junk.txt"));  // junk is reported, not deleted
  // Still usable, and the seed marker survived.
  EXPECT_EQ(s.seed(CertificateType::CSMSRootCertificate, pem_file("ca.pem", {other.cert.get()})).status,
            SeedStatus::NotNeeded);
  EXPECT_TRUE(s.install(CertificateType::CSMSRootCertificate, to_pem(other.cert.get()), tls()).accepted());
  expect_bundle(s, {csms.cert.get(), other.cert.get()});
  // A missing bundle is regenerated at open.
  fs::remove(s.csms_bundle_file());
  CertStore again(dir);
  expect_bundle(again, {csms.cert.get(), other.cert.get()});
  // certs/ not a directory: the constructor throws.
  const fs::path bad = cg::test::make_temp_dir("certstore-bad");
  spit(bad / "certs", "x");
  EXPECT_THROW(CertStore{bad}, std::runtime_error);
  fs::remove_all(bad);
}

TEST_F(CertStoreTest, RecoversFromInterruptedChanges) {
  const Root old_root = make_root("Old CSMS Root"), new_root = make_root("New CSMS Root"), m = make_root("M1"),
             m2 = make_root("M2");
  const X509Ptr successor = cross_sign(new_root, old_root);
  {
    CertStore s = seeded(old_root);
    ASSERT_TRUE(s.install_local(CertificateType::ManufacturerRootCertificate, to_pem(m.cert.get())).accepted());
  }
  const std::string head = "cg-cert-store-state 1\nseeded CSMSRootCertificate\n";
  const std::string old_fp = fp(old_root.cert.get()), new_fp = fp(successor.get());

  // 1. Killed after the state of a successor install, before its file: rolled back.
  spit(certs() / "state", head + "pending " + new_fp + "\nfallback " + old_fp + "\n");
  {
    CertStore s(dir);
    EXPECT_FALSE(s.csms_root_pending());
    EXPECT_TRUE(any_has(s.problems(), "dropped a CSMS root change"));
    EXPECT_EQ(s.count(CertificateType::CSMSRootCertificate), 1u);
    EXPECT_EQ(s.seed(CertificateType::CSMSRootCertificate, pem_file("x.pem", {m.cert.get()})).status,
              SeedStatus::NotNeeded);
  }
  EXPECT_TRUE(CertStore(dir).problems().empty());  // repaired on disk

  // 2. Killed in a confirm after the fallback file was deleted: complete.
  {
    CertStore s(dir);
    ASSERT_TRUE(s.install(CertificateType::CSMSRootCertificate, to_pem(successor.get()), tls(true)).accepted());
  }
  fs::remove(certs() / "CSMSRootCertificate" / (old_fp + ".pem"));
  {
    CertStore s(dir);
    EXPECT_FALSE(s.csms_root_pending());
    EXPECT_EQ(fps(s.roots(CertificateType::CSMSRootCertificate)), std::vector{new_fp});
    expect_bundle(s, {successor.get()});
  }

  // 3. Killed in a local replace after the new file: completed.
  {
    CertStore s(dir);
    ASSERT_TRUE(
        s.install_local(CertificateType::ManufacturerRootCertificate, to_pem(m2.cert.get()), LocalInstallMode::Add)
            .accepted());
  }
  spit(certs() / "state", head + "replace ManufacturerRootCertificate " + fp(m2.cert.get()) + "\n");
  {
    CertStore s(dir);
    EXPECT_TRUE(any_has(s.problems(), "completed an interrupted replacement"));
    EXPECT_EQ(fps(s.roots(CertificateType::ManufacturerRootCertificate)), std::vector{fp(m2.cert.get())});
  }
  // 4. ... before the new file: dropped, nothing deleted.
  spit(certs() / "state", head + "replace ManufacturerRootCertificate " + fp(m.cert.get()) + "\n");
  {
    CertStore s(dir);
    EXPECT_TRUE(any_has(s.problems(), "dropped an interrupted replacement"));
    EXPECT_EQ(fps(s.roots(CertificateType::ManufacturerRootCertificate)), std::vector{fp(m2.cert.get())});
  }
  // 5. A damaged state file is reported and ignored.
  spit(certs() / "state", "garbage\n");
  {
    CertStore s(dir);
    EXPECT_TRUE(any_has(s.problems(), "certs/state: ignored (not a certificate store state file)"));
    EXPECT_EQ(s.count(), 2u);
  }
  spit(certs() / "state", head + "pending nothex\nwhatever\n");
  {
    CertStore s(dir);
    EXPECT_TRUE(any_has(s.problems(), "certs/state: line 3 ignored"));
    EXPECT_TRUE(any_has(s.problems(), "certs/state: line 4 ignored"));
    EXPECT_EQ(s.count(), 2u);
  }
}

TEST_F(CertStoreTest, AFailedWriteLeavesTheOldState) {
  const Root old_root = make_root("Old CSMS Root"), new_root = make_root("New CSMS Root"), v2g = make_root("V2G");
  const X509Ptr successor = cross_sign(new_root, old_root);
  CertStore s = seeded(old_root);
  // A directory where write_file_durably wants its temporary file.
  fs::create_directory(file_of(CertificateType::V2GRootCertificate, v2g.cert.get()).string() + ".tmp");
  InstallResult r = s.install(CertificateType::V2GRootCertificate, to_pem(v2g.cert.get()), tls());
  EXPECT_EQ(r.status, InstallStatus::Failed);
  EXPECT_TRUE(has(r.reason, "cannot store the certificate: cannot create ")) << r.reason;
  EXPECT_FALSE(r.changed);
  EXPECT_EQ(s.count(), 1u);
  // The successor's state is written first, then its file fails: rolled back.
  fs::create_directory(file_of(CertificateType::CSMSRootCertificate, successor.get()).string() + ".tmp");
  r = s.install(CertificateType::CSMSRootCertificate, to_pem(successor.get()), tls(true));
  EXPECT_EQ(r.status, InstallStatus::Failed);
  EXPECT_TRUE(r.fallback.empty());
  EXPECT_FALSE(s.csms_root_pending());
  EXPECT_TRUE(any_has(s.problems(), "dropped a CSMS root change"));
  EXPECT_EQ(fps(s.roots(CertificateType::CSMSRootCertificate)), std::vector{fp(old_root.cert.get())});
  expect_bundle(s, {old_root.cert.get()});
  CertStore again(dir);
  EXPECT_FALSE(again.csms_root_pending());
  EXPECT_EQ(again.count(), 1u);
}

// kill -9 at random points of a stream of changes: after each kill the store
// opens with only recovery notes, no temporary file left, one manufacturer
// root and one CSMS root (local replaces are all-or-nothing), the bundle equal
// to the CSMS roots.
TEST_F(CertStoreTest, SurvivesKillNineAtRandomPoints) {
  std::vector<Root> csms, manu, v2g;
  for (int i = 0; i < 2; ++i) csms.push_back(make_root("CSMS " + std::to_string(i)));
  for (int i = 0; i < 2; ++i) manu.push_back(make_root("Manufacturer " + std::to_string(i)));
  for (int i = 0; i < 6; ++i) v2g.push_back(make_root("V2G " + std::to_string(i)));
  {
    CertStore s = seeded(csms[0]);
    ASSERT_TRUE(s.install_local(CertificateType::ManufacturerRootCertificate, to_pem(manu[0].cert.get())).accepted());
  }
  std::mt19937 rng(12345);
  for (int round = 0; round < 20; ++round) {
    const pid_t pid = ::fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      CertStore s(dir);
      for (unsigned i = 0;; ++i) {
        (void)s.install(CertificateType::V2GRootCertificate, to_pem(v2g[i % 6].cert.get()), tls());
        (void)s.remove(hash_data(v2g[(i + 3) % 6].cert.get(), v2g[(i + 3) % 6].cert.get()), nullptr);
        (void)s.install_local(CertificateType::ManufacturerRootCertificate, to_pem(manu[i % 2].cert.get()));
        (void)s.install_local(CertificateType::CSMSRootCertificate, to_pem(csms[i % 2].cert.get()));
        if (i > 100000) ::_exit(0);
      }
    }
    std::this_thread::sleep_for(std::chrono::microseconds(2000 + rng() % 20000));
    ::kill(pid, SIGKILL);
    int status = 0;
    ::waitpid(pid, &status, 0);
    ASSERT_TRUE(WIFSIGNALED(status));

    CertStore s(dir);
    for (const auto& p : s.problems())
      EXPECT_TRUE(has(p, "removed a leftover temporary file") || has(p, "interrupted replacement")) << p;
    EXPECT_EQ(s.count(CertificateType::ManufacturerRootCertificate), 1u) << "round " << round;
    ASSERT_EQ(s.count(CertificateType::CSMSRootCertificate), 1u) << "round " << round;
    EXPECT_LE(s.count(CertificateType::V2GRootCertificate), 6u);
    EXPECT_FALSE(s.csms_root_pending());
    expect_bundle(s, {s.roots(CertificateType::CSMSRootCertificate)[0].get()});
    for (const auto& e : fs::recursive_directory_iterator(certs()))
      EXPECT_FALSE(e.path().string().ends_with(".tmp")) << e.path();
  }
}

}  // namespace
