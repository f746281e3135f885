// The OCPP 2.0.1 session: the connection's life (connect on the network slot
// the network service names, randomized back-off, BootNotification until
// accepted, heartbeat and the CSMS clock), one outstanding CALL at a time, the
// in-memory queue before the persistent outbox, schema checks of our CALLs
// and of the CSMS's answers, and the station's uplink (status, meter values,
// Authorize). Inbound text goes through the pure inbound stage to the
// dispatcher. Credentials come from the security block (LinkCredentials);
// what the security log must show goes through the link-events and network
// services.
// REQ: CHG-1, COM-1, COM-5 (in part), NET-3, NET-6
#pragma once
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/json/object.hpp>
#include <deque>
#include <functional>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "core/config.hpp"
#include "core/device_model.hpp"
#include "core/outbox.hpp"
#include "core/storage.hpp"
#include "ocpp/connection.hpp"
#include "ocpp/dispatcher.hpp"
#include "ocpp/link_credentials.hpp"
#include "ocpp/session_port.hpp"
#include "security/cert_store.hpp"
#include "services/link_events.hpp"
#include "services/network.hpp"
#include "station/station.hpp"

namespace cg::ocpp {

class Session final : public ConnectionHandler, public station::Uplink, public SessionPort {
 public:
  struct Deps {
    boost::asio::io_context& io;
    const config::Config& cfg;
    storage::Db& db;
    core::DeviceModel& dm;
    core::Outbox& outbox;
    services::NetworkService& network;
    services::LinkEvents& events;
    security::CertStore* certs = nullptr;  // the CSMS roots TLS trusts (may be null: csms.ca_file)
    std::function<void()> request_restart;  // Reset: restart the daemon
    std::string firmware_version = CG_VERSION;  // the running image's manifest version
  };
  explicit Session(Deps d);
  ~Session() override;

  // Wiring (before start): who handles CSMS requests, who authenticates us,
  // who hears of an accepted boot (the verified CSMS chain, for M05), who
  // hears of a TransactionEvent's answer.
  void set_dispatcher(Dispatcher* d) { dispatcher_ = d; }
  void set_credentials(LinkCredentials* c) { credentials_ = c; }
  void on_boot_accepted(std::function<void(const security::CertChain&)> fn) { boot_accepted_ = std::move(fn); }
  void on_transaction_event_answer(std::function<void(const std::string& tx_id, const boost::json::object&)> fn) {
    tx_answer_ = std::move(fn);
  }
  void on_stop(std::function<void()> fn) { on_stop_.push_back(std::move(fn)); }
  // BootNotification accepted (again): the station reports every connector.
  void on_online(std::function<void()> fn) { online_ = std::move(fn); }
  // A queued message was moved to outbox_rejected (its retention applies).
  void on_quarantined(std::function<void()> fn) { quarantined_ = std::move(fn); }

  void start();
  void stop();  // closes the connection; no reconnect

  // station::Uplink
  bool online() const override { return connected_ && boot_ == BootState::Accepted; }
  bool boot_refused() const override {
    return connected_ && (boot_ == BootState::Pending || boot_ == BootState::Rejected);
  }
  void outbox_changed() override { pump(); }
  void send_status(int evse, int connector, station::ConnectorStatus status) override;
  void send_meter_values(int evse, std::vector<station::MeterValue> meter_value) override;
  void authorize(const station::IdToken& t, std::function<void(std::optional<boost::json::object>)> cb) override;

  // SessionPort
  void call(std::string action, boost::json::object payload, Callback cb = {}) override;
  void queue_persistent(std::string action, const boost::json::object& payload) override;
  void send_frame(std::string frame, Connection::Written done = {}) override;
  BootState boot_state() const override { return boot_; }
  int security_profile() const override { return network_.current().security_profile; }
  policy::Principal csms() const override;
  std::pair<std::string, bool> csms_trust() const override;
  void reconnect(std::string why) override;
  void send_boot() override;
  void heartbeat_now() override;
  void heartbeat_interval_changed() override { schedule_heartbeat(); }
  void restart() override;
  boost::asio::io_context& io() override { return d_.io; }
  std::int64_t outbox_pending() override { return d_.outbox.size(); }

 private:
  // ConnectionHandler
  void on_open() override;
  void on_message(std::string&& text) override;
  void on_oversize(std::size_t bytes, std::string id_hint) override;
  void on_closed(const std::string& reason, int http_status, TlsFailure tls) override;

  struct Pending {
    std::string action;
    boost::json::object payload;
    Callback cb;
  };
  struct InFlight {
    std::string id, action;
    Callback cb;
    std::int64_t outbox_seq = 0;
    std::string tx_id;
  };
  void pump();
  void send_call(const std::string& action, const boost::json::object& payload, Callback cb, std::int64_t outbox_seq,
                 const std::string& tx_id);
  void finish_inflight(const CallOutcome& o);
  void schedule_reconnect();
  void schedule_heartbeat();
  void connect();
  void attempt_failed(const std::string& reason);
  std::string next_id();
  void adjust_clock(std::string_view csms_time, std::string_view source);

  Deps d_;
  services::NetworkService& network_;
  Dispatcher* dispatcher_ = nullptr;
  LinkCredentials* credentials_ = nullptr;
  std::function<void(const security::CertChain&)> boot_accepted_;
  std::function<void(const std::string&, const boost::json::object&)> tx_answer_;
  std::vector<std::function<void()>> on_stop_;
  std::function<void()> online_, quarantined_;
  Connection conn_;
  boost::asio::steady_timer reconnect_timer_, heartbeat_timer_, boot_timer_, call_timer_, outbox_timer_;
  bool keep_slot_ = false;  // the coming close is reconnect()'s: stay on the working slot
  bool running_ = false;
  bool connected_ = false;
  BootState boot_ = BootState::None;
  std::string boot_reason_ = "PowerUp";
  int reconnect_attempt_ = 0;
  std::deque<Pending> queue_;
  std::optional<InFlight> inflight_;
  std::chrono::steady_clock::time_point outbox_retry_at_{};
  bool in_handler_ = false;     // a CSMS request is being handled: our answer goes first
  bool pump_deferred_ = false;
  std::uint64_t id_counter_ = 0;
  std::string id_prefix_;
  std::mt19937 rng_;
};

}  // namespace cg::ocpp
