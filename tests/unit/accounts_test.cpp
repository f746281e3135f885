// The maintenance accounts, their password rules, locks and sessions
// (AUTH-1…AUTH-10), against a real SQLite file and a real audit log.
#include <gtest/gtest.h>

#include <filesystem>
#include <memory>

#include "audit/audit_log.hpp"
#include "core/log.hpp"
#include "security/key_store.hpp"
#include "security/password_hash.hpp"
#include "services/accounts.hpp"
#include "services/commissioning_pin.hpp"
#include "services/password_policy.hpp"
#include "services/sessions.hpp"
#include "test_util.hpp"

namespace cg {
namespace {
namespace fs = std::filesystem;
using policy::Interface;
using policy::Principal;
using policy::Role;
using services::LoginStatus;
using test::has;

// Cheap parameters for tests: the rules do not depend on the cost.
const security::Argon2Params kFast{1, 64, 1};

struct Fixture : ::testing::Test {
  fs::path dir = test::make_temp_dir("accounts");
  std::unique_ptr<security::KeyStore> keys;
  std::unique_ptr<audit::AuditLog> audit;
  std::unique_ptr<storage::Db> db;
  std::unique_ptr<services::Gate> gate;
  std::int64_t now = 1'800'000'000;
  config::Config::Accounts rules;
  std::unique_ptr<services::AccountsService> accounts;
  const Principal cli{Role::Admin, Interface::LocalMaintenance, "cli:root"};

