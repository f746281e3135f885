// A station for the unit tests of the OCPP front end's dispatcher and
// functional blocks: every service real, on a temporary state directory
// (SQLite, the audit log, a file key store), the policy injectable, and the
// OCPP session faked (what it would send is recorded, nothing goes on a wire).
#pragma once
#include <boost/asio/io_context.hpp>
#include <boost/json.hpp>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "audit/audit_log.hpp"
#include "core/device_model.hpp"
#include "core/log.hpp"
#include "core/outbox.hpp"
#include "core/storage.hpp"
#include "ocpp/blocks/availability.hpp"
#include "ocpp/blocks/charging.hpp"
#include "ocpp/blocks/diagnostics.hpp"
#include "ocpp/blocks/firmware.hpp"
#include "ocpp/blocks/provisioning.hpp"
#include "ocpp/blocks/security.hpp"
#include "ocpp/dispatcher.hpp"
#include "ocpp/frame.hpp"
#include "ocpp/station_messages.hpp"
#include "security/cert_store.hpp"
#include "security/key_store.hpp"
#include "security/sealed_password.hpp"
#include "security/station_identity.hpp"
#include "services/availability.hpp"
#include "services/certificates.hpp"
#include "services/charging.hpp"
#include "services/gate.hpp"
#include "services/identity.hpp"
#include "services/lifecycle.hpp"
#include "services/link_events.hpp"
#include "services/network.hpp"
#include "services/security_log.hpp"
#include "services/settings.hpp"
#include "station/auth.hpp"
#include "station/control_loop.hpp"
#include "station/station.hpp"
#include "test_util.hpp"

namespace cg::test {

namespace json = boost::json;

// The session, faked: records frames, CALLs and requests for reconnection or restart.
class FakeSession final : public ocpp::SessionPort, public station::Uplink {
 public:
  // station::Uplink (online() serves both)
  std::vector<std::pair<int, std::string>> statuses;
  bool boot_refused() const override { return false; }
  void outbox_changed() override {}
  void send_status(int evse, int, station::ConnectorStatus s) override {
    statuses.emplace_back(evse, std::string(station::to_string(s)));
  }
  void send_meter_values(int, std::vector<station::MeterValue>) override {}
  void authorize(const station::IdToken&, std::function<void(std::optional<json::object>)> cb) override {
    cb(json::object{{"status", "Accepted"}});
  }

  boost::asio::io_context io_ctx;
  std::vector<std::string> frames;  // our answers, as sent
  std::vector<std::pair<std::string, json::object>> calls, persistent;
  std::vector<std::string> reconnects;
  int restarts = 0, boots = 0, heartbeats = 0;
  ocpp::BootState boot = ocpp::BootState::Accepted;
  int profile = 2;

