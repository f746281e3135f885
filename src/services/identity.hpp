// The station's own identity for security profile 3, for every front end:
// the CSMS renews it (A02/A03: TriggerMessage, SignCertificate,
// CertificateSigned), the station renews it before expiry (COM-10), a local
// admin provisions it (`chargeguard pki provision` / `install-cert`). The
// checks are StationIdentity's (security/station_identity.hpp); this service
// adds who may ask (ManageSecuritySettings), the operator CA roots the chain
// must lead to, the expected CN/O, and one audit record per step. The
// renewal's protocol state (attempts, timers) stays with the OCPP security
// block; what survives a restart (key, request, candidate) is here.
// REQ: COM-4, COM-6, COM-10, AUTHZ-1, LOG-1
#pragma once
#include <chrono>
#include <memory>
#include <optional>
#include <string>

#include "core/config.hpp"
#include "core/device_model.hpp"
#include "core/result.hpp"
#include "security/station_identity.hpp"
#include "services/gate.hpp"

namespace cg::services {

class IdentityService {
 public:
  // `dm` may be null (the CLI): then the organization is the configuration's.
  IdentityService(Gate& gate, security::StationIdentity& identity, const config::Config& cfg, core::DeviceModel* dm);

  // The station certificate (profile 3) as the maintenance UI shows it
  // (ReadStatus); nullopt when the station has none.
  Result<std::optional<security::CertificateSummary>> current(const policy::Principal& who);

  // ---- renewal (A02/A03, COM-10)
  // A new key and certificate request; returns the CSR (PEM). `trigger` says
  // why (TriggerMessage, expiry). The CSMS asks with its principal; the
  // expiry watch is the station's own decision (no principal).
  Result<std::string> begin_renewal(const policy::Principal& who, std::string_view trigger);
  Result<std::string> begin_renewal_for_expiry();
  // A renewal a restart interrupted: its request when it can go on (audited),
  // nothing when there is none (a stale key is dropped).
  std::optional<std::string> resume_renewal();
  // CertificateSigned: checked and stored as the candidate. A refusal is an
  // InvalidChargingStationCertificate record (Errc::Rejected, the reason).
  Result<security::CertificateSummary> accept_certificate(const policy::Principal& who, std::string_view pem,
                                                          std::size_t max_chars, bool reconnecting);
  // The renewal ended without a certificate (rejected, no answer): the key goes.
  void renewal_failed(const std::string& why);
  bool renewal_pending() { return identity_.renewal_key_exists() && !identity_.has_candidate(); }
  // COM-10: the identity in use expires within `lead` (and no renewal runs).
  bool expires_within(std::chrono::hours lead) const;

  // ---- the connection's identity
  struct ForConnection {
    std::shared_ptr<const security::TlsClientIdentity> identity;  // null: none usable
    bool candidate = false;  // the renewed certificate, on trial
  };
  ForConnection for_connection();
  // The candidate connected: it becomes the identity (old key deleted).
  void promote_candidate();
  // The candidate failed (refused by the CSMS, unusable): back to the old one.
  void discard_candidate(const std::string& why);

  // ---- provisioning (a local admin, pki provision / install-cert)
  Result<security::KeyInfo> provision_key(const policy::Principal& who, security::KeyType type);
  Result<security::CertificateSummary> install_chain(const policy::Principal& who, std::string_view pem,
                                                     std::string_view how);

  std::string organization() const;
  security::StationIdentity& identity() { return identity_; }

 private:
  Result<std::string> start(const audit::Source& src, std::string_view trigger);
  // The chain for the key pair `label`: operator CA roots, crypto policy, key, CN/O.
  Result<void> check(const security::CertChain& chain, std::string_view label);
  void record_change(const audit::Source& src, audit::Outcome o, audit::Details d);

  Gate& gate_;
  security::StationIdentity& identity_;
  const config::Config& cfg_;
  core::DeviceModel* dm_;
};

}  // namespace cg::services
