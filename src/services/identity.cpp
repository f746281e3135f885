#include "services/identity.hpp"

#include "core/clock.hpp"
#include "core/log.hpp"

namespace cg::services {
using audit::Event;
using audit::Outcome;
using policy::Operation;

IdentityService::IdentityService(Gate& gate, security::StationIdentity& identity, const config::Config& cfg,
                                 core::DeviceModel* dm)
    : gate_(gate), identity_(identity), cfg_(cfg), dm_(dm) {}

Result<std::optional<security::CertificateSummary>> IdentityService::current(const policy::Principal& who) {
  if (auto ok = gate_.admit(who, policy::Operation::ReadStatus, "station certificate"); !ok) return ok.error();
  return guarded("station certificate", [&]() -> Result<std::optional<security::CertificateSummary>> {
    return identity_.summary(security::kStationKeyLabel);
  });
}

std::string IdentityService::organization() const {
  const std::string o = dm_ ? dm_->text("SecurityCtrlr.OrganizationName") : std::string();
  return o.empty() ? cfg_.organization : o;
}

void IdentityService::record_change(const audit::Source& src, Outcome o, audit::Details d) {
  gate_.record(src, Event::ReconfigurationOfSecurityParameters, o, d);
}

Result<std::string> IdentityService::begin_renewal(const policy::Principal& who, std::string_view trigger) {
  if (auto ok = gate_.admit(who, Operation::ManageSecuritySettings, "renew the station certificate"); !ok)
    return ok.error();
  return start(audit::Source::of(who), trigger);
}

Result<std::string> IdentityService::begin_renewal_for_expiry() { return start(system_source(), "expiry"); }

Result<std::string> IdentityService::start(const audit::Source& src, std::string_view trigger) {
  const std::string org = organization();
  const auto details = [] { return audit::Details().text("change", "stationCertificate"); };
  if (cfg_.serial.empty() || org.empty()) {
    log::error("identity", "cannot renew the station certificate: serial number or OrganizationName is empty");
    record_change(src, Outcome::Failure, details().text("result", "no serial number or organization"));
    return fail(Errc::Unavailable, "no serial number or organization");
  }
  std::string csr;
  try {
    identity_.begin_renewal();
    csr = security::make_csr_pem(identity_.store(), security::kStationNextKeyLabel, {cfg_.serial, org});
    identity_.store_csr(csr);  // a restart resumes the renewal
  } catch (const std::exception& e) {
    log::error("identity", "cannot start the certificate renewal: ", e.what());
    record_change(src, Outcome::Failure, details().text("result", "key generation failed").text("reason", e.what()));
    return fail(Errc::Internal, e.what());
  }
  log::info("identity", "station certificate renewal started (", trigger, "): new key in the ",
            identity_.store().backend(), " key store");
  record_change(src, Outcome::Success,
                details().text("result", "renewal started; new key generated").text("trigger", trigger));
  return csr;
}

std::optional<std::string> IdentityService::resume_renewal() {
  // A renewal key without a certificate is left from a renewal that a restart
  // interrupted: with its stored request it goes on (the CSMS may be signing
  // it right now); without one it is of no use.
  if (!identity_.renewal_key_exists() || identity_.has_candidate()) return std::nullopt;
  if (auto csr = identity_.load_csr()) {
    log::info("identity", "resuming the station certificate renewal interrupted by a restart (same key and request)");
    record_change(system_source(), Outcome::Success,
                  audit::Details().text("change", "stationCertificate").text("result", "renewal resumed after a restart"));
    return csr;
  }
  try {
    identity_.discard_candidate();
  } catch (const std::exception& e) {
    log::warn("identity", "cannot remove a stale renewal key: ", e.what());
  }
  return std::nullopt;
}

Result<void> IdentityService::check(const security::CertChain& chain, std::string_view label) {
  const auto& f = cfg_.client_ca_file.empty() ? cfg_.ca_file : cfg_.client_ca_file;
  std::vector<security::X509Ptr> roots;
  try {
    if (!f.empty()) roots = security::load_roots(f);
  } catch (const std::exception& e) {
    return fail(Errc::Unavailable, std::string("operator CA unavailable: ") + e.what());
  }
  std::vector<const X509*> root_ptrs;
  for (const auto& r : roots) root_ptrs.push_back(r.get());
  try {
    return identity_.check(chain, label, cfg_.serial, organization(), root_ptrs);
  } catch (const std::exception& e) {
    return fail(Errc::Internal, e.what());
  }
}

Result<security::CertificateSummary> IdentityService::accept_certificate(const policy::Principal& who,
                                                                         std::string_view pem, std::size_t max_chars,
                                                                         bool reconnecting) {
  if (auto ok = gate_.admit(who, Operation::ManageSecuritySettings, "CertificateSigned"); !ok) return ok.error();
  auto refuse = [&](const std::string& why) -> Error {
    log::warn("identity", "CertificateSigned rejected: ", why);
    gate_.record(who, Event::InvalidChargingStationCertificate, Outcome::Failure, audit::Details().text("reason", why));
    return fail(Errc::Rejected, why);
  };
  if (pem.size() > max_chars)
    return refuse("certificateChain of " + std::to_string(pem.size()) + " characters exceeds MaxCertificateChainSize");
  if (!identity_.renewal_key_exists()) return refuse("no certificate signing request is pending");
  std::string err;
  auto chain = security::parse_pem_chain(pem, security::kMaxChainCertificates, err);
  if (!err.empty()) return refuse(err);
  // The request stays pending on a refusal: a corrected certificate may follow.
  if (auto ok = check(chain, security::kStationNextKeyLabel); !ok) return refuse(ok.error().message);
  try {
    identity_.store_chain(security::kStationNextKeyLabel, chain);
  } catch (const std::exception& e) {
    log::error("identity", "cannot store the renewed certificate: ", e.what());
    return fail(Errc::Storage, "cannot store the certificate");
  }
  const auto s = security::summarize(chain.front().get());
  record_change(audit::Source::of(who), Outcome::Success,
                audit::Details()
                    .text("change", "stationCertificate")
                    .text("result", reconnecting ? "renewed certificate accepted; reconnecting with it"
                                                 : "renewed certificate accepted and installed")
                    .text("serialNumber", s.serial_hex)
                    .text("notAfter", clock::format_rfc3339(s.not_after)));
  return s;
}

void IdentityService::renewal_failed(const std::string& why) {
  try {
    identity_.discard_candidate();
  } catch (const std::exception& e) {
    log::error("identity", "cannot remove the renewal key: ", e.what());
  }
  record_change(system_source(), Outcome::Failure,
                audit::Details().text("change", "stationCertificate").text("result", "renewal failed").text("reason", why));
}

bool IdentityService::expires_within(std::chrono::hours lead) const {
  const auto s = identity_.summary(security::kStationKeyLabel);
  return s && s->not_after - std::chrono::system_clock::now() <= lead;
}

IdentityService::ForConnection IdentityService::for_connection() {
  if (identity_.has_candidate() && identity_.renewal_key_exists()) {
    try {
      auto id = identity_.load(security::kStationNextKeyLabel);
      log::info("identity", "connecting with the renewed station certificate");
      return {std::move(id), true};
    } catch (const std::exception& e) {
      discard_candidate(std::string("the renewed certificate cannot be loaded: ") + e.what());
    }
  }
  try {
    return {identity_.load(security::kStationKeyLabel), false};
  } catch (const std::exception& e) {
    log::error("identity", "the station certificate cannot be used: ", e.what());
    return {nullptr, false};
  }
}

void IdentityService::promote_candidate() {
  try {
    identity_.promote();
    const auto s = identity_.summary(security::kStationKeyLabel);
    log::info("identity", "connected with the renewed station certificate; the old key and certificate are deleted");
    audit::Details d;
    d.text("change", "stationCertificate").text("result", "connected with the renewed certificate; old key deleted");
    if (s) d.text("serialNumber", s->serial_hex).text("notAfter", clock::format_rfc3339(s->not_after));
    record_change(system_source(), Outcome::Success, d);
  } catch (const std::exception& e) {
    log::error("identity", "cannot promote the renewed station certificate: ", e.what());
  }
}

void IdentityService::discard_candidate(const std::string& why) {
  log::warn("identity", "the renewed station certificate is discarded (", why, "); back to the previous one");
  try {
    identity_.discard_candidate();
  } catch (const std::exception& e) {
    log::error("identity", "cannot discard the renewed certificate: ", e.what());
  }
  record_change(system_source(), Outcome::Failure,
                audit::Details()
                    .text("change", "stationCertificate")
                    .text("result", "renewed certificate discarded; using the previous one")
                    .text("reason", why));
}

Result<security::KeyInfo> IdentityService::provision_key(const policy::Principal& who, security::KeyType type) {
  if (auto ok = gate_.admit(who, Operation::ManageSecuritySettings, "pki provision"); !ok) return ok.error();
  try {
    const auto info = identity_.store().generate_key(security::kStationKeyLabel, type);
    record_change(audit::Source::of(who), Outcome::Success,
                  audit::Details()
                      .text("change", "stationKey")
                      .text("result", "key pair generated")
                      .text("keyType", security::to_string(info.type))
                      .text("keyStore", identity_.store().backend()));
    return info;
  } catch (const std::exception& e) {
    return fail(Errc::Internal, e.what());
  }
}

Result<security::CertificateSummary> IdentityService::install_chain(const policy::Principal& who,
                                                                    std::string_view pem, std::string_view how) {
  if (auto ok = gate_.admit(who, Operation::ManageSecuritySettings, "pki install-cert"); !ok) return ok.error();
  std::string err;
  auto chain = security::parse_pem_chain(pem, security::kMaxChainCertificates, err);
  if (!err.empty()) return fail(Errc::InvalidArgument, "certificate chain: " + err);
  if (auto ok = check(chain, security::kStationKeyLabel); !ok) {
    const std::string& why = ok.error().message;
    record_change(audit::Source::of(who), Outcome::Failure,
                  audit::Details().text("change", "stationCertificate").text("result", "refused").text("reason", why));
    return fail(Errc::Rejected, "the certificate is not acceptable: " + why);
  }
  try {
    identity_.store_chain(security::kStationKeyLabel, chain);
  } catch (const std::exception& e) {
    return fail(Errc::Storage, e.what());
  }
  const auto s = security::summarize(chain.front().get());
  record_change(audit::Source::of(who), Outcome::Success,
                audit::Details()
                    .text("change", "stationCertificate")
                    .text("result", how)
                    .text("serialNumber", s.serial_hex)
                    .text("notAfter", clock::format_rfc3339(s.not_after)));
  return s;
}

}  // namespace cg::services
