// Functional block B (provisioning) of OCPP 2.0.1, the CSMS's side of the
// station's settings: GetVariables (B06), SetVariables (B05, A01 password),
// GetBaseReport → NotifyReport (B07/B08), SetNetworkProfile (B09). The
// settings and network services decide and audit; this block translates.
// (BootNotification, B01-B04, is the session's.)
// REQ: CHG-1, COM-6
#pragma once
#include <functional>

#include "ocpp/dispatcher.hpp"
#include "ocpp/session_port.hpp"
#include "services/network.hpp"
#include "services/settings.hpp"

namespace cg::ocpp {

class ProvisioningBlock {
 public:
  // `password_changed`: A01, a new BasicAuthPassword was sealed (the security block's state).
  ProvisioningBlock(SessionPort& session, Dispatcher& dispatcher, services::SettingsService& settings,
                    services::NetworkService& network, std::function<void()> password_changed);

 private:
  Reply on_get_variables(const boost::json::object& req);
  Reply on_set_variables(const boost::json::object& req);
  Reply on_get_base_report(const boost::json::object& req);
  Reply on_set_network_profile(const boost::json::object& req);
  void send_report(long long request_id, const std::vector<const core::Variable*>& vars);

  SessionPort& session_;
  services::SettingsService& settings_;
  services::NetworkService& network_;
  std::function<void()> password_changed_;
};

}  // namespace cg::ocpp
