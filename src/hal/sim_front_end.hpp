// The simulated hardware as a front end: each simulator command becomes a
// service call with the principal of the part that acts — the EV (and the
// EVSE's own sensors) over the charging cable, the driver at the
// authentication terminal, the tamper sensors — and the service's answer
// becomes the answer line ("ok …" or "error: …"). Real HAL drivers will call
// the same services the same way.
// REQ: AUTHZ-1, PHY-1, CHG-1
#pragma once
#include <functional>
#include <string>

#include "hal/sim_socket.hpp"
#include "services/charging.hpp"
#include "services/lifecycle.hpp"

namespace cg::hal {

class SimFrontEnd {
 public:
  // `status`: the station's state as JSON (the `status` command).
  SimFrontEnd(services::ChargingService& charging, services::Lifecycle& lifecycle, std::function<std::string()> status);
  std::string handle(const SimCommand& c);

 private:
  services::ChargingService& charging_;
  services::Lifecycle& lifecycle_;
  std::function<std::string()> status_;
};

}  // namespace cg::hal
