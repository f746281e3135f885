// REQ: FW-1, FW-3, FW-4, FW-7, COM-7, COM-8 — the firmware verifier: which
// signing certificates it accepts, every forbidden algorithm refused, the
// signature over the whole file (as the openssl CLI makes it), the content
// checks after it, streaming in any chunking, and the tools pack/sign.
#include "firmware/verifier.hpp"

#include <gtest/gtest.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>

#include <string>

#include "firmware/image_tools.hpp"
#include "programs.hpp"
#include "security/base64.hpp"
#include "test_pki.hpp"
#include "test_util.hpp"

namespace {

namespace fs = std::filesystem;
using namespace cg::firmware;
using cg::security::PrivateKey;
using cg::security::X509Ptr;
using cg::Result;
using cg::test::has;
using namespace cg::test::pki;

std::string pem_of(const X509* c) { return cg::security::to_pem(c); }

// Signature of `data` with `key`, `md` and an optional RSA padding (base64).
std::string sign_bytes(const std::string& data, EVP_PKEY* key, const EVP_MD* md, int rsa_padding = 0) {
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(), EVP_MD_CTX_free);
  EVP_PKEY_CTX* pctx = nullptr;
  EXPECT_EQ(EVP_DigestSignInit(ctx.get(), &pctx, md, nullptr, key), 1);
  if (rsa_padding != 0) {
    EXPECT_EQ(EVP_PKEY_CTX_set_rsa_padding(pctx, rsa_padding), 1);
  }
  std::size_t len = 0;
  EXPECT_EQ(EVP_DigestSign(ctx.get(), nullptr, &len, reinterpret_cast<const unsigned char*>(data.data()), data.size()), 1);
  std::string sig(len, '\0');
  EXPECT_EQ(EVP_DigestSign(ctx.get(), reinterpret_cast<unsigned char*>(sig.data()), &len,
                           reinterpret_cast<const unsigned char*>(data.data()), data.size()),
            1);
  sig.resize(len);
  return cg::security::base64_encode(sig);
}

std::array<std::uint8_t, 32> sha256(const std::string& s) {
  std::array<std::uint8_t, 32> out{};
  unsigned int n = 0;
  EVP_Digest(s.data(), s.size(), out.data(), &n, EVP_sha256(), nullptr);
  return out;
}

std::string make_image(const std::string& payload, const std::string& version = "1.0.0", std::uint32_t sv = 1) {
  Manifest m;
  m.model = "CG-SIM";
  m.version = version;
  m.security_version = sv;
  m.payload_size = payload.size();
  m.payload_sha256 = sha256(payload);
  auto text = format_manifest(m);
  EXPECT_TRUE(text.ok());
  return *text + payload;
}

class FirmwareVerifier : public ::testing::Test {
 protected:
  FirmwareVerifier()
      : dir_(cg::test::make_temp_dir("fw-verify")),
        root_key_(ec_key("P-256")),
        root_(issue({.cn = "Mfr Root", .org = "Mfr", .ca = true}, root_key_.get(), nullptr, root_key_.get())),
        signer_key_(ec_key("P-256")),
        signer_(code_signer(signer_key_.get())) {}
  ~FirmwareVerifier() override { fs::remove_all(dir_); }

  X509Ptr code_signer(EVP_PKEY* key, Spec s = {}) {
    if (s.cn.empty()) s.cn = "Mfr Firmware Signer";
    if (s.eku.empty()) s.eku = "critical,codeSigning";
    return issue(s, key, root_.get(), root_key_.get());
  }

  Result<SigningCertificate> check(const std::string& pem) { return check_signing_certificate(pem, {root_.get()}); }

  Result<ImageInfo> verify(const std::string& image, const std::string& sig_b64, const X509* cert = nullptr) {
    const X509* c = cert ? cert : signer_.get();
    auto signer = check(pem_of(c));
    if (!signer) return signer.error();
    const fs::path p = dir_ / "image.cgfw";
    cg::test::write_file(p, image);
    return verify_file(p, *signer, sig_b64, 1 << 26);
  }

