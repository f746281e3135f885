// REQ: COM-2, COM-8, COM-10 — tests of security/certificates (PEM parsing,
// chain verification, OCPP CertificateHashData, accessors). Every key and
// certificate is generated here at test time; none is stored in the repository.
#include "security/certificates.hpp"

#include <gtest/gtest.h>
#include <openssl/asn1.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ocsp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <array>
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <map>
#include <mutex>
#include <stdexcept>
#include <string>
#include <vector>

#include "security/key_store.hpp"
#include "test_pki.hpp"
#include "programs.hpp"
#include "test_util.hpp"

namespace cg::test::pki {
namespace {


std::vector<std::uint8_t> spki_der(const EVP_PKEY* key) {
  unsigned char* der = nullptr;
  const int n = i2d_PUBKEY(key, &der);
  if (n <= 0) throw std::runtime_error("i2d_PUBKEY");
  std::vector<std::uint8_t> out(der, der + n);
  OPENSSL_free(der);
  return out;
}

}  // namespace
}  // namespace cg::test::pki

namespace {

namespace fs = std::filesystem;
using namespace cg::security;
using cg::test::pki::ec_key;
using cg::test::pki::issue;
using cg::test::pki::raw_key;
using cg::test::pki::rsa_key;
using cg::test::pki::Spec;

using cg::test::has;

std::string hex_of(const unsigned char* p, std::size_t n) {
  static const char* d = "0123456789abcdef";
  std::string s;
  for (std::size_t i = 0; i < n; ++i) s += d[p[i] >> 4], s += d[p[i] & 15];
  return s;
}

std::string sha256_hex(const unsigned char* p, std::size_t n) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EXPECT_EQ(EVP_Digest(p, n, md, &len, EVP_sha256(), nullptr), 1);
  return hex_of(md, len);
}

std::string upper(std::string s) {
  for (char& c : s) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return s;
}

// Root -> intermediate -> leaf, ECDSA P-256 / SHA-256 throughout.
struct Pki {
  PrivateKey root_key = ec_key("P-256");
  PrivateKey int_key = ec_key("P-256");
  PrivateKey leaf_key = ec_key("P-256");
  X509Ptr root, inter, leaf;

  explicit Pki(const std::string& tag = "Test", const std::string& leaf_eku = "clientAuth") {
    // CAs: valid from two days ago for 30 days; the leaf: from an hour ago for a day.
    root = issue({.cn = tag + " Root",
                  .org = "Test Operator",
                  .ca = true,
                  .not_before_s = -2 * 86400,
                  .not_after_s = 30 * 86400},
                 root_key.get(), nullptr, root_key.get());
    inter = issue({.cn = tag + " Sub CA",
                   .org = "Test Operator",
                   .ca = true,
                   .not_before_s = -2 * 86400,
                   .not_after_s = 30 * 86400},
                  int_key.get(), root.get(), root_key.get());
    leaf = issue({.cn = "CS001", .org = "Test Operator", .eku = leaf_eku}, leaf_key.get(), inter.get(), int_key.get());
  }
  CertChain chain() const {
    CertChain c;
    c.push_back(share(leaf.get()));
    c.push_back(share(inter.get()));
    return c;
  }
  std::vector<const X509*> roots() const { return {root.get()}; }
};

CertChain chain_of(std::initializer_list<const X509*> certs) {
  CertChain c;
  for (const X509* x : certs) c.push_back(share(x));
  return c;
}

// ---- PEM

class CertificatesPem : public ::testing::Test {
 protected:
  Pki pki;
  std::string pem3 = to_pem(pki.leaf.get()) + to_pem(pki.inter.get()) + to_pem(pki.root.get());
};

TEST_F(CertificatesPem, ParsesAChainInOrderAndWritesItBack) {
  std::string err;
  const CertChain c = parse_pem_chain(pem3, 5, err);
  ASSERT_EQ(err, "");
  ASSERT_EQ(c.size(), 3u);
  EXPECT_EQ(X509_cmp(c[0].get(), pki.leaf.get()), 0);
  EXPECT_EQ(X509_cmp(c[1].get(), pki.inter.get()), 0);
  EXPECT_EQ(X509_cmp(c[2].get(), pki.root.get()), 0);
  EXPECT_EQ(to_pem(c), pem3);
  EXPECT_EQ(to_pem(c).rfind("-----BEGIN CERTIFICATE-----\n", 0), 0u);
  // Exactly max_certs is fine.
  EXPECT_EQ(parse_pem_chain(pem3, 3, err).size(), 3u);
  EXPECT_EQ(err, "");
}

TEST_F(CertificatesPem, AcceptsWhitespaceCrLfAndAMissingFinalNewline) {
  std::string crlf;
  for (char ch : pem3) {
    if (ch == '\n')
      crlf += "\r\n";
    else
      crlf += ch;
  }
  std::string err;
  EXPECT_EQ(parse_pem_chain(crlf, 5, err).size(), 3u) << err;
  const std::string leaf = to_pem(pki.leaf.get()), inter = to_pem(pki.inter.get());
  EXPECT_EQ(parse_pem_chain("\n\n  \t" + leaf + "\n \n\t" + inter + "\n\n  ", 5, err).size(), 2u) << err;
  EXPECT_EQ(parse_pem_chain(leaf.substr(0, leaf.size() - 1), 5, err).size(), 1u) << err;
}

