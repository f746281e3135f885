#include "ocpp/blocks/charging.hpp"

#include <boost/json.hpp>

namespace cg::ocpp {
namespace json = boost::json;
using services::ChargingService;

namespace {
station::IdToken token_of(const json::object& o) {
  return station::IdToken{std::string(o.at("idToken").as_string()), std::string(o.at("type").as_string())};
}

std::optional<int> opt_int(const json::object& o, std::string_view key) {
  if (auto* v = o.if_contains(key)) return static_cast<int>(v->to_number<long long>());
  return std::nullopt;
}

ChargingService::Trigger trigger_of(std::string_view what) {
  using T = ChargingService::Trigger;
  if (what == "BootNotification") return T::BootNotification;
  if (what == "Heartbeat") return T::Heartbeat;
  if (what == "StatusNotification") return T::StatusNotification;
  if (what == "MeterValues") return T::MeterValues;
  if (what == "TransactionEvent") return T::TransactionEvent;
  if (what == "SignChargingStationCertificate") return T::SignChargingStationCertificate;
  if (what == "FirmwareStatusNotification") return T::FirmwareStatusNotification;
  return T::Other;
}
}  // namespace

ChargingBlock::ChargingBlock(SessionPort& session, Dispatcher& d, services::ChargingService& charging,
                             core::DeviceModel& dm, std::function<void(const policy::Principal&)> renew,
                             std::function<void()> firmware_status)
    : session_(session), charging_(charging), dm_(dm), renew_(std::move(renew)),
      firmware_status_(std::move(firmware_status)) {
  d.add("RequestStartTransaction", [this](const json::object& r) { return on_request_start(r); });
  d.add("RequestStopTransaction", [this](const json::object& r) { return on_request_stop(r); });
  d.add("UnlockConnector", [this](const json::object& r) { return on_unlock_connector(r); });
  d.add("TriggerMessage", [this](const json::object& r) { return on_trigger_message(r); });
  d.add("ClearCache", [this](const json::object& r) { return on_clear_cache(r); });
  d.add("SendLocalList", [this](const json::object& r) { return on_send_local_list(r); });
  d.add("GetLocalListVersion", [this](const json::object& r) { return on_get_local_list_version(r); });
  d.add("GetTransactionStatus", [this](const json::object& r) { return on_get_transaction_status(r); });
  d.add("DataTransfer", [this](const json::object& r) { return on_data_transfer(r); });
}

Reply ChargingBlock::on_request_start(const json::object& req) {
  const auto r = charging_.request_start(session_.csms(), token_of(req.at("idToken").as_object()),
                                         req.at("remoteStartId").to_number<long long>(), opt_int(req, "evseId"));
  if (!r) return refusal(r.error());
  json::object p{{"status", r->accepted ? "Accepted" : "Rejected"}};
  if (!r->transaction_id.empty()) p["transactionId"] = r->transaction_id;
  if (!r->accepted && !r->reason.empty()) p["statusInfo"] = json::object{{"reasonCode", r->reason}};
  return result(std::move(p));
}

Reply ChargingBlock::on_request_stop(const json::object& req) {
  const auto r = charging_.request_stop(session_.csms(), std::string(req.at("transactionId").as_string()));
  if (!r) return refusal(r.error());
  return status_reply(*r ? "Accepted" : "Rejected");
}

Reply ChargingBlock::on_unlock_connector(const json::object& req) {
  const auto r = charging_.unlock(session_.csms(), static_cast<int>(req.at("evseId").to_number<long long>()),
                                  static_cast<int>(req.at("connectorId").to_number<long long>()));
  if (!r) return refusal(r.error());
  using U = station::Station::UnlockStatus;
  switch (*r) {
    case U::Unlocked: return status_reply("Unlocked");
    case U::UnlockFailed: return status_reply("UnlockFailed");
    case U::OngoingAuthorizedTransaction: return status_reply("OngoingAuthorizedTransaction");
    case U::UnknownConnector: break;
  }
  return status_reply("UnknownConnector");
}

Reply ChargingBlock::on_trigger_message(const json::object& req) {
  const auto what = trigger_of(req.at("requestedMessage").as_string());
  std::optional<int> evse, connector;
  if (auto* e = req.if_contains("evse")) {
    evse = static_cast<int>(e->as_object().at("id").to_number<long long>());
    connector = opt_int(e->as_object(), "connectorId");
  }
  const auto plan = charging_.trigger(session_.csms(), what, evse, connector);
  if (!plan) return refusal(plan.error());
  using S = ChargingService::TriggerPlan::Status;
  if (plan->status == S::Rejected) return status_reply("Rejected");
  if (plan->status == S::NotImplemented) return status_reply("NotImplemented");
  Reply rep = status_reply("Accepted");
  using T = ChargingService::Trigger;
  switch (what) {
    case T::BootNotification:
      // F06.FR.17: not after the boot was accepted.
      if (session_.boot_state() == BootState::Accepted) return status_reply("Rejected");
      rep.after = [this] { session_.send_boot(); };
      break;
    case T::Heartbeat:
      rep.after = [this] { session_.heartbeat_now(); };
      break;
    case T::SignChargingStationCertificate: {
      // A02: a new key and CSR; the CSMS answers with CertificateSigned.
      if (!renew_) return status_reply("Rejected");
      rep.after = [this, who = session_.csms()] { renew_(who); };
      break;
    }
    case T::FirmwareStatusNotification:
      if (!firmware_status_) return status_reply("NotImplemented");
      rep.after = firmware_status_;
      break;
    default:
      rep.after = plan->run;
  }
  return rep;
}

Reply ChargingBlock::on_clear_cache(const json::object&) {
  const auto r = charging_.clear_cache(session_.csms());
  if (!r) return refusal(r.error());
  return status_reply(*r ? "Accepted" : "Rejected");
}

Reply ChargingBlock::on_send_local_list(const json::object& req) {
  const int version = static_cast<int>(req.at("versionNumber").to_number<long long>());
  const bool full = req.at("updateType").as_string() == "Full";
  std::vector<station::AuthStore::Entry> entries;
  if (auto* list = req.if_contains("localAuthorizationList")) {
    const auto max_items = dm_.integer("LocalAuthListCtrlr.ItemsPerMessage", 100);
    if (static_cast<long long>(list->as_array().size()) > max_items)
      return error_reply(RpcError::OccurrenceConstraintViolation, "more entries than ItemsPerMessage");
    for (const auto& it : list->as_array()) {
      const auto& o = it.as_object();
      station::AuthStore::Entry e{token_of(o.at("idToken").as_object()), std::nullopt};
      if (auto* info = o.if_contains("idTokenInfo")) e.info = info->as_object();
      else if (full) continue;  // a full list entry without info carries nothing to store
      entries.push_back(std::move(e));
    }
  }
  const auto r = charging_.update_list(session_.csms(), version, full, entries);
  if (!r) return refusal(r.error());
  switch (*r) {
    case ChargingService::ListUpdate::Accepted: return status_reply("Accepted");
    case ChargingService::ListUpdate::VersionMismatch: return status_reply("VersionMismatch");
    case ChargingService::ListUpdate::Disabled:
    case ChargingService::ListUpdate::Failed: break;
  }
  return status_reply("Failed");
}

Reply ChargingBlock::on_get_local_list_version(const json::object&) {
  const auto r = charging_.list_version(session_.csms());
  if (!r) return refusal(r.error());
  return result(json::object{{"versionNumber", *r}});
}

Reply ChargingBlock::on_get_transaction_status(const json::object& req) {
  std::optional<std::string> tx;
  if (auto* id = req.if_contains("transactionId")) tx = std::string(id->as_string());
  const auto r = charging_.transaction_status(session_.csms(), tx);
  if (!r) return refusal(r.error());
  json::object p;
  if (r->ongoing) p["ongoingIndicator"] = *r->ongoing;
  p["messagesInQueue"] = r->messages_in_queue;
  return result(std::move(p));
}

Reply ChargingBlock::on_data_transfer(const json::object& req) {
  const auto r = charging_.vendor_data(session_.csms(), req.at("vendorId").as_string());
  if (!r) return refusal(r.error());
  // No vendor extensions are implemented (P01.FR.06).
  return status_reply("UnknownVendorId");
}

}  // namespace cg::ocpp
