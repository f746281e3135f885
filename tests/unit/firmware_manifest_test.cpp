// REQ: FW-1, FW-5, FW-7 — the firmware manifest parser: exact format, limits,
// a precise error for every malformed line, and robustness against any bytes.
#include "firmware/manifest.hpp"

#include <gtest/gtest.h>
#include <openssl/rand.h>

#include <string>

#include "test_util.hpp"

namespace {

using cg::test::has;
using namespace cg::firmware;

const std::string kHash(64, 'a');

std::string header(const std::string& model = "CG-SIM", const std::string& version = "1.2.3",
                   const std::string& sv = "7", const std::string& size = "1000", const std::string& sha = kHash) {
  return "chargeguard-firmware 1\nmodel: " + model + "\nversion: " + version + "\nsecurity-version: " + sv +
         "\npayload-size: " + size + "\npayload-sha256: " + sha + "\n\n";
}

std::string error_of(const std::string& head) {
  auto r = parse_manifest(head);
  if (!r) return "<need more>";
  if (r->ok()) return "<ok>";
  return r->error().message;
}

TEST(FirmwareManifest, ParsesTheFormatItWrites) {
  Manifest m;
  m.model = "CG-SIM";
  m.version = "2.0.0-rc.1+build.7";
  m.security_version = 2147483647;
  m.payload_size = 1ULL << 40;
  for (std::size_t i = 0; i < 32; ++i) m.payload_sha256[i] = static_cast<std::uint8_t>(i * 7);
  auto text = format_manifest(m);
  ASSERT_TRUE(text.ok()) << text.error().message;
  const std::string image = *text + "PAYLOAD";
  auto r = parse_manifest(image);
  ASSERT_TRUE(r && r->ok());
  EXPECT_EQ((*r)->length, text->size());
  EXPECT_EQ((*r)->manifest.model, m.model);
  EXPECT_EQ((*r)->manifest.version, m.version);
  EXPECT_EQ((*r)->manifest.security_version, m.security_version);
  EXPECT_EQ((*r)->manifest.payload_size, m.payload_size);
  EXPECT_EQ((*r)->manifest.payload_sha256, m.payload_sha256);
  EXPECT_EQ(image.substr((*r)->length), "PAYLOAD");
}

TEST(FirmwareManifest, AsksForMoreBytesOnlyWhileTheManifestCanStillEnd) {
  const std::string h = header();
  for (std::size_t n = 0; n < h.size() - 1; ++n) {
    EXPECT_EQ(error_of(h.substr(0, n)), "<need more>") << n;
  }
  EXPECT_EQ(error_of(h), "<ok>");
  // A manifest that never ends is refused once kMaxManifestBytes are there.
  std::string endless = "chargeguard-firmware 1\nmodel: " + std::string(kMaxManifestBytes, 'x');
  EXPECT_EQ(error_of(endless.substr(0, kMaxManifestBytes - 1)), "<need more>");
  EXPECT_TRUE(has(error_of(endless), "no blank line ending the manifest within its first 4096 bytes"));
}

TEST(FirmwareManifest, RefusesAnotherFileAtTheFirstWrongByte) {
  EXPECT_TRUE(has(error_of("\x7f" "ELF"), "not a chargeguard firmware image"));
  EXPECT_TRUE(has(error_of("chargeguard-firmware 2\n"), "not a chargeguard firmware image"));
  EXPECT_TRUE(has(error_of("chargeguard-firmware 1\r\n"), "not a chargeguard firmware image"));
  EXPECT_EQ(error_of("chargeg"), "<need more>");
}

TEST(FirmwareManifest, NamesTheLineAndTheProblem) {
  struct Case {
    std::string head, error;
  };
  const std::vector<Case> cases = {
      {"chargeguard-firmware 1\n\n", "line 2: missing (expected \"model: …\")"},
      {header("", "1"), "line 2: model: empty"},
      {header("ABCDEFGHIJKLMNOPQRSTU"), "line 2: model: 21 characters (at most 20)"},
      {header(" CG"), "line 2: model: space at the start or end"},
      {header("CG\tX"), "line 2: model: not printable ASCII"},
      {header("CG-SIM", "1.0 beta"), "line 3: version: not printable ASCII without spaces"},
      {header("CG-SIM", std::string(51, '1')), "line 3: version: 51 characters (at most 50)"},
      {header("CG-SIM", "1", "07"), "line 4: security-version: expected a decimal number"},
      {header("CG-SIM", "1", "-1"), "line 4: security-version"},
      {header("CG-SIM", "1", "2147483648"), "line 4: security-version"},
      {header("CG-SIM", "1", "+3"), "line 4: security-version"},
      {header("CG-SIM", "1", "1", "0"), "line 5: payload-size: expected a decimal number from 1"},
      {header("CG-SIM", "1", "1", "1099511627777"), "line 5: payload-size"},
      {header("CG-SIM", "1", "1", "99999999999999999999999"), "line 5: payload-size"},
      {header("CG-SIM", "1", "1", "12", std::string(64, 'A')), "line 6: payload-sha256: expected 64 lower-case hex"},
      {header("CG-SIM", "1", "1", "12", std::string(63, 'a')), "line 6: payload-sha256"},
      {"chargeguard-firmware 1\nversion: 1\nmodel: X\nsecurity-version: 1\npayload-size: 1\npayload-sha256: " + kHash +
           "\n\n",
       "line 2: expected \"model: …\""},
      {"chargeguard-firmware 1\nmodel:CG\n\n", "line 2: expected \"model: …\""},
      {"chargeguard-firmware 1\nmodel: CG\r\nversion: 1\n\n", "line 2: model: not printable ASCII"},
      {header().substr(0, header().size() - 1) + "extra: 1\n\n", "line 7: unexpected line before the blank line"},
  };
  for (const auto& c : cases) {
    EXPECT_TRUE(has(error_of(c.head), c.error)) << c.head;
  }
}

TEST(FirmwareManifest, FormatRefusesWhatParseRefuses) {
  Manifest m;
  m.model = "CG-SIM";
  m.version = "1";
  m.payload_size = 1;
  EXPECT_TRUE(format_manifest(m).ok());
  m.payload_size = 0;
  EXPECT_FALSE(format_manifest(m).ok());
  m.payload_size = 1;
  m.model = std::string(21, 'M');
  EXPECT_FALSE(format_manifest(m).ok());
  m.model = "CG";
  m.version = "a b";
  EXPECT_FALSE(format_manifest(m).ok());
  m.version = "1";
  m.security_version = 0x80000000u;
  EXPECT_FALSE(format_manifest(m).ok());
}

// Fuzz-friendly: any bytes, any damage of a valid manifest, any cut — never a
// crash, never a manifest that is not exactly the bytes given.
TEST(FirmwareManifest, SurvivesRandomAndDamagedInput) {
  const std::string good = header() + "payload";
  std::string buf(5000, '\0');
  for (int round = 0; round < 2000; ++round) {
    unsigned char r[4];
    ASSERT_EQ(RAND_bytes(r, sizeof r), 1);
    std::string input;
    if (round % 2 == 0) {
      input = good;
      const std::size_t pos = r[0] % good.size();
      input[pos] = static_cast<char>(r[1]);
      input.resize(std::min<std::size_t>(input.size(), 10 + (r[2] << 2)));
    } else {
      const std::size_t n = (r[0] << 4 | r[1]) % buf.size();
      ASSERT_EQ(RAND_bytes(reinterpret_cast<unsigned char*>(buf.data()), static_cast<int>(n) + 1), 1);
      input = "chargeguard-firmware 1\n" + buf.substr(0, n);
    }
    auto res = parse_manifest(input);
    if (res && res->ok()) {
      // Whatever parsed must format back to the very same bytes.
      auto again = format_manifest((*res)->manifest);
      ASSERT_TRUE(again.ok());
      EXPECT_EQ(*again, input.substr(0, (*res)->length));
    }
  }
}

}  // namespace
