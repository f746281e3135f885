// The OCPP 2.0.1 client: connection lifecycle (boot, heartbeat, reconnect with
// randomized back-off), one outstanding CALL at a time, the persistent outbox,
// schema checks both ways, and dispatch of CSMS requests through the one policy.
// REQ: CHG-1, COM-1, COM-5 (in part), NET-3, AUTHZ-1
#pragma once
#include <array>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/json/object.hpp>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <tuple>
#include <utility>

#include "audit/audit_log.hpp"
#include "audit/rate_limit.hpp"
#include "core/config.hpp"
#include "core/storage.hpp"
#include "ocpp/connection.hpp"
#include "core/device_model.hpp"
#include "ocpp/errors.hpp"
#include "core/outbox.hpp"
#include "ocpp/network_profiles.hpp"
#include "policy/policy.hpp"
#include "security/sealed_password.hpp"
#include "security/cert_store.hpp"
#include "security/station_identity.hpp"
#include "station/station.hpp"

namespace cg::ocpp {

using core::DeviceModel;
using core::Outbox;
using core::SetStatus;
using core::GetStatus;
using core::VarRef;
using core::Variable;
using core::Mutability;
using core::DataType;

class ChargePoint : public ConnectionHandler, public station::Uplink {
 public:
  struct Deps {
    boost::asio::io_context& io;
    const config::Config& cfg;
    storage::Db& db;
    DeviceModel& dm;
    Outbox& outbox;
    station::Station& station;
    station::AuthStore& auth;
    // Basic auth (profiles 1/2): the sealed password, unsealed just before each
    // connection attempt; rotated by SetVariables(BasicAuthPassword) (A01).
    security::SealedPassword* password = nullptr;
    // The station's key pair and certificate (profile 3; A02/A03 renewal). May be null.
    security::StationIdentity* identity = nullptr;
    // Installed roots (M03/M04/M05); the CSMS roots of its bundle are what TLS trusts. May be null.
    security::CertStore* certs = nullptr;
    std::function<void()> request_restart;  // Reset: restart the daemon
    audit::AuditLog* audit = nullptr;       // the one audit API (may be null in tests)
  };
  explicit ChargePoint(Deps d);
  ~ChargePoint() override;

  void start();
  void stop();  // closes the connection; no reconnect

  // station::Uplink
  bool online() const override { return connected_ && boot_status_ == BootStatus::Accepted; }
  bool boot_refused() const override {
    return connected_ && (boot_status_ == BootStatus::Pending || boot_status_ == BootStatus::Rejected);
  }
  void outbox_changed() override { pump(); }
  void send_status(int evse, int connector, station::ConnectorStatus status) override;
  void send_meter_values(int evse, std::vector<station::MeterValue> meter_value) override;
  void authorize(const station::IdToken& t, std::function<void(std::optional<boost::json::object>)> cb) override;

  void tick();  // once per second (scheduled resets)

  // Counters for diagnostics and benchmarks.
  struct Stats {
    std::uint64_t calls_in = 0, calls_out = 0, errors_sent = 0, oversize = 0, reconnects = 0;
  };
  const Stats& stats() const { return stats_; }

  // The answer of a handler to a CSMS request.
  struct Reply {
    std::optional<boost::json::object> payload;  // CALLRESULT
    RpcError error = RpcError::InternalError;    // CALLERROR when no payload
    std::string description;
    std::function<void()> after;  // runs after the reply was queued for sending
  };
  // {"status": status} and, when reason_code is given, statusInfo {reasonCode, additionalInfo}.
  static Reply status_reply(std::string_view status, std::string_view reason_code = {}, std::string_view info = {});
  static Reply rejected(std::string_view reason_code, std::string_view info) {
    return status_reply("Rejected", reason_code, info);
  }

 private:
  // ConnectionHandler
  void on_open() override;
  void on_message(std::string&& text) override;
  void on_oversize(std::size_t bytes, std::string id_hint) override;
  void on_closed(const std::string& reason, int http_status, TlsFailure tls) override;

