// The security audit log as an operator relies on it (issue 3, LOG-1…LOG-5):
// the closed event catalog with the OCPP criticality, records numbered 1..N
// and on disk when record() returns, a chain that `audit verify` checks and
// that reports each kind of tampering at the right record, recovery of a torn
// tail, redaction of badge ids and secrets, bounded free text, capacity
// (80% alarm, refusal of non-critical records when full, nothing lost), the
// techInfo of SecurityEventNotification, reading records back, and kill -9
// during heavy logging losing no acknowledged record.
#include "audit/audit_log.hpp"

#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/json.hpp>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <memory>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "audit/catalog.hpp"
#include "core/clock.hpp"
#include "policy/policy.hpp"
#include "security/key_store.hpp"
#include "security/secret_file.hpp"
#include "test_util.hpp"

namespace {

namespace fs = std::filesystem;
namespace json = boost::json;
using namespace cg::audit;

// ---- helpers (independent of the implementation under test)

std::string read_file(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

using cg::test::write_file;

// Whole lines ("\n"-terminated) of the file, without the newline.
std::vector<std::string> read_lines(const fs::path& p) {
  const std::string all = read_file(p);
  std::vector<std::string> lines;
  std::size_t start = 0;
  for (std::size_t nl; (nl = all.find('\n', start)) != std::string::npos; start = nl + 1)
    lines.push_back(all.substr(start, nl - start));
  return lines;
}

void write_lines(const fs::path& p, const std::vector<std::string>& lines) {
  std::string s;
  for (const auto& l : lines) s += l + "\n";
  write_file(p, s);
}

std::string sha256_hex(std::string_view data) {
  unsigned char h[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  EXPECT_EQ(EVP_Digest(data.data(), data.size(), h, &n, EVP_sha256(), nullptr), 1);
  static const char* hex = "0123456789abcdef";
  std::string out;
  for (unsigned i = 0; i < n; ++i) {
    out += hex[h[i] >> 4];
    out += hex[h[i] & 15];
  }
  return out;
}

// A stored line: <json body>\t<sha256 hex>\t<mac hex>
struct Line {
  std::string body, hash, mac;
};
Line split(const std::string& line) {
  const auto t2 = line.rfind('\t');
  const auto t1 = line.rfind('\t', t2 - 1);
  EXPECT_NE(t1, std::string::npos) << line;
  EXPECT_NE(t2, std::string::npos) << line;
  return {line.substr(0, t1), line.substr(t1 + 1, t2 - t1 - 1), line.substr(t2 + 1)};
}
std::string join(const Line& l) { return l.body + "\t" + l.hash + "\t" + l.mac; }

json::object body_of(const std::string& line) { return json::parse(split(line).body).as_object(); }

std::string prev_of(const std::string& line) { return std::string(body_of(line).at("prev").as_string()); }

// Replaces the "prev" hash at the end of a body.
std::string with_prev(const std::string& body, const std::string& prev) {
  const auto pos = body.rfind(",\"prev\":\"");
  EXPECT_NE(pos, std::string::npos);
  return body.substr(0, pos) + ",\"prev\":\"" + prev + "\"}";
}

bool valid_utf8(std::string_view s) {
  std::size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    std::size_t n = c < 0x80 ? 1 : (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xE ? 3 : (c >> 3) == 0x1E ? 4 : 0;
    if (n == 0 || i + n > s.size()) return false;
    for (std::size_t k = 1; k < n; ++k)
      if ((static_cast<unsigned char>(s[i + k]) & 0xC0) != 0x80) return false;
    i += n;
  }
  return true;
}

std::size_t count_of(std::string_view hay, std::string_view needle) {
  std::size_t n = 0;
  for (auto p = hay.find(needle); p != std::string_view::npos; p = hay.find(needle, p + 1)) ++n;
  return n;
}

Details note(const std::string& s) {
  Details d;
  d.text("note", s);
  return d;
}

class Audit : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = cg::test::make_temp_dir("audit");
    dir_ = root_ / "audit";
    keys_ = cg::security::open_file_key_store({root_ / "keys"});
  }
  void TearDown() override { fs::remove_all(root_); }

  std::unique_ptr<AuditLog> open(Options o = {}) { return AuditLog::open(dir_, *keys_, o); }
  fs::path file() const { return log_file(dir_); }

  // N records "record-1".."record-N" (a mix of types), log closed afterwards.
  void make_log(int n) {
    auto log = open();
    for (int i = 1; i <= n; ++i) {
      const Event e = i % 2 ? Event::InvalidMessages : Event::ConfigurationChanged;
      const auto r = log->record(e, Outcome::Success, Source::system(), note("record-" + std::to_string(i)));
      ASSERT_TRUE(r.stored);
      ASSERT_EQ(r.seq, static_cast<std::uint64_t>(i));
    }
  }

  cg::security::Secret32 key() const { return cg::audit::load_key(dir_, *keys_); }

  fs::path root_, dir_;
  // The development key store of the state directory: it seals the log's key (LOG-2).
  std::unique_ptr<cg::security::KeyStore> keys_;
};

// ---- catalog

TEST(AuditCatalog, AllTwentyOcppSecurityEventsWithTheirCriticality) {
  // Digest §2 (OCPP 2.0.1 appendix v1.4), written out independently here.
  const std::map<std::string, bool> expected{
      {"FirmwareUpdated", true},
      {"FailedToAuthenticateAtCsms", false},
      {"CsmsFailedToAuthenticate", false},
      {"SettingSystemTime", true},
      {"StartupOfTheDevice", true},
      {"ResetOrReboot", true},
      {"SecurityLogWasCleared", true},
      {"ReconfigurationOfSecurityParameters", false},
      {"MemoryExhaustion", true},
      {"InvalidMessages", false},
      {"AttemptedReplayAttacks", false},
      {"TamperDetectionActivated", true},
      {"InvalidFirmwareSignature", true},
      {"InvalidFirmwareSigningCertificate", true},
      {"InvalidCsmsCertificate", true},
      {"InvalidChargingStationCertificate", true},
      {"InvalidTLSVersion", true},
      {"InvalidTLSCipherSuite", true},
      {"MaintenanceLoginAccepted", true},
      {"MaintenanceLoginFailed", true},
  };
  ASSERT_EQ(expected.size(), 20u);
  for (const auto& [name, critical] : expected) {
    const auto e = event_from_name(name);
    ASSERT_TRUE(e.has_value()) << name << " missing from the catalog";
    EXPECT_EQ(info(*e).name, name);
    EXPECT_TRUE(info(*e).ocpp) << name;
    EXPECT_EQ(info(*e).critical, critical) << name;
  }
  int ocpp = 0;
  for (int i = 0; i < kEventCount; ++i) {
    const auto& ei = info(static_cast<Event>(i));
    if (ei.ocpp) {
      ++ocpp;
      EXPECT_TRUE(expected.count(std::string(ei.name))) << ei.name << " is marked OCPP but is not an OCPP event";
    }
  }
  EXPECT_EQ(ocpp, 20);
}

TEST(AuditCatalog, NamesRoundTripAndAreUnique) {
  std::set<std::string_view> names;
  for (int i = 0; i < kEventCount; ++i) {
    const auto e = static_cast<Event>(i);
    const auto& ei = info(e);
    EXPECT_EQ(ei.event, e);
    EXPECT_FALSE(ei.name.empty());
    EXPECT_LE(ei.name.size(), 50u) << "SecurityEventNotification.type is at most 50 characters";
    EXPECT_TRUE(names.insert(ei.name).second) << "duplicate name " << ei.name;
    const auto back = event_from_name(ei.name);
    ASSERT_TRUE(back.has_value()) << ei.name;
    EXPECT_EQ(*back, e);
  }
  EXPECT_FALSE(event_from_name("").has_value());
  EXPECT_FALSE(event_from_name("firmwareupdated").has_value());
  EXPECT_FALSE(event_from_name("NoSuchEvent").has_value());
  EXPECT_EQ(to_string(Outcome::Success), "success");
  EXPECT_EQ(to_string(Outcome::Failure), "failure");
}

TEST(AuditCatalog, LocalEventsAreNotOcpp) {
  for (const char* name : {"Shutdown", "AccountChanged", "AuthorizationChanged", "ConfigurationChanged", "ServiceChanged",
                           "SecurityLogOverwritten", "FactoryReset", "SecurityLogExported", "TamperCleared",
                           "AccessDenied", "DataPurged", "FirmwareUpdateProgress", "SecureBootFailed",
                           "FirmwareRolledBack", "SessionEnded"}) {
    const auto e = event_from_name(name);
    ASSERT_TRUE(e.has_value()) << name << " (LOG-1 local event) missing";
    EXPECT_FALSE(info(*e).ocpp) << name << " must not be sent as a SecurityEventNotification";
  }
  EXPECT_TRUE(info(Event::MemoryExhaustion).critical) << "the capacity alarm must never be refused";
}

// ---- record and verify

TEST_F(Audit, RecordsAreNumberedFromOneAndTheChainVerifies) {
  auto log = open();
  EXPECT_EQ(log->last_seq(), 0u);
  for (std::uint64_t i = 1; i <= 10; ++i) {
    const auto r = log->record(Event::InvalidMessages, Outcome::Failure, Source::system(), note(std::to_string(i)));
    EXPECT_TRUE(r.stored);
    EXPECT_TRUE(r.error.empty());
    EXPECT_EQ(r.seq, i);
  }
  EXPECT_EQ(log->last_seq(), 10u);
  EXPECT_EQ(log->size_bytes(), fs::file_size(file()));
  const auto lines = read_lines(file());
  ASSERT_EQ(lines.size(), 10u);
  std::string prev(64, '0');
  for (std::size_t i = 0; i < lines.size(); ++i) {
    const auto l = split(lines[i]);
    const auto b = body_of(lines[i]);
    EXPECT_EQ(b.at("seq").as_int64(), static_cast<std::int64_t>(i + 1));
    EXPECT_EQ(b.at("type").as_string(), "InvalidMessages");
    EXPECT_EQ(b.at("outcome").as_string(), "failure");
    EXPECT_EQ(b.at("critical").as_bool(), false);
    EXPECT_TRUE(cg::clock::parse_rfc3339(std::string(b.at("time").as_string())).has_value());
    EXPECT_EQ(b.at("source").at("interface").as_string(), "Internal");
    EXPECT_EQ(b.at("source").at("principal").as_string(), "system");
    EXPECT_EQ(prev_of(lines[i]), prev) << "record " << i + 1 << " carries the hash of its predecessor";
    EXPECT_EQ(l.hash, sha256_hex(l.body));
    EXPECT_EQ(l.mac.size(), 64u);
    prev = l.hash;
  }
  const auto v = verify_dir(dir_, *keys_);
  EXPECT_TRUE(v.ok) << v.problem;
  EXPECT_EQ(v.records, 10u);
  EXPECT_EQ(v.last_seq, 10u);
  EXPECT_EQ(v.bad_seq, 0u);
}

TEST_F(Audit, FilesArePrivate) {
  auto log = open();
  log->record(Event::StartupOfTheDevice, Outcome::Success, Source::system());
  struct stat st {};
  ASSERT_EQ(::stat(dir_.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0700u);
  for (const char* f : {"security.log", "audit.key.sealed", "anchor"}) {
    ASSERT_EQ(::stat((dir_ / f).c_str(), &st), 0) << f;
    EXPECT_EQ(st.st_mode & 0077, 0u) << f << " is readable by others";
  }
}

TEST_F(Audit, ARecordIsInTheFileWhenRecordReturns) {
  auto log = open();
  std::vector<RecordView> seen;
  log->on_record([&](const RecordView& v) { seen.push_back(v); });
  for (std::uint64_t i = 1; i <= 5; ++i) {
    const auto r = log->record(Event::TamperDetectionActivated, Outcome::Success, Source::system(), note("n" + std::to_string(i)));
    ASSERT_TRUE(r.stored);
    // Read through a separate descriptor right away: the line is complete.
    const auto lines = read_lines(file());
    ASSERT_EQ(lines.size(), i);
    EXPECT_EQ(body_of(lines.back()).at("seq").as_int64(), static_cast<std::int64_t>(i));
    EXPECT_EQ(body_of(lines.back()).at("details").at("note").as_string(), "n" + std::to_string(i));
    ASSERT_EQ(seen.size(), i) << "listeners run before record() returns";
    EXPECT_EQ(seen.back().seq, i);
    EXPECT_EQ(seen.back().type, Event::TamperDetectionActivated);
    EXPECT_EQ(seen.back().line, lines.back());
    const auto v = verify_dir(dir_, *keys_);
    EXPECT_TRUE(v.ok) << v.problem;
    EXPECT_EQ(v.records, i);
  }
}

TEST_F(Audit, ReopeningContinuesTheChain) {
  {
    auto log = open();
    for (int i = 0; i < 3; ++i) log->record(Event::StartupOfTheDevice, Outcome::Success, Source::system());
  }
  auto log = open();
  EXPECT_EQ(log->last_seq(), 3u);
  EXPECT_EQ(log->size_bytes(), fs::file_size(file()));
  const auto r = log->record(Event::ResetOrReboot, Outcome::Success, Source::system());
  EXPECT_EQ(r.seq, 4u);
  log.reset();
  log = open();
  EXPECT_EQ(log->record(Event::ResetOrReboot, Outcome::Success, Source::system()).seq, 5u);
  const auto lines = read_lines(file());
  ASSERT_EQ(lines.size(), 5u);
  EXPECT_EQ(prev_of(lines[3]), split(lines[2]).hash);
  EXPECT_EQ(prev_of(lines[4]), split(lines[3]).hash);
  const auto v = verify_dir(dir_, *keys_);
  EXPECT_TRUE(v.ok) << v.problem;
  EXPECT_EQ(v.records, 5u);
}

TEST_F(Audit, RecordBatchStoresAllInOneCall) {
  auto log = open();
  log->record(Event::StartupOfTheDevice, Outcome::Success, Source::system());
  int listened = 0;
  log->on_record([&](const RecordView&) { ++listened; });
  std::vector<std::tuple<Event, Outcome, Source, Details>> items;
  for (int i = 0; i < 50; ++i)
    items.emplace_back(i % 3 ? Event::InvalidMessages : Event::AttemptedReplayAttacks, Outcome::Failure,
                       Source{"Wan", "192.0.2.1", "CS001"}, note("b" + std::to_string(i)));
  const auto results = log->record_batch(items);
  ASSERT_EQ(results.size(), 50u);
  for (std::size_t i = 0; i < results.size(); ++i) {
    EXPECT_TRUE(results[i].stored);
    EXPECT_EQ(results[i].seq, i + 2);
  }
  EXPECT_EQ(listened, 50);
  EXPECT_EQ(log->last_seq(), 51u);
  const auto lines = read_lines(file());
  ASSERT_EQ(lines.size(), 51u);
  EXPECT_EQ(body_of(lines[50]).at("details").at("note").as_string(), "b49");
  const auto v = verify_dir(dir_, *keys_);
  EXPECT_TRUE(v.ok) << v.problem;
  EXPECT_EQ(v.records, 51u);
}

TEST_F(Audit, EmptyLogVerifies) {
  open();
  const auto v = verify_dir(dir_, *keys_);
  EXPECT_TRUE(v.ok) << v.problem;
  EXPECT_EQ(v.records, 0u);
}

TEST_F(Audit, ADirectoryWithoutKeyIsNotVerifiedAsOk) {
  fs::create_directories(dir_);
  write_file(file(), "");
  const auto v = verify_dir(dir_, *keys_);
  EXPECT_FALSE(v.ok);
  EXPECT_NE(v.problem.find("key"), std::string::npos) << v.problem;
}

// LOG-2: the MAC key is sealed by the key store, never a plain file next to the
// log. A log of an older release (plain audit.key) goes on with the same key,
// now sealed: its records still verify and the plain file is gone.
TEST_F(Audit, TheKeyIsSealedAndAPlainKeyOfAnOlderReleaseIsTakenOver) {
  make_log(4);
  EXPECT_FALSE(fs::exists(dir_ / "audit.key"));
  ASSERT_TRUE(fs::exists(dir_ / "audit.key.sealed"));
  const auto k = key();
  std::string all;
  for (const auto& e : fs::recursive_directory_iterator(root_)) {
    if (!e.is_regular_file()) continue;
    std::ifstream in(e.path(), std::ios::binary);
    all.append(std::istreambuf_iterator<char>(in), {});
  }
  EXPECT_EQ(all.find(std::string(reinterpret_cast<const char*>(k.data()), k.size())), std::string::npos)
      << "the key is in a file in plain text";
  // The layout of an older release: the same key as a plain file, no sealed one.
  fs::remove(dir_ / "audit.key.sealed");
  write_file(dir_ / "audit.key", std::string(reinterpret_cast<const char*>(k.data()), k.size()));
  EXPECT_TRUE(verify_dir(dir_, *keys_).ok) << "read-only tools take the plain key as it is";
  {
    auto log = open();
    ASSERT_TRUE(log->record(Event::StartupOfTheDevice, Outcome::Success, Source::system()).stored);
  }
  EXPECT_FALSE(fs::exists(dir_ / "audit.key"));
  EXPECT_TRUE(fs::exists(dir_ / "audit.key.sealed"));
  EXPECT_EQ(key(), k);
  const auto v = verify_dir(dir_, *keys_);
  EXPECT_TRUE(v.ok) << v.problem;
  EXPECT_EQ(v.records, 5u);
}

TEST_F(Audit, DamagedKeyIsReportedNotThrown) {
  make_log(2);
  write_file(dir_ / "audit.key.sealed", "short");
  VerifyResult v;
  EXPECT_NO_THROW(v = verify_dir(dir_, *keys_));
  EXPECT_FALSE(v.ok);
  EXPECT_NE(v.problem.find("key"), std::string::npos) << v.problem;
}

// ---- tampering: each kind reported at the right record

TEST_F(Audit, EditedByteIsAContentHashMismatch) {
  make_log(6);
  auto lines = read_lines(file());
  const auto pos = lines[2].find("record-3");
  ASSERT_NE(pos, std::string::npos);
  lines[2][pos + 7] = '9';  // record-3 -> record-9
  write_lines(file(), lines);
  const auto v = verify_dir(dir_, *keys_);
  EXPECT_FALSE(v.ok);
  EXPECT_EQ(v.bad_seq, 3u);
  EXPECT_EQ(v.bad_line, 3u);
  EXPECT_EQ(v.records, 2u) << "records before the broken one verified";
  EXPECT_NE(v.problem.find("record 3"), std::string::npos) << v.problem;
  EXPECT_NE(v.problem.find("hash"), std::string::npos) << v.problem;
  EXPECT_NE(v.problem.find("edited"), std::string::npos) << v.problem;
}

TEST_F(Audit, EditWithRecomputedHashIsAnInvalidMac) {
  make_log(6);
  auto lines = read_lines(file());
  auto l = split(lines[2]);
  const auto pos = l.body.find("record-3");
  ASSERT_NE(pos, std::string::npos);
  l.body.replace(pos, 8, "record-X");
  l.hash = sha256_hex(l.body);
  lines[2] = join(l);
  write_lines(file(), lines);
  const auto v = verify_dir(dir_, *keys_);
  EXPECT_FALSE(v.ok);
  EXPECT_EQ(v.bad_seq, 3u);
  EXPECT_NE(v.problem.find("record 3"), std::string::npos) << v.problem;
  EXPECT_NE(v.problem.find("MAC"), std::string::npos) << v.problem;
}

TEST_F(Audit, RewrittenChainWithoutTheKeyIsAnInvalidMacAtTheEditedRecord) {
  make_log(6);
  auto lines = read_lines(file());
  // The attacker edits record 3, recomputes its hash and rewrites every later
  // record's prev and hash: the plain chain is consistent again…
  auto l = split(lines[2]);
  const auto pos = l.body.find("record-3");
  ASSERT_NE(pos, std::string::npos);
  l.body.replace(pos, 8, "record-X");
  l.hash = sha256_hex(l.body);
  lines[2] = join(l);
  for (std::size_t i = 3; i < lines.size(); ++i) {
    auto n = split(lines[i]);
    n.body = with_prev(n.body, split(lines[i - 1]).hash);
    n.hash = sha256_hex(n.body);
    lines[i] = join(n);
  }
  write_lines(file(), lines);
  const auto chain_only = verify_file(file(), nullptr);
  EXPECT_TRUE(chain_only.ok) << "without the key only the chain is checked: " << chain_only.problem;
  // …but not the MACs.
  const auto v = verify_dir(dir_, *keys_);
  EXPECT_FALSE(v.ok);
  EXPECT_EQ(v.bad_seq, 3u);
  EXPECT_NE(v.problem.find("record 3"), std::string::npos) << v.problem;
  EXPECT_NE(v.problem.find("MAC"), std::string::npos) << v.problem;
}

TEST_F(Audit, EditedRecordWithNextPrevFixedIsStillAnInvalidMac) {
  make_log(6);
  auto lines = read_lines(file());
  auto l = split(lines[2]);
  l.body.replace(l.body.find("record-3"), 8, "record-X");
  l.hash = sha256_hex(l.body);
  lines[2] = join(l);
  auto n = split(lines[3]);
  n.body = with_prev(n.body, l.hash);
  lines[3] = join(n);  // its own hash left as it was
  write_lines(file(), lines);
  const auto v = verify_dir(dir_, *keys_);
  EXPECT_FALSE(v.ok);
  EXPECT_EQ(v.bad_seq, 3u);
  EXPECT_NE(v.problem.find("MAC"), std::string::npos) << v.problem;
}

TEST_F(Audit, MacFromAnotherKeyIsInvalid) {
  make_log(3);
  cg::security::Secret32 other{};
  other.fill(0x42);
  const auto v = verify_file(file(), &other);
  EXPECT_FALSE(v.ok);
  EXPECT_EQ(v.bad_seq, 1u);
  EXPECT_NE(v.problem.find("MAC"), std::string::npos) << v.problem;
  const auto k = key();
  EXPECT_TRUE(verify_file(file(), &k).ok);
}

TEST_F(Audit, DeletedMiddleRecordBreaksAtTheFollowingRecord) {
  make_log(6);
  auto lines = read_lines(file());
  lines.erase(lines.begin() + 2);  // record 3
  write_lines(file(), lines);
  const auto v = verify_dir(dir_, *keys_);
  EXPECT_FALSE(v.ok);
  EXPECT_EQ(v.bad_seq, 4u);
  EXPECT_EQ(v.bad_line, 3u);
  EXPECT_EQ(v.records, 2u);
  EXPECT_NE(v.problem.find("record 4 follows record 2"), std::string::npos) << v.problem;
  EXPECT_NE(v.problem.find("missing"), std::string::npos) << v.problem;
}

TEST_F(Audit, DeletedMiddleRecordWithRenumberingIsAChainBreak) {
  // Renumber the later records so the sequence has no gap: the prev hash of
  // the record now in its place still points at the removed one.
  make_log(6);
  auto lines = read_lines(file());
  lines.erase(lines.begin() + 2);
  for (std::size_t i = 2; i < lines.size(); ++i) {
    auto l = split(lines[i]);
    const auto comma = l.body.find(',');
    l.body = "{\"seq\":" + std::to_string(i + 1) + l.body.substr(comma);
    lines[i] = join(l);
  }
  write_lines(file(), lines);
  const auto v = verify_dir(dir_, *keys_);
  EXPECT_FALSE(v.ok);
  EXPECT_EQ(v.bad_seq, 3u);
  EXPECT_NE(v.problem.find("does not chain to record 2"), std::string::npos) << v.problem;
}

TEST_F(Audit, SwappedRecordsAreReportedOutOfOrder) {
  make_log(6);
  auto lines = read_lines(file());
  std::swap(lines[2], lines[3]);  // records 3 and 4
  write_lines(file(), lines);
  const auto v = verify_dir(dir_, *keys_);
  EXPECT_FALSE(v.ok);
  EXPECT_EQ(v.bad_line, 3u);
  EXPECT_EQ(v.bad_seq, 4u) << "record 4 stands where record 3 belongs";
  EXPECT_NE(v.problem.find("out of order"), std::string::npos) << v.problem;
  EXPECT_EQ(v.problem.find("missing"), std::string::npos) << "nothing is missing: " << v.problem;
}

TEST_F(Audit, SwappedDistantRecordsAreReportedOutOfOrder) {
  make_log(6);
  auto lines = read_lines(file());
  std::swap(lines[1], lines[4]);  // records 2 and 5
  write_lines(file(), lines);
  const auto v = verify_dir(dir_, *keys_);
  EXPECT_FALSE(v.ok);
  EXPECT_EQ(v.bad_seq, 5u);
  EXPECT_EQ(v.bad_line, 2u);
  EXPECT_NE(v.problem.find("out of order"), std::string::npos) << v.problem;
}

TEST_F(Audit, DuplicatedRecordIsReported) {
  make_log(6);
  auto lines = read_lines(file());
  lines.insert(lines.begin() + 3, lines[2]);  // record 3 twice
  write_lines(file(), lines);
  const auto v = verify_dir(dir_, *keys_);
  EXPECT_FALSE(v.ok);
  EXPECT_EQ(v.bad_seq, 3u);
  EXPECT_EQ(v.bad_line, 4u);
  EXPECT_NE(v.problem.find("record 3 follows record 3"), std::string::npos) << v.problem;
  EXPECT_NE(v.problem.find("duplicated"), std::string::npos) << v.problem;
}

TEST_F(Audit, TruncationInsideTheLastLineIsIncomplete) {
  make_log(6);
  const auto size = fs::file_size(file());
  const auto last_len = read_lines(file()).back().size() + 1;
  fs::resize_file(file(), size - last_len / 2);
  const auto v = verify_dir(dir_, *keys_);
  EXPECT_FALSE(v.ok);
  EXPECT_EQ(v.bad_seq, 6u);
  EXPECT_EQ(v.bad_line, 6u);
  EXPECT_EQ(v.records, 5u);
  EXPECT_NE(v.problem.find("incomplete"), std::string::npos) << v.problem;
}

TEST_F(Audit, TruncationOfWholeRecordsIsCaughtByTheAnchor) {
  make_log(6);
  auto lines = read_lines(file());
  lines.resize(4);  // records 5 and 6 removed
  write_lines(file(), lines);
  const auto v = verify_dir(dir_, *keys_);
  EXPECT_FALSE(v.ok);
  EXPECT_EQ(v.bad_seq, 5u);
  EXPECT_EQ(v.records, 4u);
  EXPECT_NE(v.problem.find("ends at record 4"), std::string::npos) << v.problem;
  EXPECT_NE(v.problem.find("record 6 was written"), std::string::npos) << v.problem;
  EXPECT_NE(v.problem.find("removed from the end"), std::string::npos) << v.problem;
  // All records removed.
  write_file(file(), "");
  const auto empty = verify_dir(dir_, *keys_);
  EXPECT_FALSE(empty.ok);
  EXPECT_NE(empty.problem.find("removed from the end"), std::string::npos) << empty.problem;
}

TEST_F(Audit, DeletedFirstRecordIsReported) {
  make_log(6);
  auto lines = read_lines(file());
  lines.erase(lines.begin());
  write_lines(file(), lines);
  const auto v = verify_dir(dir_, *keys_);
  EXPECT_FALSE(v.ok);
  EXPECT_EQ(v.bad_seq, 2u);
  EXPECT_EQ(v.bad_line, 1u);
  EXPECT_NE(v.problem.find("does not start at record 1"), std::string::npos) << v.problem;
}

TEST_F(Audit, DamagedLineIsReported) {
  make_log(4);
  auto lines = read_lines(file());
  lines[1] = lines[1].substr(0, lines[1].size() - 10);  // MAC field cut
  write_lines(file(), lines);
  const auto v = verify_dir(dir_, *keys_);
  EXPECT_FALSE(v.ok);
  EXPECT_EQ(v.bad_line, 2u);
  EXPECT_EQ(v.bad_seq, 2u);
  EXPECT_NE(v.problem.find("line 2"), std::string::npos) << v.problem;
}

TEST_F(Audit, ExportIsCheckedWithoutTheKey) {
  make_log(6);
  const fs::path exp = root_ / "export.jsonl";
  fs::copy_file(file(), exp);
  const auto ok = verify_file(exp, nullptr);
  EXPECT_TRUE(ok.ok) << ok.problem;
  EXPECT_EQ(ok.records, 6u);
  EXPECT_EQ(ok.last_seq, 6u);

  auto lines = read_lines(exp);
  lines[4][lines[4].find("record-5") + 7] = '7';
  write_lines(exp, lines);
  const auto v = verify_file(exp, nullptr);
  EXPECT_FALSE(v.ok);
  EXPECT_EQ(v.bad_seq, 5u);
  EXPECT_NE(v.problem.find("hash"), std::string::npos) << v.problem;
  EXPECT_TRUE(verify_dir(dir_, *keys_).ok) << "the station's own log is untouched";
}

TEST_F(Audit, ForgedAnchorIsReported) {
  make_log(6);
  const std::string good = read_file(dir_ / "anchor");
  ASSERT_EQ(good.rfind("anchor ", 0), 0u) << good;
  // A forged anchor claiming fewer records (to hide a truncation) or more.
  std::istringstream in(good);
  std::string word, seq, hash, mac;
  in >> word >> seq >> hash >> mac;
  for (const std::string& forged_seq : {std::string("00000000000000000004"), std::string("00000000000000000009")}) {
    write_file(dir_ / "anchor", word + " " + forged_seq + " " + hash + " " + mac + "\n");
    const auto v = verify_dir(dir_, *keys_);
    EXPECT_FALSE(v.ok) << forged_seq;
    EXPECT_NE(v.problem.find("anchor"), std::string::npos) << v.problem;
    EXPECT_NE(v.problem.find("forged"), std::string::npos) << v.problem;
  }
  // Garbage where the numbers belong is reported too, not thrown.
  for (const std::string& junk : {"anchor xyz " + hash + " " + mac + "\n",
                                  "anchor 999999999999999999999999999 " + hash + " " + mac + "\n",
                                  "anchor -1 " + hash + " " + mac + "\n"}) {
    write_file(dir_ / "anchor", junk);
    VerifyResult v;
    EXPECT_NO_THROW(v = verify_dir(dir_, *keys_)) << junk;
    EXPECT_FALSE(v.ok) << junk;
    EXPECT_NE(v.problem.find("anchor"), std::string::npos) << v.problem;
  }
  write_file(dir_ / "anchor", good);
  EXPECT_TRUE(verify_dir(dir_, *keys_).ok);
  EXPECT_TRUE(verify_dir(dir_, *keys_).warning.empty());
}

TEST_F(Audit, AMissingAnchorIsAWarningNotABreak) {
  make_log(6);
  // Records cut from the end plus the anchor deleted: the chain itself is fine,
  // so verify passes, but it says what it could not check.
  auto lines = read_lines(file());
  lines.resize(4);
  write_lines(file(), lines);
  fs::remove(dir_ / "anchor");
  auto v = verify_dir(dir_, *keys_);
  EXPECT_TRUE(v.ok) << v.problem;
  EXPECT_NE(v.warning.find("anchor file is missing"), std::string::npos) << v.warning;
  write_file(dir_ / "anchor", "");  // a power loss may leave it empty
  v = verify_dir(dir_, *keys_);
  EXPECT_TRUE(v.ok);
  EXPECT_FALSE(v.warning.empty());
}

// ---- torn tail (power loss during a write)

TEST_F(Audit, TornTailIsDroppedAndTheChainContinues) {
  make_log(5);
  const auto whole = fs::file_size(file());
  const std::string last_hash = split(read_lines(file()).back()).hash;
  {
    std::ofstream out(file(), std::ios::binary | std::ios::app);
    out << "{\"seq\":6,\"time\":\"2025-01-01T00:00:00.000Z\",\"type\":\"Invalid";
  }
  const auto before = verify_dir(dir_, *keys_);
  EXPECT_FALSE(before.ok) << "the torn line is visible to verify until the log is reopened";
  EXPECT_NE(before.problem.find("incomplete"), std::string::npos) << before.problem;

  auto log = open();
  EXPECT_EQ(fs::file_size(file()), whole) << "the torn bytes are dropped";
  EXPECT_EQ(log->last_seq(), 5u);
  const auto r = log->record(Event::ResetOrReboot, Outcome::Success, Source::system());
  EXPECT_EQ(r.seq, 6u);
  const auto lines = read_lines(file());
  ASSERT_EQ(lines.size(), 6u);
  EXPECT_EQ(prev_of(lines[5]), last_hash);
  const auto v = verify_dir(dir_, *keys_);
  EXPECT_TRUE(v.ok) << v.problem;
  EXPECT_EQ(v.records, 6u);
}

TEST_F(Audit, TornOnlyRecordIsDropped) {
  fs::create_directories(dir_);
  write_file(file(), "{\"seq\":1,\"ti");
  auto log = open();
  EXPECT_EQ(log->last_seq(), 0u);
  EXPECT_EQ(log->record(Event::StartupOfTheDevice, Outcome::Success, Source::system()).seq, 1u);
  const auto v = verify_dir(dir_, *keys_);
  EXPECT_TRUE(v.ok) << v.problem;
  EXPECT_EQ(v.records, 1u);
}

// ---- redaction (LOG-5) and bounded text

std::string token_field(const std::string& line, const std::string& key) {
  return std::string(body_of(line).at("details").at(key).as_string());
}

TEST_F(Audit, BadgeIdsAreMaskedWithAKeyedHash) {
  const std::string id = "04A1B2C3D4E5F6";
  const std::string other = "04A1B2C3D4E5F7";
  auto log = open();
  for (const auto& t : {id, id, other}) {
    Details d;
    d.id_token("idToken", "ISO14443", t).text("reason", "Blocked");
    ASSERT_TRUE(log->record(Event::AuthorizationChanged, Outcome::Failure, Source::system(), d).stored);
  }
  const std::string bytes = read_file(file());
  EXPECT_EQ(bytes.find(id), std::string::npos) << "full badge id in the log";
  EXPECT_EQ(bytes.find(other), std::string::npos) << "full badge id in the log";
  EXPECT_EQ(bytes.find("A1B2C3D4E5"), std::string::npos) << "the middle of the id is masked";
  const auto lines = read_lines(file());
  ASSERT_EQ(lines.size(), 3u);
  const auto f1 = token_field(lines[0], "idToken");
  const auto f2 = token_field(lines[1], "idToken");
  const auto f3 = token_field(lines[2], "idToken");
  // type:masked#hash
  const auto hash_of = [](const std::string& f) { return f.substr(f.find('#') + 1); };
  EXPECT_EQ(f1.rfind("ISO14443:************F6#", 0), 0u) << f1;
  const auto h1 = hash_of(f1);
  EXPECT_GE(h1.size(), 8u) << f1;
  for (char c : h1) EXPECT_TRUE(std::isxdigit(static_cast<unsigned char>(c))) << f1;
  EXPECT_EQ(f1, f2) << "the same badge gives the same hash, so records can be matched";
  EXPECT_NE(hash_of(f1), hash_of(f3)) << "another badge gives another hash";
  // The hash is keyed: it is not a plain hash of the id.
  EXPECT_EQ(sha256_hex(id).find(h1), std::string::npos);
  EXPECT_EQ(sha256_hex("ISO14443\x1f" + id).find(h1), std::string::npos);
  for (const auto& e : fs::directory_iterator(dir_))
    EXPECT_EQ(read_file(e.path()).find(id), std::string::npos) << e.path();
  EXPECT_TRUE(verify_dir(dir_, *keys_).ok);
}

TEST_F(Audit, ShortAndOddBadgeIdsAreNeverStoredInFull) {
  auto log = open();
  const std::vector<std::string> ids{"AB12", "ABCDE1", std::string(100, 'Z') + "TAIL", "12\n34\t56\x01"
                                                                                     "78"};
  for (const auto& id : ids) {
    Details d;
    d.id_token("idToken", "Central", id);
    ASSERT_TRUE(log->record(Event::AuthorizationChanged, Outcome::Success, Source::system(), d).stored);
  }
  const std::string bytes = read_file(file());
  for (const auto& id : ids) EXPECT_EQ(bytes.find(id), std::string::npos) << id;
  EXPECT_EQ(count_of(bytes, "\n"), ids.size());
  EXPECT_TRUE(verify_dir(dir_, *keys_).ok);
}

TEST_F(Audit, SecretsAreNeverStored) {
  auto log = open();
  Details d;
  d.secret_changed("BasicAuthPassword").text("component", "SecurityCtrlr");
  ASSERT_TRUE(log->record(Event::ReconfigurationOfSecurityParameters, Outcome::Success,
                          Source{"Wan", "192.0.2.7", "CSMS"}, d)
                  .stored);
  const auto b = body_of(read_lines(file()).back());
  const auto& v = b.at("details").at("BasicAuthPassword");
  ASSERT_TRUE(v.is_string());
  EXPECT_NE(v.as_string().find("not recorded"), std::string::npos) << v;
  EXPECT_EQ(b.at("details").at("component").as_string(), "SecurityCtrlr");
}

TEST_F(Audit, TextHasNoControlCharacters) {
  auto log = open();
  Details d;
  d.text("nl", "a\nb").text("tab", "a\tb").text("soh", "a\x01z").text("cr", "x\r\ny").text("del", "q\x7fq");
  ASSERT_TRUE(log->record(Event::InvalidMessages, Outcome::Failure, Source::system(), d).stored);
  const std::string bytes = read_file(file());
  EXPECT_EQ(count_of(bytes, "\n"), 1u) << "one record, one line";
  EXPECT_EQ(count_of(bytes, "\t"), 2u) << "only the two field separators";
  const auto details = body_of(read_lines(file())[0]).at("details").as_object();
  for (const auto& [k, v] : details) {
    for (char c : v.as_string()) EXPECT_FALSE(static_cast<unsigned char>(c) < 0x20 || c == 0x7f) << k;
  }
  EXPECT_EQ(details.at("nl").as_string().size(), 3u);
  EXPECT_EQ(details.at("nl").as_string()[0], 'a');
  EXPECT_EQ(details.at("nl").as_string()[2], 'b');
  EXPECT_EQ(details.at("tab").as_string().size(), 3u);
  EXPECT_EQ(details.at("soh").as_string().size(), 3u);
  EXPECT_EQ(details.at("cr").as_string().size(), 4u);
  EXPECT_TRUE(verify_dir(dir_, *keys_).ok);
}

TEST_F(Audit, TextIsCappedAt256BytesOnACharacterBoundary) {
  const std::string e_acute = "\xC3\xA9";       // é, 2 bytes
  const std::string euro = "\xE2\x82\xAC";      // €, 3 bytes
  const std::string smile = "\xF0\x9F\x98\x80";  // 😀, 4 bytes
  struct Case {
    std::string in;
    std::size_t min_len;  // nothing cut but the character that did not fit
  };
  std::vector<Case> cases{{std::string(300, 'a'), 256},
                          {std::string(255, 'a') + e_acute, 255},
                          {std::string(254, 'a') + e_acute, 256},
                          {std::string(254, 'a') + euro, 254},
                          {std::string(253, 'a') + smile, 253},
                          {std::string(254, 'a') + smile, 254},
                          {std::string(255, 'a') + smile, 255},
                          {std::string(252, 'a') + smile + "b", 256}};
  std::string euros, smiles;
  for (int i = 0; i < 100; ++i) euros += euro, smiles += smile;
  cases.push_back({euros, 255});
  cases.push_back({smiles, 256});
  for (int shift = 0; shift < 4; ++shift) cases.push_back({std::string(static_cast<std::size_t>(shift), 'x') + smiles, 253});

  auto log = open();
  for (const auto& c : cases) {
    Details d;
    d.text("t", c.in);
    ASSERT_TRUE(log->record(Event::InvalidMessages, Outcome::Failure, Source::system(), d).stored);
  }
  const auto lines = read_lines(file());
  ASSERT_EQ(lines.size(), cases.size());
  int seen = 0;
  for_each_record(file(), 1, [&](const RecordView&) { return ++seen, true; });
  EXPECT_EQ(seen, static_cast<int>(cases.size())) << "every record is readable JSON again";
  for (std::size_t i = 0; i < cases.size(); ++i) {
    // Read the raw bytes of the value (json::parse would reject broken UTF-8).
    const auto& line = lines[i];
    const auto from = line.find("\"t\":\"") + 5;
    const auto to = line.find('"', from);
    const std::string v = line.substr(from, to - from);
    EXPECT_LE(v.size(), 256u) << "case " << i;
    EXPECT_GE(v.size(), cases[i].min_len) << "case " << i << ": cut more than needed";
    EXPECT_TRUE(valid_utf8(v)) << "case " << i << ": cut inside a character";
    EXPECT_EQ(cases[i].in.rfind(v, 0), 0u) << "case " << i << ": the stored text is a prefix of the input";
  }
  EXPECT_TRUE(verify_dir(dir_, *keys_).ok);
}

TEST_F(Audit, InvalidUtf8InTextKeepsTheRecordReadable) {
  auto log = open();
  Details d;
  d.text("t", "bad\xFF\xFE" "byte\xC3").text("overlong", "\xC0\xAF").text("ok", "gr\xC3\xBC\xC3\x9F" "e");
  ASSERT_TRUE(log->record(Event::TamperDetectionActivated, Outcome::Success, Source{"Wan\xFF", "", "p\xE2\x82"}, d).stored);
  const auto line = read_lines(file()).at(0);
  EXPECT_TRUE(valid_utf8(split(line).body)) << line;
  std::vector<RecordView> got;
  for_each_record(file(), 1, [&](const RecordView& v) { return got.push_back(v), true; });
  ASSERT_EQ(got.size(), 1u) << "a record that cannot be read back would never reach the CSMS";
  const auto details = body_of(line).at("details").as_object();
  EXPECT_EQ(details.at("ok").as_string(), "gr\xC3\xBC\xC3\x9F" "e") << "valid UTF-8 is kept";
  EXPECT_EQ(std::string(details.at("t").as_string()).rfind("bad", 0), 0u);
  EXPECT_TRUE(verify_dir(dir_, *keys_).ok);
}

TEST_F(Audit, SourceFieldsAreCleanedLikeText) {
  auto log = open();
  const Source src{"Wan\n", "192.0.2.1\tX", "bob\x01" + std::string(400, 'p')};
  ASSERT_TRUE(log->record(Event::MaintenanceLoginFailed, Outcome::Failure, src).stored);
  const std::string bytes = read_file(file());
  EXPECT_EQ(count_of(bytes, "\n"), 1u);
  EXPECT_EQ(count_of(bytes, "\t"), 2u);
  const auto s = body_of(read_lines(file())[0]).at("source").as_object();
  const std::string iface(s.at("interface").as_string()), addr(s.at("address").as_string()),
      principal(s.at("principal").as_string());
  EXPECT_EQ(iface.size(), 4u);
  EXPECT_EQ(iface.substr(0, 3), "Wan");
  EXPECT_EQ(addr.substr(0, 9), "192.0.2.1");
  EXPECT_EQ(addr.size(), 11u);
  EXPECT_EQ(principal.size(), 256u);
  EXPECT_EQ(principal.substr(0, 3), "bob");
  for (const auto& [k, v] : s)
    for (char c : v.as_string()) EXPECT_GE(static_cast<unsigned char>(c), 0x20u) << k;
  // Source::of takes the principal's name through the same cleaning.
  const auto of = Source::of({cg::policy::Role{}, cg::policy::Interface::LocalMaintenance, "eve\n"}, "10.0.0.2");
  EXPECT_EQ(of.interface, "LocalMaintenance");
  EXPECT_EQ(of.address, "10.0.0.2");
  EXPECT_EQ(of.principal.find('\n'), std::string::npos);
  EXPECT_TRUE(verify_dir(dir_, *keys_).ok);
}

TEST_F(Audit, EveryEventTypeAcceptsDetailsAndVerifies) {
  const std::string id = "DEADBEEF01020304";
  auto log = open();
  for (int i = 0; i < kEventCount; ++i) {
    const auto e = static_cast<Event>(i);
    Details d;
    d.text("user", "op\nerator\t\x01" "\xC3\xA9")
        .text("origin", std::string(400, 'o'))
        .number("n", -i)
        .flag("f", i % 2 == 0)
        .id_token("idToken", "ISO14443", id)
        .secret_changed("password");
    const auto r = log->record(e, i % 2 ? Outcome::Failure : Outcome::Success,
                               Source{"LocalMaintenance", "10.0.0.1", "tech\n"}, d);
    ASSERT_TRUE(r.stored) << info(e).name << ": " << r.error;
    EXPECT_EQ(r.seq, static_cast<std::uint64_t>(i + 1));
  }
  const std::string bytes = read_file(file());
  EXPECT_EQ(bytes.find(id), std::string::npos);
  EXPECT_EQ(count_of(bytes, "\n"), static_cast<std::size_t>(kEventCount));
  EXPECT_EQ(count_of(bytes, "\t"), 2u * kEventCount);
  std::vector<RecordView> got;
  for_each_record(file(), 1, [&](const RecordView& v) { return got.push_back(v), true; });
  ASSERT_EQ(got.size(), static_cast<std::size_t>(kEventCount));
  for (int i = 0; i < kEventCount; ++i) {
    EXPECT_EQ(got[static_cast<std::size_t>(i)].type, static_cast<Event>(i));
    const auto b = body_of(got[static_cast<std::size_t>(i)].line);
    EXPECT_EQ(b.at("type").as_string(), info(static_cast<Event>(i)).name);
    EXPECT_EQ(b.at("critical").as_bool(), info(static_cast<Event>(i)).critical);
    EXPECT_EQ(b.at("details").at("n").as_int64(), -i);
  }
  const auto v = verify_dir(dir_, *keys_);
  EXPECT_TRUE(v.ok) << v.problem;
  EXPECT_EQ(v.records, static_cast<std::uint64_t>(kEventCount));
}

// ---- capacity (LOG-3)

TEST_F(Audit, CapacityAlarmAtEightyPercentThenRefusesNonCriticalOnly) {
  Options o;
  o.max_bytes = 8 * 1024;
  auto log = open(o);
  std::vector<std::uint64_t> stored;
  int nearly_full = 0;
  log->on_record([&](const RecordView& v) {
    if (v.type == Event::MemoryExhaustion) ++nearly_full;
  });
  bool alarm_seen = false;
  AuditLog::Result refused;
  for (int i = 0; i < 200; ++i) {
    const auto before = log->size_bytes();
    const auto r = log->record(Event::ConfigurationChanged, Outcome::Success, Source::system(),
                               note("variable-" + std::to_string(i)));
    if (!r.stored) {
      refused = r;
      break;
    }
    stored.push_back(r.seq);
    const bool crossed = before * 5 < o.max_bytes * 4 && log->size_bytes() * 5 >= o.max_bytes * 4;
    if (crossed) {
      alarm_seen = true;
      EXPECT_EQ(nearly_full, 1) << "the alarm comes with the record that crossed 80%";
      EXPECT_EQ(log->last_seq(), r.seq + 1) << "MemoryExhaustion follows it";
    } else {
      EXPECT_EQ(nearly_full, alarm_seen ? 1 : 0);
    }
  }
  ASSERT_TRUE(alarm_seen);
  EXPECT_EQ(nearly_full, 1) << "exactly one alarm record";
  ASSERT_FALSE(refused.stored) << "the log never filled";
  EXPECT_EQ(refused.seq, 0u);
  EXPECT_NE(refused.error.find("full"), std::string::npos) << refused.error;
  const auto last = log->last_seq();
  const auto size_full = log->size_bytes();
  EXPECT_LE(size_full, o.max_bytes);

  // Still refused, nothing written.
  EXPECT_FALSE(log->record(Event::InvalidMessages, Outcome::Failure, Source::system()).stored);
  EXPECT_EQ(log->size_bytes(), size_full);
  EXPECT_EQ(fs::file_size(file()), size_full);
  // A critical record is still stored.
  const auto crit = log->record(Event::TamperDetectionActivated, Outcome::Success, Source::system(), note("case open"));
  EXPECT_TRUE(crit.stored) << crit.error;
  EXPECT_EQ(crit.seq, last + 1);
  EXPECT_EQ(nearly_full, 1);

  // Nothing already stored was lost; the chain verifies; reopening does not
  // raise a second alarm.
  log.reset();
  log = open(o);
  EXPECT_FALSE(log->record(Event::InvalidMessages, Outcome::Failure, Source::system()).stored);
  const auto v = verify_dir(dir_, *keys_);
  EXPECT_TRUE(v.ok) << v.problem;
  EXPECT_EQ(v.records, stored.size() + 2) << "every accepted record, the alarm and the critical one";
  std::set<std::uint64_t> on_disk;
  int alarms = 0;
  for_each_record(file(), 1, [&](const RecordView& r) {
    on_disk.insert(r.seq);
    alarms += r.type == Event::MemoryExhaustion;
    return true;
  });
  for (auto s : stored) EXPECT_TRUE(on_disk.count(s)) << s;
  EXPECT_EQ(alarms, 1);
}

TEST_F(Audit, ABatchCrossingEightyPercentRaisesOneAlarm) {
  Options o;
  o.max_bytes = 6 * 1024;
  auto log = open(o);
  std::vector<std::tuple<Event, Outcome, Source, Details>> items;
  for (int i = 0; i < 40; ++i) items.emplace_back(Event::InvalidMessages, Outcome::Failure, Source::system(), note(std::to_string(i)));
  const auto results = log->record_batch(items);
  int stored = 0, refused = 0;
  for (const auto& r : results) (r.stored ? stored : refused)++;
  EXPECT_GT(stored, 0);
  EXPECT_GT(refused, 0);
  for (const auto& r : results)
    if (!r.stored) {
      EXPECT_NE(r.error.find("full"), std::string::npos);
    }
  int alarms = 0;
  for_each_record(file(), 1, [&](const RecordView& r) { return alarms += r.type == Event::MemoryExhaustion, true; });
  EXPECT_EQ(alarms, 1);
  const auto v = verify_dir(dir_, *keys_);
  EXPECT_TRUE(v.ok) << v.problem;
  EXPECT_EQ(v.records, static_cast<std::uint64_t>(stored + 1));
}

TEST_F(Audit, AFailedWriteLeavesNoPartialRecord) {
  // The file system refuses part of a record (here: RLIMIT_FSIZE, as a full
  // disk would): the record is reported not stored and the next one, once
  // there is room again, continues a chain that verifies.
  make_log(3);
  const auto size = fs::file_size(file());
  const pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    ::signal(SIGXFSZ, SIG_IGN);
    auto log = AuditLog::open(dir_, *keys_);
    struct rlimit rl {};
    ::getrlimit(RLIMIT_FSIZE, &rl);
    const rlimit small{static_cast<rlim_t>(size + 100), rl.rlim_max};
    if (::setrlimit(RLIMIT_FSIZE, &small) != 0) ::_exit(10);
    const auto r = log->record(Event::InvalidMessages, Outcome::Failure, Source::system(), note("does not fit"));
    if (r.stored || r.error.empty()) ::_exit(11);
    if (::setrlimit(RLIMIT_FSIZE, &rl) != 0) ::_exit(12);
    const auto r2 = log->record(Event::InvalidMessages, Outcome::Failure, Source::system(), note("fits"));
    if (!r2.stored) ::_exit(13);
    ::_exit(r2.seq == 4 ? 0 : 14);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0);
  const auto v = verify_dir(dir_, *keys_);
  ASSERT_TRUE(v.ok) << v.problem;
  EXPECT_EQ(v.records, 4u);
  const auto lines = read_lines(file());
  ASSERT_EQ(lines.size(), 4u);
  EXPECT_EQ(body_of(lines[3]).at("details").at("note").as_string(), "fits");
}

// ---- techInfo and reading back

TEST_F(Audit, TechInfoIsTheDetailsJsonAtMost255Characters) {
  auto log = open();
  std::vector<RecordView> views;
  log->on_record([&](const RecordView& v) { views.push_back(v); });
  Details small;
  small.text("user", "tech").text("origin", "192.0.2.9");
  log->record(Event::MaintenanceLoginAccepted, Outcome::Success, Source::system(), small);
  log->record(Event::StartupOfTheDevice, Outcome::Success, Source::system());
  Details big;
  for (int i = 0; i < 4; ++i) big.text("k" + std::to_string(i), std::string(100, static_cast<char>('a' + i)));
  log->record(Event::InvalidFirmwareSignature, Outcome::Failure, Source::system(), big);
  Details wide;  // multi-byte characters across the cut
  std::string euros;
  for (int i = 0; i < 85; ++i) euros += "\xE2\x82\xAC";
  wide.text("a", euros).text("b", euros);
  log->record(Event::FirmwareUpdated, Outcome::Success, Source::system(), wide);
  ASSERT_EQ(views.size(), 4u);

  const auto t0 = views[0].tech_info();
  EXPECT_EQ(json::parse(t0), body_of(views[0].line).at("details"));
  EXPECT_EQ(json::parse(t0).at("user").as_string(), "tech");
  EXPECT_EQ(views[1].tech_info(), "{}");
  for (const auto& v : views) {
    const auto t = v.tech_info();
    EXPECT_LE(t.size(), 255u) << v.seq;
    EXPECT_TRUE(valid_utf8(t)) << v.seq;
  }
  const auto t2 = views[2].tech_info();
  EXPECT_EQ(t2.rfind("{\"k0\":\"aaaa", 0), 0u) << t2;
  EXPECT_EQ(t2.substr(t2.size() - 3), "...");
}

TEST_F(Audit, ForEachRecordReadsFromASequenceNumberOn) {
  auto log = open();
  for (int i = 1; i <= 10; ++i)
    log->record(i % 2 ? Event::ResetOrReboot : Event::InvalidMessages, i % 3 ? Outcome::Success : Outcome::Failure,
                Source::system(), note(std::to_string(i)));
  std::vector<RecordView> got;
  for_each_record(file(), 4, [&](const RecordView& v) { return got.push_back(v), true; });
  ASSERT_EQ(got.size(), 7u);
  const auto lines = read_lines(file());
  for (std::size_t k = 0; k < got.size(); ++k) {
    const std::uint64_t seq = 4 + k;
    EXPECT_EQ(got[k].seq, seq);
    EXPECT_EQ(got[k].type, seq % 2 ? Event::ResetOrReboot : Event::InvalidMessages);
    EXPECT_EQ(got[k].outcome, seq % 3 ? Outcome::Success : Outcome::Failure);
    EXPECT_EQ(got[k].time, body_of(lines[seq - 1]).at("time").as_string());
    EXPECT_EQ(got[k].line, lines[seq - 1]);
    EXPECT_EQ(json::parse(got[k].tech_info()).at("note").as_string(), std::to_string(seq));
  }
  int calls = 0;
  for_each_record(file(), 1, [&](const RecordView&) { return ++calls < 3; });
  EXPECT_EQ(calls, 3) << "stops when the callback returns false";
  calls = 0;
  for_each_record(file(), 11, [&](const RecordView&) { return ++calls, true; });
  EXPECT_EQ(calls, 0);
  for_each_record(root_ / "missing.log", 1, [&](const RecordView&) { return ++calls, true; });
  EXPECT_EQ(calls, 0);
}

TEST_F(Audit, ConcurrentRecordersGetDistinctConsecutiveNumbers) {
  auto log = open();
  std::vector<std::thread> threads;
  std::vector<std::vector<std::uint64_t>> seqs(4);
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&, t] {
      for (int i = 0; i < 25; ++i)
        seqs[static_cast<std::size_t>(t)].push_back(
            log->record(Event::InvalidMessages, Outcome::Failure, Source::system(), note(std::to_string(t))).seq);
    });
  for (auto& th : threads) th.join();
  std::set<std::uint64_t> all;
  for (const auto& s : seqs) all.insert(s.begin(), s.end());
  EXPECT_EQ(all.size(), 100u);
  EXPECT_EQ(*all.begin(), 1u);
  EXPECT_EQ(*all.rbegin(), 100u);
  const auto v = verify_dir(dir_, *keys_);
  EXPECT_TRUE(v.ok) << v.problem;
  EXPECT_EQ(v.records, 100u);
}

