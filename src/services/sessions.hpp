// REQ: AUTH-6, CR 2.5, CR 2.6 — the maintenance sessions of the web UI.
//
// A session id is 256 bits from the OpenSSL CSPRNG, given to the browser once
// (a Secure, HttpOnly, SameSite=Strict cookie) and kept here only as its
// SHA-256, so a memory dump of the table opens no session. Sessions live in
// memory: a restart of the daemon ends them all (nothing to steal from disk).
//
// A session ends on: logout; web.idle_timeout without a user action (only
// requests the user made count: the page's own polling passes activity=false);
// web.session_lifetime whatever the activity; a request from another client
// address (AUTH-6: a stolen cookie used elsewhere ends the session, the user
// logs in again); its account disabled, deleted, reset or its password
// changed in another session; an administrator ending it (CR 2.6). Every end
// is one SessionEnded record (timeouts at the next request or at sweep()).
//
// Each session carries its CSRF token (also 256 bits, compared in constant
// time) and whether the account must change its password first (AUTH-4).
// Thread-safe (one mutex): the web front end checks sessions on its I/O
// thread, the authentication worker opens them.
#pragma once
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/config.hpp"
#include "core/result.hpp"
#include "policy/policy.hpp"
#include "services/gate.hpp"

namespace cg::services {

// AUTH-7: what the user is shown after logging in.
struct LoginHistory {
  std::optional<std::int64_t> previous_at;  // the previous successful login
  std::string previous_address;
  std::int64_t failures = 0;  // failed attempts since it
  std::optional<std::int64_t> last_failure_at;
  std::string last_failure_address;
};

struct SessionInfo {
  std::string handle;  // short public name (first 16 hex digits of the id's hash): for lists and ending
  policy::Principal principal{policy::Role::Viewer, policy::Interface::LocalMaintenance, {}};
  std::string address;
  std::int64_t created_at = 0, last_activity = 0;
  bool must_change = false;       // AUTH-4: only the password change is open
  bool password_expired = false;  // AUTH-10: a prompt on every page until changed
  std::string csrf;
  LoginHistory history;
};

class SessionService {
 public:
  using Now = std::function<std::int64_t()>;  // unix seconds
  SessionService(Gate& gate, config::Config::Web rules, Now now = {});

  struct Opened {
    std::string token;  // the cookie value (64 hex digits): given out once
    SessionInfo info;
  };
  // After an accepted login. At web.max_sessions the least recently used
  // session ends to make room (the new login is the user in front of the station).
  Opened open(const policy::Principal& who, std::string_view address, bool must_change, bool password_expired,
              LoginHistory history = {});

  struct Checked {
    std::optional<SessionInfo> session;
    // Why there is none: "" (no cookie / unknown), "idle", "expired", "address",
    // "ended" (by an administrator, a password change or an account change).
    std::string ended;
  };
  // Looks the token up; `activity` (a user action) extends the idle time.
  Checked check(std::string_view token, std::string_view address, bool activity);
  bool csrf_ok(const SessionInfo& s, std::string_view token) const;

  void logout(std::string_view token);
  // The account's password was changed in session `keep`: the others of that account end.
  void password_changed(std::string_view account, std::string_view keep_handle);
  // The account was disabled, deleted or its password reset: its sessions end.
  void end_account(std::string_view account, std::string_view why);

  // CR 2.6: an admin ends any session (ManageAccounts).
  Result<void> end(const policy::Principal& who, std::string_view handle);
  Result<std::vector<SessionInfo>> list(const policy::Principal& who);
  std::size_t size() const;
  // Ends the sessions past their idle time or lifetime (the daemon calls it every minute).
  void sweep();

 private:
  void end_locked(std::map<std::string, SessionInfo>::iterator it, std::string_view why, const audit::Source& by);
  std::optional<std::string> key_of_handle(std::string_view handle) const;

  Gate& gate_;
  config::Config::Web rules_;
  Now now_;
  mutable std::mutex mu_;
  std::map<std::string, SessionInfo> sessions_;  // key: hex SHA-256 of the token
  // Why recently ended sessions ended (key -> "idle", "expired", "address",
  // "ended"), so the next request of that browser can say it; bounded.
  std::map<std::string, std::string> ended_;
};

}  // namespace cg::services