  fs::path dir_;
  PrivateKey root_key_;
  X509Ptr root_;
  PrivateKey signer_key_;
  X509Ptr signer_;
};

// ---- step 1: the signing certificate

TEST_F(FirmwareVerifier, AcceptsACodeSigningLeafOfThePinnedRoot) {
  auto s = check(pem_of(signer_.get()));
  ASSERT_TRUE(s.ok()) << s.error().message;
  EXPECT_EQ(s->digest, "SHA-256");
  EXPECT_TRUE(has(s->subject, "CN=Mfr Firmware Signer"));
  // …also through an intermediate CA sent after the leaf.
  const PrivateKey ik = ec_key("P-384");
  const X509Ptr inter = issue({.cn = "Mfr Signing CA", .ca = true}, ik.get(), root_.get(), root_key_.get());
  const PrivateKey lk = ec_key("P-384");
  const X509Ptr leaf = issue({.cn = "Signer 2", .eku = "codeSigning"}, lk.get(), inter.get(), ik.get());
  auto s2 = check(pem_of(leaf.get()) + pem_of(inter.get()));
  ASSERT_TRUE(s2.ok()) << s2.error().message;
  EXPECT_EQ(s2->digest, "SHA-384");
}

TEST_F(FirmwareVerifier, RefusesCertificatesNotMeantForCodeSigning) {
  const auto refused = [&](const X509Ptr& c, const std::string& why) {
    auto s = check(pem_of(c.get()));
    ASSERT_FALSE(s.ok()) << why;
    EXPECT_EQ(s.error().reason, kReasonInvalidCertificate);
    EXPECT_TRUE(has(s.error().message, why));
  };
  const PrivateKey k = ec_key("P-256");
  refused(issue({.cn = "No EKU"}, k.get(), root_.get(), root_key_.get()), "no extendedKeyUsage (codeSigning is required)");
  refused(issue({.cn = "TLS", .eku = "serverAuth"}, k.get(), root_.get(), root_key_.get()),
          "extendedKeyUsage without codeSigning");
  refused(code_signer(k.get(), {.cn = "KU", .key_usage = "critical,keyEncipherment"}),
          "keyUsage without digitalSignature");
  refused(code_signer(k.get(), {.cn = "CA signer", .ca = true, .key_usage = "critical,digitalSignature,keyCertSign"}),
          "a CA certificate cannot sign firmware");
  refused(code_signer(k.get(), {.cn = "Old", .not_before_s = -7200, .not_after_s = -3600}), "certificate has expired");
  refused(code_signer(k.get(), {.cn = "Future", .not_before_s = 3600, .not_after_s = 7200}),
          "certificate is not yet valid");
  // Another root: the CSMS root, or a self-made "manufacturer".
  const PrivateKey ok = ec_key("P-256");
  const X509Ptr other_root = issue({.cn = "Mfr Root", .org = "Mfr", .ca = true}, ok.get(), nullptr, ok.get());
  refused(issue({.cn = "Forged", .eku = "codeSigning"}, k.get(), other_root.get(), ok.get()),
          "unable to get local issuer certificate");
  refused(root_, "leaf (CN=Mfr Root,O=Mfr)");
}

