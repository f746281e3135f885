#include "station/control_loop.hpp"

#include <sys/eventfd.h>
#include <unistd.h>

#include <stdexcept>

namespace cg::station {

ControlLoop::ControlLoop(const std::vector<config::Evse>& evses, std::chrono::milliseconds period,
                         const std::vector<double>& initial_energy_wh)
    : period_(period) {
  for (std::size_t i = 0; i < evses.size(); ++i) {
    EvseHardware h;
    h.max_current_a = evses[i].max_current_a;
    h.phases = evses[i].phases;
    h.voltage_v = evses[i].voltage_v;
    if (i < initial_energy_wh.size()) h.energy_wh = initial_energy_wh[i];
    hw_.push_back(h);
  }
  unsent_state_.assign(hw_.size(), false);
  efd_ = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (efd_ < 0) throw std::runtime_error("eventfd failed");
}

ControlLoop::~ControlLoop() {
  stop();
  if (efd_ >= 0) ::close(efd_);
}

void ControlLoop::start() {
  if (running_.exchange(true)) return;
  thread_ = std::thread([this] { run(); });
}

void ControlLoop::stop() {
  if (!running_.exchange(false)) return;
  if (thread_.joinable()) thread_.join();
}

bool ControlLoop::submit(const HwInput& in) {
  if (in.evse < 1 || in.evse > evse_count()) return false;
  return in_.try_push(in);
}

bool ControlLoop::command(const HwCommand& c) {
  if (c.evse < 1 || c.evse > evse_count()) return false;
  return cmd_.try_push(c);
}

bool ControlLoop::emit(const LoopEvent& e) {
  if (!out_.try_push(e)) return false;
  const std::uint64_t one = 1;
  // Non-blocking; a full counter only means the reader is already signalled.
  [[maybe_unused]] auto r = ::write(efd_, &one, sizeof one);
  return true;
}

void ControlLoop::step(double dt_ms, bool emit_meter) {
  in_buf_.clear();
  cmd_buf_.clear();
  in_.drain(in_buf_);
  cmd_.drain(cmd_buf_);
  for (auto& h : hw_) h.integrate(dt_ms);
  for (const auto& c : cmd_buf_) {
    hw_[static_cast<std::size_t>(c.evse - 1)].power_enabled = c.kind == HwCommand::Kind::EnablePower;
  }
  for (const auto& in : in_buf_) {
    auto& h = hw_[static_cast<std::size_t>(in.evse - 1)];
    switch (in.kind) {
      case HwInput::Kind::Plug: h.plugged = true; break;
      case HwInput::Kind::Unplug:
        h.plugged = false;
        h.ev_demand_a = 0;
        h.fault = false;  // the simulated fault belongs to the session of this EV
        break;
      case HwInput::Kind::Draw: h.ev_demand_a = in.amps; break;
      case HwInput::Kind::Fault: h.fault = true; break;
      case HwInput::Kind::ClearFault: h.fault = false; break;
    }
  }
  for (std::size_t i = 0; i < hw_.size(); ++i) {
    auto& h = hw_[i];
    // A state change that found the queue full is sent again next period:
    // a lost unplug would leave a transaction running for ever.
    const bool changed = h.update_state() || unsent_state_[i];
    if (changed || emit_meter) {
      LoopEvent e{changed ? LoopEvent::Kind::StateChanged : LoopEvent::Kind::Meter,
                  static_cast<int>(i + 1), h.state, h.energy_wh, h.power_w(), h.current_a, h.voltage_v};
      const bool sent = emit(e);
      if (changed) unsent_state_[i] = !sent;
      if (changed && emit_meter) {
        e.kind = LoopEvent::Kind::Meter;
        emit(e);
      }
    }
  }
  ticks_.fetch_add(1, std::memory_order_relaxed);
}

void ControlLoop::run() {
  using clk = std::chrono::steady_clock;
  auto next = clk::now();
  auto last = next;
  auto last_meter = next;
  while (running_.load()) {
    next += period_;
    const auto now = clk::now();
    const double dt = std::chrono::duration<double, std::milli>(now - last).count();
    last = now;
    const bool meter = now - last_meter >= std::chrono::seconds(1);
    if (meter) last_meter = now;
    step(dt, meter);
    const auto after = clk::now();
    if (after > next) {
      overruns_.fetch_add(1, std::memory_order_relaxed);
      next = after;  // do not try to catch up with a burst
    }
    std::this_thread::sleep_until(next);
  }
}

}  // namespace cg::station