// ---- kill -9 during heavy logging

TEST_F(Audit, KillNineLosesNoAcknowledgedRecord) {
  std::random_device rd;
  const auto seed = rd();
  std::mt19937 rng(seed);
  SCOPED_TRACE("seed " + std::to_string(seed));
  std::uniform_int_distribution<int> delay_us(2'000, 40'000);
  std::uint64_t acked = 0;
  {
    // An installed station: the state directory and its key exist.
    auto log = AuditLog::open(dir_, *keys_);
    acked = log->record(Event::StartupOfTheDevice, Outcome::Success, Source::system()).seq;
  }
  const auto started = std::chrono::steady_clock::now();
  int kills = 0;
  for (int round = 0; round < 20; ++round) {
    int fds[2];
    ASSERT_EQ(::pipe(fds), 0);
    const pid_t pid = ::fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      ::close(fds[0]);
      try {
        auto log = AuditLog::open(dir_, *keys_);
        for (std::uint64_t i = 0;; ++i) {
          Details d;
          d.text("note", "heavy logging").number("i", static_cast<long long>(i));
          const auto r = log->record(i % 5 ? Event::InvalidMessages : Event::TamperDetectionActivated,
                                     Outcome::Failure, Source::system(), d);
          if (!r.stored) ::_exit(3);
          if (::write(fds[1], &r.seq, sizeof r.seq) != static_cast<ssize_t>(sizeof r.seq)) ::_exit(4);
        }
      } catch (...) {
        ::_exit(2);
      }
    }
    ::close(fds[1]);
    std::this_thread::sleep_for(std::chrono::microseconds(delay_us(rng)));
    ASSERT_EQ(::kill(pid, SIGKILL), 0);
    int status = 0;
    ASSERT_EQ(::waitpid(pid, &status, 0), pid);
    ASSERT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL)
        << "the child stopped by itself, status " << status << " (round " << round << ")";
    ++kills;
    // The last seq the child was told is stored.
    std::uint64_t v = 0;
    std::string buf;
    char chunk[4096];
    for (ssize_t n; (n = ::read(fds[0], chunk, sizeof chunk)) != 0;) {
      if (n < 0 && errno == EINTR) continue;
      ASSERT_GT(n, 0);
      buf.append(chunk, static_cast<std::size_t>(n));
    }
    ::close(fds[0]);
    if (buf.size() >= sizeof v) {
      std::memcpy(&v, buf.data() + (buf.size() / sizeof v - 1) * sizeof v, sizeof v);
      ASSERT_GE(v, acked);
      acked = v;
    }
    // Before the reopen, only an unacknowledged last line may be incomplete
    // (SIGKILL can cut a write() between two pages).
    const auto before = verify_dir(dir_, *keys_);
    if (!before.ok) {
      ASSERT_NE(before.problem.find("incomplete"), std::string::npos) << "round " << round << ": " << before.problem;
      ASSERT_GT(before.bad_seq, acked) << "round " << round << ": " << before.problem;
    }
    auto log = AuditLog::open(dir_, *keys_);  // the daemon restarts
    const auto res = verify_dir(dir_, *keys_);
    ASSERT_TRUE(res.ok) << "round " << round << ": " << res.problem;
    ASSERT_GE(res.last_seq, acked) << "round " << round << ": an acknowledged record was lost";
    ASSERT_EQ(res.records, res.last_seq);
    ASSERT_EQ(log->last_seq(), res.last_seq);
    if (std::chrono::steady_clock::now() - started > std::chrono::seconds(8)) break;
  }
  EXPECT_GE(kills, 5);
  EXPECT_GT(acked, 0u) << "the children never acknowledged a record";
  auto log = AuditLog::open(dir_, *keys_);
  const auto r = log->record(Event::StartupOfTheDevice, Outcome::Success, Source::system());
  EXPECT_EQ(r.seq, verify_dir(dir_, *keys_).last_seq);
  EXPECT_TRUE(verify_dir(dir_, *keys_).ok);
}

}  // namespace

