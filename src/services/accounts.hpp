// The maintenance accounts (AUTH-1…AUTH-5, AUTH-7, AUTH-8, AUTH-10): unique
// named accounts with one role each, Argon2id password hashes only, the
// password rules, the forced change of an initial password, the login with
// its locks, and the account lifecycle an admin runs. Every outcome is one
// audit record; a login also reaches the CSMS (MaintenanceLoginAccepted /
// MaintenanceLoginFailed, rate-limited like every record a peer can cause).
//
// Threads: the service hashes (tens of ms and 19 MiB per hash). The web front
// end runs it on its one authentication worker thread with a database
// connection and a Gate of that thread; nothing else shares them.
//
// Initial passwords (AUTH-4): random from the OpenSSL CSPRNG, unique per
// account and device, shown once to the caller (the label / the admin who
// created the account), stored only as a hash, and usable only to set a new
// password: until then the account can do nothing else.
#pragma once
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "audit/rate_limit.hpp"
#include "core/config.hpp"
#include "core/result.hpp"
#include "core/storage.hpp"
#include "policy/policy.hpp"
#include "security/password_hash.hpp"
#include "services/gate.hpp"
#include "services/lockout.hpp"
#include "services/sessions.hpp"

namespace cg::services {

inline constexpr std::size_t kMaxAccounts = 64;
inline constexpr std::size_t kMaxUserName = 32;

// [a-z0-9._-], 1…32 characters, starting with a letter.
bool is_valid_user_name(std::string_view name) noexcept;
std::optional<policy::Role> parse_account_role(std::string_view role);  // admin, engineer, viewer
std::string_view account_role_name(policy::Role role);

struct AccountInfo {
  std::string name;
  policy::Role role = policy::Role::Viewer;
  bool enabled = true;
  bool must_change = true;
  std::int64_t created_at = 0, password_set_at = 0;
  std::optional<std::int64_t> last_login_at;
  std::string last_login_addr;
  std::optional<std::int64_t> locked_until;  // AUTH-5, when the account is locked now
};

enum class LoginStatus { Accepted, WrongCredentials, Locked, Disabled };

struct LoginResult {
  LoginStatus status = LoginStatus::WrongCredentials;
  std::string message;             // for the login form; never says whether the name exists
  policy::Principal principal{policy::Role::Viewer, policy::Interface::LocalMaintenance, {}};
  bool must_change = false;        // AUTH-4: initial or reset password
  bool password_expired = false;   // AUTH-10: older than accounts.password_max_age
  std::optional<std::int64_t> locked_until;
  LoginHistory history;  // AUTH-7: the previous successful login and the failures since it
};

class AccountsService {
 public:
  using Now = std::function<std::int64_t()>;  // unix seconds
  // Told (on the service's thread) when an account's sessions must end: it was
  // disabled, deleted, renamed or its password reset by an administrator. The
  // web UI's sessions subscribe; so would any other front end's.
  using SessionsEnd = std::function<void(const std::string& account, const std::string& why)>;
  AccountsService(Gate& gate, storage::Db& db, config::Config::Accounts rules, Now now = {},
                  security::Argon2Params hashing = {}, SessionsEnd sessions_end = {});

  // AUTH-4, manufacturing or first start: creates `admin` with a random
  // initial password and returns it (the caller shows it once). Conflict when
  // any account exists.
  Result<std::string> init(const policy::Principal& who);

  // AUTH-5: checks the locks of the account and of `address` before hashing.
  LoginResult login(std::string_view name, std::string_view password, std::string_view address);

  // The account's own change: needs the current password (CVE-2021-22773).
  // InvalidArgument names every violated rule, "; "-separated.
  Result<void> change_password(const policy::Principal& who, std::string_view current, std::string_view next,
                               std::string_view address);

  // Re-authentication before a sensitive step of the account's own session
  // (e.g. resetting the commissioning PIN): its own password, under the
  // account's lock; a wrong one counts and is recorded as a failure of `action`.
  Result<void> confirm_password(const policy::Principal& who, std::string_view password, std::string_view address,
                                std::string_view action);

  // Admin (ManageAccounts). add / reset_password return the new initial password.
  Result<std::string> add(const policy::Principal& who, std::string_view name, policy::Role role);
  Result<std::string> reset_password(const policy::Principal& who, std::string_view name);
  Result<void> set_enabled(const policy::Principal& who, std::string_view name, bool enabled);
  Result<void> remove(const policy::Principal& who, std::string_view name);
  // AUTH-10: a new user name (the default 'admin' becomes a person's name, say);
  // role, password, history and any lock stay with the account; its sessions end.
  Result<void> rename(const policy::Principal& who, std::string_view name, std::string_view new_name);
  Result<std::vector<AccountInfo>> list(const policy::Principal& who);

  // The account behind a session, for the session check (role changes and
  // disabling take effect at once). nullopt when gone or disabled.
  std::optional<AccountInfo> find(std::string_view name);
  bool empty();
  // AUTH-10: disables the accounts unused for accounts.disable_unused_after
  // (one AccountChanged record each; never the last enabled admin). Called
  // at every login and account list; returns the names disabled.
  std::vector<std::string> disable_unused();

 private:
  std::string new_initial_password(std::string_view name);
  LoginResult failed(std::string_view name, bool known, std::string_view address, std::int64_t now,
                     std::string_view why);
  Result<void> check_own_password(const policy::Principal& who, std::string_view password, std::string_view address,
                                  std::string_view action, std::int64_t now, std::string_view wrong);
  Result<AccountInfo> admin_target(const policy::Principal& who, std::string_view name, std::string_view request);
  void end_sessions(std::string_view account, const char* why);

  Gate& gate_;
  storage::Db& db_;
  config::Config::Accounts rules_;
  Now now_;
  security::Argon2Params hashing_;
  Lockout lockout_;
  SessionsEnd sessions_end_;
  audit::RecordLimiter login_records_{20, std::chrono::minutes(1)};
};

}  // namespace cg::services