  void SetUp() override {
    log::set_level(log::Level::Error);
    keys = security::open_file_key_store({dir / "keys"});
    audit = audit::AuditLog::open(dir / "audit", *keys);
    db = std::make_unique<storage::Db>(dir / "station.db");
    gate = std::make_unique<services::Gate>(audit.get());
    make_service();
  }
  void TearDown() override { fs::remove_all(dir); }
  std::vector<std::string> ended;  // accounts whose sessions the service ended
  void make_service() {
    accounts = std::make_unique<services::AccountsService>(
        *gate, *db, rules, [this] { return now; }, kFast,
        [this](const std::string& account, const std::string&) { ended.push_back(account); });
  }
  std::vector<audit::RecordView> records(audit::Event e) {
    std::vector<audit::RecordView> out;
    audit::for_each_record(audit::log_file(dir / "audit"), 0, [&](const audit::RecordView& r) {
      if (r.type == e) out.push_back(r);
      return true;
    });
    return out;
  }
  // Creates an account and gives it a password of its own.
  std::string make_account(const std::string& name, Role role, const std::string& pw) {
    if (accounts->empty()) {
      auto init = accounts->init(cli);
      EXPECT_TRUE(init) << init.error().message;
    }
    std::string initial;
    if (name == "admin") {
      initial = *accounts->reset_password(cli, "admin");
    } else {
      auto a = accounts->add(cli, name, role);
      EXPECT_TRUE(a) << a.error().message;
      initial = *a;
    }
    auto l = accounts->login(name, initial, "10.0.0.9");
    EXPECT_EQ(l.status, LoginStatus::Accepted);
    EXPECT_TRUE(l.must_change);
    auto c = accounts->change_password(l.principal, initial, pw, "10.0.0.9");
    EXPECT_TRUE(c) << c.error().message;
    return initial;
  }
};

// ---- AUTH-3: each rule named
TEST(PasswordPolicy, EachRuleIsNamed) {
  using services::password_violations;
  EXPECT_TRUE(password_violations("alice", "Kq7v-mT3x").empty());
  EXPECT_TRUE(has(password_violations("alice", "Ab1-")[0], "8 to 31 characters"));
  EXPECT_TRUE(has(password_violations("alice", "Ab1-Ab1-Ab1-Ab1-Ab1-Ab1-Ab1-Ab1-")[0], "8 to 31 characters"));
  EXPECT_TRUE(has(password_violations("alice", "Kqxv-mTax")[0], "digit"));
  EXPECT_TRUE(has(password_violations("alice", "kq7v-mt3x")[0], "upper-case"));
  EXPECT_TRUE(has(password_violations("alice", "KQ7V-MT3X")[0], "lower-case"));
  EXPECT_TRUE(has(password_violations("alice", "Kq7vXmT3x")[0], "special character from -:;$&@,.?!"));
  EXPECT_TRUE(has(password_violations("alice", "Kq7v mT3x-")[0], "only letters, digits"));
  EXPECT_TRUE(has(password_violations("alice", "Kq7v-ALICE-3x")[0], "user name"));
  // Every special character of the rule counts.
  for (char c : std::string("-:;$&@,.?!")) EXPECT_TRUE(password_violations("bob", std::string("Kq7vmT3x") + c).empty()) << c;
  // Several violations at once, all named.
  EXPECT_EQ(password_violations("alice", "abc").size(), 5u);
}

TEST(PasswordPolicy, CommonPasswordsAreRefused) {
  using services::password_violations;
  for (const char* pw : {"Password1!", "P@ssw0rd1!", "Welcome2024!", "Qwerty12$", "Admin123!", "Chargeguard1.",
                         "Changeme-1", "Aaaaaaa1!"}) {
    const auto v = password_violations("bob", pw);
    ASSERT_FALSE(v.empty()) << pw;
    EXPECT_TRUE(has(v.back(), "too common")) << pw;
  }
}

// ---- AUTH-9: the commissioning PIN
TEST(PinPolicy, RunsAndSequencesAreRefused) {
  using services::pin_violations;
  EXPECT_TRUE(pin_violations("48150372").empty());
  EXPECT_TRUE(has(pin_violations("4815037")[0], "8 to 16 digits"));
  EXPECT_TRUE(has(pin_violations("4815037a")[0], "digits only"));
  EXPECT_TRUE(has(pin_violations("77777777")[0], "one digit repeated"));
  EXPECT_TRUE(has(pin_violations("12345678")[0], "ascending or descending"));
  EXPECT_TRUE(has(pin_violations("78901234")[0], "ascending or descending"));
  EXPECT_TRUE(has(pin_violations("98765432")[0], "ascending or descending"));
  EXPECT_TRUE(has(pin_violations("48150372", "48150372")[0], "differ"));
}

// ---- AUTH-8: Argon2id
TEST(PasswordHash, Argon2idSaltedAndVerified) {
  const auto a = security::hash_password("Kq7v-mT3x", kFast);
  const auto b = security::hash_password("Kq7v-mT3x", kFast);
  EXPECT_EQ(a.rfind("$argon2id$v=19$m=64,t=1,p=1$", 0), 0u) << a;
  EXPECT_NE(a, b) << "a fresh salt for every hash";
  EXPECT_TRUE(security::verify_password(a, "Kq7v-mT3x"));
  EXPECT_FALSE(security::verify_password(a, "Kq7v-mT3X"));
  EXPECT_FALSE(security::verify_password("$argon2i$v=19$m=64,t=1,p=1$xx$yy", "Kq7v-mT3x"));
  EXPECT_FALSE(security::verify_password(a, std::string(200, 'a')));
  EXPECT_TRUE(security::needs_rehash(a));
  EXPECT_FALSE(security::needs_rehash(a, kFast));
  EXPECT_EQ(security::hash_password("x").rfind("$argon2id$v=19$m=19456,t=2,p=1$", 0), 0u);
}

// ---- AUTH-4: the initial admin
TEST_F(Fixture, InitCreatesAdminOnceWithARandomPasswordStoredOnlyAsHash) {
  auto pw = accounts->init(cli);
  ASSERT_TRUE(pw) << pw.error().message;
  EXPECT_TRUE(services::password_violations("admin", *pw).empty()) << *pw;
  EXPECT_EQ(pw->size(), 19u);
  auto again = accounts->init(cli);
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error().code, Errc::Conflict);
  // Another device (another database) gets another password.
  fs::remove(dir / "station.db");
  fs::remove(dir / "station.db-wal");
  fs::remove(dir / "station.db-shm");
  db = std::make_unique<storage::Db>(dir / "station.db");
  make_service();
  auto other = accounts->init(cli);
  ASSERT_TRUE(other);
  EXPECT_NE(*other, *pw);
  EXPECT_EQ(test::all_bytes(dir).find(*other), std::string::npos) << "the initial password is in a file";
  EXPECT_EQ(records(audit::Event::AccountChanged).size(), 2u);
}

TEST_F(Fixture, InitialPasswordOnlyOpensTheForcedChange) {
  const auto pw = *accounts->init(cli);
  auto l = accounts->login("admin", pw, "10.0.0.9");
  ASSERT_EQ(l.status, LoginStatus::Accepted) << l.message;
  EXPECT_TRUE(l.must_change);
  EXPECT_EQ(l.principal.role, Role::Admin);
  EXPECT_EQ(l.principal.iface, Interface::LocalMaintenance);
  // CVE-2021-22773: the change needs the current password.
  auto wrong = accounts->change_password(l.principal, "not-it", "Kq7v-mT3x", "10.0.0.9");
  ASSERT_FALSE(wrong);
  EXPECT_TRUE(has(wrong.error().message, "current password is wrong"));
  auto weak = accounts->change_password(l.principal, pw, "password", "10.0.0.9");
  ASSERT_FALSE(weak);
  EXPECT_EQ(weak.error().code, Errc::InvalidArgument);
  EXPECT_TRUE(has(weak.error().message, "at least one digit"));
  EXPECT_TRUE(has(weak.error().message, "upper-case"));
  auto same = accounts->change_password(l.principal, pw, pw, "10.0.0.9");
  ASSERT_FALSE(same);
  EXPECT_TRUE(has(same.error().message, "must differ"));
  ASSERT_TRUE(accounts->change_password(l.principal, pw, "Kq7v-mT3x", "10.0.0.9"));
  EXPECT_EQ(accounts->login("admin", pw, "10.0.0.9").status, LoginStatus::WrongCredentials);
  auto again = accounts->login("admin", "Kq7v-mT3x", "10.0.0.9");
  EXPECT_EQ(again.status, LoginStatus::Accepted);
  EXPECT_FALSE(again.must_change);
}

// ---- AUTH-5: 6 failures lock 30 min, the right password is refused meanwhile
TEST_F(Fixture, SixFailuresLockTheAccountThirtyMinutesAcrossRestarts) {
  make_account("alice", Role::Engineer, "Kq7v-mT3x");
  for (int i = 1; i <= 5; ++i) {
    auto r = accounts->login("alice", "wrong-" + std::to_string(i), "10.0.0." + std::to_string(i));
    EXPECT_EQ(r.status, LoginStatus::WrongCredentials);
    EXPECT_FALSE(r.locked_until);
  }
  auto sixth = accounts->login("alice", "wrong-6", "10.0.0.6");
  EXPECT_EQ(sixth.status, LoginStatus::WrongCredentials);
  ASSERT_TRUE(sixth.locked_until);
  EXPECT_EQ(*sixth.locked_until, now + 1800);
  EXPECT_TRUE(has(sixth.message, "locked until"));
  // A restart of the daemon: a new service on the same database.
  db = std::make_unique<storage::Db>(dir / "station.db");
  make_service();
  now += 1799;
  auto locked = accounts->login("alice", "Kq7v-mT3x", "10.0.0.7");
  EXPECT_EQ(locked.status, LoginStatus::Locked);
  EXPECT_TRUE(has(locked.message, "locked until"));
  now += 1;
  auto open = accounts->login("alice", "Kq7v-mT3x", "10.0.0.7");
  EXPECT_EQ(open.status, LoginStatus::Accepted);
  // AUTH-7: the failures since the previous login are shown.
  EXPECT_EQ(open.history.failures, 6);
  EXPECT_EQ(open.history.last_failure_address, "10.0.0.6");
  EXPECT_EQ(open.history.previous_address, "10.0.0.9");
}

TEST_F(Fixture, UnknownNamesCountPerAddressAndLockIt) {
  make_account("alice", Role::Engineer, "Kq7v-mT3x");
  for (int i = 0; i < 6; ++i) accounts->login("nobody" + std::to_string(i), "x", "10.0.0.66");
  auto r = accounts->login("alice", "Kq7v-mT3x", "10.0.0.66");
  EXPECT_EQ(r.status, LoginStatus::Locked) << "the address is locked, whatever the account";
  EXPECT_EQ(accounts->login("alice", "Kq7v-mT3x", "10.0.0.67").status, LoginStatus::Accepted)
      << "another address and the account itself are not locked";
  // The records never carry an unknown name (it may be a password typed in the wrong field).
  const auto failed = records(audit::Event::MaintenanceLoginFailed);
  ASSERT_FALSE(failed.empty());
  for (const auto& f : failed) EXPECT_EQ(f.line.find("nobody"), std::string::npos) << f.line;
}

TEST_F(Fixture, ProgressiveLockoutOfSeed002) {
  rules.lockout = *config::parse_lockout("10:10m,5:60m");
  make_service();
  make_account("alice", Role::Engineer, "Kq7v-mT3x");
  auto fail_n = [&](int n) {
    std::optional<std::int64_t> until;
    for (int i = 0; i < n; ++i) {
      auto r = accounts->login("alice", "wrong", "10.1.0." + std::to_string(now % 200));
      EXPECT_NE(r.status, LoginStatus::Locked) << "failure " << i + 1;
      until = r.locked_until;
      ++now;
    }
    return until;
  };
  EXPECT_FALSE(fail_n(9));
  auto first = fail_n(1);
  ASSERT_TRUE(first);
  EXPECT_EQ(*first - (now - 1), 600);
  now = *first;
  EXPECT_FALSE(fail_n(4));
  auto second = fail_n(1);
  ASSERT_TRUE(second);
  EXPECT_EQ(*second - (now - 1), 3600);
}

TEST_F(Fixture, LoginsAreAuditedForTheCsms) {
  make_account("alice", Role::Viewer, "Kq7v-mT3x");
  accounts->login("alice", "wrong", "10.0.0.5");
  const auto ok = records(audit::Event::MaintenanceLoginAccepted);
  const auto bad = records(audit::Event::MaintenanceLoginFailed);
  ASSERT_FALSE(ok.empty());
  ASSERT_EQ(bad.size(), 1u);
  EXPECT_TRUE(has(bad[0].line, "alice"));
  EXPECT_TRUE(has(bad[0].line, "10.0.0.5"));
  EXPECT_TRUE(audit::info(audit::Event::MaintenanceLoginFailed).ocpp);
  // Secrets never reach the log.
  EXPECT_EQ(test::read_all(audit::log_file(dir / "audit")).find("Kq7v-mT3x"), std::string::npos);
}

// ---- AUTH-2 / AUTH-10: the admin's lifecycle operations ask the policy
TEST_F(Fixture, OnlyAdminsManageAccounts) {
  make_account("eve", Role::Engineer, "Kq7v-mT3x");
  const Principal eng{Role::Engineer, Interface::LocalMaintenance, "eve"};
  EXPECT_EQ(accounts->add(eng, "mallory", Role::Admin).error().code, Errc::Denied);
  EXPECT_EQ(accounts->reset_password(eng, "admin").error().code, Errc::Denied);
  EXPECT_EQ(accounts->list(eng).error().code, Errc::Denied);
  EXPECT_FALSE(records(audit::Event::AccessDenied).empty());
  // The admin disables, the login stops; deletes, the name is free again.
  ASSERT_TRUE(accounts->set_enabled(cli, "eve", false));
  EXPECT_EQ(accounts->login("eve", "Kq7v-mT3x", "10.0.0.1").status, LoginStatus::Disabled);
  ASSERT_TRUE(accounts->remove(cli, "eve"));
  EXPECT_EQ(accounts->login("eve", "Kq7v-mT3x", "10.0.0.1").status, LoginStatus::WrongCredentials);
  EXPECT_EQ(accounts->add(cli, "Bad Name", Role::Viewer).error().code, Errc::InvalidArgument);
  auto list = accounts->list(cli);
  ASSERT_TRUE(list);
  EXPECT_EQ(list->size(), 1u);
}

TEST_F(Fixture, PasswordAgeLimitPromptsAChange) {
  make_account("alice", Role::Viewer, "Kq7v-mT3x");
  EXPECT_FALSE(accounts->login("alice", "Kq7v-mT3x", "10.0.0.1").password_expired);
  now += 90 * 86400;
  EXPECT_TRUE(accounts->login("alice", "Kq7v-mT3x", "10.0.0.1").password_expired);
}

// ---- AUTH-6: sessions
struct Sessions : Fixture {
  config::Config::Web web;
  std::unique_ptr<services::SessionService> sessions;
  void SetUp() override {
    Fixture::SetUp();
    sessions = std::make_unique<services::SessionService>(*gate, web, [this] { return now; });
  }
  const Principal eng{Role::Engineer, Interface::LocalMaintenance, "eve"};
};

TEST_F(Sessions, TokenIsRandomAndStoredOnlyHashed) {
  auto a = sessions->open(eng, "10.0.0.1", false, false);
  auto b = sessions->open(eng, "10.0.0.1", false, false);
  EXPECT_EQ(a.token.size(), 64u);
  EXPECT_NE(a.token, b.token);
  EXPECT_NE(a.info.csrf, b.info.csrf);
  EXPECT_EQ(a.token.find(a.info.handle), std::string::npos) << "the handle is not part of the token";
  auto c = sessions->check(a.token, "10.0.0.1", true);
  ASSERT_TRUE(c.session);
  EXPECT_TRUE(sessions->csrf_ok(*c.session, a.info.csrf));
  EXPECT_FALSE(sessions->csrf_ok(*c.session, b.info.csrf));
  EXPECT_FALSE(sessions->check(std::string(64, '0'), "10.0.0.1", true).session);
}

TEST_F(Sessions, IdleTimeoutCountsOnlyUserActions) {
  auto s = sessions->open(eng, "10.0.0.1", false, false);
  now += 1700;
  ASSERT_TRUE(sessions->check(s.token, "10.0.0.1", false).session);  // polling
  now += 100;
  auto c = sessions->check(s.token, "10.0.0.1", true);
  EXPECT_FALSE(c.session);
  EXPECT_EQ(c.ended, "idle");
  auto t = sessions->open(eng, "10.0.0.1", false, false);
  now += 1700;
  ASSERT_TRUE(sessions->check(t.token, "10.0.0.1", true).session);  // a click
  now += 1700;
  EXPECT_TRUE(sessions->check(t.token, "10.0.0.1", true).session);
  EXPECT_FALSE(records(audit::Event::SessionEnded).empty());
}

TEST_F(Sessions, AnotherAddressEndsTheSession) {
  auto s = sessions->open(eng, "10.0.0.1", false, false);
  auto c = sessions->check(s.token, "10.0.0.2", true);
  EXPECT_FALSE(c.session);
  EXPECT_EQ(c.ended, "address");
  EXPECT_FALSE(sessions->check(s.token, "10.0.0.1", true).session) << "ended for the rightful user too";
}

TEST_F(Sessions, AdminEndsAnySessionOthersCannot) {
  auto s = sessions->open(eng, "10.0.0.1", false, false);
  const Principal viewer{Role::Viewer, Interface::LocalMaintenance, "vic"};
  EXPECT_EQ(sessions->end(viewer, s.info.handle).error().code, Errc::Denied);
  EXPECT_EQ(sessions->list(eng).error().code, Errc::Denied);
  auto list = sessions->list(cli);
  ASSERT_TRUE(list);
  ASSERT_EQ(list->size(), 1u);
  EXPECT_TRUE(list->front().csrf.empty());
  ASSERT_TRUE(sessions->end(cli, s.info.handle));
  EXPECT_FALSE(sessions->check(s.token, "10.0.0.1", true).session);
  EXPECT_EQ(sessions->end(cli, s.info.handle).error().code, Errc::NotFound);
}

TEST_F(Sessions, LifetimeAndCapacity) {
  web.max_sessions = 2;
  sessions = std::make_unique<services::SessionService>(*gate, web, [this] { return now; });
  auto a = sessions->open(eng, "10.0.0.1", false, false);
  now += 10;
  auto b = sessions->open(eng, "10.0.0.1", false, false);
  now += 10;
  auto c = sessions->open(eng, "10.0.0.1", false, false);
  EXPECT_EQ(sessions->size(), 2u);
  EXPECT_FALSE(sessions->check(a.token, "10.0.0.1", true).session) << "the least recently used made room";
  for (int i = 0; i < 28; ++i) {  // active all along: 11 h 40 min
    now += 1500;
    ASSERT_TRUE(sessions->check(c.token, "10.0.0.1", true).session) << i;
  }
  now += 1500;  // past 12 h
  EXPECT_EQ(sessions->check(c.token, "10.0.0.1", true).ended, "expired");
  now += 3600;
  sessions->sweep();
  EXPECT_EQ(sessions->size(), 0u);
}

TEST_F(Sessions, PasswordChangeEndsTheAccountsOtherSessions) {
  auto a = sessions->open(eng, "10.0.0.1", true, false);
  auto b = sessions->open(eng, "10.0.0.2", true, false);
  sessions->password_changed("eve", a.info.handle);
  auto c = sessions->check(a.token, "10.0.0.1", true);
  ASSERT_TRUE(c.session);
  EXPECT_FALSE(c.session->must_change);
  EXPECT_FALSE(sessions->check(b.token, "10.0.0.2", true).session);
}

TEST(Config, WebAndAccountsSections) {
  config::Config c;
  ASSERT_FALSE(config::parse("[web]\nlisten = \"[::1]:9443\"\nidle_timeout = \"15m\"\n"
                             "[accounts]\nlockout = \"10:10m,5:60m\"\npassword_max_age = \"0\"\npin_max_age = \"180d\"\n",
                             "t.toml", c));
  EXPECT_EQ(c.web.listen, "[::1]:9443");
  EXPECT_EQ(c.web.idle_timeout, std::chrono::minutes(15));
  ASSERT_EQ(c.accounts.lockout.size(), 2u);
  EXPECT_EQ(c.accounts.lockout[1].failures, 5);
  EXPECT_EQ(c.accounts.lockout[1].duration, std::chrono::hours(1));
  EXPECT_EQ(c.accounts.password_max_age.count(), 0);
  EXPECT_EQ(c.accounts.pin_max_age, std::chrono::hours(180 * 24));
  EXPECT_EQ(config::parse("[accounts]\nlockout = \"6\"\n", "t.toml", c)->key, "accounts.lockout");
  EXPECT_EQ(config::parse("[web]\nidle_timeout = \"30 minutes\"\n", "t.toml", c)->key, "web.idle_timeout");
  EXPECT_FALSE(config::parse_listen("localhost:8443")) << "a listener takes a numeric address";
  EXPECT_FALSE(config::parse_listen("127.0.0.1:0"));
  EXPECT_TRUE(config::parse_listen("0.0.0.0:443"));
}

}  // namespace
}  // namespace cg

