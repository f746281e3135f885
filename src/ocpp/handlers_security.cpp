// A02/A03 station certificate renewal and the COM-10 expiry watch.
//
// A renewal: a new key "station.next" is generated in the key store, a CSR
// (CN = serial number, O = SecurityCtrlr.OrganizationName) goes to the CSMS in
// SignCertificate; without a CertificateSigned within CertSigningWaitMinimum
// (doubled per attempt) the CSR is sent again, CertSigningRepeatTimes times.
// A CertificateSigned chain is checked (StationIdentity::check) and stored as
// the candidate; at profile 3 the station reconnects with it and promotes it
// on the first successful connection, or discards it and goes back to the old
// certificate when the CSMS does not accept it. Every step is an audit record.
// REQ: COM-4, COM-6, COM-10
#include <openssl/crypto.h>

#include "core/clock.hpp"
#include "core/log.hpp"
#include "ocpp/charge_point.hpp"
#include "security/cert_store.hpp"

namespace cg::ocpp {
namespace json = boost::json;

namespace {
constexpr const char* kCsType = "ChargingStationCertificate";

}  // namespace

std::vector<security::X509Ptr> ChargePoint::station_ca_roots() const {
  const auto& f = d_.cfg.client_ca_file.empty() ? d_.cfg.ca_file : d_.cfg.client_ca_file;
  if (f.empty()) return {};
  return security::load_roots(f);
}

std::string ChargePoint::organization_name() const {
  auto o = d_.dm.text("SecurityCtrlr.OrganizationName");
  return o.empty() ? d_.cfg.organization : o;
}

std::shared_ptr<const security::TlsClientIdentity> ChargePoint::connection_identity() {
  trying_candidate_ = false;
  if (!d_.identity || security_profile() != 3) return nullptr;
  if (d_.identity->has_candidate() && d_.identity->renewal_key_exists()) {
    try {
      auto id = d_.identity->load(security::kStationNextKeyLabel);
      trying_candidate_ = true;
      log::info("ocpp", "connecting with the renewed station certificate");
      return id;
    } catch (const std::exception& e) {
      candidate_failed(std::string("the renewed certificate cannot be loaded: ") + e.what());
    }
  }
  try {
    return d_.identity->load(security::kStationKeyLabel);
  } catch (const std::exception& e) {
    log::error("ocpp", "the station certificate cannot be used: ", e.what());
    return nullptr;
  }
}

void ChargePoint::candidate_connected() {
  if (!trying_candidate_) return;
  trying_candidate_ = false;
  candidate_failures_ = 0;
  try {
    d_.identity->promote();
    const auto s = d_.identity->summary(security::kStationKeyLabel);
    log::info("ocpp", "connected with the renewed station certificate; the old key and certificate are deleted");
    audit::Details d;
    d.text("change", "stationCertificate").text("result", "connected with the renewed certificate; old key deleted");
    if (s) d.text("serialNumber", s->serial_hex).text("notAfter", clock::format_rfc3339(s->not_after));
    audit(audit::Event::ReconfigurationOfSecurityParameters, audit::Outcome::Success, d);
  } catch (const std::exception& e) {
    log::error("ocpp", "cannot promote the renewed station certificate: ", e.what());
  }
}

void ChargePoint::candidate_failed(const std::string& why) {
  trying_candidate_ = false;
  candidate_failures_ = 0;
  log::warn("ocpp", "the renewed station certificate is discarded (", why, "); back to the previous one");
  try {
    d_.identity->discard_candidate();
  } catch (const std::exception& e) {
    log::error("ocpp", "cannot discard the renewed certificate: ", e.what());
  }
  audit(audit::Event::ReconfigurationOfSecurityParameters, audit::Outcome::Failure,
        audit::Details()
            .text("change", "stationCertificate")
            .text("result", "renewed certificate discarded; using the previous one")
            .text("reason", why));
}

void ChargePoint::candidate_attempt_failed(const std::string& reason, int http_status, TlsFailure tls) {
  if (!trying_candidate_) return;
  // The CSMS refused it (HTTP status, TLS alert): at once. A network failure
  // says nothing about the certificate: three attempts.
  ++candidate_failures_;
  if (http_status != 0 || tls != TlsFailure::None || candidate_failures_ >= 3) candidate_failed(reason);
}

// ---- A02/A03: SignCertificate ------------------------------------------------

void ChargePoint::start_renewal(std::string_view why) {
  if (!d_.identity) return;
  if (renewal_.active) {
    // The CSMS asked again while we wait: send the same request again now.
    renewal_.attempts = 0;
    send_sign_certificate();
    return;
  }
  const std::string org = organization_name();
  if (d_.cfg.serial.empty() || org.empty()) {
    log::error("ocpp", "cannot renew the station certificate: serial number or OrganizationName is empty");
    audit(audit::Event::ReconfigurationOfSecurityParameters, audit::Outcome::Failure,
          audit::Details().text("change", "stationCertificate").text("result", "no serial number or organization"));
    return;
  }
  try {
    d_.identity->begin_renewal();
    renewal_.csr = security::make_csr_pem(d_.identity->store(), security::kStationNextKeyLabel,
                                          {d_.cfg.serial, org});
    d_.identity->store_csr(renewal_.csr);  // a restart resumes the renewal
  } catch (const std::exception& e) {
    log::error("ocpp", "cannot start the certificate renewal: ", e.what());
    audit(audit::Event::ReconfigurationOfSecurityParameters, audit::Outcome::Failure,
          audit::Details().text("change", "stationCertificate").text("result", "key generation failed").text("reason", e.what()));
    return;
  }
  renewal_.active = true;
  renewal_.attempts = 0;
  log::info("ocpp", "station certificate renewal started (", why, "): new key in the ", d_.identity->store().backend(),
            " key store, sending SignCertificate");
  audit(audit::Event::ReconfigurationOfSecurityParameters, audit::Outcome::Success,
        audit::Details().text("change", "stationCertificate").text("result", "renewal started; new key generated").text("trigger", why));
  send_sign_certificate();
}

void ChargePoint::send_sign_certificate() {
  if (!renewal_.active) return;
  const long long wait_min = std::max<long long>(1, d_.dm.integer("SecurityCtrlr.CertSigningWaitMinimum", 60));
  const int shift = std::min(renewal_.attempts, 10);
  renewal_timer_.expires_after(std::chrono::seconds(wait_min << shift));
  renewal_timer_.async_wait([this](boost::system::error_code ec) {
    if (ec || !renewal_.active) return;
    const long long repeat = d_.dm.integer("SecurityCtrlr.CertSigningRepeatTimes", 3);
    if (renewal_.attempts >= repeat) {
      log::warn("ocpp", "no CertificateSigned after ", renewal_.attempts + 1, " SignCertificate requests; renewal given up");
      end_renewal("no CertificateSigned from the CSMS after " + std::to_string(renewal_.attempts + 1) + " requests");
      return;
    }
    ++renewal_.attempts;
    log::info("ocpp", "no CertificateSigned yet; sending SignCertificate again (", renewal_.attempts, ")");
    send_sign_certificate();
  });
  call("SignCertificate", json::object{{"csr", renewal_.csr}, {"certificateType", kCsType}},
       [this](const Outcome& o) {
         if (!renewal_.active || !o.ok) return;  // no answer: the timer sends it again
         if (o.payload.at("status").as_string() != "Accepted") {
           log::warn("ocpp", "the CSMS rejected our certificate signing request");
           end_renewal("SignCertificate rejected by the CSMS");
         }
       });
}

void ChargePoint::end_renewal(const std::string& failure) {
  renewal_timer_.cancel();
  renewal_.active = false;
  renewal_.csr.clear();
  if (failure.empty()) return;
  try {
    d_.identity->discard_candidate();
  } catch (const std::exception& e) {
    log::error("ocpp", "cannot remove the renewal key: ", e.what());
  }
  audit(audit::Event::ReconfigurationOfSecurityParameters, audit::Outcome::Failure,
        audit::Details().text("change", "stationCertificate").text("result", "renewal failed").text("reason", failure));
}

ChargePoint::Reply ChargePoint::on_certificate_signed(const json::object& req) {
  if (auto* t = req.if_contains("certificateType"); t && t->as_string() != kCsType)
    return rejected("UnsupportedCertType", "only ChargingStationCertificate is supported");
  const auto& pem = req.at("certificateChain").as_string();
  auto refuse = [&](const std::string& why) {
    log::warn("ocpp", "CertificateSigned rejected: ", why);
    audit(audit::Event::InvalidChargingStationCertificate, audit::Outcome::Failure, audit::Details().text("reason", why));
    return rejected("InvalidCertificate", why);
  };
  const long long max = d_.dm.integer("SecurityCtrlr.MaxCertificateChainSize", 10000);
  if (static_cast<long long>(pem.size()) > max)
    return refuse("certificateChain of " + std::to_string(pem.size()) + " characters exceeds MaxCertificateChainSize");
  if (!d_.identity || !d_.identity->renewal_key_exists()) return refuse("no certificate signing request is pending");
  std::string err;
  auto chain = security::parse_pem_chain(std::string_view(pem.data(), pem.size()), security::kMaxChainCertificates, err);
  if (!err.empty()) return refuse(err);
  std::vector<security::X509Ptr> roots;
  try {
    roots = station_ca_roots();
  } catch (const std::exception& e) {
    return refuse(std::string("operator CA unavailable: ") + e.what());
  }
  std::vector<const X509*> root_ptrs;
  for (const auto& r : roots) root_ptrs.push_back(r.get());
  if (auto why = d_.identity->check(chain, security::kStationNextKeyLabel, d_.cfg.serial, organization_name(), root_ptrs);
      !why.empty()) {
    // The request stays pending: a corrected certificate may follow until the wait runs out.
    return refuse(why);
  }
  try {
    d_.identity->store_chain(security::kStationNextKeyLabel, chain);
  } catch (const std::exception& e) {
    log::error("ocpp", "cannot store the renewed certificate: ", e.what());
    return rejected("InternalError", "cannot store the certificate");
  }
  end_renewal({});
  const auto s = security::summarize(chain.front().get());
  audit(audit::Event::ReconfigurationOfSecurityParameters, audit::Outcome::Success,
        audit::Details()
            .text("change", "stationCertificate")
            .text("result", security_profile() == 3 ? "renewed certificate accepted; reconnecting with it"
                                                         : "renewed certificate accepted and installed")
            .text("serialNumber", s.serial_hex)
            .text("notAfter", clock::format_rfc3339(s.not_after)));
  Reply rep{json::object{{"status", "Accepted"}}, {}, {}, {}};
  if (security_profile() == 3) {
    rep.after = [this] { reconnect_after_reply("the renewed station certificate"); };
  } else {
    // Not used for this connection: it becomes the identity at once.
    trying_candidate_ = true;
    candidate_connected();
  }
  return rep;
}

// ---- COM-10: expiry watch -----------------------------------------------------

void ChargePoint::check_certificate_expiry() {
  if (!d_.identity || !online() || renewal_.active || d_.identity->has_candidate()) return;
  const auto s = d_.identity->summary(security::kStationKeyLabel);
  if (!s) return;
  const auto now = std::chrono::system_clock::now();
  const auto lead = std::chrono::hours(24) * d_.cfg.certificate_renewal_days;
  if (s->not_after - now > lead) return;
  // At most one automatic attempt a day: a CSMS that does not sign is not hammered.
  const auto steady = std::chrono::steady_clock::now();
  if (renewal_.last_auto != std::chrono::steady_clock::time_point{} && steady - renewal_.last_auto < std::chrono::hours(24))
    return;
  renewal_.last_auto = steady;
  log::warn("ocpp", "the station certificate expires on ", clock::format_rfc3339(s->not_after), "; renewing it");
  start_renewal("expiry");
}

}  // namespace cg::ocpp