TEST_F(FirmwareVerifier, RefusesEveryForbiddenAlgorithm) {
  const auto refused = [&](const X509Ptr& c, const std::string& why) {
    auto s = check(pem_of(c.get()));
    ASSERT_FALSE(s.ok()) << why;
    EXPECT_EQ(s.error().reason, kReasonInvalidCertificate);
    EXPECT_TRUE(has(s.error().message, why));
  };
  refused(code_signer(rsa_key(1024).get()), "RSA key of 1024 bits (minimum 2048)");
  refused(code_signer(signer_key_.get(), {.md = EVP_sha1()}), "signature digest SHA1 not allowed");
  {
    const PrivateKey rk = rsa_key(2048);
    const X509Ptr rsa_root = issue({.cn = "RSA Root", .ca = true}, rk.get(), nullptr, rk.get());
    const X509Ptr md5 = issue({.cn = "S", .md = EVP_md5(), .eku = "codeSigning"}, signer_key_.get(), rsa_root.get(), rk.get());
    auto s = check_signing_certificate(pem_of(md5.get()), {rsa_root.get()});
    ASSERT_FALSE(s.ok());
    EXPECT_TRUE(has(s.error().message, "MD5")) << s.error().message;
  }
  refused(code_signer(ec_key("secp256k1").get()), "secp256k1");
  refused(code_signer(ec_key("secp224r1").get()), "secp224r1");
  refused(code_signer(raw_key("ED25519").get(), {.md = nullptr}), "ED25519 keys cannot sign firmware here");
  // DSA (1024-bit parameters: quick; any size is refused).
  std::unique_ptr<EVP_PKEY_CTX, decltype(&EVP_PKEY_CTX_free)> pctx(EVP_PKEY_CTX_new_from_name(nullptr, "DSA", nullptr),
                                                                   EVP_PKEY_CTX_free);
  EVP_PKEY* params = nullptr;
  ASSERT_TRUE(pctx && EVP_PKEY_paramgen_init(pctx.get()) == 1 &&
              EVP_PKEY_CTX_set_dsa_paramgen_bits(pctx.get(), 1024) == 1 && EVP_PKEY_paramgen(pctx.get(), &params) == 1);
  const PrivateKey p(params);
  std::unique_ptr<EVP_PKEY_CTX, decltype(&EVP_PKEY_CTX_free)> kctx(EVP_PKEY_CTX_new(params, nullptr), EVP_PKEY_CTX_free);
  EVP_PKEY* dsa = nullptr;
  ASSERT_TRUE(kctx && EVP_PKEY_keygen_init(kctx.get()) == 1 && EVP_PKEY_keygen(kctx.get(), &dsa) == 1);
  const PrivateKey d(dsa);
  refused(code_signer(d.get()), "DSA keys are not allowed");
  // A SHA-1 root is refused too (the whole chain is checked).
  const X509Ptr sha1_root = issue({.cn = "Mfr Root", .org = "Mfr", .ca = true, .md = EVP_sha1()}, root_key_.get(),
                                  nullptr, root_key_.get());
  const X509Ptr leaf = issue({.cn = "S", .eku = "codeSigning"}, signer_key_.get(), sha1_root.get(), root_key_.get());
  auto s = check_signing_certificate(pem_of(leaf.get()), {sha1_root.get()});
  ASSERT_FALSE(s.ok());
  EXPECT_TRUE(has(s.error().message, "SHA1"));
}

TEST_F(FirmwareVerifier, RefusesMalformedOrOversizedCertificateInput) {
  EXPECT_TRUE(has(check("").error().message, "signing certificate"));
  EXPECT_TRUE(has(check("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n").error().message,
                  "signing certificate"));
  EXPECT_TRUE(has(check(std::string(5501, ' ')).error().message, "5501 characters (at most 5500)"));
  auto none = check_signing_certificate(pem_of(signer_.get()), {});
  ASSERT_FALSE(none.ok());
  EXPECT_TRUE(has(none.error().message, "no ManufacturerRootCertificate is installed"));
}

// ---- step 2: the signature

