// The installed roots, for every front end: OCPP M03/M04/M05 (the CSMS) and
// `chargeguard pki install-root` (a local admin). The rules are the
// certificate store's (security/cert_store.hpp); this service adds who may ask
// (ManageSecuritySettings), the one audit record per request, the protection
// of the station's own certificate (M04.FR.06) and SecurityCtrlr.CertificateEntries.
// REQ: COM-6, COM-7, AUTHZ-1, LOG-1
#pragma once
#include <vector>

#include "core/device_model.hpp"
#include "core/result.hpp"
#include "security/cert_store.hpp"
#include "security/station_identity.hpp"
#include "services/gate.hpp"

namespace cg::services {

class CertificateService {
 public:
  // `identity` and `dm` may be null (the CLI has no device model; a station
  // without a key store has no identity).
  CertificateService(Gate& gate, security::CertStore& certs, security::StationIdentity* identity,
                     core::DeviceModel* dm);

  // M05 InstallCertificate, with the rules of the connection it came over.
  Result<security::InstallResult> install(const policy::Principal& who, security::CertificateType type,
                                          std::string_view pem, const security::InstallContext& ctx);
  // A local admin pins or adds a root (pki install-root).
  Result<security::InstallResult> install_local(const policy::Principal& who, security::CertificateType type,
                                                std::string_view pem, security::LocalInstallMode mode);
  // M04 DeleteCertificate; never the station's own certificate.
  Result<security::RemoveResult> remove(const policy::Principal& who, const security::CertificateHashData& hash);
  // M03 GetInstalledCertificateIds (empty = every type).
  Result<std::vector<security::CertificateEntry>> list(const policy::Principal& who,
                                                       const std::vector<security::CertificateType>& types);

  // M05 AdditionalRootCertificateCheck: a connection the CSMS accepted went
  // through `verified` (leaf first); completes a pending root change. The
  // station's own bookkeeping: no principal, a system record when it happens.
  void connection_verified(const security::CertChain& verified, int security_profile);

  // Brings the CSMS roots in line with csms.ca_file at start (seeded the first
  // time; replaced when the file's content changed since the last start — a
  // local decision, audited). Throws when no CSMS root would be left.
  void sync_with_ca_file(const std::filesystem::path& ca_file, const std::filesystem::path& state_dir);

  std::size_t count() const { return certs_.count(); }

 private:
  void update_entries();

  Gate& gate_;
  security::CertStore& certs_;
  security::StationIdentity* identity_;
  core::DeviceModel* dm_;
};

}  // namespace cg::services
