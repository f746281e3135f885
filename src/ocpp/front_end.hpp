// The OCPP front end, assembled: the session, the dispatcher and the
// functional blocks (provisioning, charging, availability + reset, security,
// diagnostics), each given the services it needs. The daemon builds one.
//
//   connection (TLS, WebSocket, limits) -> Session -> decode() (pure)
//     -> Dispatcher (replay, boot gate, route) -> block -> service
//     -> Gate::admit (the one policy) -> work -> Gate::record (the one audit record)
// REQ: AUTHZ-1, CHG-1, COM-1
#pragma once
#include <functional>

#include "core/outbox.hpp"
#include "ocpp/blocks/availability.hpp"
#include "ocpp/blocks/charging.hpp"
#include "ocpp/blocks/diagnostics.hpp"
#include "ocpp/blocks/firmware.hpp"
#include "ocpp/blocks/provisioning.hpp"
#include "ocpp/blocks/security.hpp"
#include "ocpp/dispatcher.hpp"
#include "ocpp/session.hpp"
#include "services/availability.hpp"
#include "services/certificates.hpp"
#include "services/charging.hpp"
#include "services/identity.hpp"
#include "services/lifecycle.hpp"
#include "services/link_events.hpp"
#include "services/network.hpp"
#include "services/security_log.hpp"
#include "services/settings.hpp"

namespace cg::ocpp {

struct Services {
  services::SettingsService& settings;
  services::NetworkService& network;
  services::ChargingService& charging;
  services::AvailabilityService& availability;
  services::LinkEvents& link;
  services::Lifecycle& lifecycle;
  services::CertificateService* certificates = nullptr;
  services::IdentityService* identity = nullptr;
  services::SecurityLogService* security_log = nullptr;
  services::FirmwareService* firmware = nullptr;  // null: not under the boot stage (no slots)
};

class FrontEnd {
 public:
  struct Deps {
    boost::asio::io_context& io;
    const config::Config& cfg;
    storage::Db& db;
    core::DeviceModel& dm;
    core::Outbox& outbox;
    station::Station& station;
    Services services;
    security::SealedPassword* password = nullptr;  // A01 (profiles 1/2)
    security::CertStore* certs = nullptr;          // the CSMS roots TLS trusts
    std::function<void()> request_restart;         // Reset
    std::string firmware_version = CG_VERSION;     // BootNotification's chargingStation.firmwareVersion
    std::function<void()> boot_accepted;           // after each accepted BootNotification (firmware confirmation)
  };
  explicit FrontEnd(Deps d);

  void start();
  void stop();
  void tick();  // once a second

  Session& session() { return session_; }
  Dispatcher& dispatcher() { return dispatcher_; }
  bool online() const { return session_.online(); }

 private:
  Deps d_;
  Session session_;
  Dispatcher dispatcher_;
  SecurityBlock security_;
  ProvisioningBlock provisioning_;
  ChargingBlock charging_;
  AvailabilityBlock availability_;
  DiagnosticsBlock diagnostics_;
  FirmwareBlock firmware_;
};

}  // namespace cg::ocpp