TEST_F(FirmwareVerifier, AcceptsTheSignatureOfEachAllowedKeyType) {
  const std::string image = make_image(std::string(100000, 'p'));
  struct Case {
    const char* what;
    PrivateKey key;
    const EVP_MD* md;
    int padding;
  };
  std::vector<Case> cases;
  cases.push_back({"P-256/SHA-256", ec_key("P-256"), EVP_sha256(), 0});
  cases.push_back({"P-384/SHA-384", ec_key("P-384"), EVP_sha384(), 0});
  cases.push_back({"P-521/SHA-512", ec_key("P-521"), EVP_sha512(), 0});
  cases.push_back({"RSA-2048 PKCS#1", rsa_key(2048), EVP_sha256(), RSA_PKCS1_PADDING});
  cases.push_back({"RSA-3072 PSS", rsa_key(3072), EVP_sha256(), RSA_PKCS1_PSS_PADDING});
  for (auto& c : cases) {
    SCOPED_TRACE(c.what);
    const X509Ptr cert = code_signer(c.key.get());
    auto r = verify(image, sign_bytes(image, c.key.get(), c.md, c.padding), cert.get());
    ASSERT_TRUE(r.ok()) << r.error().message;
    EXPECT_EQ(r->manifest.payload_size, 100000u);
  }
}

TEST_F(FirmwareVerifier, RefusesAWrongSignatureWhateverTheFileIs) {
  const std::string image = make_image("payload bytes");
  const std::string good = sign_bytes(image, signer_key_.get(), EVP_sha256());
  ASSERT_TRUE(verify(image, good).ok());
  const auto wrong = [&](const std::string& img, const std::string& sig, const std::string& why) {
    auto r = verify(img, sig);
    ASSERT_FALSE(r.ok()) << why;
    EXPECT_EQ(r.error().reason, kReasonInvalidSignature) << r.error().message;
    EXPECT_TRUE(has(r.error().message, why));
  };
  // Any changed byte, in the manifest or the payload; a cut; an added byte.
  for (std::size_t pos : {std::size_t{0}, std::size_t{30}, image.size() - 1}) {
    std::string t = image;
    t[pos] ^= 0x01;
    wrong(t, good, "wrong signature");
  }
  wrong(image.substr(0, image.size() - 1), good, "wrong signature");
  wrong(image + "x", good, "wrong signature");
  // A random file (FW-3: "reports a wrong signature"), not "bad manifest".
  wrong(std::string(5000, '\x5a'), good, "wrong signature");
  // Signed by another key, or with another digest (SHA-1, SHA-384 for a P-256 key).
  const PrivateKey other = ec_key("P-256");
  wrong(image, sign_bytes(image, other.get(), EVP_sha256()), "wrong signature");
  wrong(image, sign_bytes(image, signer_key_.get(), EVP_sha1()), "openssl dgst -sha256 -sign KEY");
  wrong(image, sign_bytes(image, signer_key_.get(), EVP_sha384()), "wrong signature");
  // A P-384 key signed with SHA-256: the hint names SHA-384.
  const PrivateKey k384 = ec_key("P-384");
  const X509Ptr c384 = code_signer(k384.get());
  auto r = verify(image, sign_bytes(image, k384.get(), EVP_sha256()), c384.get());
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(has(r.error().message, "openssl dgst -sha384 -sign KEY"));
  // Malformed signature text.
  wrong(image, "", "the signature is empty");
  wrong(image, good + "\n", "not base64");
  wrong(image, "!!!!", "not base64");
  wrong(image, std::string(804, 'A'), "804 characters (at most 800)");
  wrong(image, cg::security::base64_encode(std::string(200, 'x')), "more than a P-256 signature can have");
}

// ---- step 3: the content, only after a good signature

TEST_F(FirmwareVerifier, ChecksTheContentOfASignedImage) {
  const auto invalid = [&](const std::string& img, const std::string& why) {
    auto r = verify(img, sign_bytes(img, signer_key_.get(), EVP_sha256()));
    ASSERT_FALSE(r.ok()) << why;
    EXPECT_EQ(r.error().reason, kReasonInvalidImage) << r.error().message;
    EXPECT_TRUE(has(r.error().message, why));
  };
  const std::string image = make_image("0123456789");
  invalid(image + "extra", "holds 15 payload bytes and its manifest says 10");
  invalid(image.substr(0, image.size() - 3), "holds 7 payload bytes and its manifest says 10");
  std::string swapped = image;
  swapped[swapped.size() - 1] = 'X';
  invalid(swapped, "payload's SHA-256 differs");
  invalid("signed random text, not an image", "signed, but firmware manifest: not a chargeguard firmware image");
  invalid(image.substr(0, 40), "signed, but the file ends inside the firmware manifest");
}

