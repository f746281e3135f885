// Functional blocks A (security) and M (certificate management) of OCPP
// 2.0.1: CertificateSigned, InstallCertificate, DeleteCertificate,
// GetInstalledCertificateIds, the A02/A03 renewal (SignCertificate with
// retries), the COM-10 expiry watch, and the credentials of the link (A01
// password rotation, A02 certificate on trial) for the session.
//
// A renewal: a new key "station.next" is made in the key store, a CSR (CN =
// serial number, O = SecurityCtrlr.OrganizationName) goes to the CSMS in
// SignCertificate; without a CertificateSigned within CertSigningWaitMinimum
// (doubled per attempt) the CSR is sent again, CertSigningRepeatTimes times
// (A02.FR.17). A CertificateSigned chain is checked and stored as the
// candidate; at profile 3 the station reconnects with it and promotes it on
// the first successful connection, or discards it and goes back to the old
// certificate when the CSMS does not accept it. Every step is audited by the
// identity service.
// REQ: COM-4, COM-6, COM-7, COM-10
#pragma once
#include <boost/asio/steady_timer.hpp>
#include <chrono>

#include "core/config.hpp"
#include "core/device_model.hpp"
#include "ocpp/dispatcher.hpp"
#include "ocpp/link_credentials.hpp"
#include "ocpp/session_port.hpp"
#include "security/sealed_password.hpp"
#include "services/certificates.hpp"
#include "services/identity.hpp"
#include "services/link_events.hpp"

namespace cg::ocpp {

class SecurityBlock final : public LinkCredentials {
 public:
  // `certs`, `identity` and `password` may be null (the station has none).
  SecurityBlock(SessionPort& session, Dispatcher& dispatcher, const config::Config& cfg, core::DeviceModel& dm,
                services::CertificateService* certs, services::IdentityService* identity,
                security::SealedPassword* password, services::LinkEvents& events);

  // At start: a renewal a restart interrupted goes on.
  void start();
  void stop();
  void tick();  // once a second: COM-10
  // TriggerMessage(SignChargingStationCertificate), after the answer.
  void renew(const policy::Principal& who);
  bool can_renew() const { return identity_ != nullptr; }
  // A01: SetVariables stored a new BasicAuthPassword.
  void password_changed();
  // The CSMS accepted the boot through this connection (M05 root change).
  void boot_accepted(const security::CertChain& verified);

  // LinkCredentials
  std::shared_ptr<const security::TlsClientIdentity> client_identity() override;
  Result<security::SecretBytes> password() override;
  void connected(int security_profile) override;
  bool closed(const std::string& reason, int http_status, TlsFailure tls, int security_profile) override;
  void new_slot() override { using_previous_ = false; }  // A01: the next slot gets the new password first

 private:
  Reply on_certificate_signed(const boost::json::object& req);
  Reply on_install_certificate(const boost::json::object& req);
  Reply on_delete_certificate(const boost::json::object& req);
  Reply on_get_installed_certificate_ids(const boost::json::object& req);
  void begin(Result<std::string> csr);
  void send_sign_certificate();
  void end_renewal(const std::string& failure);  // "" = success (the candidate stays)
  void check_expiry();
  void candidate_connected();
  void candidate_failed(const std::string& why);

  SessionPort& session_;
  const config::Config& cfg_;
  core::DeviceModel& dm_;
  services::CertificateService* certs_;
  services::IdentityService* identity_;
  security::SealedPassword* password_;
  services::LinkEvents& events_;
  boost::asio::steady_timer renewal_timer_;  // A02: CertSigningWaitMinimum
  struct Renewal {
    bool active = false;  // a CSR was made and no certificate accepted yet
    int attempts = 0;     // SignCertificate repeats so far
    std::string csr;
    std::chrono::steady_clock::time_point last_auto{};  // COM-10: last automatic start
  };
  Renewal renewal_;
  int expiry_check_countdown_ = 0;  // ticks until the next COM-10 check
  bool trying_candidate_ = false;   // this connection attempt uses the renewed certificate
  int candidate_failures_ = 0;
  // A01: a new password not yet confirmed by a successful connection (the
  // previous sealed one is kept); on its first HTTP 401 the previous one is
  // tried once (using_previous_).
  bool rotation_pending_ = false;
  bool using_previous_ = false;
  bool fallback_tried_ = false;
};

}  // namespace cg::ocpp