TEST_F(CertificatesPem, RefusesEmptyInput) {
  std::string err;
  EXPECT_TRUE(parse_pem_chain("", 5, err).empty());
  EXPECT_TRUE(has(err, "empty"));
  EXPECT_TRUE(parse_pem_chain(" \r\n\t\n", 5, err).empty());
  EXPECT_TRUE(has(err, "empty"));
}

TEST_F(CertificatesPem, RefusesMoreCertificatesThanAllowed) {
  std::string err;
  EXPECT_TRUE(parse_pem_chain(pem3, 2, err).empty());
  EXPECT_TRUE(has(err, "more than 2 certificates"));
  EXPECT_TRUE(parse_pem_chain(pem3, 0, err).empty());
  EXPECT_TRUE(has(err, "more than 0"));
}

TEST_F(CertificatesPem, RefusesInputOver64KiB) {
  std::string big = pem3;
  while (big.size() <= kMaxPemBytes) big += pem3;
  std::string err;
  EXPECT_TRUE(parse_pem_chain(big, 1000, err).empty());
  EXPECT_TRUE(has(err, "maximum 65536"));
  // Whitespace padding counts too.
  std::string padded = pem3 + std::string(kMaxPemBytes, '\n');
  EXPECT_TRUE(parse_pem_chain(padded, 5, err).empty());
  EXPECT_TRUE(has(err, "bytes"));
}

TEST_F(CertificatesPem, RefusesAPrivateKeyBlock) {
  // A key generated now, written by OpenSSL (the marker is never literal here).
  std::unique_ptr<BIO, decltype(&BIO_free)> b(BIO_new(BIO_s_mem()), BIO_free);
  ASSERT_EQ(PEM_write_bio_PrivateKey(b.get(), pki.leaf_key.get(), nullptr, nullptr, 0, nullptr, nullptr), 1);
  char* p = nullptr;
  const std::string key_pem(p, static_cast<std::size_t>(BIO_get_mem_data(b.get(), &p)));
  std::string err;
  EXPECT_TRUE(parse_pem_chain(to_pem(pki.leaf.get()) + key_pem, 5, err).empty());
  EXPECT_TRUE(has(err, "PEM block 2 is PRIVATE KEY, not CERTIFICATE"));
  EXPECT_TRUE(parse_pem_chain(key_pem + to_pem(pki.leaf.get()), 5, err).empty());
  EXPECT_TRUE(has(err, "PEM block 1 is PRIVATE KEY"));
}

TEST_F(CertificatesPem, RefusesOtherBlockTypes) {
  std::string err;
  std::string trusted = to_pem(pki.root.get());
  trusted.replace(trusted.find("BEGIN CERTIFICATE"), 17, "BEGIN TRUSTED CERTIFICATE");
  trusted.replace(trusted.find("END CERTIFICATE"), 15, "END TRUSTED CERTIFICATE");
  EXPECT_TRUE(parse_pem_chain(trusted, 5, err).empty());
  EXPECT_TRUE(has(err, "is TRUSTED CERTIFICATE, not CERTIFICATE"));
}

TEST_F(CertificatesPem, RefusesGarbageAndTrailingJunk) {
  const std::string leaf = to_pem(pki.leaf.get()), inter = to_pem(pki.inter.get());
  std::string err;
  EXPECT_TRUE(parse_pem_chain("hello\n" + leaf, 5, err).empty());
  EXPECT_TRUE(has(err, "unexpected text before the first certificate"));
  EXPECT_TRUE(parse_pem_chain(leaf + "junk\n" + inter, 5, err).empty());
  EXPECT_TRUE(has(err, "unexpected text after certificate 1"));
  EXPECT_TRUE(parse_pem_chain(leaf + inter + "trailing", 5, err).empty());
  EXPECT_TRUE(has(err, "unexpected text after certificate 2"));
  EXPECT_TRUE(parse_pem_chain(leaf + std::string("\0", 1), 5, err).empty());
  EXPECT_TRUE(has(err, "unexpected text after certificate 1"));
  EXPECT_TRUE(parse_pem_chain("not PEM at all", 5, err).empty());
  EXPECT_TRUE(has(err, "unexpected text"));
}

TEST_F(CertificatesPem, RefusesBrokenBlocks) {
  const std::string leaf = to_pem(pki.leaf.get());
  std::string err;
  // Text after the BEGIN line's dashes (PEM_read_bio alone would skip that block).
  std::string b = leaf;
  b.insert(b.find('\n'), "x");
  EXPECT_TRUE(parse_pem_chain(b + to_pem(pki.inter.get()), 5, err).empty());
  EXPECT_TRUE(has(err, "malformed PEM begin line"));
  // Bad base64.
  b = leaf;
  b[b.find('\n') + 5] = '!';
  EXPECT_TRUE(parse_pem_chain(b, 5, err).empty());
  EXPECT_FALSE((err).empty());
  // No END line.
  b = leaf.substr(0, leaf.find("-----END"));
  EXPECT_TRUE(parse_pem_chain(b, 5, err).empty());
  EXPECT_TRUE(has(err, "not valid PEM"));
  // END line with junk after the dashes.
  b = leaf;
  b.insert(b.size() - 1, "junk");
  EXPECT_TRUE(parse_pem_chain(b, 5, err).empty());
  EXPECT_TRUE(has(err, "not valid PEM"));
  // PEM headers (encrypted PEM style).
  b = leaf;
  b.insert(b.find('\n') + 1, "Proc-Type: 4,ENCRYPTED\nDEK-Info: AES-128-CBC,00112233445566778899AABBCCDDEEFF\n\n");
  EXPECT_TRUE(parse_pem_chain(b, 5, err).empty());
  EXPECT_TRUE(has(err, "headers"));
}

