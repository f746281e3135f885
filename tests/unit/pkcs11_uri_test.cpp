// REQ: FW-1, COM-4 — PKCS#11 key URIs (security/pkcs11_uri.hpp): the parser's
// rules, and a firmware image signed by a key that never leaves a SoftHSM2
// token, verified by the station's verifier.
#include "security/pkcs11_uri.hpp"

#include <gtest/gtest.h>

#include "firmware/image_tools.hpp"
#include "firmware/verifier.hpp"
#include "softhsm.hpp"
#include "test_pki.hpp"
#include "test_util.hpp"

namespace {

namespace fs = std::filesystem;
using cg::test::has;
using namespace cg::security;

TEST(Pkcs11Uri, ParsesTokenObjectModuleAndPinSource) {
  auto r = parse_pkcs11_key_uri(
      "pkcs11:token=Mfr%20HSM;object=fw-signer;type=private?module-path=/usr/lib/softhsm/libsofthsm2.so"
      "&pin-source=file:/etc/cg/pin");
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->store.token_label, "Mfr HSM");
  EXPECT_EQ(r->object, "fw-signer");
  EXPECT_EQ(r->store.module_path, "/usr/lib/softhsm/libsofthsm2.so");
  EXPECT_EQ(r->store.pin_file, "/etc/cg/pin");
  auto plain = parse_pkcs11_key_uri("pkcs11:object=k;token=t?pin-source=/p&module-path=/m.so");
  ASSERT_TRUE(plain.ok()) << plain.error().message;
  EXPECT_EQ(plain->store.pin_file, "/p");
  auto triple = parse_pkcs11_key_uri("pkcs11:object=k;token=t?pin-source=file:///p&module-path=/m.so");
  ASSERT_TRUE(triple.ok());
  EXPECT_EQ(triple->store.pin_file, "/p");
}

TEST(Pkcs11Uri, RefusesWhatItCannotUseSafely) {
  const auto refused = [](const std::string& uri, const std::string& why) {
    auto r = parse_pkcs11_key_uri(uri);
    ASSERT_FALSE(r.ok()) << uri;
    EXPECT_TRUE(has(r.error().message, why)) << uri;
  };
  const std::string q = "?module-path=/m.so&pin-source=/p";
  refused("file.key", "does not start with \"pkcs11:\"");
  refused("pkcs11:object=k" + q, "token=… is missing");
  refused("pkcs11:token=t" + q, "object=… is missing");
  refused("pkcs11:token=t;object=k?pin-source=/p", "module-path=… is missing");
  refused("pkcs11:token=t;object=k?module-path=/m.so", "pin-source=… is missing");
  refused("pkcs11:token=t;object=k?module-path=/m.so&pin-value=1234", "pin-value is refused");
  refused("pkcs11:token=t;object=k;id=%01" + q, "unsupported path attribute \"id\"");
  refused("pkcs11:token=t;object=k;type=public" + q, "type must be \"private\"");
  refused("pkcs11:token=t;object=k?module-path=m.so&pin-source=/p", "module-path must be an absolute path");
  refused("pkcs11:token=t;object=k?module-path=/m.so&pin-source=pin", "pin-source must be an absolute file path");
  refused("pkcs11:token=t;object=a%2" + q, "bad percent-encoding");
  refused("pkcs11:token=t;object=a%00b" + q, "bad percent-encoding");
  refused("pkcs11:token=t;object=a%2Fb" + q, "not a valid key label");
  refused("pkcs11:token=" + std::string(33, 't') + ";object=k" + q, "1 to 32 characters");
  refused("pkcs11:token=t;token=u;object=k" + q, "token given twice");
  refused("pkcs11:token" + q, "has no value");
  refused("pkcs11:token=t;object=k" + q + "&x=1", "unsupported query attribute \"x\"");
  refused("pkcs11:" + std::string(1100, 'a'), "longer than 1024 characters");
}

TEST(Pkcs11Uri, SignsFirmwareWithAKeyInsideTheToken) {
  auto& hsm = cg::test::SoftHsm::get();
  const auto token = hsm.new_token();
  const fs::path dir = cg::test::make_temp_dir("p11-sign");
  cg::test::write_file_mode(dir / "pin", token.user_pin + "\n", 0600);
  const Pkcs11KeyStoreOptions opt{kSoftHsm2Module, token.label, dir / "pin"};
  std::vector<std::uint8_t> spki;
  {
    auto store = open_pkcs11_key_store(opt);
    const KeyInfo k = store->generate_key("fw-signer", KeyType::EcP384);
    EXPECT_TRUE(k.non_exportable);
    spki = store->public_key_der("fw-signer");
  }
  // The code-signing certificate for the token's public key.
  const unsigned char* p = spki.data();
  const PrivateKey pub(d2i_PUBKEY(nullptr, &p, static_cast<long>(spki.size())));
  ASSERT_TRUE(pub);
  const PrivateKey root_key = cg::test::pki::ec_key("P-256");
  const X509Ptr root =
      cg::test::pki::issue({.cn = "Mfr Root", .ca = true}, root_key.get(), nullptr, root_key.get());
  const X509Ptr cert =
      cg::test::pki::issue({.cn = "HSM signer", .eku = "codeSigning"}, pub.get(), root.get(), root_key.get());

  cg::test::write_file(dir / "payload", std::string(200000, 'h'));
  cg::firmware::Manifest fields;
  fields.model = "CG-SIM";
  fields.version = "3.0.0";
  ASSERT_TRUE(cg::firmware::pack_image(dir / "payload", fields, dir / "fw.cgfw").ok());

  const std::string uri = "pkcs11:token=" + token.label + ";object=fw-signer?module-path=" + kSoftHsm2Module +
                          "&pin-source=file:" + (dir / "pin").string();
  auto key = load_pkcs11_private_key(uri);
  ASSERT_TRUE(key.ok()) << key.error().message;
  auto sig = cg::firmware::sign_image(dir / "fw.cgfw", key->get(), cert.get());
  ASSERT_TRUE(sig.ok()) << sig.error().message;

  auto signer = cg::firmware::check_signing_certificate(to_pem(cert.get()), {root.get()});
  ASSERT_TRUE(signer.ok()) << signer.error().message;
  EXPECT_EQ(signer->digest, "SHA-384");
  auto info = cg::firmware::verify_file(dir / "fw.cgfw", *signer, *sig, 1 << 24);
  ASSERT_TRUE(info.ok()) << info.error().message;
  EXPECT_EQ(info->manifest.version, "3.0.0");

  // A wrong PIN file or label is a clear error, not a crash.
  auto missing = load_pkcs11_private_key("pkcs11:token=" + token.label + ";object=nope?module-path=" +
                                         kSoftHsm2Module + "&pin-source=" + (dir / "pin").string());
  ASSERT_FALSE(missing.ok());
  EXPECT_TRUE(has(missing.error().message, "no key 'nope'"));
  fs::remove_all(dir);
}

}  // namespace
