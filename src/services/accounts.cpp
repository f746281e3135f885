#include "services/accounts.hpp"

#include <openssl/rand.h>

#include <chrono>

#include "core/clock.hpp"
#include "services/password_policy.hpp"

namespace cg::services {
namespace {

using policy::Role;

std::string when(std::int64_t t) {
  return clock::format_rfc3339(clock::SysTime(std::chrono::seconds(t)));
}

audit::Source source(const policy::Principal& who, std::string_view address) {
  return audit::Source::of(who, std::string(address));
}

AccountInfo row_info(storage::Stmt& st) {
  AccountInfo a;
  a.name = st.col_text(0);
  a.role = parse_account_role(st.col_text(1)).value_or(Role::Viewer);
  a.enabled = st.col_int(2) != 0;
  a.must_change = st.col_int(3) != 0;
  a.created_at = st.col_int(4);
  a.password_set_at = st.col_int(5);
  if (!st.col_null(6)) a.last_login_at = st.col_int(6);
  if (!st.col_null(7)) a.last_login_addr = st.col_text(7);
  return a;
}

constexpr std::string_view kInfoColumns =
    "name, role, enabled, must_change, created_at, password_set_at, last_login_at, last_login_addr";

}  // namespace

bool is_valid_user_name(std::string_view n) noexcept {
  if (n.empty() || n.size() > kMaxUserName || !(n[0] >= 'a' && n[0] <= 'z')) return false;
  for (char c : n)
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-')) return false;
  return true;
}

std::optional<Role> parse_account_role(std::string_view r) {
  if (r == "admin") return Role::Admin;
  if (r == "engineer") return Role::Engineer;
  if (r == "viewer") return Role::Viewer;
  return std::nullopt;
}

std::string_view account_role_name(Role r) {
  switch (r) {
    case Role::Admin: return "admin";
    case Role::Engineer: return "engineer";
    case Role::Viewer: return "viewer";
    default: return "(none)";
  }
}

AccountsService::AccountsService(Gate& gate, storage::Db& db, config::Config::Accounts rules, Now now,
                                 security::Argon2Params hashing, SessionsEnd sessions_end)
    : gate_(gate),
      db_(db),
      rules_(std::move(rules)),
      now_(now ? std::move(now) : Now(&clock::unix_seconds)),
      hashing_(hashing),
      lockout_(db, rules_.lockout),
      sessions_end_(std::move(sessions_end)) {}

void AccountsService::end_sessions(std::string_view account, const char* why) {
  if (sessions_end_) sessions_end_(std::string(account), why);
}

// AUTH-4: four groups of four from an alphabet without look-alikes, joined by
// '-' (a special character of the rules), e.g. "Kq7v-mT3x-9pWa-e4Rz" (≈ 88 bits);
// drawn again in the rare case that it breaks a rule (no digit, say).
std::string AccountsService::new_initial_password(std::string_view name) {
  static constexpr std::string_view kAlphabet = "abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
  constexpr unsigned kLimit = 256 - 256 % kAlphabet.size();  // bytes at or above it would bias the draw
  for (;;) {
    std::string pw;
    while (pw.size() < 19) {
      if (pw.size() % 5 == 4) {
        pw += '-';
        continue;
      }
      unsigned char b = 0;
      if (RAND_bytes(&b, 1) != 1) throw std::runtime_error("CSPRNG failed");
      if (b < kLimit) pw += kAlphabet[b % kAlphabet.size()];
    }
    if (password_violations(name, pw).empty()) return pw;
  }
}

std::vector<std::string> AccountsService::disable_unused() {
  std::vector<std::string> out;
  if (rules_.disable_unused_after.count() == 0) return out;
  const std::int64_t cutoff = now_() - rules_.disable_unused_after.count();
  // "Used": the last login, or the account's creation or last password reset.
  auto st = db_.prepare(
      "SELECT name, role FROM accounts WHERE enabled = 1 AND "
      "MAX(COALESCE(last_login_at, 0), created_at, password_set_at) <= ? ORDER BY name");
  st.bind(1, cutoff);
  std::vector<std::pair<std::string, std::string>> stale;
  while (st.step()) stale.emplace_back(st.col_text(0), st.col_text(1));
  for (const auto& [name, role] : stale) {
    if (role == "admin") {
      auto admins = db_.prepare("SELECT COUNT(*) FROM accounts WHERE enabled = 1 AND role = 'admin'");
      admins.step();
      if (admins.col_int(0) <= 1) continue;  // the station must keep a way in
    }
    auto up = db_.prepare("UPDATE accounts SET enabled = 0 WHERE name = ?");
    up.bind(1, name);
    up.run();
    gate_.record(system_source(), audit::Event::AccountChanged, audit::Outcome::Success,
                 audit::Details().text("action", "disable").text("account", name)
                     .text("reason", "unused for " + std::to_string(rules_.disable_unused_after.count() / 86400) + " days"));
    end_sessions(name, "account disabled: unused");
    out.push_back(name);
  }
  return out;
}

bool AccountsService::empty() {
  auto st = db_.prepare("SELECT COUNT(*) FROM accounts");
  st.step();
  return st.col_int(0) == 0;
}

Result<std::string> AccountsService::init(const policy::Principal& who) {
  if (auto a = gate_.admit(who, policy::Operation::ManageAccounts, "accounts init"); !a) return a.error();
  return guarded("accounts init", [&]() -> Result<std::string> {
    // Hashed before the transaction: the write lock is held for milliseconds, not for a hash.
    const std::string pw = new_initial_password("admin");
    const std::string hash = security::hash_password(pw, hashing_);
    storage::Db::Tx tx(db_);
    if (!empty()) return fail(Errc::Conflict, "accounts already exist: the initial admin account is created once");
    const std::int64_t now = now_();
    auto st = db_.prepare(
        "INSERT INTO accounts(name, role, hash, must_change, enabled, created_at, password_set_at) "
        "VALUES ('admin', 'admin', ?, 1, 1, ?, ?)");
    st.bind(1, hash).bind(2, now).bind(3, now);
    st.run();
    tx.commit();
    gate_.record(who, audit::Event::AccountChanged, audit::Outcome::Success,
                 audit::Details().text("action", "init").text("account", "admin").text("role", "admin")
                     .secret_changed("initialPassword"));
    return pw;
  });
}

LoginResult AccountsService::failed(std::string_view name, bool known, std::string_view address, std::int64_t now,
                                    std::string_view why) {
  LoginResult r;
  r.status = LoginStatus::WrongCredentials;
  r.message = "Wrong user name or password.";
  std::optional<std::int64_t> until = lockout_.failure(Lockout::address(address), now);
  if (known) {
    const auto u = lockout_.failure(Lockout::account(name), now);
    if (u && (!until || *u > *until)) until = u;
    auto st = db_.prepare(
        "UPDATE accounts SET failures_since = failures_since + 1, last_failure_at = ?, last_failure_addr = ? "
        "WHERE name = ?");
    st.bind(1, now).bind(2, address).bind(3, name);
    st.run();
  }
  audit::Details d;
  // An unknown name is not recorded: people type their password into the name field.
  d.text("account", known ? name : std::string_view("(unknown)")).text("reason", why);
  if (until) {
    d.text("lockedUntil", when(*until));
    r.locked_until = until;
    r.message += " Too many failed logins: locked until " + when(*until) + ".";
  }
  gate_.record_limited(login_records_, audit::Source{"LocalMaintenance", std::string(address), "(login)"},
                       audit::Event::MaintenanceLoginFailed, audit::Outcome::Failure, std::move(d));
  return r;
}

// REQ: AUTH-1, AUTH-5, AUTH-7, AUTH-8
LoginResult AccountsService::login(std::string_view name, std::string_view password, std::string_view address) {
  try {
    const std::int64_t now = now_();
    lockout_.purge(now);
    disable_unused();
    // Locked (by address, or by account): refused before any hash, even with the right password.
    std::optional<std::int64_t> until = lockout_.locked_until(Lockout::address(address), now);
    const bool valid_name = is_valid_user_name(name);
    if (valid_name) {
      const auto u = lockout_.locked_until(Lockout::account(name), now);
      if (u && (!until || *u > *until)) until = u;
    }
    if (until) {
      LoginResult r;
      r.status = LoginStatus::Locked;
      r.locked_until = until;
      r.message = "Too many failed logins: login is locked until " + when(*until) + ".";
      gate_.record_limited(login_records_, audit::Source{"LocalMaintenance", std::string(address), "(login)"},
                           audit::Event::MaintenanceLoginFailed, audit::Outcome::Failure,
                           audit::Details().text("account", valid_name && find(name) ? name : "(unknown)")
                               .text("reason", "locked").text("lockedUntil", when(*until)));
      return r;
    }
    std::optional<std::string> hash;
    int enabled = 0, must_change = 0;
    std::int64_t set_at = 0;
    LoginResult ok;
    if (valid_name && password.size() <= security::kMaxPasswordBytes) {
      auto st = db_.prepare(
          "SELECT hash, enabled, must_change, password_set_at, role, last_login_at, last_login_addr, "
          "failures_since, last_failure_at, last_failure_addr FROM accounts WHERE name = ?");
      st.bind(1, name);
      if (st.step()) {
        hash = st.col_text(0);
        enabled = static_cast<int>(st.col_int(1));
        must_change = static_cast<int>(st.col_int(2));
        set_at = st.col_int(3);
        ok.principal.role = parse_account_role(st.col_text(4)).value_or(Role::Viewer);
        if (!st.col_null(5)) ok.history.previous_at = st.col_int(5);
        if (!st.col_null(6)) ok.history.previous_address = st.col_text(6);
        ok.history.failures = st.col_int(7);
        if (!st.col_null(8)) ok.history.last_failure_at = st.col_int(8);
        if (!st.col_null(9)) ok.history.last_failure_address = st.col_text(9);
      }
    }
    // The same work for an unknown name: timing does not tell which names exist.
    const bool match = security::verify_password(hash ? *hash : security::decoy_hash(hashing_), password);
    if (!hash || !match) return failed(name, hash.has_value(), address, now, hash ? "wrong password" : "unknown account");
    if (!enabled) {
      LoginResult r;
      r.status = LoginStatus::Disabled;
      r.message = "This account is disabled. Ask an administrator.";
      gate_.record(audit::Source{"LocalMaintenance", std::string(address), std::string(name)},
                   audit::Event::MaintenanceLoginFailed, audit::Outcome::Failure,
                   audit::Details().text("account", name).text("reason", "account disabled"));
      return r;
    }
    lockout_.success(Lockout::account(name));
    lockout_.success(Lockout::address(address));
    {
      auto st = db_.prepare(
          "UPDATE accounts SET last_login_at = ?, last_login_addr = ?, failures_since = 0, last_failure_at = NULL, "
          "last_failure_addr = NULL WHERE name = ?");
      st.bind(1, now).bind(2, address).bind(3, name);
      st.run();
    }
    if (security::needs_rehash(*hash, hashing_)) {
      auto st = db_.prepare("UPDATE accounts SET hash = ? WHERE name = ?");
      st.bind(1, security::hash_password(password, hashing_)).bind(2, name);
      st.run();
    }
    ok.status = LoginStatus::Accepted;
    ok.principal.name = std::string(name);
    ok.must_change = must_change != 0;
    ok.password_expired = rules_.password_max_age.count() > 0 && now - set_at >= rules_.password_max_age.count();
    ok.message = "Welcome.";
    gate_.record(source(ok.principal, address), audit::Event::MaintenanceLoginAccepted, audit::Outcome::Success,
                 audit::Details().text("account", name).text("role", account_role_name(ok.principal.role))
                     .flag("mustChangePassword", ok.must_change));
    return ok;
  } catch (const std::exception& e) {
    (void)failure_of("login", e);
    LoginResult r;
    r.message = "The station could not check the login now; try again.";
    return r;
  }
}

// The account's own password again (the lock of the account applies; a wrong
// one counts and is recorded as a failure of `action`).
Result<void> AccountsService::check_own_password(const policy::Principal& who, std::string_view password,
                                                 std::string_view address, std::string_view action,
                                                 std::int64_t now, std::string_view wrong) {
  if (auto u = lockout_.locked_until(Lockout::account(who.name), now))
    return fail(Errc::Conflict, "Too many wrong passwords: locked until " + when(*u) + ".");
  auto st = db_.prepare("SELECT hash FROM accounts WHERE name = ? AND enabled = 1");
  st.bind(1, who.name);
  if (!st.step()) return fail(Errc::NotFound, "the account no longer exists or is disabled");
  const std::string hash = st.col_text(0);
  st.reset();
  if (password.size() <= security::kMaxPasswordBytes && security::verify_password(hash, password)) return {};
  const auto u = lockout_.failure(Lockout::account(who.name), now);
  gate_.record(source(who, address), audit::Event::AccountChanged, audit::Outcome::Failure,
               audit::Details().text("action", action).text("account", who.name)
                   .text("reason", "wrong current password"));
  return fail(Errc::Rejected, u ? std::string(wrong) + " Too many wrong passwords: locked until " + when(*u) + "."
                                : std::string(wrong));
}

Result<void> AccountsService::confirm_password(const policy::Principal& who, std::string_view password,
                                               std::string_view address, std::string_view action) {
  if (who.iface != policy::Interface::LocalMaintenance || !is_valid_user_name(who.name))
    return fail(Errc::Denied, "only a maintenance account confirms with its password");
  return guarded(action, [&]() -> Result<void> {
    auto r = check_own_password(who, password, address, action, now_(), "Your password is wrong.");
    if (r) lockout_.success(Lockout::account(who.name));
    return r;
  });
}

// REQ: AUTH-3, AUTH-4, AUTH-8, CVE-2021-22773 (the current password is required)
Result<void> AccountsService::change_password(const policy::Principal& who, std::string_view current,
                                              std::string_view next, std::string_view address) {
  if (who.iface != policy::Interface::LocalMaintenance || !is_valid_user_name(who.name))
    return fail(Errc::Denied, "only a maintenance account changes its own password");
  return guarded("change password", [&]() -> Result<void> {
    const std::int64_t now = now_();
    if (auto r = check_own_password(who, current, address, "change password", now, "The current password is wrong."); !r)
      return r;
    auto v = password_violations(who.name, next);
    if (next == current) v.push_back("must differ from the current password");
    if (!v.empty()) return fail(Errc::InvalidArgument, "The new password needs: " + join_rules(v) + ".");
    auto up = db_.prepare("UPDATE accounts SET hash = ?, must_change = 0, password_set_at = ? WHERE name = ?");
    up.bind(1, security::hash_password(next, hashing_)).bind(2, now).bind(3, who.name);
    up.run();
    lockout_.success(Lockout::account(who.name));
    gate_.record(source(who, address), audit::Event::AccountChanged, audit::Outcome::Success,
                 audit::Details().text("action", "change password").text("account", who.name)
                     .secret_changed("password"));
    return {};
  });
}

Result<AccountInfo> AccountsService::admin_target(const policy::Principal& who, std::string_view name,
                                                  std::string_view request) {
  if (auto a = gate_.admit(who, policy::Operation::ManageAccounts, request); !a) return a.error();
  if (!is_valid_user_name(name)) return fail(Errc::InvalidArgument, "a user name is 1 to 32 characters of a-z, 0-9, '.', '_', '-', starting with a letter");
  auto a = find(name);
  if (!a) return fail(Errc::NotFound, "no account named " + std::string(name));
  return *a;
}

Result<std::string> AccountsService::add(const policy::Principal& who, std::string_view name, Role role) {
  if (auto a = gate_.admit(who, policy::Operation::ManageAccounts, "add account"); !a) return a.error();
  if (!is_valid_user_name(name))
    return fail(Errc::InvalidArgument,
                "a user name is 1 to 32 characters of a-z, 0-9, '.', '_', '-', starting with a letter");
  if (role != Role::Admin && role != Role::Engineer && role != Role::Viewer)
    return fail(Errc::InvalidArgument, "the role must be admin, engineer or viewer");
  return guarded("add account", [&]() -> Result<std::string> {
    const std::string pw = new_initial_password(name);
    const std::string hash = security::hash_password(pw, hashing_);  // outside the transaction
    storage::Db::Tx tx(db_);
    if (find(name)) return fail(Errc::Conflict, "an account named " + std::string(name) + " exists already");
    auto n = db_.prepare("SELECT COUNT(*) FROM accounts");
    n.step();
    if (static_cast<std::size_t>(n.col_int(0)) >= kMaxAccounts)
      return fail(Errc::Conflict, "the station keeps at most " + std::to_string(kMaxAccounts) + " accounts");
    const std::int64_t now = now_();
    auto st = db_.prepare(
        "INSERT INTO accounts(name, role, hash, must_change, enabled, created_at, password_set_at) "
        "VALUES (?, ?, ?, 1, 1, ?, ?)");
    st.bind(1, name).bind(2, account_role_name(role)).bind(3, hash).bind(4, now).bind(5, now);
    st.run();
    tx.commit();
    gate_.record(who, audit::Event::AccountChanged, audit::Outcome::Success,
                 audit::Details().text("action", "add").text("account", name).text("role", account_role_name(role))
                     .secret_changed("initialPassword"));
    return pw;
  });
}

Result<std::string> AccountsService::reset_password(const policy::Principal& who, std::string_view name) {
  auto t = admin_target(who, name, "reset password");
  if (!t) return t.error();
  return guarded("reset password", [&]() -> Result<std::string> {
    const std::string pw = new_initial_password(name);
    auto st = db_.prepare("UPDATE accounts SET hash = ?, must_change = 1, password_set_at = ? WHERE name = ?");
    st.bind(1, security::hash_password(pw, hashing_)).bind(2, now_()).bind(3, name);
    st.run();
    lockout_.success(Lockout::account(name));
    gate_.record(who, audit::Event::AccountChanged, audit::Outcome::Success,
                 audit::Details().text("action", "reset password").text("account", name)
                     .secret_changed("initialPassword"));
    end_sessions(name, "password reset by an administrator");
    return pw;
  });
}

Result<void> AccountsService::set_enabled(const policy::Principal& who, std::string_view name, bool enabled) {
  auto t = admin_target(who, name, enabled ? "enable account" : "disable account");
  if (!t) return t.error();
  if (!enabled && name == who.name) return fail(Errc::Rejected, "an administrator cannot disable their own account");
  return guarded("enable account", [&]() -> Result<void> {
    auto st = db_.prepare("UPDATE accounts SET enabled = ? WHERE name = ?");
    st.bind(1, std::int64_t{enabled ? 1 : 0}).bind(2, name);
    st.run();
    gate_.record(who, audit::Event::AccountChanged, audit::Outcome::Success,
                 audit::Details().text("action", enabled ? "enable" : "disable").text("account", name));
    if (!enabled) end_sessions(name, "account disabled by an administrator");
    return {};
  });
}

Result<void> AccountsService::remove(const policy::Principal& who, std::string_view name) {
  auto t = admin_target(who, name, "delete account");
  if (!t) return t.error();
  if (name == who.name) return fail(Errc::Rejected, "an administrator cannot delete their own account");
  return guarded("delete account", [&]() -> Result<void> {
    auto st = db_.prepare("DELETE FROM accounts WHERE name = ?");
    st.bind(1, name);
    st.run();
    lockout_.success(Lockout::account(name));
    gate_.record(who, audit::Event::AccountChanged, audit::Outcome::Success,
                 audit::Details().text("action", "delete").text("account", name));
    end_sessions(name, "account deleted by an administrator");
    return {};
  });
}

// REQ: AUTH-10 — user names can be changed.
Result<void> AccountsService::rename(const policy::Principal& who, std::string_view name, std::string_view new_name) {
  auto t = admin_target(who, name, "rename account");
  if (!t) return t.error();
  if (!is_valid_user_name(new_name))
    return fail(Errc::InvalidArgument, "the new user name must be 1 to 32 characters of a-z, 0-9, '.', '_', '-', "
                                       "starting with a letter");
  if (new_name == name) return fail(Errc::InvalidArgument, "the new user name is the current one");
  return guarded("rename account", [&]() -> Result<void> {
    storage::Db::Tx tx(db_);
    if (find(new_name)) return fail(Errc::Conflict, "an account named " + std::string(new_name) + " exists already");
    auto st = db_.prepare("UPDATE accounts SET name = ? WHERE name = ?");
    st.bind(1, new_name).bind(2, name);
    st.run();
    // The account's lock goes with it (a rename does not unlock).
    auto stale = db_.prepare("DELETE FROM login_locks WHERE subject = ?");
    stale.bind(1, Lockout::account(new_name));
    stale.run();
    auto lk = db_.prepare("UPDATE login_locks SET subject = ? WHERE subject = ?");
    lk.bind(1, Lockout::account(new_name)).bind(2, Lockout::account(name));
    lk.run();
    tx.commit();
    gate_.record(who, audit::Event::AccountChanged, audit::Outcome::Success,
                 audit::Details().text("action", "rename").text("account", name).text("newName", new_name));
    end_sessions(name, "account renamed by an administrator");
    return {};
  });
}

Result<std::vector<AccountInfo>> AccountsService::list(const policy::Principal& who) {
  if (auto a = gate_.admit(who, policy::Operation::ManageAccounts, "list accounts"); !a) return a.error();
  return guarded("list accounts", [&]() -> Result<std::vector<AccountInfo>> {
    disable_unused();
    std::vector<AccountInfo> out;
    const std::int64_t now = now_();
    auto st = db_.prepare("SELECT " + std::string(kInfoColumns) + " FROM accounts ORDER BY name");
    while (st.step()) {
      out.push_back(row_info(st));
      out.back().locked_until = lockout_.locked_until(Lockout::account(out.back().name), now);
    }
    return out;
  });
}

std::optional<AccountInfo> AccountsService::find(std::string_view name) {
  auto st = db_.prepare("SELECT " + std::string(kInfoColumns) + " FROM accounts WHERE name = ?");
  st.bind(1, name);
  if (!st.step()) return std::nullopt;
  return row_info(st);
}

}  // namespace cg::services