// Writes a CERTIFICATE block holding arbitrary bytes.
std::string pem_block(const std::string& name, const std::vector<unsigned char>& der) {
  std::unique_ptr<BIO, decltype(&BIO_free)> b(BIO_new(BIO_s_mem()), BIO_free);
  PEM_write_bio(b.get(), name.c_str(), "", der.data(), static_cast<long>(der.size()));
  char* p = nullptr;
  return std::string(p, static_cast<std::size_t>(BIO_get_mem_data(b.get(), &p)));
}

TEST_F(CertificatesPem, RefusesDerThatIsNotExactlyOneCertificate) {
  unsigned char* der = nullptr;
  const int n = i2d_X509(pki.leaf.get(), &der);
  ASSERT_GT(n, 0);
  std::vector<unsigned char> bytes(der, der + n);
  OPENSSL_free(der);
  std::string err;
  EXPECT_EQ(parse_pem_chain(pem_block("CERTIFICATE", bytes), 5, err).size(), 1u) << err;
  auto extra = bytes;
  extra.push_back(0);
  EXPECT_TRUE(parse_pem_chain(pem_block("CERTIFICATE", extra), 5, err).empty());
  EXPECT_TRUE(has(err, "bytes after the certificate"));
  auto cut = bytes;
  cut.resize(cut.size() / 2);
  EXPECT_TRUE(parse_pem_chain(pem_block("CERTIFICATE", cut), 5, err).empty());
  EXPECT_TRUE(has(err, "not a valid X.509 certificate"));
  EXPECT_TRUE(parse_pem_chain(pem_block("CERTIFICATE", {0x30, 0x00}), 5, err).empty());
  EXPECT_TRUE(has(err, "not a valid X.509 certificate"));
}

TEST_F(CertificatesPem, SingleCertificateAndFiles) {
  std::string err;
  EXPECT_TRUE(parse_pem_certificate(to_pem(pki.leaf.get()), err));
  EXPECT_FALSE(parse_pem_certificate(pem3, err));
  EXPECT_TRUE(has(err, "more than 1"));

  const fs::path dir = cg::test::make_temp_dir("certs");
  std::ofstream(dir / "chain.pem") << pem3;
  std::ofstream(dir / "one.pem") << to_pem(pki.root.get());
  std::ofstream(dir / "big.pem") << std::string(kMaxPemBytes + 1, '\n');
  CertChain c = load_chain_file(dir / "chain.pem", 5, err);
  EXPECT_EQ(c.size(), 3u) << err;
  X509Ptr one = load_pem_file(dir / "one.pem", err);
  ASSERT_TRUE(one) << err;
  EXPECT_EQ(X509_cmp(one.get(), pki.root.get()), 0);
  EXPECT_FALSE(load_pem_file(dir / "chain.pem", err));
  EXPECT_TRUE(has(err, "chain.pem"));
  EXPECT_TRUE(load_chain_file(dir / "missing.pem", 5, err).empty());
  EXPECT_TRUE(has(err, "cannot open"));
  EXPECT_TRUE(load_chain_file(dir, 5, err).empty());
  EXPECT_TRUE(has(err, "not a regular file"));
  EXPECT_TRUE(load_chain_file(dir / "big.pem", 5, err).empty());
  EXPECT_TRUE(has(err, "larger than 65536"));
  fs::remove_all(dir);
}

// ---- verification

class CertificatesVerify : public ::testing::Test {
 protected:
  Pki pki;
};

TEST_F(CertificatesVerify, ChainsToTheRootThroughTheIntermediate) {
  EXPECT_EQ(verify_chain(pki.chain(), pki.roots()), "");
  const VerifyResult r = verify_chain_detailed(pki.chain(), pki.roots());
  ASSERT_TRUE(r.ok()) << r.error;
  EXPECT_TRUE((r.warnings).empty());
  ASSERT_EQ(r.chain.size(), 3u);
  EXPECT_EQ(X509_cmp(r.chain[0].get(), pki.leaf.get()), 0);
  EXPECT_EQ(X509_cmp(r.chain[1].get(), pki.inter.get()), 0);
  EXPECT_EQ(X509_cmp(r.chain[2].get(), pki.root.get()), 0);
  // The root may also be in the chain, and other roots in the store.
  Pki other("Other");
  CertChain with_root = pki.chain();
  with_root.push_back(share(pki.root.get()));
  EXPECT_EQ(verify_chain(with_root, {other.root.get(), pki.root.get()}), "");
}

