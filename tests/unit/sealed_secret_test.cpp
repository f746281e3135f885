// Device secrets sealed by the key store (LOG-2, COM-4, CHG-2): the audit log's
// MAC key and the badge-hash key are never plain files next to what they
// protect. (The PKCS#11 case, with SoftHSM2 and a scan of the state directory
// for any 32-byte window that computes a stored MAC: integration test 20.)
#include "security/sealed_secret.hpp"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "test_util.hpp"

namespace {
namespace fs = std::filesystem;
using namespace cg::security;

using cg::test::all_bytes;
using cg::test::read_all;

std::string as_text(const Secret32& s) { return std::string(reinterpret_cast<const char*>(s.data()), s.size()); }

struct SealedSecretTest : ::testing::Test {
  fs::path dir = cg::test::make_temp_dir("sealedsecret");
  std::unique_ptr<KeyStore> ks = open_file_key_store({dir / "keys"});
  fs::path sealed = dir / "x.key.sealed";
  fs::path legacy = dir / "x.key";
  ~SealedSecretTest() override { fs::remove_all(dir); }
};

TEST_F(SealedSecretTest, CreatedOnceRandomPrivateAndNeverInPlainText) {
  const mode_t old = ::umask(0);
  const Secret32 k1 = load_or_create_sealed_secret(*ks, sealed, kAuditMacKeyPurpose);
  ::umask(old);
  EXPECT_NE(k1, Secret32{});
  struct stat st {};
  ASSERT_EQ(::stat(sealed.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  EXPECT_EQ(load_or_create_sealed_secret(*ks, sealed, kAuditMacKeyPurpose), k1) << "stable across loads";
  EXPECT_EQ(load_sealed_secret(*ks, sealed, kAuditMacKeyPurpose), k1);
  const Secret32 k2 = load_or_create_sealed_secret(*ks, dir / "y.key.sealed", kAuditMacKeyPurpose);
  EXPECT_NE(k1, k2) << "each secret is its own";
  // No file of the directory (the key store's included) holds the secret itself.
  const std::string bytes = all_bytes(dir);
  EXPECT_EQ(bytes.find(as_text(k1)), std::string::npos);
  EXPECT_EQ(bytes.find(as_text(k2)), std::string::npos);
  EXPECT_FALSE(fs::exists(legacy));
}

TEST_F(SealedSecretTest, LoadingNeverCreates) {
  try {
    (void)load_sealed_secret(*ks, sealed, kAuditMacKeyPurpose);
    ADD_FAILURE() << "a missing secret was loaded";
  } catch (const KeyStoreError& e) {
    EXPECT_EQ(e.code(), KeyStoreErrc::KeyNotFound);
  }
  EXPECT_FALSE(fs::exists(sealed));
}

TEST_F(SealedSecretTest, APlainKeyOfAnOlderReleaseIsSealedThenRemoved) {
  Secret32 plain{};
  for (std::size_t i = 0; i < plain.size(); ++i) plain[i] = static_cast<std::uint8_t>(0xA0 + i);
  cg::test::write_file(legacy, as_text(plain));
  // Read-only tools take it as it is, and change nothing.
  EXPECT_EQ(load_sealed_secret(*ks, sealed, kAuditMacKeyPurpose, legacy), plain);
  EXPECT_TRUE(fs::exists(legacy));
  EXPECT_FALSE(fs::exists(sealed));
  // The daemon seals it and removes the plain file.
  EXPECT_EQ(load_or_create_sealed_secret(*ks, sealed, kAuditMacKeyPurpose, legacy), plain);
  EXPECT_FALSE(fs::exists(legacy));
  ASSERT_TRUE(fs::exists(sealed));
  EXPECT_EQ(all_bytes(dir).find(as_text(plain)), std::string::npos);
  EXPECT_EQ(load_sealed_secret(*ks, sealed, kAuditMacKeyPurpose, legacy), plain);
  // A crash between sealing and removing left both: the sealed one wins, the plain one goes.
  cg::test::write_file(legacy, as_text(plain));
  EXPECT_EQ(load_or_create_sealed_secret(*ks, sealed, kAuditMacKeyPurpose, legacy), plain);
  EXPECT_FALSE(fs::exists(legacy));
}

TEST_F(SealedSecretTest, ADamagedLegacyKeyIsAnErrorNotANewKey) {
  cg::test::write_file(legacy, "short");
  EXPECT_THROW(load_or_create_sealed_secret(*ks, sealed, kAuditMacKeyPurpose, legacy), KeyStoreError);
  EXPECT_FALSE(fs::exists(sealed));
  EXPECT_EQ(read_all(legacy), "short");
}

TEST_F(SealedSecretTest, FailsClosedOnDamageAnotherPurposeOrAnotherStore) {
  const Secret32 k = load_or_create_sealed_secret(*ks, sealed, kAuditMacKeyPurpose);
  const std::string blob = read_all(sealed);
  // Another purpose: a badge-hash key file copied over the audit key (or back).
  try {
    (void)load_or_create_sealed_secret(*ks, sealed, kTokenHashKeyPurpose);
    ADD_FAILURE() << "opened for another purpose";
  } catch (const KeyStoreError& e) {
    EXPECT_EQ(e.code(), KeyStoreErrc::UnsealFailed);
  }
  // Another station's key store.
  const fs::path other = cg::test::make_temp_dir("sealedsecret-other");
  auto other_ks = open_file_key_store({other / "keys"});
  EXPECT_THROW((void)load_sealed_secret(*other_ks, sealed, kAuditMacKeyPurpose), KeyStoreError);
  fs::remove_all(other);
  // A flipped character, a cut file: refused, and the file is left as it is.
  std::string bad = blob;
  bad[10] = bad[10] == 'A' ? 'B' : 'A';
  cg::test::write_file(sealed, bad);
  EXPECT_THROW((void)load_or_create_sealed_secret(*ks, sealed, kAuditMacKeyPurpose), KeyStoreError);
  EXPECT_EQ(read_all(sealed), bad);
  cg::test::write_file(sealed, blob.substr(0, 12));
  EXPECT_THROW((void)load_or_create_sealed_secret(*ks, sealed, kAuditMacKeyPurpose), KeyStoreError);
  cg::test::write_file(sealed, blob);
  EXPECT_EQ(load_sealed_secret(*ks, sealed, kAuditMacKeyPurpose), k);
}

}  // namespace
