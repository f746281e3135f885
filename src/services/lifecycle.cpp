#include "services/lifecycle.hpp"

#include "core/log.hpp"

namespace cg::services {
using audit::Event;
using audit::Outcome;

void Lifecycle::started(std::string_view version, std::string_view boot_reason) {
  gate_.record(system_source(), Event::StartupOfTheDevice, Outcome::Success,
               audit::Details().text("version", version).text("bootReason", boot_reason));
}

void Lifecycle::stopping(std::string_view signal) {
  gate_.record(system_source(), Event::Shutdown, Outcome::Success, audit::Details().text("signal", signal));
}

void Lifecycle::local_settings(const config::Config& cfg, storage::Db& db) {
  // COM-6: the downgrade permission is a local setting; a change of it (the
  // configuration file edited between starts) is a security reconfiguration.
  const std::string downgrade = cfg.allow_security_profile_downgrade ? "true" : "false";
  const auto seen = db.meta("config.allow_security_profile_downgrade");
  if (seen.value_or("false") != downgrade) {
    gate_.record(audit::Source{"LocalMaintenance", "", "configuration file"}, Event::ReconfigurationOfSecurityParameters,
                 Outcome::Success,
                 audit::Details()
                     .text("change", "allowSecurityProfileDowngrade")
                     .text("setting", "csms.allow_security_profile_downgrade")
                     .text("value", downgrade)
                     .text("previous", seen.value_or("false")));
    log::warn("station", "csms.allow_security_profile_downgrade is now ", downgrade,
              cfg.allow_security_profile_downgrade ? ": the CSMS may move the station from security profile 3 to 2"
                                                   : "");
  }
  if (seen != downgrade) db.set_meta("config.allow_security_profile_downgrade", downgrade);
}

Result<void> Lifecycle::tamper(Sensor s, bool cleared) {
  const char* sensor = s == Sensor::Case ? "case" : "motion";
  const char* what = cleared ? "enclosure closed" : s == Sensor::Case ? "enclosure opened" : "station moved";
  if (cleared) log::info("hal", what);
  else log::warn("hal", "tamper: ", what);
  const auto r = gate_.record(audit::Source{"Hardware", "", "tamper sensor"},
                              cleared ? Event::TamperCleared : Event::TamperDetectionActivated,
                              cleared ? Outcome::Success : Outcome::Failure,
                              audit::Details().text("sensor", sensor).text("event", what));
  if (!r.stored) return fail(Errc::Storage, r.error);
  return {};
}

void Lifecycle::retain_rejected(core::Outbox& outbox) {
  try {
    outbox.redact_rejected();
    const auto p = outbox.purge_rejected();
    if (p.rows == 0) return;
    log::info("station", "dropped ", p.rows, " refused message(s) past their retention (", p.by_age, " by age)");
    gate_.record(system_source(), Event::DataPurged, Outcome::Success,
                 audit::Details()
                     .text("data", "outboxRejected")
                     .number("rows", p.rows)
                     .number("byAge", p.by_age)
                     .number("firstSeq", p.first_seq)
                     .number("lastSeq", p.last_seq)
                     .number("maxRows", core::Outbox::kMaxRejectedRows)
                     .number("maxAgeDays", core::Outbox::kMaxRejectedAge.count() / 24));
  } catch (const std::exception& e) {
    log::error("station", "cannot apply the retention of refused messages: ", e.what());
  }
}

}  // namespace cg::services