TEST_F(CertificatesVerify, ExpiredAndNotYetValid) {
  const X509Ptr expired = issue({.cn = "CS001", .not_before_s = -7200, .not_after_s = -3600}, pki.leaf_key.get(),
                                pki.inter.get(), pki.int_key.get());
  EXPECT_TRUE(has(verify_chain(chain_of({expired.get(), pki.inter.get()}), pki.roots()),
                  "certificate has expired (leaf CN=CS001)"));
  const X509Ptr future = issue({.cn = "CS001", .not_before_s = 3600, .not_after_s = 7200}, pki.leaf_key.get(),
                               pki.inter.get(), pki.int_key.get());
  EXPECT_TRUE(
      has(verify_chain(chain_of({future.get(), pki.inter.get()}), pki.roots()), "certificate is not yet valid"));
  // The time of the check is an option.
  using namespace std::chrono;
  VerifyOptions at;
  at.at = system_clock::now() - seconds(5400);
  EXPECT_EQ(verify_chain(chain_of({expired.get(), pki.inter.get()}), pki.roots(), at), "");
  at.at = system_clock::now() + seconds(5400);
  EXPECT_EQ(verify_chain(chain_of({future.get(), pki.inter.get()}), pki.roots(), at), "");
  at.at = system_clock::now() + hours(48);
  EXPECT_TRUE(has(verify_chain(pki.chain(), pki.roots(), at), "expired"));
  // An expired intermediate is named as such.
  const X509Ptr old_inter =
      issue({.cn = "Test Sub CA", .org = "Test Operator", .ca = true, .not_before_s = -7200, .not_after_s = -3600},
            pki.int_key.get(), pki.root.get(), pki.root_key.get());
  EXPECT_TRUE(has(verify_chain(chain_of({pki.leaf.get(), old_inter.get()}), pki.roots()),
                  "certificate has expired (certificate 1 CN=Test Sub CA,O=Test Operator)"));
}

TEST_F(CertificatesVerify, WrongRootMissingIntermediateAndNoPartialChains) {
  Pki other("Other");
  EXPECT_TRUE(has(verify_chain(pki.chain(), other.roots()), "unable to get local issuer certificate"));
  EXPECT_TRUE(has(verify_chain(chain_of({pki.leaf.get()}), pki.roots()),
                  "unable to get local issuer certificate (leaf CN=CS001"));
  // The intermediate as the only trusted certificate: a partial chain, refused.
  EXPECT_FALSE((verify_chain(chain_of({pki.leaf.get()}), {pki.inter.get()})).empty());
  EXPECT_FALSE((verify_chain(pki.chain(), {pki.inter.get()})).empty());
  // The chain's own root does not make itself trusted.
  CertChain with_root = pki.chain();
  with_root.push_back(share(pki.root.get()));
  EXPECT_FALSE((verify_chain(with_root, other.roots())).empty());
  EXPECT_EQ(verify_chain(pki.chain(), {}), "no trusted root");
  EXPECT_EQ(verify_chain({}, pki.roots()), "empty certificate chain");
}

TEST_F(CertificatesVerify, WeakIntermediateOrLeafIsRefusedByThePolicy) {
  const PrivateKey weak = rsa_key(1024);
  const X509Ptr weak_inter = issue({.cn = "Weak Sub CA", .ca = true}, weak.get(), pki.root.get(), pki.root_key.get());
  const X509Ptr leaf = issue({.cn = "CS001"}, pki.leaf_key.get(), weak_inter.get(), weak.get());
  EXPECT_EQ(verify_chain(chain_of({leaf.get(), weak_inter.get()}), pki.roots()),
            "certificate 1 (CN=Weak Sub CA): RSA key of 1024 bits (minimum 2048)");
  const X509Ptr weak_leaf = issue({.cn = "CS001"}, weak.get(), pki.inter.get(), pki.int_key.get());
  EXPECT_EQ(verify_chain(chain_of({weak_leaf.get(), pki.inter.get()}), pki.roots()),
            "leaf (CN=CS001): RSA key of 1024 bits (minimum 2048)");
  // Without the policy (check_policy = false) only the path is checked.
  VerifyOptions no_policy;
  no_policy.check_policy = false;
  EXPECT_EQ(verify_chain(chain_of({weak_leaf.get(), pki.inter.get()}), pki.roots(), no_policy), "");
}

TEST_F(CertificatesVerify, PolicyAppliesToTheRootAndReportsWarnings) {
  // A SHA-1 self-signed root: refused.
  const X509Ptr sha1_root =
      issue({.cn = "SHA1 Root", .ca = true, .md = EVP_sha1()}, pki.root_key.get(), nullptr, pki.root_key.get());
  const X509Ptr leaf = issue({.cn = "CS001"}, pki.leaf_key.get(), sha1_root.get(), pki.root_key.get());
  EXPECT_EQ(verify_chain(chain_of({leaf.get()}), {sha1_root.get()}),
            "root (CN=SHA1 Root): signature digest SHA1 not allowed");
  // An RSA-2048 leaf: accepted, with a warning naming it.
  const PrivateKey k2048 = rsa_key(2048);
  const X509Ptr leaf2048 = issue({.cn = "CS001"}, k2048.get(), pki.inter.get(), pki.int_key.get());
  const VerifyResult r = verify_chain_detailed(chain_of({leaf2048.get(), pki.inter.get()}), pki.roots());
  ASSERT_TRUE(r.ok()) << r.error;
  ASSERT_EQ(r.warnings.size(), 1u);
  EXPECT_EQ(r.warnings[0], "leaf (CN=CS001): RSA key of 2048 bits (below the 3072-bit goal)");
}

