#include "services/settings.hpp"

#include "core/log.hpp"

namespace cg::services {
using audit::Event;
using audit::Outcome;
using core::SetStatus;
using policy::Operation;

SettingsService::SettingsService(Gate& gate, core::DeviceModel& dm, security::SealedPassword* password,
                                 NetworkService& network)
    : gate_(gate), dm_(dm), password_(password), network_(network) {}

Result<std::vector<core::DeviceModel::GetResult>> SettingsService::get(const policy::Principal& who,
                                                                        const std::vector<GetItem>& items) {
  if (auto ok = gate_.admit(who, Operation::ReadConfiguration, "GetVariables"); !ok) return ok.error();
  std::vector<core::DeviceModel::GetResult> out;
  out.reserve(items.size());
  for (const auto& i : items) out.push_back(dm_.get(i.ref, i.attribute));
  return out;
}

Result<std::vector<const core::Variable*>> SettingsService::report(const policy::Principal& who, std::string_view base) {
  if (auto ok = gate_.admit(who, Operation::ReadConfiguration, "GetBaseReport"); !ok) return ok.error();
  // ConfigurationInventory: writable variables; SummaryInventory: availability
  // and identification; FullInventory: everything.
  std::vector<const core::Variable*> vars;
  for (const auto& v : dm_.all()) {
    if (base == "ConfigurationInventory" && v.mutability == core::Mutability::ReadOnly) continue;
    if (base == "SummaryInventory" && v.name != "AvailabilityState" && v.component != "ChargingStation") continue;
    vars.push_back(&v);
  }
  return vars;
}

Result<SettingsService::SetResults> SettingsService::set(const policy::Principal& who,
                                                         const std::vector<SetItem>& items) {
  // Who may change neither configuration nor security settings is refused as a
  // whole (the CSMS gets a SecurityError); otherwise each variable asks for its
  // own operation (a local admin changes security settings only, an engineer
  // the rest: AUTH-2).
  if (!gate_.allows(who, Operation::WriteConfiguration) && !gate_.allows(who, Operation::ManageSecuritySettings)) {
    if (auto ok = gate_.admit(who, Operation::WriteConfiguration, "SetVariables"); !ok) return ok.error();
  }
  return guarded("SetVariables", [&]() -> Result<SetResults> {
    SetResults out;
    out.items.reserve(items.size());
    for (const auto& i : items) out.items.push_back(set_one(who, i, out));
    return out;
  });
}

SettingsService::SetOutcome SettingsService::set_one(const policy::Principal& who, const SetItem& item,
                                                     SetResults& out) {
  const core::Variable* target = dm_.find(item.ref);
  // Security settings are a separate operation of the one policy (AUTHZ-1).
  if (target && target->security_relevant) {
    if (!gate_.admit(who, Operation::ManageSecuritySettings, "SetVariables " + target->key()))
      return {SetStatus::Rejected, "NoPermission", "a security setting: administrators only"};
  } else if (!gate_.admit(who, Operation::WriteConfiguration, "SetVariables " + (target ? target->key() : std::string()))) {
    return {SetStatus::Rejected, "NoPermission", "configuration: engineers only"};
  }
  const bool actual = item.attribute == "Actual";
  // A01: the Basic-auth password is sealed in the key store, never kept by the device model.
  const bool is_password =
      target && target->component == "SecurityCtrlr" && target->name == "BasicAuthPassword" && actual;
  // B10: the slot order is checked against the stored profiles and the downgrade rule.
  const bool is_priority =
      target && target->component == "OCPPCommCtrlr" && target->name == "NetworkConfigurationPriority" && actual;
  SetOutcome res;
  if (is_password) res = set_password(item.value);
  else if (is_priority) res = set_priority(item.value);
  else {
    const auto r = dm_.set(item.ref, item.attribute, item.value);
    res = {r.status, r.reason, {}};
  }
  // The value itself is never logged: it may be a secret (LOG-5).
  log::info("settings", "set ", item.ref.component, ".", item.ref.name, ": ", core::to_string(res.status));
  if (const core::Variable* var = dm_.find(item.ref); var && res.status != SetStatus::UnknownVariable) {
    audit::Details ad;
    ad.text("variable", var->key()).text("status", core::to_string(res.status));
    if (is_password) {
      if (res.status == SetStatus::Accepted) ad.secret_changed("BasicAuthPassword");
      else ad.text("reason", res.info.empty() ? res.reason : res.info);
    } else if (is_priority) {
      ad.text("value", std::string(item.value).substr(0, 64));
      if (!res.info.empty()) ad.text("reason", res.info);
    } else if (var->security_relevant || var->mutability == core::Mutability::WriteOnly) {
      ad.secret_changed("value");
    } else {
      ad.text("value", item.value);
    }
    const bool ok = res.status == SetStatus::Accepted || res.status == SetStatus::RebootRequired;
    gate_.record(who, var->security_relevant ? Event::ReconfigurationOfSecurityParameters : Event::ConfigurationChanged,
                 ok ? Outcome::Success : Outcome::Failure, ad);
  }
  if (res.status == SetStatus::Accepted && item.ref.component == "OCPPCommCtrlr" &&
      item.ref.name == "HeartbeatInterval")
    out.heartbeat_changed = true;
  if (is_password && res.status == SetStatus::Accepted) out.password_changed = true;
  return res;
}

SettingsService::SetOutcome SettingsService::set_password(std::string_view value) {
  if (!password_) return {SetStatus::Rejected, "UnsupportedRequest", {}};
  if (auto ok = security::check_basic_auth_password(value); !ok)
    return {SetStatus::Rejected, "InvalidValue", ok.error().message};
  // Sealed and stored durably (fsync + rename) before we answer Accepted.
  try {
    password_->store(value);
  } catch (const std::exception& e) {
    log::error("settings", "cannot store the new CSMS password: ", e.what());
    return {SetStatus::Rejected, "InternalError", "the password could not be stored"};
  }
  log::info("settings", "new CSMS password sealed");
  return {SetStatus::Accepted, {}, {}};
}

SettingsService::SetOutcome SettingsService::set_priority(std::string_view value) {
  const auto normalized = network_.check_priority(value);
  if (!normalized) return {SetStatus::Rejected, normalized.error().reason, normalized.error().message};
  const auto r = dm_.set({"OCPPCommCtrlr", "", 0, 0, "NetworkConfigurationPriority", ""}, "Actual", *normalized);
  if (r.status == SetStatus::Accepted)
    log::info("settings", "NetworkConfigurationPriority is now ", *normalized, "; used from the next connection");
  return {r.status, r.reason, {}};
}

}  // namespace cg::services
