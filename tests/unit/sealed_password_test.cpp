// The sealed CSMS password (issue 4, A01): the state directory never holds the
// plaintext; rotation keeps the previous password until the new one connected.
#include "security/sealed_password.hpp"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "security/base64.hpp"
#include "test_util.hpp"

namespace {
namespace fs = std::filesystem;
using namespace cg::security;

using cg::test::all_bytes;
using cg::test::read_all;

struct SealedPasswordTest : ::testing::Test {
  fs::path dir = cg::test::make_temp_dir("sealedpw");
  std::unique_ptr<KeyStore> ks = open_file_key_store({dir / "keys"});
  ~SealedPasswordTest() override { fs::remove_all(dir); }
};

TEST_F(SealedPasswordTest, StoresOnlyTheSealedBlobAndUnsealsIt) {
  SealedPassword sp(*ks, dir);
  EXPECT_FALSE(sp.has_current());
  const std::string pw = "Plain-Text-Password-0123456789";
  sp.store(pw);
  ASSERT_TRUE(sp.has_current());
  EXPECT_FALSE(sp.has_previous()) << "nothing to fall back to on the first store";
  EXPECT_EQ(sp.current().view(), pw);
  struct stat st{};
  ASSERT_EQ(::stat(sp.current_file().c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  EXPECT_EQ(all_bytes(dir).find(pw), std::string::npos) << "the plaintext is nowhere in the state directory";
  EXPECT_EQ(read_all(sp.current_file()).find(pw), std::string::npos);
  EXPECT_FALSE(fs::exists(sp.current_file().string() + ".tmp"));
  // Another store instance (restart) reads the same blob.
  SealedPassword again(*ks, dir);
  EXPECT_EQ(again.current().view(), pw);
}

TEST_F(SealedPasswordTest, RotationKeepsThePreviousUntilConfirmedOrRolledBack) {
  SealedPassword sp(*ks, dir);
  sp.store("first-password-0001");
  sp.store("second-password-0002");
  ASSERT_TRUE(sp.has_previous());
  EXPECT_EQ(sp.current().view(), "second-password-0002");
  EXPECT_EQ(sp.previous().view(), "first-password-0001");
  // A second rotation before the first was confirmed keeps the known-good one.
  sp.store("third-password-00003");
  EXPECT_EQ(sp.previous().view(), "first-password-0001");
  sp.roll_back();
  EXPECT_FALSE(sp.has_previous());
  EXPECT_EQ(sp.current().view(), "first-password-0001");
  sp.store("fourth-password-0004");
  sp.confirm();
  EXPECT_FALSE(sp.has_previous());
  EXPECT_EQ(sp.current().view(), "fourth-password-0004");
  for (const char* p : {"first-password-0001", "second-password-0002", "third-password-00003", "fourth-password-0004"})
    EXPECT_EQ(all_bytes(dir).find(p), std::string::npos) << p;
}

TEST_F(SealedPasswordTest, DamagedOrForeignBlobsFailClosed) {
  SealedPassword sp(*ks, dir);
  sp.store("a-password-of-16-chars");
  std::string text = read_all(sp.current_file());
  text[4] = text[4] == 'A' ? 'B' : 'A';
  std::ofstream(sp.current_file(), std::ios::trunc) << text;
  EXPECT_THROW(sp.current(), KeyStoreError);
  std::ofstream(sp.current_file(), std::ios::trunc) << "not base64!\n";
  EXPECT_THROW(sp.current(), KeyStoreError);
  // A blob sealed by another store does not open here.
  const fs::path other = dir / "other";
  fs::create_directory(other);
  auto ks2 = open_file_key_store({other / "keys"});
  SealedPassword sp2(*ks2, other);
  sp2.store("a-password-of-16-chars");
  fs::copy_file(sp2.current_file(), sp.current_file(), fs::copy_options::overwrite_existing);
  try {
    (void)sp.current();
    FAIL() << "a foreign blob was unsealed";
  } catch (const KeyStoreError& e) {
    EXPECT_EQ(e.code(), KeyStoreErrc::UnsealFailed);
  }
}

TEST(BasicAuthPassword, LengthAndCharsetPerOcpp201) {
  EXPECT_TRUE(check_basic_auth_password("abcdefghijklmnop").ok()) << "16 characters";
  EXPECT_TRUE(check_basic_auth_password(std::string(40, 'x')).ok()) << "40 characters";
  EXPECT_TRUE(check_basic_auth_password("aZ09*-_=:+|@.aZ09*-_=:+|@.").ok()) << "every allowed special";
  EXPECT_EQ(check_basic_auth_password("abcdefghijklmno").error().reason, "InvalidLength");
  EXPECT_EQ(check_basic_auth_password(std::string(41, 'x')).error().reason, "InvalidLength");
  EXPECT_EQ(check_basic_auth_password("").error().reason, "InvalidLength");
  EXPECT_EQ(check_basic_auth_password("abcdefghijklmnop q").error().reason, "InvalidCharacters");
  EXPECT_EQ(check_basic_auth_password("abcdefghijklmnop\"q").error().reason, "InvalidCharacters");
  EXPECT_EQ(check_basic_auth_password("abcdefghijklmnop/q").error().reason, "InvalidCharacters");
  EXPECT_EQ(check_basic_auth_password(std::string("abcdefghijklmnop\0q", 18)).error().reason, "InvalidCharacters");
  EXPECT_EQ(check_basic_auth_password("abcdefghijklmnop\xc3\xa9").error().reason, "InvalidCharacters");
}

}  // namespace

namespace {
// The sealed blobs are stored as base64: the decoder is strict.
TEST(HexEncode, LowerCaseTwoDigitsPerByte) {
  const unsigned char b[] = {0x00, 0x0f, 0xa5, 0xff};
  EXPECT_EQ(cg::security::hex_encode(b, sizeof b), "000fa5ff");
  EXPECT_EQ(cg::security::hex_encode(b, 0), "");
}

TEST(Base64, RoundTripsAndRefusesWhatIsNotStrictBase64) {
  using cg::security::base64_decode;
  using cg::security::base64_encode;
  for (const std::string& s : {std::string(), std::string("a"), std::string("ab"), std::string("abc"),
                              std::string("\0\xff\x10", 3), std::string(100, '\x7f')})
    EXPECT_EQ(base64_decode(base64_encode(s)), s) << s.size();
  EXPECT_EQ(base64_decode("YWI="), "ab");
  for (const char* bad : {"YWI", "YW=I", "Y!I=", "YWI=\n", "====="}) EXPECT_FALSE(base64_decode(bad).has_value()) << bad;
}
}  // namespace
