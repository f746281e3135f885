// C/D/E/F/G/P: authorization, local list, transactions, remote control,
// availability, trigger, data transfer.
#include <boost/json.hpp>

#include "core/log.hpp"
#include "ocpp/charge_point.hpp"

namespace cg::ocpp {
namespace json = boost::json;

namespace {
ChargePoint::Reply status_only(std::string_view status) { return {json::object{{"status", status}}, {}, {}, {}}; }

station::IdToken token_of(const json::object& o) {
  return station::IdToken{std::string(o.at("idToken").as_string()), std::string(o.at("type").as_string())};
}

std::optional<int> opt_int(const json::object& o, std::string_view key) {
  if (auto* v = o.if_contains(key)) return static_cast<int>(v->to_number<long long>());
  return std::nullopt;
}
}  // namespace

ChargePoint::Reply ChargePoint::on_request_start(const json::object& req) {
  const auto r = d_.station.request_start(token_of(req.at("idToken").as_object()),
                                          req.at("remoteStartId").to_number<long long>(), opt_int(req, "evseId"));
  json::object p{{"status", r.accepted ? "Accepted" : "Rejected"}};
  if (!r.transaction_id.empty()) p["transactionId"] = r.transaction_id;
  if (!r.accepted && !r.reason.empty()) p["statusInfo"] = json::object{{"reasonCode", r.reason}};
  return {std::move(p), {}, {}, {}};
}

ChargePoint::Reply ChargePoint::on_request_stop(const json::object& req) {
  return status_only(d_.station.request_stop(std::string(req.at("transactionId").as_string())) ? "Accepted" : "Rejected");
}

ChargePoint::Reply ChargePoint::on_change_availability(const json::object& req) {
  const bool operative = req.at("operationalStatus").as_string() == "Operative";
  std::optional<int> evse, connector;
  if (auto* e = req.if_contains("evse")) {
    evse = static_cast<int>(e->as_object().at("id").to_number<long long>());
    connector = opt_int(e->as_object(), "connectorId");
  }
  switch (d_.station.change_availability(evse, connector, operative)) {
    case station::Station::AvailStatus::Accepted: return status_only("Accepted");
    case station::Station::AvailStatus::Scheduled: return status_only("Scheduled");
    case station::Station::AvailStatus::Rejected: break;
  }
  return status_only("Rejected");
}

ChargePoint::Reply ChargePoint::on_unlock_connector(const json::object& req) {
  switch (d_.station.unlock(static_cast<int>(req.at("evseId").to_number<long long>()),
                            static_cast<int>(req.at("connectorId").to_number<long long>()))) {
    case station::Station::UnlockStatus::Unlocked: return status_only("Unlocked");
    case station::Station::UnlockStatus::UnlockFailed: return status_only("UnlockFailed");
    case station::Station::UnlockStatus::OngoingAuthorizedTransaction: return status_only("OngoingAuthorizedTransaction");
    case station::Station::UnlockStatus::UnknownConnector: break;
  }
  return status_only("UnknownConnector");
}

ChargePoint::Reply ChargePoint::on_trigger_message(const json::object& req) {
  const std::string what(req.at("requestedMessage").as_string());
  std::optional<int> evse, connector;
  if (auto* e = req.if_contains("evse")) {
    evse = static_cast<int>(e->as_object().at("id").to_number<long long>());
    connector = opt_int(e->as_object(), "connectorId");
    if (*evse < 1 || *evse > static_cast<int>(d_.station.evses().size())) return status_only("Rejected");
    const int connectors = d_.station.evses()[static_cast<std::size_t>(*evse - 1)].connectors;
    if (connector && (*connector < 1 || *connector > connectors)) return status_only("Rejected");
  }
  Reply rep = status_only("Accepted");
  if (what == "BootNotification") {
    // F06.FR.17: not after the boot was accepted.
    if (boot_status_ == BootStatus::Accepted) return status_only("Rejected");
    rep.after = [this] { send_boot(); };
  } else if (what == "Heartbeat") {
    rep.after = [this] { call("Heartbeat", json::object{}); };
  } else if (what == "StatusNotification") {
    if (evse && !connector) return status_only("Rejected");
    rep.after = [this, evse, connector] { d_.station.trigger_status(evse, connector); };
  } else if (what == "MeterValues") {
    rep.after = [this, evse] { d_.station.trigger_meter_values(evse); };
  } else if (what == "TransactionEvent") {
    bool any = false;
    for (const auto& e : d_.station.evses()) any = any || (e.tx && (!evse || e.id == *evse));
    if (!any) return status_only("Rejected");
    rep.after = [this, evse] { d_.station.trigger_transaction_event(evse); };
  } else if (what == "SignChargingStationCertificate") {
    // A02: a new key and CSR; the CSMS answers with CertificateSigned.
    if (!d_.identity) return status_only("Rejected");
    rep.after = [this] { start_renewal("TriggerMessage"); };
  } else {
    return status_only("NotImplemented");
  }
  return rep;
}

ChargePoint::Reply ChargePoint::on_clear_cache(const json::object&) {
  if (!d_.dm.boolean("AuthCacheCtrlr.Enabled")) return status_only("Rejected");
  d_.auth.clear_cache();
  log::info("ocpp", "authorization cache cleared");
  audit(audit::Event::AuthorizationChanged, audit::Outcome::Success,
        audit::Details().text("change", "authorizationCacheCleared"));
  return status_only("Accepted");
}

ChargePoint::Reply ChargePoint::on_send_local_list(const json::object& req) {
  if (!d_.dm.boolean("LocalAuthListCtrlr.Enabled")) return status_only("Failed");
  const int version = static_cast<int>(req.at("versionNumber").to_number<long long>());
  const bool full = req.at("updateType").as_string() == "Full";
  std::vector<station::AuthStore::Entry> entries;
  if (auto* list = req.if_contains("localAuthorizationList")) {
    const auto max_items = d_.dm.integer("LocalAuthListCtrlr.ItemsPerMessage", 100);
    if (static_cast<long long>(list->as_array().size()) > max_items)
      return Reply{std::nullopt, RpcError::OccurrenceConstraintViolation, "more entries than ItemsPerMessage", {}};
    for (const auto& it : list->as_array()) {
      const auto& o = it.as_object();
      station::AuthStore::Entry e{token_of(o.at("idToken").as_object()), std::nullopt};
      if (auto* info = o.if_contains("idTokenInfo")) e.info = info->as_object();
      else if (full) continue;  // a full list entry without info carries nothing to store
      entries.push_back(std::move(e));
    }
  }
  switch (d_.auth.update_list(version, full, entries)) {
    case station::AuthStore::UpdateStatus::Accepted:
      log::info("ocpp", "local authorization list now at version ", version, " (", d_.auth.list_entries(), " entries)");
      // LOG-1 "authorization changes": what changed, never the badge ids.
      audit(audit::Event::AuthorizationChanged, audit::Outcome::Success,
            audit::Details()
                .text("change", "localListUpdated")
                .text("updateType", full ? "Full" : "Differential")
                .number("versionNumber", version)
                .number("entriesSent", static_cast<long long>(entries.size()))
                .number("entriesNow", static_cast<long long>(d_.auth.list_entries())));
      return status_only("Accepted");
    case station::AuthStore::UpdateStatus::VersionMismatch: return status_only("VersionMismatch");
    case station::AuthStore::UpdateStatus::Failed: break;
  }
  return status_only("Failed");
}

ChargePoint::Reply ChargePoint::on_get_local_list_version(const json::object&) {
  return {json::object{{"versionNumber", d_.auth.list_version()}}, {}, {}, {}};
}

ChargePoint::Reply ChargePoint::on_get_transaction_status(const json::object& req) {
  json::object p;
  if (auto* id = req.if_contains("transactionId")) {
    const std::string tx(id->as_string());
    p["ongoingIndicator"] = d_.station.evse_of_transaction(tx).has_value();
    p["messagesInQueue"] = d_.outbox.size_for_tx(tx) > 0;
  } else {
    p["messagesInQueue"] = d_.outbox.size() > 0;
  }
  return {std::move(p), {}, {}, {}};
}

ChargePoint::Reply ChargePoint::on_data_transfer(const json::object&) {
  // No vendor extensions are implemented (P01.FR.06).
  return status_only("UnknownVendorId");
}

}  // namespace cg::ocpp
