// B: provisioning — GetVariables, SetVariables, GetBaseReport/NotifyReport, Reset.
#include <openssl/crypto.h>

#include <boost/json.hpp>

#include "core/clock.hpp"
#include "core/log.hpp"
#include "ocpp/charge_point.hpp"

namespace cg::ocpp {
namespace json = boost::json;

namespace {
VarRef ref_of(const json::object& item) {
  VarRef r;
  const auto& c = item.at("component").as_object();
  r.component = std::string(c.at("name").as_string());
  if (auto* i = c.if_contains("instance")) r.component_instance = std::string(i->as_string());
  if (auto* e = c.if_contains("evse")) {
    r.evse = static_cast<int>(e->as_object().at("id").to_number<long long>());
    if (auto* cn = e->as_object().if_contains("connectorId")) r.connector = static_cast<int>(cn->to_number<long long>());
  }
  const auto& v = item.at("variable").as_object();
  r.name = std::string(v.at("name").as_string());
  if (auto* i = v.if_contains("instance")) r.instance = std::string(i->as_string());
  return r;
}

json::object component_json(const Variable& v) {
  json::object c{{"name", v.component}};
  if (!v.component_instance.empty()) c["instance"] = v.component_instance;
  if (v.evse) {
    json::object e{{"id", v.evse}};
    if (v.connector) e["connectorId"] = v.connector;
    c["evse"] = std::move(e);
  }
  return c;
}

json::object variable_json(const Variable& v) {
  json::object o{{"name", v.name}};
  if (!v.instance.empty()) o["instance"] = v.instance;
  return o;
}
}  // namespace

ChargePoint::Reply ChargePoint::on_get_variables(const json::object& req) {
  const auto& items = req.at("getVariableData").as_array();
  if (static_cast<long long>(items.size()) > d_.dm.integer("DeviceDataCtrlr.ItemsPerMessage[GetVariables]", 32))
    return Reply{std::nullopt, RpcError::OccurrenceConstraintViolation, "more items than ItemsPerMessage", {}};
  json::array out;
  for (const auto& it : items) {
    const auto& item = it.as_object();
    const VarRef r = ref_of(item);
    std::string attr = "Actual";
    if (auto* a = item.if_contains("attributeType")) attr = std::string(a->as_string());
    const auto res = d_.dm.get(r, attr);
    json::object o{{"attributeStatus", to_string(res.status)},
                   {"component", item.at("component")},
                   {"variable", item.at("variable")}};
    if (item.contains("attributeType")) o["attributeType"] = attr;
    if (res.status == GetStatus::Accepted) {
      const auto max = static_cast<std::size_t>(d_.dm.integer("DeviceDataCtrlr.ReportingValueSize", 2500));
      o["attributeValue"] = res.value.substr(0, max);
    }
    out.push_back(std::move(o));
  }
  return Reply{json::object{{"getVariableResult", std::move(out)}}, {}, {}, {}};
}

ChargePoint::Reply ChargePoint::on_set_variables(const json::object& req) {
  const auto& items = req.at("setVariableData").as_array();
  if (static_cast<long long>(items.size()) > d_.dm.integer("DeviceDataCtrlr.ItemsPerMessage[SetVariables]", 32))
    return Reply{std::nullopt, RpcError::OccurrenceConstraintViolation, "more items than ItemsPerMessage", {}};
  json::array out;
  bool heartbeat_changed = false;
  bool password_changed = false;
  for (const auto& it : items) {
    const auto& item = it.as_object();
    const VarRef r = ref_of(item);
    std::string attr = "Actual";
    if (auto* a = item.if_contains("attributeType")) attr = std::string(a->as_string());
    // Security settings are a separate operation of the one policy (AUTHZ-1).
    const Variable* target = d_.dm.find(r);
    const policy::Principal csms = csms_principal();
    const bool permitted = !target || !target->security_relevant ||
                           policy::authorize(csms, policy::Operation::ManageSecuritySettings) == policy::Decision::Allow;
    // A01: the Basic-auth password is sealed in the key store, never kept by the device model.
    const bool is_password = target && target->component == "SecurityCtrlr" && target->name == "BasicAuthPassword" &&
                             attr == "Actual";
    // B10: the slot order is checked against the stored profiles and the downgrade rule.
    const bool is_priority = target && target->component == "OCPPCommCtrlr" &&
                             target->name == "NetworkConfigurationPriority" && attr == "Actual";
    std::string info;  // why a password or priority was refused; never the password
    DeviceModel::SetResult res{SetStatus::Rejected, "NoPermission"};
    if (permitted && is_password) res = set_basic_auth_password(item.at("attributeValue").as_string(), info);
    else if (permitted && is_priority) res = set_network_priority(item.at("attributeValue").as_string(), info);
    else if (permitted) res = d_.dm.set(r, attr, item.at("attributeValue").as_string());
    json::object o{{"attributeStatus", to_string(res.status)},
                   {"component", item.at("component")},
                   {"variable", item.at("variable")}};
    if (item.contains("attributeType")) o["attributeType"] = attr;
    if (!res.reason.empty()) {
      json::object si{{"reasonCode", res.reason}};
      if (!info.empty()) si["additionalInfo"] = info;
      o["attributeStatusInfo"] = std::move(si);
    }
    // The value itself is never logged: it may be a secret (LOG-5).
    log::info("ocpp", "SetVariables ", r.component, ".", r.name, ": ", to_string(res.status));
    if (const Variable* var = d_.dm.find(r); var && res.status != SetStatus::UnknownVariable) {
      audit::Details ad;
      ad.text("variable", var->key()).text("status", to_string(res.status));
      if (is_password) {
        if (res.status == SetStatus::Accepted) ad.secret_changed("BasicAuthPassword");
        else ad.text("reason", info.empty() ? res.reason : info);
      } else if (is_priority) {
        ad.text("value", std::string(item.at("attributeValue").as_string()).substr(0, 64));
        if (!info.empty()) ad.text("reason", info);
      } else if (var->security_relevant || var->mutability == Mutability::WriteOnly) {
        ad.secret_changed("value");
      } else {
        ad.text("value", std::string(item.at("attributeValue").as_string()));
      }
      const bool ok = res.status == SetStatus::Accepted || res.status == SetStatus::RebootRequired;
      audit(var->security_relevant ? audit::Event::ReconfigurationOfSecurityParameters : audit::Event::ConfigurationChanged,
            ok ? audit::Outcome::Success : audit::Outcome::Failure, ad);
    }
    if (res.status == SetStatus::Accepted && r.component == "OCPPCommCtrlr" && r.name == "HeartbeatInterval")
      heartbeat_changed = true;
    if (is_password) {
      if (res.status == SetStatus::Accepted) password_changed = true;
      // The request stays in memory until the handler returns: wipe the value now.
      auto& v = const_cast<json::string&>(item.at("attributeValue").as_string());
      OPENSSL_cleanse(v.data(), v.size());
    }
    out.push_back(std::move(o));
  }
  Reply rep{json::object{{"setVariableResult", std::move(out)}}, {}, {}, {}};
  rep.after = [this, heartbeat_changed, password_changed] {
    if (heartbeat_changed) schedule_heartbeat();
    // At profile 3 no password is sent: it is used (and confirmed) by the next profile-2 connection.
    if (password_changed && security_profile() != 3) reconnect_after_reply("the new CSMS password (A01)");
  };
  return rep;
}

DeviceModel::SetResult ChargePoint::set_basic_auth_password(std::string_view value, std::string& info) {
  if (!d_.password) return {SetStatus::Rejected, "UnsupportedRequest"};
  if (auto why = security::check_basic_auth_password(value)) {
    info = *why == "InvalidLength" ? "length must be 16-40 characters"
                                   : "allowed characters: a-z A-Z 0-9 * - _ = : + | @ .";
    return {SetStatus::Rejected, "InvalidValue"};
  }
  // Sealed and stored durably (fsync + rename) before we answer Accepted.
  try {
    d_.password->store(value);
  } catch (const std::exception& e) {
    log::error("ocpp", "cannot store the new CSMS password: ", e.what());
    info = "the password could not be stored";
    return {SetStatus::Rejected, "InternalError"};
  }
  rotation_pending_ = d_.password->has_previous();
  using_previous_ = false;
  fallback_tried_ = false;
  log::info("ocpp", "new CSMS password sealed; reconnecting with it after the answer");
  return {SetStatus::Accepted, {}};
}

Credentials ChargePoint::credentials() const {
  Credentials c;
  c.password = d_.password && d_.password->has_current();
  c.station_certificate = d_.identity && d_.identity->has_key(security::kStationKeyLabel) &&
                          d_.identity->has_certificate(security::kStationKeyLabel);
  c.csms_root = d_.certs && d_.certs->count(security::CertificateType::CSMSRootCertificate) > 0;
  return c;
}

// B09: a new network connection profile in a slot. It is used after the CSMS
// puts the slot into NetworkConfigurationPriority and the station reconnects
// (Reset, or a lost connection). Every attempt is audited.
ChargePoint::Reply ChargePoint::on_set_network_profile(const json::object& req) {
  const long long raw_slot = req.at("configurationSlot").to_number<long long>();
  const int slot = raw_slot < 0 || raw_slot > 1000 ? -1 : static_cast<int>(raw_slot);
  NetworkProfile p;
  const auto refusal =
      profiles_.check(slot, req.at("connectionData").as_object(), credentials(), allow_downgrade(),
                      profiles_.current(), p);
  audit::Details d;
  d.text("change", "setNetworkProfile").number("slot", raw_slot);
  if (refusal) {
    log::warn("ocpp", "SetNetworkProfile slot ", raw_slot, " rejected: ", refusal->info);
    audit(audit::Event::ReconfigurationOfSecurityParameters, audit::Outcome::Failure,
          d.text("status", "Rejected").text("reason", refusal->reason).text("info", refusal->info));
    return rejected(refusal->reason, refusal->info);
  }
  d.number("securityProfile", p.security_profile).text("url", p.url);
  try {
    profiles_.store(p);
  } catch (const std::exception& e) {
    log::error("ocpp", "cannot store network profile slot ", slot, ": ", e.what());
    audit(audit::Event::ReconfigurationOfSecurityParameters, audit::Outcome::Failure,
          d.text("status", "Failed").text("reason", "cannot be stored"));
    return status_reply("Failed", "InternalError", "the profile could not be stored");
  }
  log::info("ocpp", "network profile slot ", slot, " stored: ", p.url, " (security profile ", p.security_profile,
            "); used once it is in NetworkConfigurationPriority");
  audit(audit::Event::ReconfigurationOfSecurityParameters, audit::Outcome::Success, d.text("status", "Accepted"));
  return status_reply("Accepted");
}

DeviceModel::SetResult ChargePoint::set_network_priority(std::string_view value, std::string& info) {
  std::vector<int> slots;
  if (auto refusal = profiles_.check_priority(value, allow_downgrade(), slots)) {
    info = refusal->info;
    return {SetStatus::Rejected, refusal->reason};
  }
  std::string normalized;
  for (int s : slots) normalized += (normalized.empty() ? "" : ",") + std::to_string(s);
  auto res = d_.dm.set({"OCPPCommCtrlr", "", 0, 0, "NetworkConfigurationPriority", ""}, "Actual", normalized);
  if (res.status == SetStatus::Accepted)
    log::info("ocpp", "NetworkConfigurationPriority is now ", normalized, "; used from the next connection");
  return res;
}

void ChargePoint::reconnect_after_reply(std::string_view why) {
  // Give the answer a moment to leave, then reconnect; the outbox (SQLite)
  // keeps every queued message across the reconnection.
  rotate_timer_.expires_after(std::chrono::milliseconds(300));
  rotate_timer_.async_wait([this, why = std::string(why)](boost::system::error_code ec) {
    if (ec || !running_) return;
    log::info("ocpp", "reconnecting with ", why);
    reconnect_attempt_ = 0;
    if (conn_.is_open()) {
      keep_slot_ = true;
      conn_.close();
    }
  });
}

ChargePoint::Reply ChargePoint::on_get_base_report(const json::object& req) {
  const long long request_id = req.at("requestId").to_number<long long>();
  const std::string base(req.at("reportBase").as_string());
  Reply rep{json::object{{"status", "Accepted"}}, {}, {}, {}};
  rep.after = [this, request_id, base] { send_report(request_id, base); };
  return rep;
}

void ChargePoint::send_report(long long request_id, std::string_view base) {
  // ConfigurationInventory: writable variables; SummaryInventory: availability
  // and identification; FullInventory: everything.
  std::vector<const Variable*> vars;
  for (const auto& v : d_.dm.all()) {
    if (base == "ConfigurationInventory" && v.mutability == Mutability::ReadOnly) continue;
    if (base == "SummaryInventory" && v.name != "AvailabilityState" && v.component != "ChargingStation") continue;
    vars.push_back(&v);
  }
  const std::size_t per_msg =
      static_cast<std::size_t>(std::max(1LL, d_.dm.integer("DeviceDataCtrlr.ItemsPerMessage[GetReport]", 32)));
  const std::string generated = clock::format_rfc3339(clock::now_utc(), true);
  std::size_t seq = 0;
  for (std::size_t i = 0; i < vars.size() || (i == 0 && vars.empty()); i += per_msg) {
    json::array data;
    for (std::size_t j = i; j < std::min(vars.size(), i + per_msg); ++j) {
      const Variable& v = *vars[j];
      json::object attr{{"type", "Actual"},
                        {"mutability", to_string(v.mutability)},
                        {"persistent", v.persistent},
                        {"constant", v.constant}};
      // WriteOnly values (passwords) are never reported.
      if (v.mutability != Mutability::WriteOnly) attr["value"] = d_.dm.current_value(v).substr(0, 2500);
      json::object chars{{"dataType", to_string(v.type)}, {"supportsMonitoring", false}};
      if (!v.unit.empty()) chars["unit"] = v.unit;
      if (v.type == DataType::Integer || v.type == DataType::Decimal) {
        if (v.min) chars["minLimit"] = *v.min;
        if (v.max) chars["maxLimit"] = *v.max;
      } else if (v.type == DataType::String && v.max) {
        chars["maxLimit"] = *v.max;
      }
      if (!v.values_list.empty()) chars["valuesList"] = v.values_list;
      data.push_back(json::object{{"component", component_json(v)},
                                  {"variable", variable_json(v)},
                                  {"variableAttribute", json::array{std::move(attr)}},
                                  {"variableCharacteristics", std::move(chars)}});
    }
    const bool more = i + per_msg < vars.size();
    json::object p{{"requestId", request_id}, {"generatedAt", generated}, {"seqNo", seq++}};
    if (!data.empty()) p["reportData"] = std::move(data);
    if (more) p["tbc"] = true;
    call("NotifyReport", std::move(p));
    if (vars.empty()) break;
  }
}

ChargePoint::Reply ChargePoint::on_reset(const json::object& req) {
  const std::string type(req.at("type").as_string());
  if (req.contains("evseId"))
    return Reply{json::object{{"status", "Rejected"}, {"statusInfo", json::object{{"reasonCode", "UnsupportedRequest"}}}},
                 {}, {}, {}};
  if (type == "OnIdle" && !d_.station.idle()) {
    pending_reset_ = "RemoteReset";
    d_.station.refuse_new_sessions(true);  // the reset waits for idle: no new charge in between
    return Reply{json::object{{"status", "Scheduled"}}, {}, {}, {}};
  }
  Reply rep{json::object{{"status", "Accepted"}}, {}, {}, {}};
  rep.after = [this] { do_reset("RemoteReset"); };
  return rep;
}

void ChargePoint::do_reset(const std::string& boot_reason) {
  log::warn("ocpp", "resetting the station (", boot_reason, ")");
  audit(audit::Event::ResetOrReboot, audit::Outcome::Success, audit::Details().text("reason", boot_reason));
  d_.station.end_all_transactions("ImmediateReset", "ResetCommand");
  d_.db.set_meta("boot_reason", boot_reason);
  // Give the queued frames a moment to leave, then restart the daemon.
  auto t = std::make_shared<boost::asio::steady_timer>(d_.io, std::chrono::milliseconds(300));
  t->async_wait([this, t](boost::system::error_code) {
    stop();
    if (d_.request_restart) d_.request_restart();
  });
}

}  // namespace cg::ocpp