TEST_F(CertificatesVerify, Ed25519LeafAndRsaPssIntermediate) {
  const PrivateKey rk = rsa_key(3072), ek = raw_key("ED25519");
  const X509Ptr pss_inter = issue({.cn = "PSS Sub CA", .ca = true}, rk.get(), pki.root.get(), pki.root_key.get());
  const X509Ptr leaf = issue({.cn = "CS001", .pss = true}, ek.get(), pss_inter.get(), rk.get());
  const X509Ptr ed_leaf = issue({.cn = "CS002", .md = nullptr}, ek.get(), nullptr, ek.get());
  EXPECT_EQ(verify_chain(chain_of({leaf.get(), pss_inter.get()}), pki.roots()), "");
  EXPECT_EQ(verify_chain(chain_of({ed_leaf.get()}), {ed_leaf.get()}), "");
}

TEST_F(CertificatesVerify, StrictX509) {
  // A CA whose basicConstraints is not critical: refused under X509_V_FLAG_X509_STRICT.
  const X509Ptr lax = issue({.cn = "Lax Sub CA", .ca = true, .basic_constraints = "CA:TRUE"}, pki.int_key.get(),
                            pki.root.get(), pki.root_key.get());
  const X509Ptr leaf = issue({.cn = "CS001"}, pki.leaf_key.get(), lax.get(), pki.int_key.get());
  EXPECT_TRUE(has(verify_chain(chain_of({leaf.get(), lax.get()}), pki.roots()), "not marked critical"));
}

TEST_F(CertificatesVerify, Purposes) {
  using P = VerifyOptions::Purpose;
  VerifyOptions o;
  o.purpose = P::TlsClient;
  EXPECT_EQ(verify_chain(pki.chain(), pki.roots(), o), "");  // clientAuth leaf
  o.purpose = P::TlsServer;
  EXPECT_TRUE(has(verify_chain(pki.chain(), pki.roots(), o), "unsuitable certificate purpose"));
  o.purpose = P::CodeSigning;
  EXPECT_TRUE(has(verify_chain(pki.chain(), pki.roots(), o), "extendedKeyUsage without codeSigning"));
  const X509Ptr signer =
      issue({.cn = "Firmware Signer", .eku = "codeSigning"}, pki.leaf_key.get(), pki.inter.get(), pki.int_key.get());
  EXPECT_EQ(verify_chain(chain_of({signer.get(), pki.inter.get()}), pki.roots(), o), "");
  const X509Ptr no_ds = issue({.cn = "Firmware Signer", .eku = "codeSigning", .key_usage = "critical,keyAgreement"},
                              pki.leaf_key.get(), pki.inter.get(), pki.int_key.get());
  EXPECT_TRUE(
      has(verify_chain(chain_of({no_ds.get(), pki.inter.get()}), pki.roots(), o), "keyUsage without digitalSignature"));
  o.purpose = P::Any;
  EXPECT_EQ(verify_chain(chain_of({signer.get(), pki.inter.get()}), pki.roots(), o), "");
}

// ---- CertificateHashData

class CertificatesHashData : public ::testing::Test {
 protected:
  Pki pki;
};

TEST_F(CertificatesHashData, MatchesAnIndependentComputation) {
  const CertificateHashData h = hash_data(pki.leaf.get(), pki.inter.get());
  EXPECT_EQ(h.hash_algorithm, "SHA256");
  // issuerNameHash: SHA-256 over the DER of the issuer's subject name.
  unsigned char* der = nullptr;
  const int n = i2d_X509_NAME(X509_get_subject_name(pki.inter.get()), &der);
  ASSERT_GT(n, 0);
  EXPECT_EQ(h.issuer_name_hash, sha256_hex(der, static_cast<std::size_t>(n)));
  OPENSSL_free(der);
  // issuerKeyHash: SHA-256 over the public key bytes of the issuer's SPKI.
  const unsigned char* pk = nullptr;
  int pklen = 0;
  ASSERT_EQ(X509_PUBKEY_get0_param(nullptr, &pk, &pklen, nullptr, X509_get_X509_PUBKEY(pki.inter.get())), 1);
  EXPECT_EQ(pklen, 65);  // uncompressed P-256 point
  EXPECT_EQ(h.issuer_key_hash, sha256_hex(pk, static_cast<std::size_t>(pklen)));
  // serialNumber: lower-case hex without leading zeros.
  std::unique_ptr<BIGNUM, decltype(&BN_free)> bn(ASN1_INTEGER_to_BN(X509_get0_serialNumber(pki.leaf.get()), nullptr),
                                                 BN_free);
  char* sh = BN_bn2hex(bn.get());
  std::string serial = sh;
  OPENSSL_free(sh);
  for (char& c : serial) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  serial.erase(0, serial.find_first_not_of('0'));
  EXPECT_EQ(h.serial_number, serial);
  EXPECT_EQ(h.issuer_name_hash.size(), 64u);
  EXPECT_EQ(h.issuer_name_hash.find_first_not_of("0123456789abcdef"), std::string::npos);
}