TEST_F(FirmwareVerifier, StreamsInAnyChunkingWithTwoBuffers) {
  std::string payload(3 * kChunkBytes + 12345, '\0');
  for (std::size_t i = 0; i < payload.size(); ++i) payload[i] = static_cast<char>(i * 31 + (i >> 9));
  const std::string good = make_image(payload, "9.9.9", 42);
  const std::string sig = sign_bytes(good, signer_key_.get(), EVP_sha256());
  auto signer = check(pem_of(signer_.get()));
  ASSERT_TRUE(signer.ok());
  std::string flipped = good;
  flipped[good.size() - 5000] ^= 0x01;
  for (const auto hashing : {ImageVerifier::Hashing::CallerAndOne, ImageVerifier::Hashing::Background})
  for (const std::string* img : std::initializer_list<const std::string*>{&good, &flipped})
  for (const std::size_t chunk : {std::size_t{1}, std::size_t{7}, std::size_t{4095}, std::size_t{70000}, kChunkBytes}) {
    SCOPED_TRACE(chunk);
    SCOPED_TRACE(hashing == ImageVerifier::Hashing::Background ? "background" : "caller");
    SCOPED_TRACE(img == &flipped ? "one bit flipped" : "intact");
    const std::string& image = *img;
    // Small steps over the manifest and the start of the payload, then at least 64 KiB.
    auto v = ImageVerifier::create(*signer, sig, image.size(), hashing);
    ASSERT_TRUE(v.ok());
    std::array<std::string, 2> bufs;
    std::size_t off = 0;
    for (int turn = 0; off < image.size(); turn ^= 1) {
      const std::size_t n = std::min(off < 1000 ? chunk : std::max(chunk, std::size_t{65536}), image.size() - off);
      bufs[turn].assign(image, off, n);
      ASSERT_TRUE(v->update({reinterpret_cast<const std::uint8_t*>(bufs[turn].data()), n}).ok());
      off += n;
    }
    auto info = v->finish();
    if (img == &flipped) {
      ASSERT_FALSE(info.ok());
      EXPECT_EQ(info.error().reason, kReasonInvalidSignature);
      continue;
    }
    ASSERT_TRUE(info.ok()) << info.error().message;
    EXPECT_EQ(info->manifest.version, "9.9.9");
    EXPECT_EQ(info->manifest.security_version, 42u);
    EXPECT_EQ(info->image_size, image.size());
    EXPECT_EQ(info->manifest_length, image.size() - payload.size());
  }
}

TEST_F(FirmwareVerifier, StopsAtTheSizeCap) {
  const std::string image = make_image(std::string(10000, 'z'));
  auto signer = check(pem_of(signer_.get()));
  ASSERT_TRUE(signer.ok());
  const std::string sig = sign_bytes(image, signer_key_.get(), EVP_sha256());
  auto v = ImageVerifier::create(*signer, sig, image.size() - 1);
  ASSERT_TRUE(v.ok());
  auto r = v->update({reinterpret_cast<const std::uint8_t*>(image.data()), image.size()});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().reason, kReasonTooLarge);
  const fs::path p = dir_ / "big.cgfw";
  cg::test::write_file(p, image);
  auto f = verify_file(p, *signer, sig, image.size() - 1);
  ASSERT_FALSE(f.ok());
  EXPECT_EQ(f.error().reason, kReasonTooLarge);
  EXPECT_TRUE(verify_file(p, *signer, sig, image.size()).ok());
}

// ---- the tools, and the openssl CLI on either side

