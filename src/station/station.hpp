// The station: EVSE availability and status, driver authorization,
// transactions and their events. Runs on the I/O thread; talks to the control
// loop through its queues, and to the outside through typed events
// (station/events.hpp): transaction events go to a TxEventSink inside the
// station's SQLite transaction, status and meter values to the Uplink. It
// knows nothing of OCPP. Access decisions are made by the services in front
// of it (services/charging.*) through the one policy.
// REQ: CHG-1, CHG-2
#pragma once
#include <boost/json/object.hpp>
#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "core/config.hpp"
#include "core/storage.hpp"
#include "core/device_model.hpp"
#include "station/auth.hpp"
#include "station/control_loop.hpp"
#include "station/events.hpp"

namespace cg::station {

// What the station needs from the CSMS side.
class Uplink {
 public:
  virtual ~Uplink() = default;
  virtual bool online() const = 0;  // connected and BootNotification accepted
  virtual bool boot_refused() const = 0;  // connected, but the CSMS answered Pending/Rejected
  virtual void outbox_changed() = 0;  // a transaction event was committed to the queue
  virtual void send_status(int evse, int connector, ConnectorStatus status) = 0;
  virtual void send_meter_values(int evse, std::vector<MeterValue> meter_value) = 0;
  // cb(nullopt) when the CSMS could not be asked (offline, timeout, error).
  virtual void authorize(const IdToken& t, std::function<void(std::optional<boost::json::object>)> cb) = 0;
};

struct Transaction {
  std::string id;
  int seq_no = 0;
  std::optional<IdToken> token;
  std::optional<long long> remote_start_id;
  double energy_start_wh = 0;
  std::string charging_state = "EVConnected";
  std::chrono::steady_clock::time_point last_update{};
};

struct EvseState {
  int id = 0;
  int connectors = 1;
  CpState cp = CpState::A;
  bool operative = true;  // availability set by ChangeAvailability (a running transaction goes on)
  double energy_wh = 0, power_w = 0, current_a = 0, voltage_v = 0;
  std::optional<Transaction> tx;
  std::optional<IdToken> authorized;               // authorized, waiting for the EV
  std::optional<long long> authorized_remote_id;   // RequestStartTransaction's remoteStartId
  std::chrono::steady_clock::time_point authorized_at{};
  bool authorizing = false;
  std::optional<ConnectorStatus> last_status;
};

class Station {
 public:
  // `events` queues transaction events (durably, in the station's commit).
  Station(const config::Config& cfg, storage::Db& db, core::DeviceModel& dm, TxEventSink& events, AuthStore& auth,
          ControlLoop& loop);

  void set_uplink(Uplink* u) { uplink_ = u; }
  // Ends transactions interrupted by a crash or power loss (E: ended with
  // stoppedReason PowerLoss), restores availability.
  void recover();
  static std::vector<double> stored_meter_registers(storage::Db& db, std::size_t evses);

  // Inputs
  void on_loop_event(const LoopEvent& e);
  void present_token(int evse, const IdToken& t);  // driver at the terminal (policy checked by caller)
  void tick();                                     // once per second
  void save_meters();                              // meter registers and running transactions' energy

  // CSMS operations (policy checked by caller)
  struct StartResult { bool accepted; std::string transaction_id; std::string reason; };
  StartResult request_start(const IdToken& t, long long remote_start_id, std::optional<int> evse);
  bool request_stop(const std::string& tx_id);
  enum class AvailStatus { Accepted, Rejected, Scheduled };
  AvailStatus change_availability(std::optional<int> evse, std::optional<int> connector, bool operative);
  // FW-6: while a firmware install waits for the running transactions to end,
  // no new session starts and the EVSEs not in use report Unavailable; not
  // persisted (a restart ends the wait) and not the operator's availability.
  void set_install_hold(bool on);
  bool install_hold() const { return install_hold_; }
  enum class UnlockStatus { Unlocked, UnlockFailed, OngoingAuthorizedTransaction, UnknownConnector };
  UnlockStatus unlock(int evse, int connector);
  void end_all_transactions(const std::string& stopped_reason, const std::string& trigger);
  void on_transaction_event_result(const std::string& tx_id, const boost::json::object& response);
  void on_online();  // BootNotification accepted (again): report every connector's status
  void refuse_new_sessions(bool refuse) { no_new_sessions_ = refuse; }

  // Queries
  bool idle() const;
  const std::vector<EvseState>& evses() const { return evses_; }
  std::optional<int> evse_of_transaction(const std::string& tx_id) const;
  ConnectorStatus connector_status(const EvseState& e, int connector = 1) const;
  void trigger_status(std::optional<int> evse, std::optional<int> connector);
  void trigger_meter_values(std::optional<int> evse);
  void trigger_transaction_event(std::optional<int> evse);
  // The measurands the device model lists under `measurands_key`, now.
  std::vector<MeterValue> meter_value(const EvseState& e, std::string_view context, std::string_view measurands_key) const;

 private:
  EvseState* evse(int id);
  void authorize_token(const IdToken& t, std::function<void(bool)> done);
  bool accepted(const std::optional<boost::json::object>& info) const;
  void try_start(EvseState& e, const std::string& trigger);
  void drop_authorization(EvseState& e);
  bool sessions_allowed() const;
  bool usable(const EvseState& e) const { return e.operative && station_operative_ && !install_hold_; }
  void start_transaction(EvseState& e, const std::string& trigger);
  void end_transaction(EvseState& e, const std::string& stopped_reason, const std::string& trigger);
  void transaction_event(EvseState& e, TxEventType type, const std::string& trigger, std::vector<MeterValue> meter,
                         const std::string& stopped_reason = {});
  void update_status(EvseState& e);
  void apply_power(EvseState& e);
  void persist_meter(EvseState& e);
  void persist_meter_register(const EvseState& e);

  const config::Config& cfg_;
  storage::Db& db_;
  core::DeviceModel& dm_;
  TxEventSink& events_;
  AuthStore& auth_;
  ControlLoop& loop_;
  Uplink* uplink_ = nullptr;
  std::vector<EvseState> evses_;
  bool station_operative_ = true;
  bool install_hold_ = false;
  bool in_unit_of_work_ = false;  // start_transaction's commit is pending
  bool no_new_sessions_ = false;  // a reset waits for idle
  std::chrono::steady_clock::time_point last_meter_persist_{};
  std::chrono::system_clock::time_point last_aligned_{};
};

std::string new_transaction_id();

}  // namespace cg::station