TEST_F(CertificatesHashData, MatchesOpenSslOcspCertId) {
  for (auto [alg, md] : {std::pair{HashAlgorithm::SHA256, EVP_sha256()}, std::pair{HashAlgorithm::SHA384, EVP_sha384()},
                         std::pair{HashAlgorithm::SHA512, EVP_sha512()}}) {
    const CertificateHashData h = hash_data(pki.leaf.get(), pki.inter.get(), alg);
    std::unique_ptr<OCSP_CERTID, decltype(&OCSP_CERTID_free)> id(OCSP_cert_to_id(md, pki.leaf.get(), pki.inter.get()),
                                                                 OCSP_CERTID_free);
    ASSERT_TRUE(id);
    ASN1_OCTET_STRING *name_hash = nullptr, *key_hash = nullptr;
    ASN1_INTEGER* serial = nullptr;
    ASSERT_EQ(OCSP_id_get0_info(&name_hash, nullptr, &key_hash, &serial, id.get()), 1);
    EXPECT_EQ(h.hash_algorithm, std::string(to_string(alg)));
    EXPECT_EQ(h.issuer_name_hash, hex_of(name_hash->data, static_cast<std::size_t>(name_hash->length)));
    EXPECT_EQ(h.issuer_key_hash, hex_of(key_hash->data, static_cast<std::size_t>(key_hash->length)));
    EXPECT_EQ(h.issuer_name_hash.size(), static_cast<std::size_t>(EVP_MD_get_size(md) * 2));
    EXPECT_LE(h.issuer_key_hash.size(), 128u);
    EXPECT_EQ(ASN1_INTEGER_cmp(serial, X509_get0_serialNumber(pki.leaf.get())), 0);
  }
}

// The `openssl ocsp` command line as an external reference (CertID of an OCSP
// request with -sha256).
TEST_F(CertificatesHashData, MatchesTheOpensslOcspCommand) {
  const fs::path dir = cg::test::make_temp_dir("ocsp");
  std::ofstream(dir / "issuer.pem") << to_pem(pki.inter.get());
  std::ofstream(dir / "cert.pem") << to_pem(pki.leaf.get());
  const auto r = cg::test::run_program("openssl", {"ocsp", "-sha256", "-no_nonce", "-issuer", (dir / "issuer.pem").string(),
                                                  "-cert", (dir / "cert.pem").string(), "-reqout",
                                                  (dir / "req.der").string()});
  ASSERT_EQ(r.status, 0) << r.output;
  std::ifstream in(dir / "req.der", std::ios::binary);
  const std::string der((std::istreambuf_iterator<char>(in)), {});
  const auto* p = reinterpret_cast<const unsigned char*>(der.data());
  std::unique_ptr<OCSP_REQUEST, decltype(&OCSP_REQUEST_free)> req(
      d2i_OCSP_REQUEST(nullptr, &p, static_cast<long>(der.size())), OCSP_REQUEST_free);
  ASSERT_TRUE(req);
  ASSERT_EQ(OCSP_request_onereq_count(req.get()), 1);
  OCSP_CERTID* id = OCSP_onereq_get0_id(OCSP_request_onereq_get0(req.get(), 0));
  ASN1_OCTET_STRING *name_hash = nullptr, *key_hash = nullptr;
  ASN1_OBJECT* md = nullptr;
  ASN1_INTEGER* serial = nullptr;
  ASSERT_EQ(OCSP_id_get0_info(&name_hash, &md, &key_hash, &serial, id), 1);
  EXPECT_EQ(OBJ_obj2nid(md), NID_sha256);
  const CertificateHashData h = hash_data(pki.leaf.get(), pki.inter.get());
  EXPECT_EQ(h.issuer_name_hash, hex_of(name_hash->data, static_cast<std::size_t>(name_hash->length)));
  EXPECT_EQ(h.issuer_key_hash, hex_of(key_hash->data, static_cast<std::size_t>(key_hash->length)));
  std::unique_ptr<BIGNUM, decltype(&BN_free)> bn(ASN1_INTEGER_to_BN(serial, nullptr), BN_free);
  char* sh = BN_bn2hex(bn.get());
  EXPECT_TRUE(same_hash_data(h, {"SHA256", h.issuer_name_hash, h.issuer_key_hash, sh}));
  OPENSSL_free(sh);
  fs::remove_all(dir);
}

