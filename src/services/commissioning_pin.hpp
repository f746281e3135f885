// REQ: AUTH-9 — the commissioning PIN (seed 000): the credential of the
// installer's commissioning channel (an app over the station's access point or
// Bluetooth in the field).
//
// Each station gets its own: `chargeguard pin init` (manufacturing, like the
// initial admin password) draws a random 10-digit PIN from the OpenSSL CSPRNG,
// shows it once (the label) and stores only its Argon2id hash, marked as the
// default. A default PIN must be replaced: status() says so, and the web UI
// shows it on every admin's dashboard until it is. A new PIN has at least 8
// digits, no one digit repeated, no ascending or descending sequence, and is
// not the PIN it replaces (pin_violations). A change needs the current PIN;
// wrong PINs lock like passwords (the lock steps of [accounts] lockout, on the
// PIN itself, in SQLite so they survive a restart; the web page's user is
// logged in already, so their address is not locked out of the logins).
// A PIN older than [accounts] pin_max_age is flagged for renewal. An admin who
// has lost the PIN resets it: a new random default PIN, shown once, which must
// be replaced again. No PIN stored = the commissioning channel stays closed.
// (The channel itself, an interface of its own under AUTHZ-1, is not built
// yet; its check will count failures on the same locks as change() does.)
//
// Access: ManageSecuritySettings (admins). Every outcome is one AccountChanged
// record of the account "commissioning" (failures rate-limited, 20 a minute);
// the PIN itself never reaches a record.
// Threads: hashes like AccountsService; runs on the web UI's authentication worker.
#pragma once
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "core/config.hpp"
#include "core/result.hpp"
#include "core/storage.hpp"
#include "policy/policy.hpp"
#include "security/password_hash.hpp"
#include "services/gate.hpp"
#include "audit/rate_limit.hpp"
#include "services/lockout.hpp"

namespace cg::services {

struct PinStatus {
  bool set = false;         // a PIN exists (otherwise the channel is closed)
  bool is_default = false;  // still the one from `pin init` or a reset: must be replaced
  std::int64_t set_at = 0;
  bool renewal_due = false;  // older than accounts.pin_max_age
  std::optional<std::int64_t> locked_until;
};

class CommissioningPinService {
 public:
  using Now = std::function<std::int64_t()>;  // unix seconds
  CommissioningPinService(Gate& gate, storage::Db& db, config::Config::Accounts rules, Now now = {},
                          security::Argon2Params hashing = {});

  // Manufacturing: the station's own default PIN, returned once. Conflict when one exists.
  Result<std::string> init(const policy::Principal& who);
  // The replacement: `current` must match the stored PIN (when there is one).
  // InvalidArgument names every violated rule; Rejected: wrong current PIN;
  // Conflict: locked (with the end time).
  Result<void> change(const policy::Principal& who, std::string_view current, std::string_view next,
                      std::string_view address);
  // A lost PIN: a new random default PIN, returned once. The front end asks
  // the admin's own password first (AccountsService::confirm_password): an
  // open session alone does not get a working PIN.
  Result<std::string> reset(const policy::Principal& who, std::string_view address);
  // What a front end shows (set, default, renewal due, locked; never the PIN):
  // not gated, like AccountsService::find; the page that shows it asks the policy.
  PinStatus state();

 private:
  std::optional<std::string> stored_hash();
  // Stores `hash` (made by the caller outside any transaction) and ends any lock of the PIN.
  void store(const std::string& hash, bool is_default, std::int64_t now);
  // One failed change, recorded (rate-limited: a session could repeat it at will).
  void failed(const policy::Principal& who, std::string_view address, std::string_view reason);

  Gate& gate_;
  storage::Db& db_;
  config::Config::Accounts rules_;
  Now now_;
  security::Argon2Params hashing_;
  Lockout lockout_;
  audit::RecordLimiter failures_{20, std::chrono::minutes(1)};
};

}  // namespace cg::services