  void call(std::string action, json::object payload, Callback) override {
    calls.emplace_back(std::move(action), std::move(payload));
  }
  void queue_persistent(std::string action, const json::object& payload) override {
    persistent.emplace_back(std::move(action), payload);
  }
  void send_frame(std::string frame, ocpp::Connection::Written done) override {
    frames.push_back(std::move(frame));
    if (done) done(true);
  }
  ocpp::BootState boot_state() const override { return boot; }
  bool online() const override { return boot == ocpp::BootState::Accepted; }
  int security_profile() const override { return profile; }
  policy::Principal csms() const override { return {policy::Role::Csms, policy::Interface::Wan, "wss://csms.test/ocpp"}; }
  std::pair<std::string, bool> csms_trust() const override { return {"/nonexistent/ca.pem", false}; }
  void reconnect(std::string why) override { reconnects.push_back(std::move(why)); }
  void send_boot() override { ++boots; }
  void heartbeat_now() override { ++heartbeats; }
  void heartbeat_interval_changed() override {}
  void restart() override { ++restarts; }
  boost::asio::io_context& io() override { return io_ctx; }
  std::int64_t outbox_pending() override { return 0; }
};

// What the fake session sent for one request: [3, id, payload] or [4, id, code, description, {}].
struct Answer {
  bool ok = false;
  json::object payload;
  std::string error, description;
};

inline policy::Decision deny_all(const policy::Principal&, policy::Operation) { return policy::Decision::Deny; }

class OcppStation {
 public:
  explicit OcppStation(services::PolicyFn policy = &policy::authorize)
      : dir_(make_temp_dir("ocpp-blocks")), policy_(std::move(policy)) {
    log::set_level(log::Level::Error);
    cfg_.identity = "CS001";
    cfg_.serial = "CG-TEST-0001";
    cfg_.organization = "Test CPO";
    cfg_.state_dir = dir_;
    cfg_.evses = {config::Evse{}, config::Evse{}};
    keys_ = security::open_file_key_store({dir_ / "keys"});
    audit_ = audit::AuditLog::open(dir_ / "audit", *keys_);
    db_ = std::make_unique<storage::Db>(dir_ / "station.db");
    dm_ = std::make_unique<core::DeviceModel>(*db_, cfg_);
    certs_ = std::make_unique<security::CertStore>(dir_);
    password_ = std::make_unique<security::SealedPassword>(*keys_, dir_);
    identity_ = std::make_unique<security::StationIdentity>(*keys_, dir_);
    auth_ = std::make_unique<station::AuthStore>(*db_, station::AuthStore::load_or_create_key(*keys_, dir_));
    outbox_ = std::make_unique<core::Outbox>(*db_);
    loop_ = std::make_unique<station::ControlLoop>(cfg_.evses, std::chrono::milliseconds(100),
                                                   std::vector<double>(cfg_.evses.size(), 0.0));
    tx_events_ = std::make_unique<ocpp::TransactionEventQueue>(*outbox_);
    station_ = std::make_unique<station::Station>(cfg_, *db_, *dm_, *tx_events_, *auth_, *loop_);
    gate_ = std::make_unique<services::Gate>(audit_.get(), [this](const policy::Principal& p, policy::Operation o) {
      return policy_(p, o);
    });
    lifecycle_ = std::make_unique<services::Lifecycle>(*gate_);
    certificates_ = std::make_unique<services::CertificateService>(*gate_, *certs_, identity_.get(), dm_.get());
    identity_service_ = std::make_unique<services::IdentityService>(*gate_, *identity_, cfg_, dm_.get());
    network_ = std::make_unique<services::NetworkService>(*gate_, *db_, cfg_, *dm_, password_.get(), identity_.get(),
                                                          certs_.get());
    settings_ = std::make_unique<services::SettingsService>(*gate_, *dm_, password_.get(), *network_);
    charging_ = std::make_unique<services::ChargingService>(*gate_, *station_, *auth_, *dm_, *outbox_, loop_.get());
    availability_ = std::make_unique<services::AvailabilityService>(*gate_, *station_, *db_);
    security_log_ = std::make_unique<services::SecurityLogService>(*gate_, *audit_, dir_ / "diagnostics.log");
    link_ = std::make_unique<services::LinkEvents>(*gate_);
    dispatcher_ = std::make_unique<ocpp::Dispatcher>(session, *link_);
    security_ = std::make_unique<ocpp::SecurityBlock>(session, *dispatcher_, cfg_, *dm_, certificates_.get(),
                                                      identity_service_.get(), password_.get(), *link_);
    provisioning_ = std::make_unique<ocpp::ProvisioningBlock>(session, *dispatcher_, *settings_, *network_,
                                                              [this] { security_->password_changed(); });
    charging_block_ = std::make_unique<ocpp::ChargingBlock>(
        session, *dispatcher_, *charging_, *dm_, [this](const policy::Principal& who) { security_->renew(who); });
    availability_block_ = std::make_unique<ocpp::AvailabilityBlock>(session, *dispatcher_, *availability_);
    diagnostics_ = std::make_unique<ocpp::DiagnosticsBlock>(session, *dispatcher_, security_log_.get());
    slots_ = std::make_unique<firmware::SlotStore>(dir_ / "firmware");
    floor_ = std::make_unique<firmware::SecurityFloor>(dir_ / "firmware" / "floor", keys_.get());
    firmware_ = std::make_unique<services::FirmwareService>(*gate_, *slots_, *floor_, *certs_,
                                                            services::FirmwareRules{cfg_.model, 3, 64 << 20});
    firmware_block_ = std::make_unique<ocpp::FirmwareBlock>(session, *dispatcher_, firmware_.get(), *availability_);
    station_->set_uplink(&session);
  }
  ~OcppStation() {
    firmware_block_.reset();
    diagnostics_.reset();
    availability_block_.reset();
    charging_block_.reset();
    provisioning_.reset();
    security_.reset();
    dispatcher_.reset();
    station_.reset();
    loop_.reset();
    std::filesystem::remove_all(dir_);
  }

