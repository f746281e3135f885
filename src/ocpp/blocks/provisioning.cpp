#include "ocpp/blocks/provisioning.hpp"

#include <openssl/crypto.h>

#include <boost/json.hpp>

#include "core/clock.hpp"
#include "core/log.hpp"

namespace cg::ocpp {
namespace json = boost::json;
using core::SetStatus;

namespace {
core::VarRef ref_of(const json::object& item) {
  core::VarRef r;
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

std::string attribute_of(const json::object& item) {
  if (auto* a = item.if_contains("attributeType")) return std::string(a->as_string());
  return "Actual";
}

json::object component_json(const core::Variable& v) {
  json::object c{{"name", v.component}};
  if (!v.component_instance.empty()) c["instance"] = v.component_instance;
  if (v.evse) {
    json::object e{{"id", v.evse}};
    if (v.connector) e["connectorId"] = v.connector;
    c["evse"] = std::move(e);
  }
  return c;
}

json::object variable_json(const core::Variable& v) {
  json::object o{{"name", v.name}};
  if (!v.instance.empty()) o["instance"] = v.instance;
  return o;
}
}  // namespace

ProvisioningBlock::ProvisioningBlock(SessionPort& session, Dispatcher& d, services::SettingsService& settings,
                                     services::NetworkService& network, std::function<void()> password_changed)
    : session_(session), settings_(settings), network_(network), password_changed_(std::move(password_changed)) {
  d.add("GetVariables", [this](const json::object& r) { return on_get_variables(r); });
  d.add("SetVariables", [this](const json::object& r) { return on_set_variables(r); });
  d.add("GetBaseReport", [this](const json::object& r) { return on_get_base_report(r); });
  d.add("SetNetworkProfile", [this](const json::object& r) { return on_set_network_profile(r); });
}

Reply ProvisioningBlock::on_get_variables(const json::object& req) {
  auto& dm = settings_.device_model();
  const auto& items = req.at("getVariableData").as_array();
  if (static_cast<long long>(items.size()) > dm.integer("DeviceDataCtrlr.ItemsPerMessage[GetVariables]", 32))
    return error_reply(RpcError::OccurrenceConstraintViolation, "more items than ItemsPerMessage");
  std::vector<services::SettingsService::GetItem> asked;
  for (const auto& it : items) asked.push_back({ref_of(it.as_object()), attribute_of(it.as_object())});
  const auto got = settings_.get(session_.csms(), asked);
  if (!got) return refusal(got.error());
  const auto max = static_cast<std::size_t>(dm.integer("DeviceDataCtrlr.ReportingValueSize", 2500));
  json::array out;
  for (std::size_t i = 0; i < items.size(); ++i) {
    const auto& item = items[i].as_object();
    const auto& res = (*got)[i];
    json::object o{{"attributeStatus", core::to_string(res.status)},
                   {"component", item.at("component")},
                   {"variable", item.at("variable")}};
    if (item.contains("attributeType")) o["attributeType"] = asked[i].attribute;
    if (res.status == core::GetStatus::Accepted) o["attributeValue"] = res.value.substr(0, max);
    out.push_back(std::move(o));
  }
  return result(json::object{{"getVariableResult", std::move(out)}});
}

Reply ProvisioningBlock::on_set_variables(const json::object& req) {
  auto& dm = settings_.device_model();
  const auto& items = req.at("setVariableData").as_array();
  if (static_cast<long long>(items.size()) > dm.integer("DeviceDataCtrlr.ItemsPerMessage[SetVariables]", 32))
    return error_reply(RpcError::OccurrenceConstraintViolation, "more items than ItemsPerMessage");
  std::vector<services::SettingsService::SetItem> asked;
  for (const auto& it : items) {
    const auto& item = it.as_object();
    const auto& v = item.at("attributeValue").as_string();
    asked.push_back({ref_of(item), attribute_of(item), std::string_view(v.data(), v.size())});
  }
  const auto res = settings_.set(session_.csms(), asked);
  // The request stays in memory until the handler returns: wipe every value
  // now (one may be the new BasicAuthPassword).
  for (const auto& it : items) {
    auto& v = const_cast<json::string&>(it.as_object().at("attributeValue").as_string());
    OPENSSL_cleanse(v.data(), v.size());
  }
  if (!res) return refusal(res.error());
  json::array out;
  for (std::size_t i = 0; i < items.size(); ++i) {
    const auto& item = items[i].as_object();
    const auto& r = res->items[i];
    json::object o{{"attributeStatus", core::to_string(r.status)},
                   {"component", item.at("component")},
                   {"variable", item.at("variable")}};
    if (item.contains("attributeType")) o["attributeType"] = asked[i].attribute;
    if (!r.reason.empty()) {
      json::object si{{"reasonCode", r.reason}};
      if (!r.info.empty()) si["additionalInfo"] = r.info;
      o["attributeStatusInfo"] = std::move(si);
    }
    out.push_back(std::move(o));
  }
  Reply rep = result(json::object{{"setVariableResult", std::move(out)}});
  if (res->password_changed && password_changed_) password_changed_();
  const bool heartbeat = res->heartbeat_changed;
  rep.after = [this, heartbeat] {
    if (heartbeat) session_.heartbeat_interval_changed();
  };
  // A01: reconnect with the new password once the answer is out. At profile 3
  // no password is sent: the next profile-2 connection uses (and confirms) it.
  if (res->password_changed && session_.security_profile() != 3)
    rep.after_written = [this] { session_.reconnect("the new CSMS password (A01)"); };
  return rep;
}

Reply ProvisioningBlock::on_get_base_report(const json::object& req) {
  const long long request_id = req.at("requestId").to_number<long long>();
  const std::string base(req.at("reportBase").as_string());
  auto vars = settings_.report(session_.csms(), base);
  if (!vars) return refusal(vars.error());
  Reply rep = status_reply("Accepted");
  rep.after = [this, request_id, vars = std::move(*vars)] { send_report(request_id, vars); };
  return rep;
}

void ProvisioningBlock::send_report(long long request_id, const std::vector<const core::Variable*>& vars) {
  auto& dm = settings_.device_model();
  const std::size_t per_msg =
      static_cast<std::size_t>(std::max(1LL, dm.integer("DeviceDataCtrlr.ItemsPerMessage[GetReport]", 32)));
  const std::string generated = clock::format_rfc3339(clock::now_utc(), true);
  std::size_t seq = 0;
  for (std::size_t i = 0; i < vars.size() || (i == 0 && vars.empty()); i += per_msg) {
    json::array data;
    for (std::size_t j = i; j < std::min(vars.size(), i + per_msg); ++j) {
      const core::Variable& v = *vars[j];
      json::object attr{{"type", "Actual"},
                        {"mutability", core::to_string(v.mutability)},
                        {"persistent", v.persistent},
                        {"constant", v.constant}};
      // WriteOnly values (passwords) are never reported.
      if (v.mutability != core::Mutability::WriteOnly) attr["value"] = dm.current_value(v).substr(0, 2500);
      json::object chars{{"dataType", core::to_string(v.type)}, {"supportsMonitoring", false}};
      if (!v.unit.empty()) chars["unit"] = v.unit;
      if (v.type == core::DataType::Integer || v.type == core::DataType::Decimal) {
        if (v.min) chars["minLimit"] = *v.min;
        if (v.max) chars["maxLimit"] = *v.max;
      } else if (v.type == core::DataType::String && v.max) {
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
    session_.call("NotifyReport", std::move(p));
    if (vars.empty()) break;
  }
}

// B09: a new network connection profile in a slot (the network service checks, stores, audits).
Reply ProvisioningBlock::on_set_network_profile(const json::object& req) {
  const auto r = network_.set_profile(session_.csms(), req.at("configurationSlot").to_number<long long>(),
                                      req.at("connectionData").as_object());
  if (!r) return refusal(r.error());
  using S = services::NetworkService::SetProfile::Status;
  switch (r->status) {
    case S::Accepted: return status_reply("Accepted");
    case S::Failed: return status_reply("Failed", r->reason_code, r->info);
    case S::Rejected: break;
  }
  return rejected(r->reason_code, r->info);
}

}  // namespace cg::ocpp