// ---- M03/M04/M05: installed certificates -----------------------------------------

namespace cg::ocpp {

namespace {
using json::object;
json::object hash_json(const security::CertificateHashData& h) {
  return json::object{{"hashAlgorithm", h.hash_algorithm},
                      {"issuerNameHash", h.issuer_name_hash},
                      {"issuerKeyHash", h.issuer_key_hash},
                      {"serialNumber", h.serial_number}};
}
}  // namespace

void ChargePoint::confirm_csms_root_change() {
  if (!d_.certs || security_profile() < 2 || !d_.certs->csms_root_pending()) return;
  struct StackFree {
    void operator()(STACK_OF(X509) * s) const noexcept { sk_X509_free(s); }
  };
  std::unique_ptr<STACK_OF(X509), StackFree> chain(sk_X509_new_null());
  if (!chain) return;
  for (const auto& c : conn_.verified_chain()) sk_X509_push(chain.get(), c.get());
  const auto r = d_.certs->confirm_csms_root(chain.get());
  if (!r.confirmed) {
    log::info("ocpp", "CSMS root change (AdditionalRootCertificateCheck) still pending: ", r.reason);
    return;
  }
  std::string removed;
  for (const auto& c : r.removed) removed += (removed.empty() ? "" : " ") + c.fingerprint;
  log::info("ocpp", "connected through the new CSMS root; the previous root(s) are deleted");
  audit(audit::Event::ReconfigurationOfSecurityParameters, audit::Outcome::Success,
        audit::Details()
            .text("change", "csmsRootConfirmed")
            .text("result", "connected through the new CSMS root; the fallback root(s) are deleted")
            .text("removed", removed));
  update_certificate_entries();
}

void ChargePoint::update_certificate_entries() {
  if (!d_.certs) return;
  d_.dm.set_internal("SecurityCtrlr.CertificateEntries", std::to_string(d_.certs->count()));
}

ChargePoint::Reply ChargePoint::on_install_certificate(const json::object& req) {
  const std::string type_text(req.at("certificateType").as_string());
  const auto& pem = req.at("certificate").as_string();
  const auto type = security::parse_certificate_type(type_text);
  if (!d_.certs || !type) return rejected("UnsupportedCertType", "certificate type not supported: " + type_text);
  security::InstallContext ctx;
  ctx.security_profile = security_profile();
  ctx.additional_root_check = d_.dm.boolean("SecurityCtrlr.AdditionalRootCertificateCheck");
  ctx.now = clock::now_utc();
  const auto r = d_.certs->install(*type, std::string_view(pem.data(), pem.size()), ctx);
  audit::Details d;
  d.text("change", "installCertificate").text("certificateType", type_text).text("status", security::to_string(r.status));
  if (r.certificate) d.text("subject", r.certificate->subject).text("fingerprint", r.certificate->fingerprint);
  if (!r.accepted()) d.text("reason", r.reason);
  audit(audit::Event::ReconfigurationOfSecurityParameters,
        r.accepted() ? audit::Outcome::Success : audit::Outcome::Failure, d);
  for (const auto& w : r.warnings) log::warn("ocpp", "installed ", type_text, ": ", w);
  update_certificate_entries();
  if (r.accepted()) {
    log::info("ocpp", "InstallCertificate ", type_text, ": ", r.reason);
    return status_reply("Accepted");
  }
  log::warn("ocpp", "InstallCertificate ", type_text, " ", security::to_string(r.status), ": ", r.reason);
  json::object st{{"reasonCode", r.status == security::InstallStatus::Failed ? "InternalError" : "InvalidCertificate"},
                  {"additionalInfo", std::string_view(r.reason).substr(0, 512)}};
  return Reply{json::object{{"status", security::to_string(r.status)}, {"statusInfo", std::move(st)}}, {}, {}, {}};
}

ChargePoint::Reply ChargePoint::on_delete_certificate(const json::object& req) {
  const auto& h = req.at("certificateHashData").as_object();
  security::CertificateHashData hd{std::string(h.at("hashAlgorithm").as_string()),
                                   std::string(h.at("issuerNameHash").as_string()),
                                   std::string(h.at("issuerKeyHash").as_string()),
                                   std::string(h.at("serialNumber").as_string())};
  if (!d_.certs) return status_reply("NotFound");
  // M04.FR.06: never the station's own certificate (nor a renewed one).
  security::X509Ptr station_cert;
  if (d_.identity) {
    try {
      if (d_.identity->has_certificate(security::kStationKeyLabel))
        station_cert = security::share(d_.identity->load(security::kStationKeyLabel)->chain.front().get());
    } catch (const std::exception&) {
      // No usable station certificate: nothing to protect.
    }
  }
  const auto r = d_.certs->remove(hd, station_cert.get());
  audit::Details d;
  d.text("change", "deleteCertificate").text("status", security::to_string(r.status)).text("serialNumber", hd.serial_number);
  for (const auto& c : r.removed) d.text("subject", c.subject).text("fingerprint", c.fingerprint);
  if (r.status != security::DeleteStatus::Accepted) d.text("reason", r.reason);
  audit(audit::Event::ReconfigurationOfSecurityParameters,
        r.status == security::DeleteStatus::Accepted ? audit::Outcome::Success : audit::Outcome::Failure, d);
  update_certificate_entries();
  json::object rep{{"status", security::to_string(r.status)}};
  if (r.status == security::DeleteStatus::Failed)
    rep["statusInfo"] = json::object{{"reasonCode", "NotAllowed"}, {"additionalInfo", std::string_view(r.reason).substr(0, 512)}};
  return Reply{std::move(rep), {}, {}, {}};
}

ChargePoint::Reply ChargePoint::on_get_installed_certificate_ids(const json::object& req) {
  std::vector<security::CertificateType> types;
  bool only_unsupported = false;
  if (auto* t = req.if_contains("certificateType")) {
    only_unsupported = true;
    for (const auto& v : t->as_array()) {
      if (auto ty = security::parse_certificate_type(v.as_string())) {
        types.push_back(*ty);
        only_unsupported = false;
      }
    }
  }
  json::array chain;
  if (d_.certs && !only_unsupported) {
    for (const auto& e : d_.certs->list(types)) {
      if (e.hash_data.serial_number.size() > 40) continue;  // beyond RFC 5280; OCPP cannot carry it
      chain.push_back(json::object{{"certificateType", security::to_string(e.type)},
                                   {"certificateHashData", hash_json(e.hash_data)}});
    }
  }
  if (chain.empty()) return status_reply("NotFound");
  return Reply{json::object{{"status", "Accepted"}, {"certificateHashDataChain", std::move(chain)}}, {}, {}, {}};
}

}  // namespace cg::ocpp