namespace {

TEST(AuditClear, StartsANewChainWithSecurityLogWasCleared) {
  const auto dir = cg::test::make_temp_dir("audit-clear");
  auto keys = cg::security::open_file_key_store({dir / "keys"});
  {
    auto log = AuditLog::open(dir / "audit", *keys);
    for (int i = 0; i < 5; ++i) ASSERT_TRUE(log->record(Event::InvalidMessages, Outcome::Failure, Source::system()).stored);
    std::vector<cg::audit::RecordView> seen;
    log->on_record([&](const cg::audit::RecordView& r) { seen.push_back(r); });
    const auto r = log->clear(Source{"LocalMaintenance", "127.0.0.1", "admin"});
    ASSERT_TRUE(r.stored) << r.error;
    EXPECT_EQ(r.seq, 6u) << "numbering continues";
    ASSERT_EQ(seen.size(), 1u);
    EXPECT_EQ(seen[0].type, Event::SecurityLogWasCleared);  // critical: reaches the CSMS
    ASSERT_TRUE(log->record(Event::InvalidMessages, Outcome::Failure, Source::system()).stored);
  }
  const auto v = cg::audit::verify_dir(dir / "audit", *keys);
  EXPECT_TRUE(v.ok) << v.problem;
  EXPECT_EQ(v.records, 2u);
  EXPECT_EQ(v.last_seq, 7u);
  std::ifstream in(cg::audit::log_file(dir / "audit"));
  std::string first;
  std::getline(in, first);
  EXPECT_NE(first.find("\"type\":\"SecurityLogWasCleared\""), std::string::npos) << first;
  EXPECT_NE(first.find("\"recordsRemoved\":5"), std::string::npos) << first;
  EXPECT_NE(first.find("\"unexportedRemoved\":5"), std::string::npos) << "nothing was exported: " << first;
  EXPECT_NE(first.find("\"principal\":\"admin\""), std::string::npos) << first;
  // Reopening continues the new chain.
  {
    auto log = AuditLog::open(dir / "audit", *keys);
    EXPECT_EQ(log->last_seq(), 7u);
  }
  std::filesystem::remove_all(dir);
}

}  // namespace