TEST_F(FirmwareVerifier, PackSignAndTheOpensslCliAgree) {
  const fs::path payload = dir_ / "payload.bin";
  cg::test::write_file(payload, std::string(300000, 'q') + "end");
  Manifest fields;
  fields.model = "CG-SIM";
  fields.version = "2.1.0";
  fields.security_version = 5;
  const fs::path image = dir_ / "fw.cgfw";
  auto m = pack_image(payload, fields, image);
  ASSERT_TRUE(m.ok()) << m.error().message;
  EXPECT_EQ(m->payload_size, 300003u);
  EXPECT_FALSE(fs::exists(dir_ / "fw.cgfw.partial"));

  // Key and certificate as files, as a manufacturer has them.
  const fs::path key_file = dir_ / "signer.key";
  {
    std::unique_ptr<BIO, decltype(&BIO_free)> b(BIO_new_file(key_file.c_str(), "w"), BIO_free);
    ASSERT_EQ(PEM_write_bio_PrivateKey(b.get(), signer_key_.get(), nullptr, nullptr, 0, nullptr, nullptr), 1);
  }
  const fs::path pub_file = dir_ / "signer.pub";
  {
    std::unique_ptr<BIO, decltype(&BIO_free)> b(BIO_new_file(pub_file.c_str(), "w"), BIO_free);
    ASSERT_EQ(PEM_write_bio_PUBKEY(b.get(), signer_key_.get()), 1);
  }
  auto signer = check(pem_of(signer_.get()));
  ASSERT_TRUE(signer.ok());

  // Our signature: the openssl CLI verifies it.
  auto ours = sign_image(image, signer_key_.get(), signer_.get());
  ASSERT_TRUE(ours.ok()) << ours.error().message;
  cg::test::write_file(dir_ / "ours.sig", *cg::security::base64_decode(*ours));
  const auto v = cg::test::run_program(
      "openssl", {"dgst", "-sha256", "-verify", pub_file.string(), "-signature", (dir_ / "ours.sig").string(), image.string()});
  EXPECT_EQ(v.status, 0) << v.output;
  EXPECT_TRUE(has(v.output, "Verified OK"));
  EXPECT_TRUE(verify_file(image, *signer, *ours, 1 << 26).ok());

  // The openssl CLI's signature: we verify it.
  const auto s = cg::test::run_program(
      "openssl", {"dgst", "-sha256", "-sign", key_file.string(), "-out", (dir_ / "ossl.sig").string(), image.string()});
  ASSERT_EQ(s.status, 0) << s.output;
  const std::string ossl = cg::security::base64_encode(cg::test::read_all(dir_ / "ossl.sig"));
  auto info = verify_file(image, *signer, ossl, 1 << 26);
  ASSERT_TRUE(info.ok()) << info.error().message;
  EXPECT_EQ(info->manifest.version, "2.1.0");
  EXPECT_EQ(info->manifest.security_version, 5u);

  // sign refuses a key that is not the certificate's.
  const PrivateKey other = ec_key("P-256");
  auto mismatch = sign_image(image, other.get(), signer_.get());
  ASSERT_FALSE(mismatch.ok());
  EXPECT_TRUE(has(mismatch.error().message, "does not belong to the signing certificate"));
}

TEST_F(FirmwareVerifier, PackRefusesBadInput) {
  Manifest fields;
  fields.model = "CG-SIM";
  fields.version = "1";
  const fs::path empty = dir_ / "empty";
  cg::test::write_file(empty, "");
  EXPECT_TRUE(has(pack_image(empty, fields, dir_ / "o").error().message, "is empty"));
  EXPECT_TRUE(has(pack_image(dir_ / "missing", fields, dir_ / "o").error().message, "cannot open"));
  EXPECT_TRUE(has(pack_image(dir_, fields, dir_ / "o").error().message, "not a regular file"));
  const fs::path payload = dir_ / "p";
  cg::test::write_file(payload, "x");
  fields.version = "has space";
  EXPECT_TRUE(has(pack_image(payload, fields, dir_ / "o").error().message, "version"));
  EXPECT_FALSE(fs::exists(dir_ / "o"));
}

}  // namespace
