#include "services/availability.hpp"

#include "core/log.hpp"

namespace cg::services {
using policy::Operation;

AvailabilityService::AvailabilityService(Gate& gate, station::Station& station, storage::Db& db)
    : gate_(gate), station_(station), db_(db) {}

Result<station::Station::AvailStatus> AvailabilityService::change_availability(const policy::Principal& who,
                                                                               std::optional<int> evse,
                                                                               std::optional<int> connector,
                                                                               bool operative) {
  if (auto ok = gate_.admit(who, Operation::ChangeAvailability, "ChangeAvailability"); !ok) return ok.error();
  return guarded("ChangeAvailability", [&]() -> Result<station::Station::AvailStatus> {
    return station_.change_availability(evse, connector, operative);
  });
}

Result<AvailabilityService::ResetStatus> AvailabilityService::reset(const policy::Principal& who, ResetType type,
                                                                    bool for_one_evse) {
  if (auto ok = gate_.admit(who, Operation::Reset, "Reset"); !ok) return ok.error();
  if (for_one_evse) return ResetStatus::Rejected;  // only the whole station resets
  if (type == ResetType::OnIdle && !station_.idle()) {
    pending_ = audit::Source::of(who);
    station_.refuse_new_sessions(true);  // the reset waits for idle: no new charge in between
    return ResetStatus::Scheduled;
  }
  return ResetStatus::Accepted;
}

std::optional<audit::Source> AvailabilityService::due_reset() {
  if (!pending_ || !station_.idle()) return std::nullopt;
  return std::exchange(pending_, std::nullopt);
}

bool AvailabilityService::transactions_running() const {
  for (const auto& e : station_.evses())
    if (e.tx) return true;
  return false;
}

void AvailabilityService::hold_for_install(bool on) { station_.set_install_hold(on); }

void AvailabilityService::perform_reset(const audit::Source& who, const std::string& boot_reason) {
  log::warn("station", "resetting the station (", boot_reason, ")");
  gate_.record(who, audit::Event::ResetOrReboot, audit::Outcome::Success, audit::Details().text("reason", boot_reason));
  // The restart follows whatever happens here: a failure is logged, not thrown.
  (void)guarded("Reset", [&]() -> Result<void> {
    station_.end_all_transactions("ImmediateReset", "ResetCommand");
    db_.set_meta("boot_reason", boot_reason);
    return {};
  });
}

}  // namespace cg::services