// ---- full_policy = overwrite_exported, the exported mark, continuation lines (LOG-3)

namespace {

class AuditOverwrite : public Audit {
 protected:
  static Options overwrite(std::uint64_t bytes) {
    Options o;
    o.max_bytes = bytes;
    o.full_policy = FullPolicy::OverwriteExported;
    return o;
  }
  // Records until `log` holds at least `fraction` of its capacity; returns their numbers.
  static std::vector<std::uint64_t> fill(AuditLog& log, double fraction) {
    std::vector<std::uint64_t> seqs;
    for (int i = 0; log.size_bytes() < log.options().max_bytes * fraction; ++i) {
      const auto r = log.record(Event::ConfigurationChanged, Outcome::Success, Source::system(),
                                note("variable-" + std::to_string(i)));
      if (!r.stored) break;
      seqs.push_back(r.seq);
    }
    return seqs;
  }
  std::set<std::uint64_t> seqs_on_disk() const {
    std::set<std::uint64_t> s;
    for_each_record(file(), 1, [&](const RecordView& r) { return s.insert(r.seq), true; });
    return s;
  }
};

TEST_F(AuditOverwrite, NothingExportedMeansNothingDroppedAndNonCriticalRefused) {
  auto log = open(overwrite(8 * 1024));
  const auto stored = fill(*log, 1.0);
  const auto r = log->record(Event::InvalidMessages, Outcome::Failure, Source::system(), note("one more"));
  EXPECT_FALSE(r.stored) << "nothing was exported: the policy may not drop anything";
  EXPECT_EQ(log->first_seq(), 1u);
  const auto on_disk = seqs_on_disk();
  for (auto s : stored) EXPECT_TRUE(on_disk.count(s)) << s;
  EXPECT_EQ(log->exported_seq(), 0u);
}

TEST_F(AuditOverwrite, DropsOnlyExportedRecordsAndTheLogStillVerifies) {
  auto log = open(overwrite(16 * 1024));
  const auto stored = fill(*log, 0.7);
  ASSERT_GT(stored.size(), 20u);
  const std::uint64_t mark = stored[stored.size() / 4];  // a quarter exported
  log->mark_exported(1, mark);
  EXPECT_EQ(log->exported_seq(), mark);
  std::vector<RecordView> seen;
  log->on_record([&](const RecordView& v) { seen.push_back(v); });
  // Keep writing past the capacity: exported records make room, and once they
  // are gone the rest is refused (non-critical) rather than overwritten.
  for (int i = 0; i < 400; ++i) log->record(Event::ConfigurationChanged, Outcome::Success, Source::system(), note("more"));
  EXPECT_LE(log->size_bytes(), log->options().max_bytes);
  EXPECT_EQ(log->first_seq(), mark + 1) << "exactly the exported records were dropped";
  const auto on_disk = seqs_on_disk();
  for (auto s : stored) EXPECT_EQ(on_disk.count(s), s > mark ? 1u : 0u) << s;
  int overwritten = 0, alarms = 0;
  for (const auto& v : seen) {
    if (v.type == Event::SecurityLogOverwritten) {
      ++overwritten;
      const auto d = body_of(v.line).at("details").as_object();
      EXPECT_EQ(d.at("firstDropped").as_int64(), 1);
      EXPECT_EQ(d.at("lastDropped").as_int64(), static_cast<long long>(mark));
    }
    alarms += v.type == Event::MemoryExhaustion;
  }
  EXPECT_EQ(overwritten, 1) << "the drop itself is recorded";
  EXPECT_EQ(alarms, 1) << "unexported records fill the log: the alarm sounds";
  // The file starts with the signed continuation line; verify accepts it with the key.
  const auto lines = read_lines(file());
  ASSERT_FALSE(lines.empty());
  EXPECT_EQ(lines[0].rfind("#continues ", 0), 0u) << lines[0];
  const auto v = verify_dir(dir_, *keys_);
  EXPECT_TRUE(v.ok) << v.problem;
  EXPECT_EQ(v.first_seq, mark + 1);
  EXPECT_EQ(v.last_seq, log->last_seq());
  // Reopening continues the chain after the continuation line.
  const auto last = log->last_seq();
  log.reset();
  log = open(overwrite(16 * 1024));
  EXPECT_EQ(log->first_seq(), mark + 1);
  EXPECT_EQ(log->last_seq(), last);
  EXPECT_TRUE(log->record(Event::TamperDetectionActivated, Outcome::Success, Source::system()).stored);
  EXPECT_TRUE(verify_dir(dir_, *keys_).ok);
}

TEST_F(AuditOverwrite, WithEverythingExportedTheLogRunsForeverWithoutRefusing) {
  auto log = open(overwrite(8 * 1024));
  int refused = 0;
  for (int i = 0; i < 600; ++i) {
    const auto r = log->record(Event::ConfigurationChanged, Outcome::Success, Source::system(), note(std::to_string(i)));
    refused += !r.stored;
    if (r.stored) log->mark_exported(1, r.seq);  // e.g. a syslog-to-SIEM bridge exporting continuously
  }
  EXPECT_EQ(refused, 0);
  EXPECT_LE(log->size_bytes(), log->options().max_bytes);
  EXPECT_GT(log->first_seq(), 1u);
  const auto v = verify_dir(dir_, *keys_);
  EXPECT_TRUE(v.ok) << v.problem;
  EXPECT_EQ(v.last_seq, log->last_seq());
}

TEST_F(AuditOverwrite, AnExportThatLeavesAGapDoesNotMoveTheMark) {
  auto log = open(overwrite(64 * 1024));
  for (int i = 0; i < 30; ++i) log->record(Event::InvalidMessages, Outcome::Failure, Source::system());
  log->mark_exported(10, 20);  // records 1..9 never left the station
  EXPECT_EQ(log->exported_seq(), 0u);
  log->mark_exported(1, 12);
  EXPECT_EQ(log->exported_seq(), 12u);
  log->mark_exported(10, 25);  // joins the exported prefix
  EXPECT_EQ(log->exported_seq(), 25u);
  log->mark_exported(1, 5);  // never moves back
  EXPECT_EQ(log->exported_seq(), 25u);
  // The CLI (another process) uses the same mark.
  mark_exported(dir_, *keys_, 1, 30);
  EXPECT_EQ(log->exported_seq(), 30u);
}

TEST_F(AuditOverwrite, AForgedExportedMarkCountsAsNothingExported) {
  auto log = open(overwrite(8 * 1024));
  const auto stored = fill(*log, 0.5);
  log->mark_exported(1, 3);
  std::string mark = read_file(dir_ / "exported");
  ASSERT_EQ(mark.rfind("exported 0000", 0), 0u) << mark;
  mark.replace(9, 20, "00000000000000099999");  // claim everything was exported, MAC unchanged
  write_file(dir_ / "exported", mark);
  EXPECT_EQ(log->exported_seq(), 0u);
  fill(*log, 1.0);
  EXPECT_EQ(log->first_seq(), 1u) << "a forged mark must not make the station drop records";
}

TEST_F(AuditOverwrite, ADamagedOrForgedContinuationLineFailsVerification) {
  {
    auto log = open(overwrite(8 * 1024));
    for (int i = 0; i < 200; ++i) {
      const auto r = log->record(Event::ConfigurationChanged, Outcome::Success, Source::system(), note(std::to_string(i)));
      if (r.stored) log->mark_exported(1, r.seq);
    }
    ASSERT_GT(log->first_seq(), 1u);
  }
  ASSERT_TRUE(verify_dir(dir_, *keys_).ok);
  auto lines = read_lines(file());
  const auto original = lines;
  // Someone deletes more records and moves the continuation line on, without the key.
  const auto next_body = body_of(lines[2]);
  lines[0] = "#continues " + std::string(20 - std::to_string(next_body.at("seq").as_int64() - 1).size(), '0') +
             std::to_string(next_body.at("seq").as_int64() - 1) + " " + std::string(next_body.at("prev").as_string()) +
             lines[0].substr(lines[0].size() - 65);
  lines.erase(lines.begin() + 1);
  write_lines(file(), lines);
  auto v = verify_dir(dir_, *keys_);
  EXPECT_FALSE(v.ok);
  EXPECT_NE(v.problem.find("continuation line"), std::string::npos) << v.problem;
  EXPECT_EQ(v.bad_line, 1u);
  // Without the key (a third party holding an export) only the chain is proven.
  const auto k = key();
  EXPECT_FALSE(verify_file(file(), &k).ok);
  EXPECT_TRUE(verify_file(file(), nullptr).ok);
  // Dropping the continuation line itself: the log no longer starts at record 1.
  lines = original;
  lines.erase(lines.begin());
  write_lines(file(), lines);
  v = verify_dir(dir_, *keys_);
  EXPECT_FALSE(v.ok);
  EXPECT_NE(v.problem.find("does not start at record 1"), std::string::npos) << v.problem;
}

TEST_F(AuditOverwrite, AnExportOfAMiddleRangeVerifiesWithItsContinuationLine) {
  auto log = open();
  for (int i = 0; i < 20; ++i) log->record(Event::InvalidMessages, Outcome::Failure, Source::system(), note(std::to_string(i)));
  const auto lines = read_lines(file());
  std::string ex = log->continuation_line(7, split(lines[6]).hash);  // records 8..15
  for (int i = 7; i < 15; ++i) ex += lines[static_cast<std::size_t>(i)] + "\n";
  write_file(root_ / "export.ndjson", ex);
  const auto k = key();
  auto v = verify_file(root_ / "export.ndjson", &k);
  EXPECT_TRUE(v.ok) << v.problem;
  EXPECT_EQ(v.first_seq, 8u);
  EXPECT_EQ(v.last_seq, 15u);
  EXPECT_EQ(v.records, 8u);
  // The same lines without the continuation line are not a whole log.
  write_file(root_ / "export.ndjson", ex.substr(ex.find('\n') + 1));
  EXPECT_FALSE(verify_file(root_ / "export.ndjson", &k).ok);
}

TEST_F(AuditOverwrite, ALeftoverTemporaryFileFromACrashIsRemovedAtOpen) {
  make_log(5);
  write_file(dir_ / "security.log.tmp", "half a rewrite");
  auto log = open(overwrite(8 * 1024));
  EXPECT_FALSE(fs::exists(dir_ / "security.log.tmp"));
  EXPECT_EQ(log->last_seq(), 5u);
  EXPECT_TRUE(verify_dir(dir_, *keys_).ok);
}

}  // namespace

