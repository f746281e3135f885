#include "services/commissioning_pin.hpp"

#include <openssl/rand.h>

#include <stdexcept>

#include "core/clock.hpp"
#include "services/password_policy.hpp"

namespace cg::services {
namespace {

constexpr std::string_view kAccount = "commissioning";
constexpr std::size_t kDefaultPinDigits = 10;  // ≈ 33 bits; the lock steps bound online guessing

std::string when(std::int64_t t) { return clock::format_rfc3339(clock::SysTime(std::chrono::seconds(t))); }

// Uniform digits from the CSPRNG (bytes ≥ 250 would bias the draw), drawn
// again in the rare case that the PIN breaks a rule (a sequence, say).
std::string random_pin() {
  for (;;) {
    std::string pin;
    while (pin.size() < kDefaultPinDigits) {
      unsigned char b = 0;
      if (RAND_bytes(&b, 1) != 1) throw std::runtime_error("CSPRNG failed");
      if (b < 250) pin += static_cast<char>('0' + b % 10);
    }
    if (pin_violations(pin).empty()) return pin;
  }
}

const std::string kPinSubject = "pin:commissioning";

}  // namespace

CommissioningPinService::CommissioningPinService(Gate& gate, storage::Db& db, config::Config::Accounts rules, Now now,
                                                 security::Argon2Params hashing)
    : gate_(gate),
      db_(db),
      rules_(std::move(rules)),
      now_(now ? std::move(now) : Now(&clock::unix_seconds)),
      hashing_(hashing),
      lockout_(db, rules_.lockout) {}

std::optional<std::string> CommissioningPinService::stored_hash() {
  auto st = db_.prepare("SELECT hash FROM commissioning_pin WHERE id = 1");
  if (!st.step()) return std::nullopt;
  return st.col_text(0);
}

void CommissioningPinService::store(const std::string& hash, bool is_default, std::int64_t now) {
  auto st = db_.prepare(
      "INSERT INTO commissioning_pin(id, hash, is_default, set_at) VALUES (1, ?, ?, ?) "
      "ON CONFLICT(id) DO UPDATE SET hash = excluded.hash, is_default = excluded.is_default, set_at = excluded.set_at");
  st.bind(1, hash).bind(2, std::int64_t{is_default ? 1 : 0}).bind(3, now);
  st.run();
  lockout_.success(kPinSubject);
}

void CommissioningPinService::failed(const policy::Principal& who, std::string_view address, std::string_view reason) {
  gate_.record_limited(failures_, audit::Source::of(who, std::string(address)), audit::Event::AccountChanged,
                       audit::Outcome::Failure,
                       audit::Details().text("action", "change PIN").text("account", kAccount).text("reason", reason));
}

// REQ: AUTH-9 — each station its own PIN, shown once.
Result<std::string> CommissioningPinService::init(const policy::Principal& who) {
  if (auto a = gate_.admit(who, policy::Operation::ManageSecuritySettings, "pin init"); !a) return a.error();
  return guarded("pin init", [&]() -> Result<std::string> {
    const std::string pin = random_pin();
    const std::string hash = security::hash_password(pin, hashing_);  // outside the transaction
    {
      storage::Db::Tx tx(db_);
      if (stored_hash())
        return fail(Errc::Conflict, "the station has a commissioning PIN already: change it, or reset it in the web UI");
      store(hash, true, now_());
      tx.commit();
    }
    gate_.record(who, audit::Event::AccountChanged, audit::Outcome::Success,
                 audit::Details().text("action", "init PIN").text("account", kAccount).secret_changed("pin"));
    return pin;
  });
}

// REQ: AUTH-9 — the default must be replaced; the rules; the current PIN; wrong PINs lock.
Result<void> CommissioningPinService::change(const policy::Principal& who, std::string_view current,
                                             std::string_view next, std::string_view address) {
  if (auto a = gate_.admit(who, policy::Operation::ManageSecuritySettings, "change PIN"); !a) return a.error();
  return guarded("change PIN", [&]() -> Result<void> {
    const std::int64_t now = now_();
    if (auto u = lockout_.locked_until(kPinSubject, now)) {
      failed(who, address, "locked");
      return fail(Errc::Conflict, "Too many wrong PINs: the PIN is locked until " + when(*u) + ".");
    }
    const auto hash = stored_hash();
    if (hash && (current.size() > security::kMaxPasswordBytes || !security::verify_password(*hash, current))) {
      const auto u = lockout_.failure(kPinSubject, now);
      failed(who, address, "wrong current PIN");
      return fail(Errc::Rejected, u ? "The current PIN is wrong. Too many wrong PINs: locked until " + when(*u) + "."
                                    : "The current PIN is wrong.");
    }
    const auto v = pin_violations(next, hash ? current : std::string_view{});
    if (!v.empty()) {
      failed(who, address, "the new PIN breaks the rules");
      return fail(Errc::InvalidArgument, "The new PIN needs: " + join_rules(v) + ".");
    }
    store(security::hash_password(next, hashing_), false, now);
    gate_.record(audit::Source::of(who, std::string(address)), audit::Event::AccountChanged, audit::Outcome::Success,
                 audit::Details().text("action", "change PIN").text("account", kAccount).secret_changed("pin"));
    return {};
  });
}

Result<std::string> CommissioningPinService::reset(const policy::Principal& who, std::string_view address) {
  if (auto a = gate_.admit(who, policy::Operation::ManageSecuritySettings, "reset PIN"); !a) return a.error();
  return guarded("reset PIN", [&]() -> Result<std::string> {
    const std::string pin = random_pin();
    const std::string hash = security::hash_password(pin, hashing_);
    {
      storage::Db::Tx tx(db_);  // the new PIN and the end of any lock together
      store(hash, true, now_());
      tx.commit();
    }
    gate_.record(audit::Source::of(who, std::string(address)), audit::Event::AccountChanged, audit::Outcome::Success,
                 audit::Details().text("action", "reset PIN").text("account", kAccount).secret_changed("pin"));
    return pin;
  });
}

PinStatus CommissioningPinService::state() {
  PinStatus s;
  try {
    const std::int64_t now = now_();
    auto st = db_.prepare("SELECT is_default, set_at FROM commissioning_pin WHERE id = 1");
    if (st.step()) {
      s.set = true;
      s.is_default = st.col_int(0) != 0;
      s.set_at = st.col_int(1);
      s.renewal_due = rules_.pin_max_age.count() > 0 && now - s.set_at >= rules_.pin_max_age.count();
    }
    s.locked_until = lockout_.locked_until(kPinSubject, now);
  } catch (const std::exception& e) {
    (void)failure_of("PIN state", e);
  }
  return s;
}

}  // namespace cg::services
