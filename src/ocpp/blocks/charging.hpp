// Functional blocks C (authorization), D (local authorization list), E
// (transactions), F (remote control) and P (data transfer) of OCPP 2.0.1, the
// CSMS's side: RequestStartTransaction, RequestStopTransaction,
// UnlockConnector, TriggerMessage, ClearCache, SendLocalList,
// GetLocalListVersion, GetTransactionStatus, DataTransfer. The charging
// service decides and audits; this block translates. (Authorize and
// TransactionEvent go out through the session; their wire form is
// ocpp/station_messages.)
// REQ: CHG-1, CHG-2
#pragma once
#include <functional>

#include "ocpp/dispatcher.hpp"
#include "ocpp/session_port.hpp"
#include "services/charging.hpp"

namespace cg::ocpp {

class ChargingBlock {
 public:
  // `renew`: TriggerMessage(SignChargingStationCertificate) (the security block);
  // empty when the station has no identity to renew.
  ChargingBlock(SessionPort& session, Dispatcher& dispatcher, services::ChargingService& charging,
                core::DeviceModel& dm, std::function<void(const policy::Principal&)> renew,
                std::function<void()> firmware_status = {});

 private:
  Reply on_request_start(const boost::json::object& req);
  Reply on_request_stop(const boost::json::object& req);
  Reply on_unlock_connector(const boost::json::object& req);
  Reply on_trigger_message(const boost::json::object& req);
  Reply on_clear_cache(const boost::json::object& req);
  Reply on_send_local_list(const boost::json::object& req);
  Reply on_get_local_list_version(const boost::json::object& req);
  Reply on_get_transaction_status(const boost::json::object& req);
  Reply on_data_transfer(const boost::json::object& req);

  SessionPort& session_;
  services::ChargingService& charging_;
  core::DeviceModel& dm_;
  std::function<void(const policy::Principal&)> renew_;
  std::function<void()> firmware_status_;  // TriggerMessage(FirmwareStatusNotification): the firmware block
};

}  // namespace cg::ocpp
