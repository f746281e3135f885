#include "services/charging.hpp"

#include "core/log.hpp"

namespace cg::services {
using audit::Event;
using audit::Outcome;
using policy::Operation;

ChargingService::ChargingService(Gate& gate, station::Station& station, station::AuthStore& auth,
                                 core::DeviceModel& dm, core::Outbox& outbox, station::ControlLoop* loop)
    : gate_(gate), station_(station), auth_(auth), dm_(dm), outbox_(outbox), loop_(loop) {}

Result<station::Station::StartResult> ChargingService::request_start(const policy::Principal& who,
                                                                     const station::IdToken& token,
                                                                     long long remote_start_id,
                                                                     std::optional<int> evse) {
  if (auto ok = gate_.admit(who, Operation::StartTransaction, "RequestStartTransaction"); !ok) return ok.error();
  return guarded("RequestStartTransaction", [&]() -> Result<station::Station::StartResult> {
    return station_.request_start(token, remote_start_id, evse);
  });
}

Result<bool> ChargingService::request_stop(const policy::Principal& who, const std::string& transaction_id) {
  if (auto ok = gate_.admit(who, Operation::StopTransaction, "RequestStopTransaction"); !ok) return ok.error();
  return guarded("RequestStopTransaction", [&]() -> Result<bool> { return station_.request_stop(transaction_id); });
}

Result<station::Station::UnlockStatus> ChargingService::unlock(const policy::Principal& who, int evse, int connector) {
  if (auto ok = gate_.admit(who, Operation::UnlockConnector, "UnlockConnector"); !ok) return ok.error();
  return guarded("UnlockConnector",
                 [&]() -> Result<station::Station::UnlockStatus> { return station_.unlock(evse, connector); });
}

Result<ChargingService::TriggerPlan> ChargingService::trigger(const policy::Principal& who, Trigger what,
                                                              std::optional<int> evse, std::optional<int> connector) {
  if (auto ok = gate_.admit(who, Operation::TriggerMessage, "TriggerMessage"); !ok) return ok.error();
  using S = TriggerPlan::Status;
  if (evse) {
    if (*evse < 1 || *evse > static_cast<int>(station_.evses().size())) return TriggerPlan{S::Rejected, {}};
    const int connectors = station_.evses()[static_cast<std::size_t>(*evse - 1)].connectors;
    if (connector && (*connector < 1 || *connector > connectors)) return TriggerPlan{S::Rejected, {}};
  }
  switch (what) {
    case Trigger::BootNotification:
    case Trigger::Heartbeat:
    case Trigger::SignChargingStationCertificate:
    case Trigger::FirmwareStatusNotification:
      return TriggerPlan{S::Accepted, {}};  // messages of the session and of the security block
    case Trigger::StatusNotification:
      if (evse && !connector) return TriggerPlan{S::Rejected, {}};
      return TriggerPlan{S::Accepted, [this, evse, connector] { station_.trigger_status(evse, connector); }};
    case Trigger::MeterValues:
      return TriggerPlan{S::Accepted, [this, evse] { station_.trigger_meter_values(evse); }};
    case Trigger::TransactionEvent: {
      bool any = false;
      for (const auto& e : station_.evses()) any = any || (e.tx && (!evse || e.id == *evse));
      if (!any) return TriggerPlan{S::Rejected, {}};
      return TriggerPlan{S::Accepted, [this, evse] { station_.trigger_transaction_event(evse); }};
    }
    case Trigger::Other: break;
  }
  return TriggerPlan{S::NotImplemented, {}};
}

Result<ChargingService::TransactionStatus> ChargingService::transaction_status(const policy::Principal& who,
                                                                               const std::optional<std::string>& tx) {
  if (auto ok = gate_.admit(who, Operation::ReadTransactions, "GetTransactionStatus"); !ok) return ok.error();
  return guarded("GetTransactionStatus", [&]() -> Result<TransactionStatus> {
    TransactionStatus s;
    if (tx) {
      s.ongoing = station_.evse_of_transaction(*tx).has_value();
      s.messages_in_queue = outbox_.size_for_tx(*tx) > 0;
    } else {
      s.messages_in_queue = outbox_.size() > 0;
    }
    return s;
  });
}

Result<void> ChargingService::vendor_data(const policy::Principal& who, std::string_view) {
  return gate_.admit(who, Operation::VendorExtension, "DataTransfer");
}

Result<bool> ChargingService::clear_cache(const policy::Principal& who) {
  if (auto ok = gate_.admit(who, Operation::ManageAuthorization, "ClearCache"); !ok) return ok.error();
  if (!dm_.boolean("AuthCacheCtrlr.Enabled")) return false;
  return guarded("ClearCache", [&]() -> Result<bool> {
    auth_.clear_cache();
    log::info("charging", "authorization cache cleared");
    gate_.record(who, Event::AuthorizationChanged, Outcome::Success,
                 audit::Details().text("change", "authorizationCacheCleared"));
    return true;
  });
}

Result<ChargingService::ListUpdate> ChargingService::update_list(const policy::Principal& who, int version, bool full,
                                                                 const std::vector<station::AuthStore::Entry>& entries) {
  if (auto ok = gate_.admit(who, Operation::ManageAuthorization, "SendLocalList"); !ok) return ok.error();
  if (!dm_.boolean("LocalAuthListCtrlr.Enabled")) return ListUpdate::Disabled;
  return guarded("SendLocalList", [&]() -> Result<ListUpdate> { return apply_list(who, version, full, entries); });
}

ChargingService::ListUpdate ChargingService::apply_list(const policy::Principal& who, int version, bool full,
                                                        const std::vector<station::AuthStore::Entry>& entries) {
  switch (auth_.update_list(version, full, entries)) {
    case station::AuthStore::UpdateStatus::Accepted:
      log::info("charging", "local authorization list now at version ", version, " (", auth_.list_entries(), " entries)");
      // LOG-1 "authorization changes": what changed, never the badge ids.
      gate_.record(who, Event::AuthorizationChanged, Outcome::Success,
                   audit::Details()
                       .text("change", "localListUpdated")
                       .text("updateType", full ? "Full" : "Differential")
                       .number("versionNumber", version)
                       .number("entriesSent", static_cast<long long>(entries.size()))
                       .number("entriesNow", static_cast<long long>(auth_.list_entries())));
      return ListUpdate::Accepted;
    case station::AuthStore::UpdateStatus::VersionMismatch: return ListUpdate::VersionMismatch;
    case station::AuthStore::UpdateStatus::Failed: break;
  }
  return ListUpdate::Failed;
}

Result<int> ChargingService::list_version(const policy::Principal& who) {
  if (auto ok = gate_.admit(who, Operation::ManageAuthorization, "GetLocalListVersion"); !ok) return ok.error();
  return guarded("GetLocalListVersion", [&]() -> Result<int> { return auth_.list_version(); });
}

Result<void> ChargingService::check_evse(int evse) const {
  if (evse < 1 || evse > static_cast<int>(station_.evses().size()))
    return fail(Errc::NotFound, "EVSE " + std::to_string(evse) + " does not exist");
  return {};
}

Result<void> ChargingService::present_token(const policy::Principal& driver, int evse, const station::IdToken& token) {
  if (auto ok = check_evse(evse); !ok) return ok;
  if (auto ok = gate_.admit(driver, Operation::Authenticate, "present a badge"); !ok) return ok;
  // A badge on an EVSE with a running transaction asks to stop it.
  if (station_.evses()[static_cast<std::size_t>(evse - 1)].tx) {
    if (auto ok = gate_.admit(driver, Operation::StopTransaction, "badge to stop"); !ok) return ok;
  }
  return guarded("present a badge", [&]() -> Result<void> {
    station_.present_token(evse, token);
    return {};
  });
}

Result<void> ChargingService::hardware(const policy::Principal& ev, const station::HwInput& input) {
  if (auto ok = check_evse(input.evse); !ok) return ok;
  if (auto ok = gate_.admit(ev, Operation::ControlCharging, "charging cable"); !ok) return ok;
  if (!loop_) return fail(Errc::Unavailable, "no charging control loop");
  if (!loop_->submit(input)) return fail(Errc::Conflict, "hardware input queue full, try again");
  return {};
}

}  // namespace cg::services