  // Outgoing CALLs
  struct Outcome {
    bool ok = false;  // CALLRESULT received and schema-valid
    boost::json::object payload;
    std::string error;  // CALLERROR code or local reason
  };
  using Callback = std::function<void(const Outcome&)>;
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
  void call(std::string action, boost::json::object payload, Callback cb = {});
  // outbox_rejected within its retention (count, age), redacted; audited.
  void retain_rejected();
  void pump();
  void send_call(const std::string& action, const boost::json::object& payload, Callback cb, std::int64_t outbox_seq,
                 const std::string& tx_id);
  void finish_inflight(const Outcome& o);
  void send_boot();
  void schedule_reconnect();
  void schedule_heartbeat();
  void connect();
  std::string next_id();

  // Incoming CALLs
  using HandlerFn = Reply (ChargePoint::*)(const boost::json::object&);
  struct Route {
    policy::Operation op;
    HandlerFn fn;
  };
  static const std::map<std::string, Route, std::less<>>& routes();
  void handle_call(std::string id, std::string action, boost::json::object payload);
  void send_error(const std::string& id, RpcError code, const std::string& description,
                  const std::string& action = {});
  void audit(audit::Event e, audit::Outcome o, const audit::Details& d = {});
  void adjust_clock(std::string_view csms_time, std::string_view source);

  // Handlers: provisioning (handlers_provisioning.cpp)
  Reply on_get_variables(const boost::json::object& req);
  Reply on_set_variables(const boost::json::object& req);
  Reply on_get_base_report(const boost::json::object& req);
  Reply on_reset(const boost::json::object& req);
  void send_report(long long request_id, std::string_view base);
  void do_reset(const std::string& boot_reason);
  // A01: SecurityCtrlr.BasicAuthPassword; {status, reasonCode}; `info` says why
  // (never the value).
  DeviceModel::SetResult set_basic_auth_password(std::string_view value, std::string& info);
  // Closes the connection shortly after the current answer left; the reconnect
  // uses the new credentials (password, certificate). The outbox keeps every
  // queued message.
  void reconnect_after_reply(std::string_view why);
  // B09/B10 network profiles (handlers_provisioning.cpp)
  Reply on_set_network_profile(const boost::json::object& req);
  DeviceModel::SetResult set_network_priority(std::string_view value, std::string& info);
  Credentials credentials() const;
  // COM-6: a local setting (configuration file), never one the CSMS can change.
  bool allow_downgrade() const { return d_.cfg.allow_security_profile_downgrade; }
  void begin_network_rotation();
  // A connection attempt with the current network profile failed (B10 fallback).
  void network_attempt_failed(const std::string& reason);
  void network_profile_worked();  // BootNotification Accepted through the current slot
  int security_profile() const { return profiles_.current().security_profile; }
  const std::string& csms_url() const { return profiles_.current().url; }
  policy::Principal csms_principal() const;
  // The CA file the CSMS and log-upload servers are verified against, and
  // whether it needs partial chains (COM-2, COM-9).
  std::pair<std::string, bool> csms_trust() const;
  // Handlers: security (handlers_security.cpp) — A02/A03 renewal, COM-10
  Reply on_certificate_signed(const boost::json::object& req);
  void start_renewal(std::string_view why);
  void send_sign_certificate();
  void end_renewal(const std::string& failure);  // "" = success (the candidate stays)
  void check_certificate_expiry();
  std::shared_ptr<const security::TlsClientIdentity> connection_identity();
  void candidate_connected();
  void candidate_failed(const std::string& why);
  void candidate_attempt_failed(const std::string& reason, int http_status, TlsFailure tls);
  std::vector<security::X509Ptr> station_ca_roots() const;
  std::string organization_name() const;
  Reply on_install_certificate(const boost::json::object& req);
  Reply on_delete_certificate(const boost::json::object& req);
  Reply on_get_installed_certificate_ids(const boost::json::object& req);
  void update_certificate_entries();
  // M05 AdditionalRootCertificateCheck: the connection went through the new CSMS root.
  void confirm_csms_root_change();
  // Handlers: charging (handlers_charging.cpp)
  Reply on_request_start(const boost::json::object& req);
  Reply on_request_stop(const boost::json::object& req);
  Reply on_change_availability(const boost::json::object& req);
  Reply on_unlock_connector(const boost::json::object& req);
  Reply on_trigger_message(const boost::json::object& req);
  Reply on_clear_cache(const boost::json::object& req);
  Reply on_send_local_list(const boost::json::object& req);
  Reply on_get_local_list_version(const boost::json::object& req);
  Reply on_get_transaction_status(const boost::json::object& req);
  Reply on_data_transfer(const boost::json::object& req);
  // Handlers: diagnostics (handlers_diagnostics.cpp) — N01 GetLog
  Reply on_get_log(const boost::json::object& req);
  struct LogJob;
  void start_log_job(const std::shared_ptr<LogJob>& job);
  void log_attempt(const std::shared_ptr<LogJob>& job);
  void log_finish(const std::shared_ptr<LogJob>& job, std::string_view status, const std::string& detail);
  void cancel_log_job(bool notify);
  void stop_log_job();
  void queue_log_status(std::string_view status, long long request_id);