// ---- verify_file / for_each_record read the log in blocks (not line by line):
// records straddling block boundaries, the longest accepted line, over-long
// lines, and the MACs (computed from precomputed HMAC states) against an
// independent HMAC-SHA256.
#include <openssl/hmac.h>

namespace {

std::string hmac_hex(const cg::security::Secret32& key, std::string_view msg, bool hex_message_as_bytes) {
  std::string bytes(msg);
  if (hex_message_as_bytes) {  // the MAC of a record is over the 32 bytes of its hash
    bytes.clear();
    for (std::size_t i = 0; i + 1 < msg.size(); i += 2) bytes += static_cast<char>(std::stoi(std::string(msg.substr(i, 2)), nullptr, 16));
  }
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  EXPECT_NE(HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()), reinterpret_cast<const unsigned char*>(bytes.data()),
                 bytes.size(), out, &n),
            nullptr);
  static const char* hex = "0123456789abcdef";
  std::string s;
  for (unsigned i = 0; i < n; ++i) s += {hex[out[i] >> 4], hex[out[i] & 15]};
  return s;
}

// A record line made here, with the key: valid, chained to `prev`, exactly
// `length` bytes long without its newline (padded in its details).
std::string crafted_line(const cg::security::Secret32& key, std::uint64_t seq, const std::string& prev, std::size_t length) {
  const std::string head = "{\"seq\":" + std::to_string(seq) +
                           ",\"time\":\"2026-01-01T00:00:00.000Z\",\"type\":\"InvalidMessages\",\"critical\":false,"
                           "\"outcome\":\"failure\",\"source\":{\"interface\":\"Internal\",\"address\":\"\",\"principal\":\"system\"},"
                           "\"details\":{\"pad\":\"";
  const std::string tail = "\"},\"prev\":\"" + prev + "\"}";
  const std::size_t fixed = head.size() + tail.size() + 2 * 65;
  EXPECT_GE(length, fixed);
  const std::string body = head + std::string(length - fixed, 'p') + tail;
  const std::string hash = sha256_hex(body);
  const std::string line = body + "\t" + hash + "\t" + hmac_hex(key, hash, true);
  EXPECT_EQ(line.size(), length);
  return line;
}

