#include "station/evse.hpp"

#include <algorithm>

namespace cg::station {

std::string_view to_string(CpState s) {
  switch (s) {
    case CpState::A: return "A";
    case CpState::B: return "B";
    case CpState::C: return "C";
    case CpState::D: return "D";
    case CpState::E: return "E";
    case CpState::F: return "F";
  }
  return "?";
}

bool EvseHardware::update_state() {
  CpState next;
  if (fault) next = CpState::F;
  else if (!plugged) next = CpState::A;
  else if (power_enabled && ev_demand_a > 0) next = CpState::C;
  else next = CpState::B;
  current_a = next == CpState::C ? std::min(ev_demand_a, max_current_a) : 0.0;
  const bool changed = next != state;
  state = next;
  return changed;
}

void EvseHardware::integrate(double dt_ms) {
  if (dt_ms <= 0) return;
  energy_wh += power_w() * dt_ms / 3'600'000.0;
}

}  // namespace cg::station