TEST_F(CertificatesHashData, SelfSignedRootAndSerialForms) {
  const CertificateHashData r = hash_data(pki.root.get(), pki.root.get());
  EXPECT_EQ(r.issuer_name_hash, hash_data(pki.inter.get(), pki.root.get()).issuer_name_hash);
  EXPECT_EQ(r.issuer_key_hash, hash_data(pki.inter.get(), pki.root.get()).issuer_key_hash);
  // Serial numbers: leading zero octets and nibbles dropped, lower case.
  const std::vector<std::pair<std::vector<unsigned char>, std::string>> cases = {
      {{0x00, 0x0a, 0xbc}, "abc"}, {{0x01}, "1"}, {{0x7f, 0xff, 0x00}, "7fff00"}, {{0x00}, "0"}};
  for (const auto& [bytes, want] : cases) {
    const X509Ptr c = issue({.cn = "S", .serial = bytes}, pki.leaf_key.get(), pki.root.get(), pki.root_key.get());
    EXPECT_EQ(hash_data(c.get(), pki.root.get()).serial_number, want);
  }
  // 20 octets (the RFC 5280 maximum): 40 characters, OCPP's limit.
  const X509Ptr big = issue({.cn = "S", .serial = std::vector<unsigned char>(20, 0x7e)}, pki.leaf_key.get(),
                            pki.root.get(), pki.root_key.get());
  EXPECT_EQ(hash_data(big.get(), pki.root.get()).serial_number.size(), 40u);
  EXPECT_EQ(hash_data(nullptr, pki.root.get()).hash_algorithm, "");
  EXPECT_EQ(hash_data(pki.leaf.get(), nullptr).serial_number, "");
}

TEST_F(CertificatesHashData, SameHashDataIgnoresCaseAndLeadingZeros) {
  const CertificateHashData h = hash_data(pki.leaf.get(), pki.inter.get());
  CertificateHashData csms{"SHA256", upper(h.issuer_name_hash), upper(h.issuer_key_hash),
                           "000" + upper(h.serial_number)};
  EXPECT_TRUE(same_hash_data(h, csms));
  EXPECT_TRUE(same_hash_data(csms, h));
  CertificateHashData other = csms;
  other.serial_number += "0";
  EXPECT_FALSE(same_hash_data(h, other));
  other = csms;
  other.hash_algorithm = "SHA384";
  EXPECT_FALSE(same_hash_data(h, other));
  other = csms;
  other.issuer_key_hash[0] = other.issuer_key_hash[0] == 'A' ? 'B' : 'A';
  EXPECT_FALSE(same_hash_data(h, other));
  EXPECT_FALSE(same_hash_data(h, hash_data(pki.inter.get(), pki.root.get())));
  EXPECT_FALSE(same_hash_data({}, {}));
  EXPECT_TRUE(same_hash_data({"SHA256", "aa", "bb", "0"}, {"sha256", "AA", "BB", "000"}));
  EXPECT_EQ(parse_hash_algorithm("SHA384"), HashAlgorithm::SHA384);
  EXPECT_EQ(parse_hash_algorithm("sha384"), std::nullopt);
  EXPECT_EQ(parse_hash_algorithm("SHA1"), std::nullopt);
}

// ---- accessors

TEST(Certificates, SubjectAttributes) {
  const PrivateKey k = ec_key("P-256");
  const X509Ptr c = issue({.cn = "Zürich CS001", .org = "Test Operator"}, k.get(), nullptr, k.get());
  EXPECT_EQ(subject_attribute(c.get(), NID_commonName), "Zürich CS001");
  EXPECT_EQ(subject_attribute(c.get(), NID_organizationName), "Test Operator");
  EXPECT_EQ(subject_attribute(c.get(), NID_countryName), "");
  EXPECT_EQ(subject_attribute(nullptr, NID_commonName), "");
  EXPECT_EQ(subject_text(c.get()), "CN=Z\\C3\\BCrich CS001,O=Test Operator");

  // Two CNs: ambiguous. A NUL inside: refused.
  X509Ptr two(X509_dup(c.get()));
  X509_NAME_add_entry_by_txt(X509_get_subject_name(two.get()), "CN", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>("second"), -1, -1, 0);
  EXPECT_EQ(subject_attribute(two.get(), NID_commonName), "");
  X509Ptr nul(X509_dup(c.get()));
  X509_NAME* n = X509_get_subject_name(nul.get());
  X509_NAME_ENTRY_free(X509_NAME_delete_entry(n, X509_NAME_get_index_by_NID(n, NID_commonName, -1)));
  X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC, reinterpret_cast<const unsigned char*>("CS\0evil"), 7, -1, 0);
  EXPECT_EQ(subject_attribute(nul.get(), NID_commonName), "");
  // Control characters are escaped, long subjects cut.
  X509Ptr ctl(X509_dup(c.get()));
  X509_NAME* cn = X509_get_subject_name(ctl.get());
  X509_NAME_ENTRY_free(X509_NAME_delete_entry(cn, X509_NAME_get_index_by_NID(cn, NID_commonName, -1)));
  X509_NAME_add_entry_by_txt(cn, "CN", MBSTRING_ASC, reinterpret_cast<const unsigned char*>("a\nb"), -1, -1, 0);
  EXPECT_EQ(subject_text(ctl.get()).find('\n'), std::string::npos);
  const X509Ptr long_name = issue({.cn = std::string(64, 'x'), .org = std::string(64, 'y')}, k.get(), nullptr, k.get());
  const std::string ou(60, 'z');
  for (int i = 0; i < 4; ++i)
    ASSERT_EQ(X509_NAME_add_entry_by_txt(X509_get_subject_name(long_name.get()), "OU", MBSTRING_ASC,
                                         reinterpret_cast<const unsigned char*>(ou.c_str()), -1, -1, 0),
              1);
  const std::string t = subject_text(long_name.get());
  EXPECT_EQ(t.size(), 256u);
  EXPECT_EQ(t.substr(253), "...");
}