class AuditVerifyBlocks : public Audit {
 protected:
  // Records 1..2 written by the log (once), then crafted records 3.. of the given lengths.
  std::vector<std::string> log_with(const std::vector<std::size_t>& lengths) {
    if (!fs::exists(file())) make_log(2);
    auto lines = read_lines(file());
    lines.resize(2);
    const auto k = key();
    for (std::size_t len : lengths)
      lines.push_back(crafted_line(k, lines.size() + 1, split(lines.back()).hash, len));
    write_lines(file(), lines);
    return lines;
  }
  std::vector<std::uint64_t> seqs(std::uint64_t from = 1) const {
    std::vector<std::uint64_t> s;
    for_each_record(file(), from, [&](const RecordView& r) { return s.push_back(r.seq), true; });
    return s;
  }
};

TEST_F(AuditVerifyBlocks, MacsAnchorAndBadgeHashesAreHmacSha256WithTheDeviceKey) {
  {
    auto log = open();
    for (int i = 0; i < 3; ++i) {
      Details d;
      d.id_token("idToken", "ISO14443", "04A1B2C3D4E5F6").number("i", i);
      ASSERT_TRUE(log->record(Event::AuthorizationChanged, Outcome::Failure, Source::system(), d).stored);
    }
  }
  const auto k = key();
  const auto lines = read_lines(file());
  ASSERT_EQ(lines.size(), 3u);
  for (const auto& l : lines) {
    const auto parts = split(l);
    EXPECT_EQ(parts.hash, sha256_hex(parts.body));
    EXPECT_EQ(parts.mac, hmac_hex(k, parts.hash, true)) << l;
    const auto field = token_field(l, "idToken");
    EXPECT_EQ(field.substr(field.find('#') + 1), hmac_hex(k, "ISO14443\x1f" "04A1B2C3D4E5F6", false).substr(0, 12)) << field;
  }
  // anchor: "anchor <seq, 20 digits> <hash> <mac>\n", mac over the text before it.
  const std::string anchor = read_file(dir_ / "anchor");
  ASSERT_EQ(anchor.size(), 6 + 1 + 20 + 1 + 64 + 1 + 64 + 1u) << anchor;
  EXPECT_EQ(anchor.substr(0, 27), "anchor 00000000000000000003");
  EXPECT_EQ(anchor.substr(28, 64), split(lines.back()).hash);
  EXPECT_EQ(anchor.substr(93, 64), hmac_hex(k, anchor.substr(0, 92), false));
  EXPECT_TRUE(verify_dir(dir_, *keys_).ok);
}

