#include "hal/sim_front_end.hpp"

#include "core/log.hpp"

namespace cg::hal {

SimFrontEnd::SimFrontEnd(services::ChargingService& charging, services::Lifecycle& lifecycle,
                         std::function<std::string()> status)
    : charging_(charging), lifecycle_(lifecycle), status_(std::move(status)) {}

namespace {
std::string answer(const Result<void>& r) {
  if (r) return "ok";
  return "error: " + (r.error().code == Errc::Denied ? std::string("not permitted") : r.error().message);
}
}  // namespace

std::string SimFrontEnd::handle(const SimCommand& c) {
  using K = SimCommand::Kind;
  auto hw = [&](station::HwInput::Kind k) {
    const policy::Principal ev{policy::Role::Ev, policy::Interface::EvCable, "EV on EVSE " + std::to_string(c.evse)};
    return answer(charging_.hardware(ev, station::HwInput{k, c.evse, c.amps}));
  };
  switch (c.kind) {
    case K::Plug: return hw(station::HwInput::Kind::Plug);
    case K::Unplug: return hw(station::HwInput::Kind::Unplug);
    case K::Draw: return hw(station::HwInput::Kind::Draw);
    case K::Fault: return hw(station::HwInput::Kind::Fault);
    case K::ClearFault: return hw(station::HwInput::Kind::ClearFault);
    case K::Badge: {
      const station::IdToken tok{c.token, c.token_type};
      const policy::Principal driver{policy::Role::EvDriver, policy::Interface::AuthTerminal, tok.masked()};
      return answer(charging_.present_token(driver, c.evse, tok));
    }
    case K::CaseOpen: return answer(lifecycle_.tamper(services::Lifecycle::Sensor::Case, false));
    case K::Moved: return answer(lifecycle_.tamper(services::Lifecycle::Sensor::Motion, false));
    case K::CaseClose: return answer(lifecycle_.tamper(services::Lifecycle::Sensor::Case, true));
    case K::ResetButton:
      log::warn("hal", "reset button pressed (factory reset arrives with a later release)");
      return "ok";
    case K::Status: return "ok " + status_();
  }
  return "error: unsupported";
}

}  // namespace cg::hal