  void set_policy(services::PolicyFn p) { policy_ = std::move(p); }

  // A CSMS request through the dispatcher (as the inbound stage passes it on); the answer sent.
  Answer request(const std::string& action, const json::object& payload) {
    const std::string id = "req-" + std::to_string(++next_id_);
    dispatcher_->handle(ocpp::InboundCall{id, action, payload, std::nullopt});
    return last_answer(id);
  }
  Answer request(const std::string& action, std::string_view payload_json) {
    return request(action, json::parse(payload_json).as_object());
  }
  Answer last_answer(const std::string& id) const {
    Answer a;
    if (session.frames.empty()) return a;
    const auto v = json::parse(session.frames.back()).as_array();
    if (v.at(1).as_string() != id) return a;
    if (v.at(0).as_int64() == 3) {
      a.ok = true;
      a.payload = v.at(2).as_object();
    } else {
      a.error = std::string(v.at(2).as_string());
      a.description = std::string(v.at(3).as_string());
    }
    return a;
  }

  // The records of the security log, parsed (body only).
  std::vector<json::object> records() const {
    std::vector<json::object> out;
    audit::for_each_record(audit::log_file(dir_ / "audit"), 1, [&](const audit::RecordView& r) {
      out.push_back(json::parse(r.line.substr(0, r.line.find('\t'))).as_object());
      return true;
    });
    return out;
  }
  std::vector<json::object> records_of(std::string_view type) const {
    std::vector<json::object> out;
    for (auto& r : records())
      if (r.at("type").as_string() == type) out.push_back(r);
    return out;
  }

  FakeSession session;
  const std::filesystem::path& dir() const { return dir_; }
  ocpp::Dispatcher& dispatcher() { return *dispatcher_; }
  station::Station& station() { return *station_; }
  station::ControlLoop& loop() { return *loop_; }
  core::Outbox& outbox() { return *outbox_; }
  storage::Db& db() { return *db_; }
  core::DeviceModel& dm() { return *dm_; }
  services::ChargingService& charging() { return *charging_; }
  services::Lifecycle& lifecycle() { return *lifecycle_; }
  services::Gate& gate() { return *gate_; }
  ocpp::AvailabilityBlock& availability_block() { return *availability_block_; }
  ocpp::SecurityBlock& security_block() { return *security_; }