TEST_F(AuditVerifyBlocks, ALogOfManyBlocksVerifiesWholeAndReadsBackInOrder) {
  // About 1.3 MB in lines of varying length (every offset modulo the block size
  // is hit), with a few records of ~40 KiB.
  constexpr int kRecords = 3000;
  {
    auto log = open(Options{std::uint64_t{64} << 20});
    std::mt19937 rng(7);
    std::vector<std::tuple<Event, Outcome, Source, Details>> batch;
    for (int i = 1; i <= kRecords; ++i) {
      Details d;
      d.text("note", std::string(rng() % 250, 'n'));
      if (i % 1000 == 500)
        for (int k = 0; k < 160; ++k) d.text("big" + std::to_string(k), std::string(250, 'b'));
      batch.emplace_back(Event::InvalidMessages, Outcome::Failure, Source::system(), std::move(d));
      if (batch.size() == 250 || i == kRecords) {
        for (const auto& r : log->record_batch(batch)) ASSERT_TRUE(r.stored);
        batch.clear();
      }
    }
  }
  ASSERT_GT(fs::file_size(file()), 1200u * 1024);
  const auto k = key();
  const auto v = verify_file(file(), &k);
  EXPECT_TRUE(v.ok) << v.problem;
  EXPECT_EQ(v.records, static_cast<std::uint64_t>(kRecords));
  EXPECT_EQ(v.first_seq, 1u);
  EXPECT_EQ(v.last_seq, static_cast<std::uint64_t>(kRecords));
  EXPECT_TRUE(verify_dir(dir_, *keys_).ok);
  const auto all = seqs();
  ASSERT_EQ(all.size(), static_cast<std::size_t>(kRecords));
  for (std::size_t i = 0; i < all.size(); ++i) ASSERT_EQ(all[i], i + 1);
  const auto lines = read_lines(file());
  std::vector<std::string> got;
  for_each_record(file(), 2990, [&](const RecordView& r) { return got.push_back(r.line), true; });
  ASSERT_EQ(got.size(), 11u);
  EXPECT_EQ(got.front(), lines[2989]);
  EXPECT_EQ(got.back(), lines.back());
  // Damage deep inside: found at its line.
  auto damaged = lines;
  damaged[2500][30] ^= 1;
  write_lines(file(), damaged);
  const auto bad = verify_file(file(), &k);
  EXPECT_FALSE(bad.ok);
  EXPECT_EQ(bad.bad_line, 2501u) << bad.problem;
}

