// Availability and reset, the CSMS's side (G03/G04 ChangeAvailability, B11/B12
// Reset). The availability service decides, audits and ends transactions;
// this block translates, and restarts the station once the answer is out.
// REQ: CHG-1
#pragma once
#include "ocpp/dispatcher.hpp"
#include "ocpp/session_port.hpp"
#include "services/availability.hpp"

namespace cg::ocpp {

class AvailabilityBlock {
 public:
  AvailabilityBlock(SessionPort& session, Dispatcher& dispatcher, services::AvailabilityService& availability);
  void tick();  // once a second: an OnIdle reset whose time has come

 private:
  Reply on_change_availability(const boost::json::object& req);
  Reply on_reset(const boost::json::object& req);
  void reset_now(const audit::Source& who);

  SessionPort& session_;
  services::AvailabilityService& availability_;
};

}  // namespace cg::ocpp
