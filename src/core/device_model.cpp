#include "core/device_model.hpp"

#include <charconv>
#include <cmath>
#include <sstream>

#include "core/clock.hpp"
#include "core/log.hpp"

namespace cg::core {
namespace {

using M = Mutability;
using T = DataType;

std::vector<std::string> split_csv(std::string_view s) {
  std::vector<std::string> out;
  std::size_t start = 0;
  while (start <= s.size()) {
    auto pos = s.find(',', start);
    if (pos == std::string_view::npos) pos = s.size();
    out.emplace_back(s.substr(start, pos - start));
    start = pos + 1;
  }
  return out;
}

bool parse_int(std::string_view s, long long& v) {
  if (s.empty()) return false;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  return ec == std::errc() && p == s.data() + s.size();
}

bool parse_dec(std::string_view s, double& v) {
  if (s.empty() || s.size() > 32) return false;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  return ec == std::errc() && p == s.data() + s.size() && std::isfinite(v);
}

const char* kMeasurands =
    "Energy.Active.Import.Register,Power.Active.Import,Current.Import,Voltage";

}  // namespace

std::string_view to_string(Mutability m) {
  switch (m) {
    case M::ReadOnly: return "ReadOnly";
    case M::ReadWrite: return "ReadWrite";
    case M::WriteOnly: return "WriteOnly";
  }
  return "ReadOnly";
}

std::string_view to_string(DataType t) {
  switch (t) {
    case T::Integer: return "integer";
    case T::Decimal: return "decimal";
    case T::Boolean: return "boolean";
    case T::String: return "string";
    case T::OptionList: return "OptionList";
    case T::MemberList: return "MemberList";
    case T::SequenceList: return "SequenceList";
    case T::DateTime: return "dateTime";
  }
  return "string";
}

std::string_view to_string(GetStatus s) {
  switch (s) {
    case GetStatus::Accepted: return "Accepted";
    case GetStatus::Rejected: return "Rejected";
    case GetStatus::UnknownComponent: return "UnknownComponent";
    case GetStatus::UnknownVariable: return "UnknownVariable";
    case GetStatus::NotSupportedAttributeType: return "NotSupportedAttributeType";
  }
  return "Rejected";
}

std::string_view to_string(SetStatus s) {
  switch (s) {
    case SetStatus::Accepted: return "Accepted";
    case SetStatus::Rejected: return "Rejected";
    case SetStatus::UnknownComponent: return "UnknownComponent";
    case SetStatus::UnknownVariable: return "UnknownVariable";
    case SetStatus::NotSupportedAttributeType: return "NotSupportedAttributeType";
    case SetStatus::RebootRequired: return "RebootRequired";
  }
  return "Rejected";
}

std::string Variable::key() const {
  std::string k = component;
  if (!component_instance.empty()) k += "[" + component_instance + "]";
  if (evse) k += "@" + std::to_string(evse) + (connector ? ":" + std::to_string(connector) : "");
  k += "." + name;
  if (!instance.empty()) k += "[" + instance + "]";
  return k;
}

DeviceModel::DeviceModel(storage::Db& db, const config::Config& cfg) : db_(db) {
  auto var = [&](std::string comp, std::string name, M mut, T type, std::string value) {
    Variable v;
    v.component = std::move(comp);
    v.name = std::move(name);
    v.mutability = mut;
    v.type = type;
    v.value = std::move(value);
    return v;
  };
  auto with = [](Variable v, auto&& f) {
    f(v);
    return v;
  };
  auto inst = [](Variable v, std::string i) {
    v.instance = std::move(i);
    return v;
  };
  auto limits = [](Variable v, std::optional<double> lo, std::optional<double> hi) {
    v.min = lo;
    v.max = hi;
    return v;
  };
  auto options = [](Variable v, std::string list) {
    v.values_list = std::move(list);
    return v;
  };
  auto unit = [](Variable v, std::string u) {
    v.unit = std::move(u);
    return v;
  };

  // --- OCPPCommCtrlr
  add(unit(limits(var("OCPPCommCtrlr", "HeartbeatInterval", M::ReadWrite, T::Integer, "300"), 1, 86400), "s"));
  add(unit(limits(inst(var("OCPPCommCtrlr", "MessageTimeout", M::ReadOnly, T::Integer, "30"), "Default"), 1, 600), "s"));
  add(limits(inst(var("OCPPCommCtrlr", "MessageAttempts", M::ReadWrite, T::Integer, "3"), "TransactionEvent"), 0, 100));
  add(unit(limits(inst(var("OCPPCommCtrlr", "MessageAttemptInterval", M::ReadWrite, T::Integer, "10"), "TransactionEvent"), 0, 3600), "s"));
  // B10: the order of the network profile slots (0 = the configuration file's); checked
  // against the stored profiles and the downgrade rule by ChargePoint before it gets here.
  add(with(options(var("OCPPCommCtrlr", "NetworkConfigurationPriority", M::ReadWrite, T::SequenceList, "0"), "0,1,2,3"),
           [](Variable& v) { v.security_relevant = true; }));
  add(limits(var("OCPPCommCtrlr", "NetworkProfileConnectionAttempts", M::ReadWrite, T::Integer, "3"), 1, 100));
  add(unit(limits(var("OCPPCommCtrlr", "OfflineThreshold", M::ReadOnly, T::Integer, "60"), 0, 86400), "s"));
  add(limits(var("OCPPCommCtrlr", "ResetRetries", M::ReadOnly, T::Integer, "2"), 0, 10));
  add(var("OCPPCommCtrlr", "UnlockOnEVSideDisconnect", M::ReadOnly, T::Boolean, "true"));
  add(unit(limits(var("OCPPCommCtrlr", "WebSocketPingInterval", M::ReadWrite, T::Integer, "30"), 0, 3600), "s"));
  add(unit(limits(var("OCPPCommCtrlr", "RetryBackOffWaitMinimum", M::ReadWrite, T::Integer, "3"), 1, 3600), "s"));
  add(unit(limits(var("OCPPCommCtrlr", "RetryBackOffRandomRange", M::ReadWrite, T::Integer, "10"), 0, 3600), "s"));
  add(limits(var("OCPPCommCtrlr", "RetryBackOffRepeatTimes", M::ReadWrite, T::Integer, "5"), 0, 20));
  add(options(var("OCPPCommCtrlr", "FileTransferProtocols", M::ReadOnly, T::MemberList, "HTTPS"), "HTTPS"));
  add(var("OCPPCommCtrlr", "ActiveNetworkProfile", M::ReadOnly, T::Integer, "0"));
  add(var("OCPPCommCtrlr", "QueueAllMessages", M::ReadOnly, T::Boolean, "false"));

  // --- TxCtrlr
  add(unit(limits(var("TxCtrlr", "EVConnectionTimeOut", M::ReadWrite, T::Integer, "60"), 1, 3600), "s"));
  add(var("TxCtrlr", "StopTxOnEVSideDisconnect", M::ReadOnly, T::Boolean, "true"));
  add(var("TxCtrlr", "StopTxOnInvalidId", M::ReadWrite, T::Boolean, "true"));
  add(var("TxCtrlr", "TxBeforeAcceptedEnabled", M::ReadOnly, T::Boolean, "false"));
  add(options(var("TxCtrlr", "TxStartPoint", M::ReadOnly, T::MemberList, "PowerPathClosed"), "PowerPathClosed"));
  add(options(var("TxCtrlr", "TxStopPoint", M::ReadOnly, T::MemberList, "EVConnected,Authorized"),
              "EVConnected,Authorized"));
  add(limits(var("TxCtrlr", "MaxEnergyOnInvalidId", M::ReadOnly, T::Integer, "0"), 0, 1000000));

  // --- DeviceDataCtrlr
  add(inst(var("DeviceDataCtrlr", "ItemsPerMessage", M::ReadOnly, T::Integer, "32"), "GetReport"));
  add(inst(var("DeviceDataCtrlr", "ItemsPerMessage", M::ReadOnly, T::Integer, "32"), "GetVariables"));
  add(inst(var("DeviceDataCtrlr", "ItemsPerMessage", M::ReadOnly, T::Integer, "32"), "SetVariables"));
  add(inst(var("DeviceDataCtrlr", "BytesPerMessage", M::ReadOnly, T::Integer, std::to_string(cfg.max_frame_bytes)), "GetReport"));
  add(inst(var("DeviceDataCtrlr", "BytesPerMessage", M::ReadOnly, T::Integer, std::to_string(cfg.max_frame_bytes)), "GetVariables"));
  add(inst(var("DeviceDataCtrlr", "BytesPerMessage", M::ReadOnly, T::Integer, std::to_string(cfg.max_frame_bytes)), "SetVariables"));
  add(var("DeviceDataCtrlr", "ConfigurationValueSize", M::ReadOnly, T::Integer, "1000"));
  add(var("DeviceDataCtrlr", "ReportingValueSize", M::ReadOnly, T::Integer, "2500"));
  add(var("DeviceDataCtrlr", "ValueSize", M::ReadOnly, T::Integer, "2500"));

  // --- ClockCtrlr
  add(with(var("ClockCtrlr", "DateTime", M::ReadOnly, T::DateTime, ""), [](Variable& v) {
    v.persistent = false;
    v.dynamic = [] { return clock::format_rfc3339(clock::now_utc()); };
  }));
  add(options(var("ClockCtrlr", "TimeSource", M::ReadOnly, T::SequenceList, "Heartbeat"), "Heartbeat"));
  add(unit(limits(var("ClockCtrlr", "TimeAdjustmentReportingThreshold", M::ReadWrite, T::Integer, "20"), 0, 86400), "s"));

  // --- SecurityCtrlr (certificate management and password rotation: next issues)
  add(with(limits(var("SecurityCtrlr", "OrganizationName", M::ReadWrite, T::String, cfg.organization), 0, 64),
           [](Variable& v) { v.security_relevant = true; }));
  add(var("SecurityCtrlr", "CertificateEntries", M::ReadOnly, T::Integer, "0"));
  add(with(limits(var("SecurityCtrlr", "SecurityProfile", M::ReadOnly, T::Integer, std::to_string(cfg.security_profile)), 1, 3),
           [](Variable& v) { v.persistent = false; }));
  add(with(var("SecurityCtrlr", "Identity", M::ReadOnly, T::String, cfg.identity), [](Variable& v) { v.persistent = false; }));
  add(with(limits(var("SecurityCtrlr", "BasicAuthPassword", M::WriteOnly, T::String, ""), 16, 40), [](Variable& v) {
    v.security_relevant = true;
    v.persistent = false;
  }));
  // M05: a new CSMS root must be signed by the installed one, which stays as a
  // fallback until the first connection through the new root.
  add(with(var("SecurityCtrlr", "AdditionalRootCertificateCheck", M::ReadWrite, T::Boolean, "false"),
           [](Variable& v) { v.security_relevant = true; }));
  add(var("SecurityCtrlr", "MaxCertificateChainSize", M::ReadOnly, T::Integer, "10000"));
  add(unit(limits(var("SecurityCtrlr", "CertSigningWaitMinimum", M::ReadWrite, T::Integer, "60"), 1, 86400), "s"));
  add(limits(var("SecurityCtrlr", "CertSigningRepeatTimes", M::ReadWrite, T::Integer, "3"), 0, 100));
  // Errata 2025: only when true may a network profile go from 3 to 2 (never to
  // 1). COM-6: a security profile is never lowered remotely, so the CSMS cannot
  // grant itself the downgrade: ReadOnly, from csms.allow_security_profile_downgrade.
  add(with(var("SecurityCtrlr", "AllowSecurityProfileDowngrade", M::ReadOnly, T::Boolean,
               cfg.allow_security_profile_downgrade ? "true" : "false"),
           [](Variable& v) {
             v.security_relevant = true;
             v.persistent = false;  // the configuration file is the source, not a value stored before
           }));

  // --- SampledDataCtrlr
  add(var("SampledDataCtrlr", "Enabled", M::ReadWrite, T::Boolean, "true"));
  add(options(var("SampledDataCtrlr", "TxStartedMeasurands", M::ReadWrite, T::MemberList, "Energy.Active.Import.Register"), kMeasurands));
  add(options(var("SampledDataCtrlr", "TxUpdatedMeasurands", M::ReadWrite, T::MemberList,
                  "Energy.Active.Import.Register,Power.Active.Import,Current.Import"), kMeasurands));
  add(unit(limits(var("SampledDataCtrlr", "TxUpdatedInterval", M::ReadWrite, T::Integer, "60"), 0, 86400), "s"));
  add(options(var("SampledDataCtrlr", "TxEndedMeasurands", M::ReadWrite, T::MemberList, "Energy.Active.Import.Register"), kMeasurands));
  add(unit(limits(var("SampledDataCtrlr", "TxEndedInterval", M::ReadOnly, T::Integer, "0"), 0, 86400), "s"));

  // --- AlignedDataCtrlr
  add(var("AlignedDataCtrlr", "Enabled", M::ReadWrite, T::Boolean, "true"));
  add(options(var("AlignedDataCtrlr", "Measurands", M::ReadWrite, T::MemberList, "Energy.Active.Import.Register"), kMeasurands));
  add(unit(limits(var("AlignedDataCtrlr", "Interval", M::ReadWrite, T::Integer, "0"), 0, 86400), "s"));
  add(var("AlignedDataCtrlr", "SendDuringIdle", M::ReadWrite, T::Boolean, "false"));
  add(options(var("AlignedDataCtrlr", "TxEndedMeasurands", M::ReadOnly, T::MemberList, "Energy.Active.Import.Register"), kMeasurands));
  add(unit(limits(var("AlignedDataCtrlr", "TxEndedInterval", M::ReadOnly, T::Integer, "0"), 0, 86400), "s"));

  // --- AuthCtrlr / AuthCacheCtrlr / LocalAuthListCtrlr
  add(var("AuthCtrlr", "Enabled", M::ReadWrite, T::Boolean, "true"));
  add(var("AuthCtrlr", "AuthorizeRemoteStart", M::ReadWrite, T::Boolean, "false"));
  add(var("AuthCtrlr", "LocalAuthorizeOffline", M::ReadWrite, T::Boolean, "true"));
  add(var("AuthCtrlr", "LocalPreAuthorize", M::ReadWrite, T::Boolean, "true"));
  add(var("AuthCtrlr", "OfflineTxForUnknownIdEnabled", M::ReadWrite, T::Boolean, "false"));
  add(var("AuthCtrlr", "DisableRemoteAuthorization", M::ReadWrite, T::Boolean, "false"));
  add(var("AuthCacheCtrlr", "Enabled", M::ReadWrite, T::Boolean, "true"));
  add(unit(limits(var("AuthCacheCtrlr", "LifeTime", M::ReadWrite, T::Integer, "86400"), 0, 31536000), "s"));
  add(var("LocalAuthListCtrlr", "Enabled", M::ReadWrite, T::Boolean, "true"));
  add(with(var("LocalAuthListCtrlr", "Entries", M::ReadOnly, T::Integer, "0"), [](Variable& v) { v.persistent = false; }));
  add(var("LocalAuthListCtrlr", "ItemsPerMessage", M::ReadOnly, T::Integer, "100"));
  add(var("LocalAuthListCtrlr", "BytesPerMessage", M::ReadOnly, T::Integer, std::to_string(cfg.max_frame_bytes)));

  // --- ChargingStation, EVSE, Connector
  add(with(options(var("ChargingStation", "AvailabilityState", M::ReadOnly, T::OptionList, "Available"),
                   "Available,Occupied,Reserved,Unavailable,Faulted"),
           [](Variable& v) { v.persistent = false; }));
  add(var("ChargingStation", "Model", M::ReadOnly, T::String, cfg.model));
  add(var("ChargingStation", "VendorName", M::ReadOnly, T::String, cfg.vendor));
  for (std::size_t i = 0; i < cfg.evses.size(); ++i) {
    const int id = static_cast<int>(i + 1);
    const auto& e = cfg.evses[i];
    auto evse_var = [&](std::string name, T type, std::string value) {
      Variable v = var("EVSE", std::move(name), M::ReadOnly, type, std::move(value));
      v.evse = id;
      v.persistent = false;
      return v;
    };
    add(options(evse_var("AvailabilityState", T::OptionList, "Available"), "Available,Occupied,Reserved,Unavailable,Faulted"));
    add(unit(limits(evse_var("Power", T::Decimal, "0"), 0, e.max_current_a * e.voltage_v * e.phases), "W"));
    add(evse_var("SupplyPhases", T::Integer, std::to_string(e.phases)));
    for (int c = 1; c <= e.connectors; ++c) {
      Variable ct = var("Connector", "ConnectorType", M::ReadOnly, T::String, "cType2");
      ct.evse = id;
      ct.connector = c;
      ct.persistent = false;
      add(ct);
      Variable av = ct;
      av.name = "AvailabilityState";
      av.type = T::OptionList;
      av.value = "Available";
      av.values_list = "Available,Occupied,Reserved,Unavailable,Faulted";
      add(av);
    }
  }

  // Static configuration seeds ([device_model] in the TOML file) — applied as
  // defaults; values the CSMS set later (stored in SQLite) win.
  // Read-only variables describe what this build does and are not seeded
  // (a seeded SecurityProfile or ItemsPerMessage would make reports lie).
  for (const auto& [k, v] : cfg.device_model) {
    Variable* var_ptr = find_mut(k);
    if (!var_ptr) throw std::runtime_error("device_model." + k + ": unknown variable");
    if (var_ptr->mutability == Mutability::ReadOnly)
      throw std::runtime_error("device_model." + k + ": read-only; only writable variables can be seeded" +
                               std::string(k == "SecurityCtrlr.AllowSecurityProfileDowngrade"
                                               ? " (the downgrade permission is csms.allow_security_profile_downgrade)"
                                               : ""));
    // A write-only value (BasicAuthPassword) seeded here would be silently ignored.
    if (var_ptr->mutability == Mutability::WriteOnly)
      throw std::runtime_error("device_model." + k + ": write-only; it cannot be set in the configuration");
    if (auto err = check_value(*var_ptr, v)) throw std::runtime_error("device_model." + k + ": " + *err);
    var_ptr->value = v;
  }
  auto st = db_.prepare("SELECT name, value FROM variables");
  while (st.step()) {
    auto it = index_.find(st.col_text(0));
    if (it != index_.end() && vars_[it->second].persistent) vars_[it->second].value = st.col_text(1);
  }
}

void DeviceModel::add(Variable v) {
  const std::string k = v.key();
  index_.emplace(k, vars_.size());
  vars_.push_back(std::move(v));
}

Variable* DeviceModel::find_mut(std::string_view short_key) {
  auto it = index_.find(short_key);
  return it == index_.end() ? nullptr : &vars_[it->second];
}

const Variable* DeviceModel::find(std::string_view short_key) const {
  auto it = index_.find(short_key);
  return it == index_.end() ? nullptr : &vars_[it->second];
}

const Variable* DeviceModel::find(const VarRef& r) const {
  Variable probe;
  probe.component = r.component;
  probe.component_instance = r.component_instance;
  probe.evse = r.evse;
  probe.connector = r.connector;
  probe.name = r.name;
  probe.instance = r.instance;
  return find(probe.key());
}

bool DeviceModel::component_exists(const VarRef& r) const {
  for (const auto& v : vars_) {
    if (v.component == r.component && v.component_instance == r.component_instance && v.evse == r.evse &&
        v.connector == r.connector)
      return true;
  }
  return false;
}

std::string DeviceModel::current_value(const Variable& v) const { return v.dynamic ? v.dynamic() : v.value; }

std::string DeviceModel::text(std::string_view k) const {
  const Variable* v = find(k);
  return v ? current_value(*v) : std::string();
}

long long DeviceModel::integer(std::string_view k, long long fallback) const {
  long long out = 0;
  return parse_int(text(k), out) ? out : fallback;
}

bool DeviceModel::boolean(std::string_view k) const { return text(k) == "true"; }

DeviceModel::GetResult DeviceModel::get(const VarRef& ref, std::string_view attr) const {
  const Variable* v = find(ref);
  if (!v) {
    return {component_exists(ref) ? GetStatus::UnknownVariable : GetStatus::UnknownComponent, {}};
  }
  if (!attr.empty() && attr != "Actual") return {GetStatus::NotSupportedAttributeType, {}};
  if (v->mutability == Mutability::WriteOnly) return {GetStatus::Rejected, {}};
  return {GetStatus::Accepted, current_value(*v)};
}

std::optional<std::string> DeviceModel::check_value(const Variable& v, std::string_view value) const {
  const auto max_size = static_cast<std::size_t>(integer("DeviceDataCtrlr.ConfigurationValueSize", 1000));
  if (value.size() > max_size) return "value longer than ConfigurationValueSize";
  switch (v.type) {
    case T::Integer: {
      long long x;
      if (!parse_int(value, x)) return std::string("not an integer");
      if (v.min && x < *v.min) return "below minimum " + std::to_string(static_cast<long long>(*v.min));
      if (v.max && x > *v.max) return "above maximum " + std::to_string(static_cast<long long>(*v.max));
      return std::nullopt;
    }
    case T::Decimal: {
      double x;
      if (!parse_dec(value, x)) return std::string("not a decimal number");
      if ((v.min && x < *v.min) || (v.max && x > *v.max)) return std::string("out of range");
      return std::nullopt;
    }
    case T::Boolean:
      if (value != "true" && value != "false") return std::string("must be true or false");
      return std::nullopt;
    case T::String:
      if (v.min && value.size() < *v.min) return "shorter than " + std::to_string(static_cast<int>(*v.min));
      if (v.max && value.size() > *v.max) return "longer than " + std::to_string(static_cast<int>(*v.max));
      return std::nullopt;
    case T::DateTime:
      if (!clock::parse_rfc3339(value)) return std::string("not an RFC 3339 date-time");
      return std::nullopt;
    case T::OptionList:
    case T::MemberList:
    case T::SequenceList: {
      const auto allowed = split_csv(v.values_list);
      const auto items = split_csv(value);
      if (v.type == T::OptionList && items.size() != 1) return std::string("exactly one option expected");
      for (const auto& it : items) {
        if (it.empty() && v.type != T::SequenceList) return std::string("empty list item");
        if (v.type == T::SequenceList) {
          long long n;
          if (v.values_list.empty() && !parse_int(it, n)) return std::string("list item is not an integer");
          if (v.values_list.empty()) continue;
        }
        bool ok = false;
        for (const auto& a : allowed) ok = ok || a == it;
        if (!ok) return std::string("value not in valuesList");
      }
      return std::nullopt;
    }
  }
  return std::nullopt;
}

DeviceModel::SetResult DeviceModel::set(const VarRef& ref, std::string_view attr, std::string_view value) {
  Variable* v = nullptr;
  {
    const Variable* cv = find(ref);
    if (!cv) return {component_exists(ref) ? SetStatus::UnknownVariable : SetStatus::UnknownComponent, {}};
    v = const_cast<Variable*>(cv);
  }
  if (!attr.empty() && attr != "Actual") return {SetStatus::NotSupportedAttributeType, {}};
  if (v->mutability == Mutability::ReadOnly) return {SetStatus::Rejected, "ReadOnly"};
  if (v->name == "BasicAuthPassword") {
    // Never kept here: A01 rotation goes through ChargePoint::set_basic_auth_password
    // (sealed by the key store); a direct set is refused rather than store plain text.
    return {SetStatus::Rejected, "UnsupportedRequest"};
  }
  if (auto err = check_value(*v, value)) return {SetStatus::Rejected, "InvalidValue"};
  v->value = std::string(value);
  if (v->persistent) {
    auto st = db_.prepare(
        "INSERT INTO variables(name,value) VALUES(?,?) ON CONFLICT(name) DO UPDATE SET value=excluded.value");
    st.bind(1, v->key()).bind(2, v->value).run();
  }
  for (auto& l : listeners_) l(*v);
  return {v->reboot_required ? SetStatus::RebootRequired : SetStatus::Accepted, {}};
}

void DeviceModel::set_internal(std::string_view short_key, std::string value) {
  if (Variable* v = find_mut(short_key)) v->value = std::move(value);
}

void DeviceModel::set_dynamic(std::string_view short_key, std::function<std::string()> fn) {
  if (Variable* v = find_mut(short_key)) v->dynamic = std::move(fn);
}

}  // namespace cg::core