  Deps d_;
  NetworkProfiles profiles_;  // where to connect: the slots and the B10 rotation
  Connection conn_;
  boost::asio::steady_timer reconnect_timer_, heartbeat_timer_, boot_timer_, call_timer_, outbox_timer_;
  boost::asio::steady_timer log_timer_;  // GetLog retryInterval
  boost::asio::steady_timer rotate_timer_;  // A01/A02: reconnect once the answer left
  boost::asio::steady_timer renewal_timer_;  // A02: CertSigningWaitMinimum
  struct Renewal {
    bool active = false;  // a CSR was made and no certificate accepted yet
    int attempts = 0;     // SignCertificate repeats so far
    std::string csr;
    std::chrono::steady_clock::time_point last_auto{};  // COM-10: last automatic start
  };
  Renewal renewal_;
  bool keep_slot_ = false;  // the coming close is reconnect_after_reply's: stay on the working slot
  bool trying_candidate_ = false;  // this connection attempt uses the renewed certificate
  int candidate_failures_ = 0;
  int expiry_check_countdown_ = 0;  // ticks until the next COM-10 check
  // A01 state: a new password not yet confirmed by a successful connection
  // (the previous sealed one is kept); on its first HTTP 401 the previous one
  // is tried once (using_previous_).
  bool rotation_pending_ = false;
  bool using_previous_ = false;
  bool fallback_tried_ = false;
  std::shared_ptr<LogJob> log_job_;      // the running GetLog upload (at most one)
  bool running_ = false;
  bool connected_ = false;
  // RegistrationStatusEnumType of the last BootNotification answer of this connection.
  enum class BootStatus { None, Pending, Accepted, Rejected };
  BootStatus boot_status_ = BootStatus::None;
  std::string boot_reason_ = "PowerUp";
  int reconnect_attempt_ = 0;
  std::deque<Pending> queue_;
  std::optional<InFlight> inflight_;
  std::chrono::steady_clock::time_point outbox_retry_at_{};
  std::set<std::string> seen_ids_;  // CALL ids seen in this session (COM-5)
  std::deque<std::string> seen_order_;
  std::optional<std::string> pending_reset_;
  bool in_handler_ = false;  // a CSMS request is being handled: our answer goes first
  bool pump_deferred_ = false;  // OnIdle reset waiting for idle
  std::uint64_t id_counter_ = 0;
  std::string id_prefix_;
  std::mt19937 rng_;
  Stats stats_;
  // Audit records a peer can trigger at will are rate-limited: InvalidMessages
  // 10 a minute; each kind of TLS failure (certificate, version, cipher suite)
  // 3 per 15 minutes.
  audit::RecordLimiter invalid_limit_{10, std::chrono::minutes(1)};
  audit::RecordLimiter fallback_limit_{3, std::chrono::minutes(15)};  // B10 switches to the next slot
  std::array<audit::RecordLimiter, 3> tls_limit_{audit::RecordLimiter{3, std::chrono::minutes(15)},
                                                 audit::RecordLimiter{3, std::chrono::minutes(15)},
                                                 audit::RecordLimiter{3, std::chrono::minutes(15)}};
};

}  // namespace cg::ocpp
