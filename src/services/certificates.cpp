#include "services/certificates.hpp"

#include <openssl/evp.h>

#include <fstream>

#include "core/log.hpp"
#include "security/base64.hpp"
#include "security/secret_file.hpp"

namespace cg::services {
namespace fs = std::filesystem;
using audit::Event;
using audit::Outcome;
using policy::Operation;

CertificateService::CertificateService(Gate& gate, security::CertStore& certs, security::StationIdentity* identity,
                                       core::DeviceModel* dm)
    : gate_(gate), certs_(certs), identity_(identity), dm_(dm) {
  update_entries();
}

void CertificateService::update_entries() {
  if (dm_) dm_->set_internal("SecurityCtrlr.CertificateEntries", std::to_string(certs_.count()));
}

namespace {
audit::Details install_details(std::string_view type, const security::InstallResult& r) {
  audit::Details d;
  d.text("change", "installCertificate").text("certificateType", type).text("status", security::to_string(r.status));
  if (r.certificate) d.text("subject", r.certificate->subject).text("fingerprint", r.certificate->fingerprint);
  return d;
}
}  // namespace

Result<security::InstallResult> CertificateService::install(const policy::Principal& who,
                                                             security::CertificateType type, std::string_view pem,
                                                             const security::InstallContext& ctx) {
  if (auto ok = gate_.admit(who, Operation::ManageSecuritySettings, "InstallCertificate"); !ok) return ok.error();
  security::InstallResult r;
  try {
    r = certs_.install(type, pem, ctx);
  } catch (const std::exception& e) {
    r.status = security::InstallStatus::Failed;
    r.reason = failure_of("InstallCertificate", e).message;
  }
  auto d = install_details(security::to_string(type), r);
  if (!r.accepted()) d.text("reason", r.reason);
  gate_.record(who, Event::ReconfigurationOfSecurityParameters, r.accepted() ? Outcome::Success : Outcome::Failure, d);
  for (const auto& w : r.warnings) log::warn("certs", "installed ", security::to_string(type), ": ", w);
  update_entries();
  return r;
}

Result<security::InstallResult> CertificateService::install_local(const policy::Principal& who,
                                                                   security::CertificateType type,
                                                                   std::string_view pem,
                                                                   security::LocalInstallMode mode) {
  if (auto ok = gate_.admit(who, Operation::ManageSecuritySettings, "pki install-root"); !ok) return ok.error();
  security::InstallResult r;
  try {
    r = certs_.install_local(type, pem, mode);
  } catch (const std::exception& e) {
    r.status = security::InstallStatus::Failed;
    r.reason = e.what();
  }
  auto d = install_details(security::to_string(type), r);
  d.text("mode", mode == security::LocalInstallMode::Replace ? "replace" : "add").text("result", r.reason);
  gate_.record(who, Event::ReconfigurationOfSecurityParameters, r.accepted() ? Outcome::Success : Outcome::Failure, d);
  update_entries();
  return r;
}

Result<security::RemoveResult> CertificateService::remove(const policy::Principal& who,
                                                          const security::CertificateHashData& hd) {
  if (auto ok = gate_.admit(who, Operation::ManageSecuritySettings, "DeleteCertificate"); !ok) return ok.error();
  // M04.FR.06: never the station's own certificate (nor a renewed one).
  security::X509Ptr station_cert;
  if (identity_) {
    try {
      if (identity_->has_certificate(security::kStationKeyLabel))
        station_cert = security::share(identity_->load(security::kStationKeyLabel)->chain.front().get());
    } catch (const std::exception&) {
      // No usable station certificate: nothing to protect.
    }
  }
  security::RemoveResult r;
  try {
    r = certs_.remove(hd, station_cert.get());
  } catch (const std::exception& e) {
    r.status = security::DeleteStatus::Failed;
    r.reason = failure_of("DeleteCertificate", e).message;
  }
  audit::Details d;
  d.text("change", "deleteCertificate").text("status", security::to_string(r.status)).text("serialNumber", hd.serial_number);
  for (const auto& c : r.removed) d.text("subject", c.subject).text("fingerprint", c.fingerprint);
  if (r.status != security::DeleteStatus::Accepted) d.text("reason", r.reason);
  gate_.record(who, Event::ReconfigurationOfSecurityParameters,
               r.status == security::DeleteStatus::Accepted ? Outcome::Success : Outcome::Failure, d);
  update_entries();
  return r;
}

Result<std::vector<security::CertificateEntry>> CertificateService::list(
    const policy::Principal& who, const std::vector<security::CertificateType>& types) {
  if (auto ok = gate_.admit(who, Operation::ManageSecuritySettings, "GetInstalledCertificateIds"); !ok)
    return ok.error();
  return certs_.list(types);
}

void CertificateService::connection_verified(const security::CertChain& verified, int security_profile) {
  if (security_profile < 2 || !certs_.csms_root_pending()) return;
  security::X509StackPtr chain(sk_X509_new_null());
  if (!chain) return;
  for (const auto& c : verified) sk_X509_push(chain.get(), c.get());
  const auto r = certs_.confirm_csms_root(chain.get());
  if (!r.confirmed) {
    log::info("certs", "CSMS root change (AdditionalRootCertificateCheck) still pending: ", r.reason);
    return;
  }
  std::string removed;
  for (const auto& c : r.removed) removed += (removed.empty() ? "" : " ") + c.fingerprint;
  log::info("certs", "connected through the new CSMS root; the previous root(s) are deleted");
  gate_.record(system_source(), Event::ReconfigurationOfSecurityParameters, Outcome::Success,
               audit::Details()
                   .text("change", "csmsRootConfirmed")
                   .text("result", "connected through the new CSMS root; the fallback root(s) are deleted")
                   .text("removed", removed));
  update_entries();
}

void CertificateService::sync_with_ca_file(const fs::path& ca_file, const fs::path& state_dir) {
  std::ifstream in(ca_file, std::ios::binary);
  if (!in) throw std::runtime_error("cannot read " + ca_file.string());
  std::string pem(security::kMaxPemBytes + 1, '\0');
  in.read(pem.data(), static_cast<std::streamsize>(pem.size()));
  pem.resize(static_cast<std::size_t>(in.gcount()));
  if (pem.size() > security::kMaxPemBytes) throw std::runtime_error(ca_file.string() + " is larger than 64 KiB");
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  EVP_Digest(pem.data(), pem.size(), md, &n, EVP_sha256(), nullptr);
  const std::string digest = security::hex_encode(md, n);
  // Next to certs/, not in it (the store reports files it does not know).
  const fs::path marker = state_dir / "csms-ca-file.sha256";
  ::unlink((state_dir / "certs" / "csms-ca-file.sha256").c_str());  // where builds before 2026-11-22 kept it
  std::string seen;
  {
    std::ifstream m(marker);
    std::getline(m, seen);
  }
  const auto type = security::CertificateType::CSMSRootCertificate;
  std::string change;
  if (seen.empty()) {
    const auto r = certs_.seed(type, ca_file);
    for (const auto& w : r.skipped) log::warn("station", "csms.ca_file: skipped ", w);
    if (r.status == security::SeedStatus::Failed && certs_.count(type) == 0)
      throw std::runtime_error("no usable CSMS root in " + ca_file.string() + ": " + r.reason);
  } else if (seen != digest) {
    std::string err;
    const auto roots = security::parse_pem_chain(pem, 32, err);
    if (!err.empty()) throw std::runtime_error(ca_file.string() + ": " + err);
    std::size_t n_ok = 0;
    for (const auto& r : roots) {
      const auto res = certs_.install_local(type, security::to_pem(r.get()),
                                            n_ok == 0 ? security::LocalInstallMode::Replace
                                                      : security::LocalInstallMode::Add);
      if (res.accepted()) ++n_ok;
      else log::warn("station", "csms.ca_file: ", res.reason);
    }
    if (n_ok == 0) throw std::runtime_error("no usable CSMS root in " + ca_file.string());
    change = "csms.ca_file changed: the CSMS roots were replaced by its " + std::to_string(n_ok) + " certificate(s)";
    log::warn("station", change);
  }
  if (seen != digest) {
    if (auto e = security::write_file_durably(marker.string(), digest + "\n"); !e)
      log::warn("station", "cannot note the csms.ca_file digest: ", e.error().message);
  }
  if (!change.empty())
    gate_.record(audit::Source{"LocalMaintenance", "", "configuration file"}, Event::ReconfigurationOfSecurityParameters,
                 Outcome::Success, audit::Details().text("change", "csmsRoots").text("result", change));
  update_entries();
}

}  // namespace cg::services