TEST(Certificates, CaSelfSignedAndSignedBy) {
  Pki pki;
  EXPECT_TRUE(is_ca(pki.root.get()));
  EXPECT_TRUE(is_ca(pki.inter.get()));
  EXPECT_FALSE(is_ca(pki.leaf.get()));
  EXPECT_TRUE(is_self_signed(pki.root.get()));
  EXPECT_FALSE(is_self_signed(pki.inter.get()));
  EXPECT_FALSE(is_self_signed(pki.leaf.get()));
  EXPECT_FALSE(is_ca(nullptr));
  EXPECT_FALSE(is_self_signed(nullptr));
  // A certificate with the root's name but another key is not self-signed.
  const PrivateKey other_key = ec_key("P-256");
  X509Ptr fake(X509_dup(pki.root.get()));
  X509_set_pubkey(fake.get(), other_key.get());
  X509_sign(fake.get(), pki.int_key.get(), EVP_sha256());
  EXPECT_FALSE(is_self_signed(fake.get()));

  EXPECT_TRUE(signed_by(pki.leaf.get(), pki.inter.get()));
  EXPECT_TRUE(signed_by(pki.inter.get(), pki.root.get()));
  EXPECT_TRUE(signed_by(pki.root.get(), pki.root.get()));
  EXPECT_FALSE(signed_by(pki.leaf.get(), pki.root.get()));
  EXPECT_FALSE(signed_by(pki.inter.get(), pki.inter.get()));
  EXPECT_FALSE(signed_by(nullptr, pki.root.get()));
  // "The new root is signed by the old one" (M05): a new root key, certified by the old root.
  const PrivateKey new_key = ec_key("P-384");
  const X509Ptr new_root_self = issue({.cn = "Test Root 2", .ca = true}, new_key.get(), nullptr, new_key.get());
  const X509Ptr new_root_cross =
      issue({.cn = "Test Root 2", .ca = true}, new_key.get(), pki.root.get(), pki.root_key.get());
  EXPECT_TRUE(signed_by(new_root_cross.get(), pki.root.get()));
  EXPECT_FALSE(signed_by(new_root_self.get(), pki.root.get()));
  // Same issuer name, wrong key: the signature decides.
  Pki twin("Test");  // same names, other keys
  EXPECT_FALSE(signed_by(pki.leaf.get(), twin.inter.get()));
}

TEST(Certificates, ValidityBounds) {
  using namespace std::chrono;
  const PrivateKey k = ec_key("P-256");
  const auto now = system_clock::now();
  const X509Ptr c = issue({.cn = "T", .not_before_s = -60, .not_after_s = 3600}, k.get(), nullptr, k.get());
  EXPECT_LE(std::abs(duration_cast<seconds>(not_before(c.get()) - (now - seconds(60))).count()), 2);
  EXPECT_LE(std::abs(duration_cast<seconds>(not_after(c.get()) - (now + seconds(3600))).count()), 2);
  // 9999-12-31 (RFC 5280 "no expiry") is beyond system_clock's range: clamped.
  X509Ptr forever(X509_dup(c.get()));
  ASSERT_EQ(ASN1_TIME_set_string_X509(X509_getm_notAfter(forever.get()), "99991231235959Z"), 1);
  EXPECT_EQ(not_after(forever.get()), system_clock::time_point::max());
  ASSERT_EQ(ASN1_TIME_set_string_X509(X509_getm_notAfter(forever.get()), "20491231235959Z"), 1);
  EXPECT_EQ(system_clock::to_time_t(not_after(forever.get())), 2524607999);
  EXPECT_EQ(not_before(nullptr), system_clock::time_point::max());
  EXPECT_EQ(not_after(nullptr), system_clock::time_point::min());
}

TEST(Certificates, PublicKeyMatches) {
  const PrivateKey k = ec_key("P-256"), other = ec_key("P-256");
  const X509Ptr c = issue({.cn = "T"}, k.get(), nullptr, k.get());
  const auto der = cg::test::pki::spki_der(k.get());
  EXPECT_TRUE(public_key_matches(c.get(), der));
  EXPECT_FALSE(public_key_matches(c.get(), cg::test::pki::spki_der(other.get())));
  auto longer = der;
  longer.push_back(0);
  EXPECT_FALSE(public_key_matches(c.get(), longer));
  EXPECT_FALSE(public_key_matches(c.get(), std::span<const std::uint8_t>(der.data(), der.size() - 1)));
  EXPECT_FALSE(public_key_matches(c.get(), {}));
  EXPECT_FALSE(public_key_matches(nullptr, der));

  // The key store's SubjectPublicKeyInfo (file backend).
  const fs::path dir = cg::test::make_temp_dir("certs-ks");
  {
    auto store = open_file_key_store({dir / "keys"});
    store->generate_key("station", KeyType::EcP256);
    const PrivateKey pk = store->private_key("station");
    const X509Ptr sc = issue({.cn = "CS001"}, pk.get(), nullptr, pk.get());
    EXPECT_TRUE(public_key_matches(sc.get(), store->public_key_der("station")));
    EXPECT_FALSE(public_key_matches(c.get(), store->public_key_der("station")));
  }
  fs::remove_all(dir);
}

}  // namespace
