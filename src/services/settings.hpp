// The station's settings (the device model), for every front end: the CSMS
// (GetVariables, SetVariables, GetBaseReport), later the maintenance web UI.
// Per variable: who may write it (a security-relevant variable needs
// ManageSecuritySettings, the others WriteConfiguration), the ReadOnly rules,
// the A01 password (sealed by the key store, never kept by the device model),
// the B10 priority list (checked by the network service), and one audit
// record per variable (the value itself only when it is not a secret).
// REQ: AUTHZ-1, COM-6, LOG-1, LOG-5, CHG-1
#pragma once
#include <string>
#include <string_view>
#include <vector>

#include "core/device_model.hpp"
#include "core/result.hpp"
#include "security/sealed_password.hpp"
#include "services/gate.hpp"
#include "services/network.hpp"

namespace cg::services {

class SettingsService {
 public:
  SettingsService(Gate& gate, core::DeviceModel& dm, security::SealedPassword* password, NetworkService& network);

  struct GetItem {
    core::VarRef ref;
    std::string attribute = "Actual";
  };
  Result<std::vector<core::DeviceModel::GetResult>> get(const policy::Principal& who, const std::vector<GetItem>& items);

  struct SetItem {
    core::VarRef ref;
    std::string attribute = "Actual";
    std::string_view value;  // not copied: it may be a password (the caller wipes its buffer)
  };
  struct SetOutcome {
    core::SetStatus status = core::SetStatus::Rejected;
    std::string reason;  // reasonCode when not Accepted
    std::string info;    // why, in words (never the value)
  };
  struct SetResults {
    std::vector<SetOutcome> items;
    bool heartbeat_changed = false;  // OCPPCommCtrlr.HeartbeatInterval
    bool password_changed = false;   // A01: a new BasicAuthPassword is sealed
  };
  Result<SetResults> set(const policy::Principal& who, const std::vector<SetItem>& items);

  // GetBaseReport: the variables of `base` (ConfigurationInventory,
  // SummaryInventory, FullInventory).
  Result<std::vector<const core::Variable*>> report(const policy::Principal& who, std::string_view base);

  core::DeviceModel& device_model() { return dm_; }

 private:
  SetOutcome set_one(const policy::Principal& who, const SetItem& item, SetResults& out);
  SetOutcome set_password(std::string_view value);
  SetOutcome set_priority(std::string_view value);

  Gate& gate_;
  core::DeviceModel& dm_;
  security::SealedPassword* password_;
  NetworkService& network_;
};

}  // namespace cg::services
