// The charging control loop: its own thread, a fixed period, no network, no
// disk, no lock held by network code (DESIGN.md "Threads and isolation").
// Inputs arrive through bounded queues; outputs leave through a bounded queue
// and an eventfd that the I/O thread watches.
// REQ: CHG-1, NET-3
#pragma once
#include <atomic>
#include <chrono>
#include <thread>
#include <vector>

#include "core/config.hpp"
#include "station/evse.hpp"

namespace cg::station {

class ControlLoop {
 public:
  ControlLoop(const std::vector<config::Evse>& evses, std::chrono::milliseconds period,
              const std::vector<double>& initial_energy_wh);
  ~ControlLoop();
  ControlLoop(const ControlLoop&) = delete;
  ControlLoop& operator=(const ControlLoop&) = delete;

  void start();
  void stop();

  // Thread-safe; false when the queue is full (input shed) or the EVSE is unknown.
  bool submit(const HwInput& in);
  bool command(const HwCommand& c);

  // Readable when events are waiting; read 8 bytes to reset, then drain().
  int notify_fd() const { return efd_; }
  void drain(std::vector<LoopEvent>& out) { out_.drain(out); }

  std::uint64_t ticks() const { return ticks_.load(); }
  std::uint64_t overruns() const { return overruns_.load(); }
  int evse_count() const { return static_cast<int>(hw_.size()); }

  // One period of work; public for unit tests (which drive it without the thread).
  void step(double dt_ms, bool emit_meter);

 private:
  void run();
  bool emit(const LoopEvent& e);

  std::vector<EvseHardware> hw_;
  std::chrono::milliseconds period_;
  BoundedQueue<HwInput> in_{256};
  BoundedQueue<HwCommand> cmd_{256};
  BoundedQueue<LoopEvent> out_{4096};
  std::vector<HwInput> in_buf_;
  std::vector<HwCommand> cmd_buf_;
  std::vector<bool> unsent_state_;  // per EVSE: a state change still to deliver
  int efd_ = -1;
  std::atomic<bool> running_{false};
  std::atomic<std::uint64_t> ticks_{0}, overruns_{0};
  std::thread thread_;
};

}  // namespace cg::station
