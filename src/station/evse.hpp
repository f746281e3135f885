// Simulated charging hardware as seen by the control loop: IEC 61851-1 control
// pilot states, the EV's demand and a meter that integrates the delivered power.
// REQ: CHG-1
#pragma once
#include <cstdint>
#include <mutex>
#include <string_view>
#include <vector>

namespace cg::station {

// IEC 61851-1 control pilot states.
enum class CpState : std::uint8_t {
  A,  // no EV connected
  B,  // EV connected, not charging
  C,  // EV connected, charging
  D,  // charging, ventilation required
  E,  // error: no power / short circuit of the pilot
  F,  // EVSE not available (fault)
};
std::string_view to_string(CpState s);

// Input from the hardware (the simulator's control socket, later real drivers).
struct HwInput {
  enum class Kind : std::uint8_t { Plug, Unplug, Draw, Fault, ClearFault } kind;
  int evse = 0;
  double amps = 0;
};

// Command from the station service to the control loop.
struct HwCommand {
  enum class Kind : std::uint8_t { EnablePower, DisablePower } kind;
  int evse = 0;
};

// Output of the control loop: a state change or a periodic meter snapshot.
struct LoopEvent {
  enum class Kind : std::uint8_t { StateChanged, Meter } kind;
  int evse = 0;
  CpState state = CpState::A;
  double energy_wh = 0;  // meter register (lifetime, monotonic)
  double power_w = 0;
  double current_a = 0;
  double voltage_v = 0;
};

// Model of one EVSE's power electronics (one connector charges at a time).
struct EvseHardware {
  double max_current_a = 32;
  int phases = 3;
  double voltage_v = 230;
  bool plugged = false;
  bool fault = false;
  bool power_enabled = false;
  double ev_demand_a = 0;
  CpState state = CpState::A;
  double current_a = 0;
  double energy_wh = 0;

  // Recomputes the state; returns true when it changed.
  bool update_state();
  // Integrates the power delivered during dt_ms into the register.
  void integrate(double dt_ms);
  double power_w() const { return current_a * voltage_v * phases; }
};

// Bounded multi-producer queue. The lock is held only to move items, never
// across I/O, so neither side can be stalled by the other's work (NET-3).
template <typename T>
class BoundedQueue {
 public:
  explicit BoundedQueue(std::size_t cap) : cap_(cap) {}
  bool try_push(const T& v) {
    std::lock_guard lk(mu_);
    if (items_.size() >= cap_) return false;
    items_.push_back(v);
    return true;
  }
  void drain(std::vector<T>& out) {
    std::lock_guard lk(mu_);
    out.insert(out.end(), items_.begin(), items_.end());
    items_.clear();
  }

 private:
  std::mutex mu_;
  std::vector<T> items_;
  std::size_t cap_;
};

}  // namespace cg::station