TEST_F(AuditVerifyBlocks, ALineOf64KiBIsARecordALongerOneIsNot) {
  log_with({65536, 2000, 65536});
  const auto k = key();
  auto v = verify_file(file(), &k);
  EXPECT_TRUE(v.ok) << v.problem;
  EXPECT_EQ(v.records, 5u);
  EXPECT_EQ(seqs(), (std::vector<std::uint64_t>{1, 2, 3, 4, 5}));

  log_with({2000, 65537, 2000});  // valid, chained and MAC'ed, but too long
  v = verify_file(file(), &k);
  EXPECT_FALSE(v.ok);
  EXPECT_NE(v.problem.find("line 4: not a record"), std::string::npos) << v.problem;
  EXPECT_EQ(v.bad_line, 4u);
  EXPECT_EQ(v.bad_seq, 4u);
  // Readers skip it (as any unreadable line) and go on after it.
  EXPECT_EQ(seqs(), (std::vector<std::uint64_t>{1, 2, 3, 5}));
  EXPECT_EQ(seqs(5), (std::vector<std::uint64_t>{5}));

  log_with({3 << 20});  // one 3 MiB line: longer than the read buffer
  v = verify_file(file(), &k);
  EXPECT_FALSE(v.ok);
  EXPECT_NE(v.problem.find("line 3: not a record"), std::string::npos) << v.problem;
  EXPECT_EQ(seqs(), (std::vector<std::uint64_t>{1, 2}));
}

TEST_F(AuditVerifyBlocks, RecordsMissingBehindAnOverLongLineAreReportedAsBefore) {
  auto lines = log_with({500, 500, 500});
  const auto k = key();
  // 1 2 4 <over-long junk starting like record 3> 5: record 3 "comes later" only
  // in its first bytes, so the log reads as out of order, as a shorter junk line would.
  std::string junk = lines[2].substr(0, 40) + std::string(100 * 1024, 'j');
  lines = {lines[0], lines[1], lines[3], junk, lines[4]};
  write_lines(file(), lines);
  auto v = verify_file(file(), &k);
  EXPECT_FALSE(v.ok);
  EXPECT_NE(v.problem.find("record 4 follows record 2 (records out of order)"), std::string::npos) << v.problem;
  EXPECT_EQ(v.bad_line, 3u);
  lines[3] = std::string(100 * 1024, 'j');
  write_lines(file(), lines);
  v = verify_file(file(), &k);
  EXPECT_NE(v.problem.find("record 4 follows record 2 (records missing)"), std::string::npos) << v.problem;
}

TEST_F(AuditVerifyBlocks, AnOverLongLastLineWithoutNewlineIsATruncatedRecord) {
  log_with({});
  const auto k = key();
  std::string bytes = read_file(file());
  bytes += "{\"seq\":3," + std::string(200 * 1024, 'x');  // no newline
  write_file(file(), bytes);
  const auto v = verify_file(file(), &k);
  EXPECT_FALSE(v.ok);
  EXPECT_NE(v.problem.find("line 3: the last record is incomplete"), std::string::npos) << v.problem;
  EXPECT_EQ(v.bad_seq, 3u);
  EXPECT_EQ(seqs(), (std::vector<std::uint64_t>{1, 2}));
}

TEST_F(AuditVerifyBlocks, AnOverLongContinuationLineIsDamaged) {
  const auto lines = log_with({});
  const auto k = key();
  write_lines(file(), {"#continues 00000000000000000002 " + std::string(70 * 1024, 'a'), lines[0], lines[1]});
  const auto v = verify_file(file(), &k);
  EXPECT_FALSE(v.ok);
  EXPECT_NE(v.problem.find("line 1: the continuation line is damaged"), std::string::npos) << v.problem;
  EXPECT_EQ(v.bad_line, 1u);
}

TEST_F(AuditVerifyBlocks, AnUnreadableLogIsNotAVerifiedOne) {
  make_log(1);
  const auto k = key();
  fs::create_directories(root_ / "not-a-file");
  const auto v = verify_file(root_ / "not-a-file", &k);  // open() works, read() fails
  EXPECT_FALSE(v.ok);
  EXPECT_NE(v.problem.find("cannot read"), std::string::npos) << v.problem;
  int calls = 0;
  for_each_record(root_ / "not-a-file", 1, [&](const RecordView&) { return ++calls, true; });
  EXPECT_EQ(calls, 0);
  const auto missing = verify_file(root_ / "missing.log", &k);
  EXPECT_FALSE(missing.ok);
  EXPECT_NE(missing.problem.find("cannot read"), std::string::npos) << missing.problem;
}

}  // namespace