 private:
  std::filesystem::path dir_;
  services::PolicyFn policy_;
  config::Config cfg_;
  std::unique_ptr<security::KeyStore> keys_;
  std::unique_ptr<audit::AuditLog> audit_;
  std::unique_ptr<storage::Db> db_;
  std::unique_ptr<core::DeviceModel> dm_;
  std::unique_ptr<security::CertStore> certs_;
  std::unique_ptr<security::SealedPassword> password_;
  std::unique_ptr<security::StationIdentity> identity_;
  std::unique_ptr<station::AuthStore> auth_;
  std::unique_ptr<core::Outbox> outbox_;
  std::unique_ptr<station::ControlLoop> loop_;
  std::unique_ptr<ocpp::TransactionEventQueue> tx_events_;
  std::unique_ptr<station::Station> station_;
  std::unique_ptr<services::Gate> gate_;
  std::unique_ptr<services::Lifecycle> lifecycle_;
  std::unique_ptr<services::CertificateService> certificates_;
  std::unique_ptr<services::IdentityService> identity_service_;
  std::unique_ptr<services::NetworkService> network_;
  std::unique_ptr<services::SettingsService> settings_;
  std::unique_ptr<services::ChargingService> charging_;
  std::unique_ptr<services::AvailabilityService> availability_;
  std::unique_ptr<services::SecurityLogService> security_log_;
  std::unique_ptr<services::LinkEvents> link_;
  std::unique_ptr<ocpp::Dispatcher> dispatcher_;
  std::unique_ptr<ocpp::SecurityBlock> security_;
  std::unique_ptr<ocpp::ProvisioningBlock> provisioning_;
  std::unique_ptr<ocpp::ChargingBlock> charging_block_;
  std::unique_ptr<ocpp::AvailabilityBlock> availability_block_;
  std::unique_ptr<ocpp::DiagnosticsBlock> diagnostics_;
  std::unique_ptr<firmware::SlotStore> slots_;
  std::unique_ptr<firmware::SecurityFloor> floor_;
  std::unique_ptr<services::FirmwareService> firmware_;
  std::unique_ptr<ocpp::FirmwareBlock> firmware_block_;
  int next_id_ = 0;
};

// A schema-valid request for every action a block serves (what the deny-all
// test sends to every route; a route without an entry fails that test).
inline const std::map<std::string, std::string>& sample_requests() {
  static const std::map<std::string, std::string> r{
      {"GetVariables", R"({"getVariableData":[{"component":{"name":"OCPPCommCtrlr"},"variable":{"name":"HeartbeatInterval"}}]})"},
      {"SetVariables",
       R"({"setVariableData":[{"attributeValue":"60","component":{"name":"OCPPCommCtrlr"},"variable":{"name":"HeartbeatInterval"}}]})"},
      {"GetBaseReport", R"({"requestId":1,"reportBase":"FullInventory"})"},
      {"SetNetworkProfile",
       R"({"configurationSlot":1,"connectionData":{"ocppVersion":"OCPP20","ocppTransport":"JSON","ocppCsmsUrl":"wss://csms.test/ocpp","messageTimeout":30,"securityProfile":2,"ocppInterface":"Wired0"}})"},
      {"Reset", R"({"type":"Immediate"})"},
      {"ChangeAvailability", R"({"operationalStatus":"Inoperative"})"},
      {"RequestStartTransaction", R"({"idToken":{"idToken":"AB12CD34","type":"ISO14443"},"remoteStartId":7})"},
      {"RequestStopTransaction", R"({"transactionId":"no-such-transaction"})"},
      {"UnlockConnector", R"({"evseId":1,"connectorId":1})"},
      {"TriggerMessage", R"({"requestedMessage":"StatusNotification"})"},
      {"ClearCache", R"({})"},
      {"SendLocalList",
       R"({"versionNumber":3,"updateType":"Full","localAuthorizationList":[{"idToken":{"idToken":"AB12CD34","type":"ISO14443"},"idTokenInfo":{"status":"Accepted"}}]})"},
      {"GetLocalListVersion", R"({})"},
      {"GetTransactionStatus", R"({})"},
      {"DataTransfer", R"({"vendorId":"com.example"})"},
      {"GetLog", R"({"logType":"SecurityLog","requestId":5,"log":{"remoteLocation":"https://logs.test/upload"}})"},
      {"CertificateSigned", R"({"certificateChain":"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"})"},
      {"InstallCertificate", R"({"certificateType":"CSMSRootCertificate","certificate":"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"})"},
      {"DeleteCertificate",
       R"({"certificateHashData":{"hashAlgorithm":"SHA256","issuerNameHash":"00","issuerKeyHash":"00","serialNumber":"01"}})"},
      {"GetInstalledCertificateIds", R"({})"},
      {"UpdateFirmware",
       R"({"requestId":9,"firmware":{"location":"https://fw.test/image","retrieveDateTime":"2026-01-01T00:00:00Z","signingCertificate":"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n","signature":"AAAA"}})"},
  };
  return r;
}

}  // namespace cg::test