namespace cg {
namespace {

// AUTH-10: accounts unused for accounts.disable_unused_after are disabled, never the last admin.
TEST_F(Fixture, UnusedAccountsAreDisabledButNotTheLastAdmin) {
  make_account("admin", Role::Admin, "Aq7v-mT3x.Lp9");
  make_account("eve", Role::Engineer, "Kq7v-mT3x");
  now += 179 * 86400;
  EXPECT_EQ(accounts->login("eve", "Kq7v-mT3x", "10.0.0.1").status, LoginStatus::Accepted) << "used in time";
  now += 180 * 86400;  // eve's last login and admin's are now 180 days old
  EXPECT_EQ(accounts->login("eve", "Kq7v-mT3x", "10.0.0.1").status, LoginStatus::Disabled);
  EXPECT_EQ(accounts->login("admin", "Aq7v-mT3x.Lp9", "10.0.0.1").status, LoginStatus::Accepted)
      << "the last enabled admin stays";
  const auto changed = records(audit::Event::AccountChanged);
  ASSERT_FALSE(changed.empty());
  EXPECT_TRUE(has(changed.back().line, "unused for 180 days"));
  rules.disable_unused_after = std::chrono::seconds(0);
  make_service();
  ASSERT_TRUE(accounts->set_enabled(cli, "eve", true));
  now += 1000 * 86400;
  EXPECT_EQ(accounts->login("eve", "Kq7v-mT3x", "10.0.0.1").status, LoginStatus::Accepted) << "0 = never";
}

// AUTH-10: user names can be changed; the account keeps its password, role and
// lock; its sessions end; the old name is free, the new one must be.
TEST_F(Fixture, RenameKeepsTheAccountAndEndsItsSessions) {
  make_account("admin", Role::Admin, "Aq7v-mT3x.Lp9");
  make_account("eve", Role::Engineer, "Kq7v-mT3x");
  ended.clear();
  const Principal eng{Role::Engineer, Interface::LocalMaintenance, "eve"};
  EXPECT_EQ(accounts->rename(eng, "admin", "mallory").error().code, Errc::Denied);
  EXPECT_EQ(accounts->rename(cli, "eve", "admin").error().code, Errc::Conflict);
  EXPECT_EQ(accounts->rename(cli, "eve", "Eve Smith").error().code, Errc::InvalidArgument);
  EXPECT_EQ(accounts->rename(cli, "nobody", "bob").error().code, Errc::NotFound);
  EXPECT_TRUE(ended.empty());
  // A locked account stays locked under its new name.
  for (int i = 0; i < 6; ++i) accounts->login("eve", "wrong-Pass1", "10.0.0." + std::to_string(i));
  ASSERT_TRUE(accounts->rename(cli, "eve", "eve.smith"));
  EXPECT_EQ(ended, std::vector<std::string>{"eve"});
  EXPECT_EQ(accounts->login("eve.smith", "Kq7v-mT3x", "10.0.0.50").status, LoginStatus::Locked);
  now += 31 * 60;
  const auto l = accounts->login("eve.smith", "Kq7v-mT3x", "10.0.0.50");
  EXPECT_EQ(l.status, LoginStatus::Accepted);
  EXPECT_EQ(l.principal.role, Role::Engineer);
  EXPECT_FALSE(l.must_change) << "the password stays";
  EXPECT_EQ(accounts->login("eve", "Kq7v-mT3x", "10.0.0.51").status, LoginStatus::WrongCredentials);
  // The default admin becomes a person.
  ASSERT_TRUE(accounts->rename(cli, "admin", "ada"));
  EXPECT_FALSE(accounts->find("admin"));
  EXPECT_EQ(accounts->login("ada", "Aq7v-mT3x.Lp9", "10.0.0.52").principal.role, Role::Admin);
  const auto changed = records(audit::Event::AccountChanged);
  ASSERT_FALSE(changed.empty());
  EXPECT_TRUE(has(changed.back().line, "\"rename\"")) << changed.back().line;
  EXPECT_TRUE(has(changed.back().line, "\"ada\"")) << changed.back().line;
}

TEST_F(Fixture, DisableDeleteAndResetEndTheAccountsSessions) {
  make_account("eve", Role::Engineer, "Kq7v-mT3x");
  ended.clear();
  ASSERT_TRUE(accounts->reset_password(cli, "eve"));
  ASSERT_TRUE(accounts->set_enabled(cli, "eve", true));
  ASSERT_TRUE(accounts->set_enabled(cli, "eve", false));
  ASSERT_TRUE(accounts->remove(cli, "eve"));
  EXPECT_EQ(ended, (std::vector<std::string>{"eve", "eve", "eve"})) << "enabling ends nothing";
}

// ---- AUTH-9: the commissioning PIN
struct Pin : Fixture {
  std::unique_ptr<services::CommissioningPinService> pin;
  void SetUp() override {
    Fixture::SetUp();
    make_pin();
  }
  void make_pin() {
    pin = std::make_unique<services::CommissioningPinService>(*gate, *db, rules, [this] { return now; }, kFast);
  }
};

TEST_F(Pin, EachStationGetsItsOwnDefaultWhichMustBeReplaced) {
  EXPECT_FALSE(pin->state().set) << "no PIN: the channel is closed";
  auto first = pin->init(cli);
  ASSERT_TRUE(first) << first.error().message;
  EXPECT_EQ(first->size(), 10u);
  EXPECT_TRUE(services::pin_violations(*first).empty()) << *first;
  EXPECT_EQ(pin->init(cli).error().code, Errc::Conflict) << "once";
  EXPECT_TRUE(pin->state().is_default);
  // Another station (another database) draws another PIN.
  storage::Db other_db(dir / "other.db");
  services::CommissioningPinService other(*gate, other_db, rules, [this] { return now; }, kFast);
  EXPECT_NE(*other.init(cli), *first);
  // Stored only as a hash; never in a record.
  auto st = db->prepare("SELECT hash FROM commissioning_pin");
  ASSERT_TRUE(st.step());
  EXPECT_TRUE(st.col_text(0).starts_with("$argon2id$"));
  EXPECT_FALSE(has(test::read_all(audit::log_file(dir / "audit")), *first));
  // Replaced: the rules apply, each named.
  auto bad = pin->change(cli, *first, "12345678", "10.0.0.1");
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().code, Errc::InvalidArgument);
  EXPECT_TRUE(has(bad.error().message, "ascending or descending")) << bad.error().message;
  EXPECT_TRUE(has(pin->change(cli, *first, "7777777", "10.0.0.1").error().message, "8 to 16 digits"));
  EXPECT_TRUE(has(pin->change(cli, *first, "77777777", "10.0.0.1").error().message, "one digit repeated"));
  EXPECT_TRUE(has(pin->change(cli, *first, "4711x0815", "10.0.0.1").error().message, "digits only"));
  EXPECT_TRUE(has(pin->change(cli, *first, *first, "10.0.0.1").error().message, "differ from the current PIN"));
  ASSERT_TRUE(pin->change(cli, *first, "47110815", "10.0.0.1"));
  EXPECT_FALSE(pin->state().is_default);
  EXPECT_FALSE(has(test::read_all(audit::log_file(dir / "audit")), "47110815"));
  // A lost PIN: a new random default, which must be replaced again.
  auto fresh = pin->reset(cli, "10.0.0.1");
  ASSERT_TRUE(fresh);
  EXPECT_TRUE(pin->state().is_default);
  EXPECT_TRUE(pin->change(cli, *fresh, "47110816", "10.0.0.1"));
}

TEST_F(Pin, WrongPinsLockLikePasswordsAcrossRestarts) {
  const std::string first = *pin->init(cli);
  for (int i = 0; i < 5; ++i) {
    auto r = pin->change(cli, "00000001", "47110815", "10.0.0." + std::to_string(i));
    ASSERT_EQ(r.error().code, Errc::Rejected);
    EXPECT_FALSE(has(r.error().message, "locked"));
  }
  auto sixth = pin->change(cli, "00000001", "47110815", "10.0.0.9");
  EXPECT_TRUE(has(sixth.error().message, "locked until")) << sixth.error().message;
  make_pin();  // a restart of the daemon
  auto locked = pin->change(cli, first, "47110815", "10.0.0.10");
  EXPECT_EQ(locked.error().code, Errc::Conflict) << "the right PIN is refused while locked";
  EXPECT_TRUE(pin->state().locked_until.has_value());
  now += 31 * 60;
  EXPECT_TRUE(pin->change(cli, first, "47110815", "10.0.0.10"));
  // Every outcome is one record: init, 6 wrong PINs, the try while locked, the change.
  std::vector<std::string> seen;
  for (const auto& r : records(audit::Event::AccountChanged)) {
    const std::string outcome = has(r.line, "\"outcome\":\"success\"") ? "ok" : "fail";
    seen.push_back(outcome + (has(r.line, "wrong current PIN") ? " wrong" : has(r.line, "\"locked\"") ? " locked" : ""));
  }
  EXPECT_EQ(seen, (std::vector<std::string>{"ok", "fail wrong", "fail wrong", "fail wrong", "fail wrong", "fail wrong",
                                            "fail wrong", "fail locked", "ok"}));
}

// A lost PIN is reset only after the admin's own password (the web UI asks
// AccountsService::confirm_password first): a wrong one counts on the admin's lock.
TEST_F(Pin, ConfirmPasswordCountsOnTheAccountsLock) {
  make_account("admin", Role::Admin, "Aq7v-mT3x.Lp9");
  const Principal admin{Role::Admin, Interface::LocalMaintenance, "admin"};
  EXPECT_TRUE(accounts->confirm_password(admin, "Aq7v-mT3x.Lp9", "10.0.0.1", "reset PIN"));
  for (int i = 0; i < 5; ++i)
    EXPECT_EQ(accounts->confirm_password(admin, "wrong", "10.0.0.1", "reset PIN").error().code, Errc::Rejected);
  auto sixth = accounts->confirm_password(admin, "wrong", "10.0.0.1", "reset PIN");
  EXPECT_TRUE(has(sixth.error().message, "locked until")) << sixth.error().message;
  EXPECT_EQ(accounts->confirm_password(admin, "Aq7v-mT3x.Lp9", "10.0.0.1", "reset PIN").error().code, Errc::Conflict);
  EXPECT_EQ(accounts->login("admin", "Aq7v-mT3x.Lp9", "10.0.0.2").status, LoginStatus::Locked) << "the same lock";
  const Principal cli_user{Role::Admin, Interface::LocalMaintenance, "cli:root"};
  EXPECT_EQ(accounts->confirm_password(cli_user, "x", "", "reset PIN").error().code, Errc::Denied);
}

TEST_F(Pin, OnlyAdminsAndRenewalIsPrompted) {
  const Principal eng{Role::Engineer, Interface::LocalMaintenance, "eve"};
  EXPECT_EQ(pin->init(eng).error().code, Errc::Denied);
  EXPECT_EQ(pin->reset(eng, "10.0.0.1").error().code, Errc::Denied);
  EXPECT_EQ(pin->change(eng, "", "47110815", "10.0.0.1").error().code, Errc::Denied);
  EXPECT_FALSE(pin->state().set);
  // With no PIN at all an admin sets the first one without a current PIN.
  ASSERT_TRUE(pin->change(cli, "", "47110815", "10.0.0.1"));
  EXPECT_FALSE(pin->state().renewal_due);
  now += 365 * 86400;
  EXPECT_TRUE(pin->state().renewal_due);
  rules.pin_max_age = std::chrono::seconds(0);
  make_pin();
  EXPECT_FALSE(pin->state().renewal_due) << "0 = never";
}

}  // namespace
}  // namespace cg
