#include "ocpp/blocks/security.hpp"

#include <boost/json.hpp>

#include "core/clock.hpp"
#include "core/log.hpp"

namespace cg::ocpp {
namespace json = boost::json;

namespace {
constexpr const char* kCsType = "ChargingStationCertificate";

json::object hash_json(const security::CertificateHashData& h) {
  return json::object{{"hashAlgorithm", h.hash_algorithm},
                      {"issuerNameHash", h.issuer_name_hash},
                      {"issuerKeyHash", h.issuer_key_hash},
                      {"serialNumber", h.serial_number}};
}
}  // namespace

SecurityBlock::SecurityBlock(SessionPort& session, Dispatcher& d, const config::Config& cfg, core::DeviceModel& dm,
                             services::CertificateService* certs, services::IdentityService* identity,
                             security::SealedPassword* password, services::LinkEvents& events)
    : session_(session),
      cfg_(cfg),
      dm_(dm),
      certs_(certs),
      identity_(identity),
      password_(password),
      events_(events),
      renewal_timer_(session.io()) {
  // A rotation from before a restart that never connected is still pending.
  rotation_pending_ = password_ && password_->has_previous();
  d.add("CertificateSigned", [this](const json::object& r) { return on_certificate_signed(r); });
  d.add("InstallCertificate", [this](const json::object& r) { return on_install_certificate(r); });
  d.add("DeleteCertificate", [this](const json::object& r) { return on_delete_certificate(r); });
  d.add("GetInstalledCertificateIds", [this](const json::object& r) { return on_get_installed_certificate_ids(r); });
}

void SecurityBlock::start() {
  if (!identity_) return;
  if (auto csr = identity_->resume_renewal()) {
    renewal_.active = true;
    renewal_.attempts = 0;
    renewal_.csr = std::move(*csr);
    send_sign_certificate();  // queued until BootNotification is accepted
  }
}

void SecurityBlock::stop() { renewal_timer_.cancel(); }

void SecurityBlock::tick() {
  // COM-10: the station certificate's expiry, hourly (and soon after start).
  if (--expiry_check_countdown_ <= 0) {
    expiry_check_countdown_ = session_.online() ? 3600 : 10;
    check_expiry();
  }
}

// ---- A01: the password of the link ---------------------------------------------

void SecurityBlock::password_changed() {
  rotation_pending_ = password_ && password_->has_previous();
  using_previous_ = false;
  fallback_tried_ = false;
  log::info("ocpp", "new CSMS password sealed; reconnecting with it after the answer");
}

Result<security::SecretBytes> SecurityBlock::password() {
  if (!password_) return fail(Errc::Unavailable, "no password");
  try {
    return using_previous_ ? password_->previous() : password_->current();
  } catch (const std::exception& e) {
    log::error("ocpp", "cannot unseal the CSMS password: ", e.what());
  }
  if (using_previous_) {
    using_previous_ = false;  // nothing to fall back to; go on with the current one
    return password();
  }
  return fail(Errc::Unavailable, "the CSMS password cannot be unsealed");
}

void SecurityBlock::connected(int security_profile) {
  candidate_connected();
  if (!rotation_pending_ || !password_ || security_profile == 3) return;
  // A01: the first connection that sent the password (profiles 1/2) decides.
  try {
    if (using_previous_) {
      password_->roll_back();
      log::warn("ocpp", "the CSMS refused the new password but accepted the previous one; it is in use again");
      events_.password_rotation(session_.csms(), false, "new password refused by the CSMS; reverted to the previous one");
    } else {
      password_->confirm();
      log::info("ocpp", "connected with the new password; the previous one is discarded");
      events_.password_rotation(session_.csms(), true, "connected with the new password");
    }
  } catch (const std::exception& e) {
    log::error("ocpp", "cannot update the sealed password: ", e.what());
  }
  rotation_pending_ = false;
  using_previous_ = false;
  fallback_tried_ = false;
}

bool SecurityBlock::closed(const std::string& reason, int http_status, TlsFailure tls, int security_profile) {
  bool password_retry = false;
  // A verdict on the password only when this attempt sent it (profiles 1/2).
  if (http_status == 401 && rotation_pending_ && password_ && security_profile != 3) {
    if (!using_previous_ && !fallback_tried_ && password_->has_previous()) {
      // A01: the new password does not work; the previous one, once.
      using_previous_ = true;
      fallback_tried_ = true;
      password_retry = true;
      log::warn("ocpp", "the new password was refused; trying the previous one once");
      events_.password_rotation(session_.csms(), false,
                                "new password refused (HTTP 401); falling back to the previous one");
    } else if (using_previous_) {
      using_previous_ = false;  // refused as well: back to the new one, the CSMS set it
      log::warn("ocpp", "the previous password was refused too; going on with the new one");
    }
  }
  if (trying_candidate_) {
    // The CSMS refused the renewed certificate (HTTP status, TLS alert): at
    // once. A network failure says nothing about the certificate: three attempts.
    ++candidate_failures_;
    if (http_status != 0 || tls != TlsFailure::None || candidate_failures_ >= 3) candidate_failed(reason);
  }
  return password_retry;
}

// ---- A02: the certificate of the link -------------------------------------------

std::shared_ptr<const security::TlsClientIdentity> SecurityBlock::client_identity() {
  trying_candidate_ = false;
  if (!identity_) return nullptr;
  auto c = identity_->for_connection();
  trying_candidate_ = c.candidate;
  return c.identity;
}

void SecurityBlock::candidate_connected() {
  if (!trying_candidate_) return;
  trying_candidate_ = false;
  candidate_failures_ = 0;
  identity_->promote_candidate();
}

void SecurityBlock::candidate_failed(const std::string& why) {
  trying_candidate_ = false;
  candidate_failures_ = 0;
  identity_->discard_candidate(why);
}

void SecurityBlock::renew(const policy::Principal& who) {
  if (!identity_) return;
  if (renewal_.active) {
    // The CSMS asked again while we wait: send the same request again now.
    renewal_.attempts = 0;
    send_sign_certificate();
    return;
  }
  begin(identity_->begin_renewal(who, "TriggerMessage"));
}

void SecurityBlock::begin(Result<std::string> csr) {
  if (!csr) return;  // refused or failed: audited by the identity service
  renewal_.active = true;
  renewal_.attempts = 0;
  renewal_.csr = std::move(*csr);
  send_sign_certificate();
}

void SecurityBlock::send_sign_certificate() {
  if (!renewal_.active) return;
  const long long wait_min = std::max<long long>(1, dm_.integer("SecurityCtrlr.CertSigningWaitMinimum", 60));
  const int shift = std::min(renewal_.attempts, 10);
  renewal_timer_.expires_after(std::chrono::seconds(wait_min << shift));
  renewal_timer_.async_wait([this](boost::system::error_code ec) {
    if (ec || !renewal_.active) return;
    const long long repeat = dm_.integer("SecurityCtrlr.CertSigningRepeatTimes", 3);
    if (renewal_.attempts >= repeat) {
      log::warn("ocpp", "no CertificateSigned after ", renewal_.attempts + 1, " SignCertificate requests; renewal given up");
      end_renewal("no CertificateSigned from the CSMS after " + std::to_string(renewal_.attempts + 1) + " requests");
      return;
    }
    ++renewal_.attempts;
    log::info("ocpp", "no CertificateSigned yet; sending SignCertificate again (", renewal_.attempts, ")");
    send_sign_certificate();
  });
  session_.call("SignCertificate", json::object{{"csr", renewal_.csr}, {"certificateType", kCsType}},
                [this](const CallOutcome& o) {
                  if (!renewal_.active || !o.ok) return;  // no answer: the timer sends it again
                  if (o.payload.at("status").as_string() != "Accepted") {
                    log::warn("ocpp", "the CSMS rejected our certificate signing request");
                    end_renewal("SignCertificate rejected by the CSMS");
                  }
                });
}

void SecurityBlock::end_renewal(const std::string& failure) {
  renewal_timer_.cancel();
  renewal_.active = false;
  renewal_.csr.clear();
  if (!failure.empty()) identity_->renewal_failed(failure);
}

Reply SecurityBlock::on_certificate_signed(const json::object& req) {
  if (auto* t = req.if_contains("certificateType"); t && t->as_string() != kCsType)
    return rejected("UnsupportedCertType", "only ChargingStationCertificate is supported");
  if (!identity_) return rejected("InvalidCertificate", "no certificate signing request is pending");
  const auto& pem = req.at("certificateChain").as_string();
  const bool profile3 = session_.security_profile() == 3;
  const auto max = static_cast<std::size_t>(dm_.integer("SecurityCtrlr.MaxCertificateChainSize", 10000));
  const auto r = identity_->accept_certificate(session_.csms(), std::string_view(pem.data(), pem.size()), max, profile3);
  if (!r) {
    if (r.error().code == Errc::Rejected) return rejected("InvalidCertificate", r.error().message);
    if (r.error().code == Errc::Storage) return rejected("InternalError", "cannot store the certificate");
    return refusal(r.error());
  }
  end_renewal({});
  Reply rep = status_reply("Accepted");
  if (profile3) {
    rep.after_written = [this] { session_.reconnect("the renewed station certificate"); };
  } else {
    // Not used for this connection: it becomes the identity at once.
    trying_candidate_ = true;
    candidate_connected();
  }
  return rep;
}

// ---- COM-10: expiry watch ---------------------------------------------------------

void SecurityBlock::check_expiry() {
  if (!identity_ || !session_.online() || renewal_.active || identity_->identity().has_candidate()) return;
  if (!identity_->expires_within(std::chrono::hours(24) * cfg_.certificate_renewal_days)) return;
  // At most one automatic attempt a day: a CSMS that does not sign is not hammered.
  const auto steady = std::chrono::steady_clock::now();
  if (renewal_.last_auto != std::chrono::steady_clock::time_point{} && steady - renewal_.last_auto < std::chrono::hours(24))
    return;
  renewal_.last_auto = steady;
  if (const auto s = identity_->identity().summary(security::kStationKeyLabel))
    log::warn("ocpp", "the station certificate expires on ", clock::format_rfc3339(s->not_after), "; renewing it");
  begin(identity_->begin_renewal_for_expiry());
}

// ---- M03/M04/M05: installed certificates -------------------------------------------

void SecurityBlock::boot_accepted(const security::CertChain& verified) {
  if (certs_) certs_->connection_verified(verified, session_.security_profile());
}

Reply SecurityBlock::on_install_certificate(const json::object& req) {
  const std::string type_text(req.at("certificateType").as_string());
  const auto& pem = req.at("certificate").as_string();
  const auto type = security::parse_certificate_type(type_text);
  if (!certs_ || !type) return rejected("UnsupportedCertType", "certificate type not supported: " + type_text);
  security::InstallContext ctx;
  ctx.security_profile = session_.security_profile();
  ctx.additional_root_check = dm_.boolean("SecurityCtrlr.AdditionalRootCertificateCheck");
  ctx.now = clock::now_utc();
  const auto res = certs_->install(session_.csms(), *type, std::string_view(pem.data(), pem.size()), ctx);
  if (!res) return refusal(res.error());
  const auto& r = *res;
  if (r.accepted()) {
    log::info("ocpp", "InstallCertificate ", type_text, ": ", r.reason);
    return status_reply("Accepted");
  }
  log::warn("ocpp", "InstallCertificate ", type_text, " ", security::to_string(r.status), ": ", r.reason);
  json::object st{{"reasonCode", r.status == security::InstallStatus::Failed ? "InternalError" : "InvalidCertificate"},
                  {"additionalInfo", std::string_view(r.reason).substr(0, 512)}};
  return result(json::object{{"status", security::to_string(r.status)}, {"statusInfo", std::move(st)}});
}

Reply SecurityBlock::on_delete_certificate(const json::object& req) {
  const auto& h = req.at("certificateHashData").as_object();
  security::CertificateHashData hd{std::string(h.at("hashAlgorithm").as_string()),
                                   std::string(h.at("issuerNameHash").as_string()),
                                   std::string(h.at("issuerKeyHash").as_string()),
                                   std::string(h.at("serialNumber").as_string())};
  if (!certs_) return status_reply("NotFound");
  const auto res = certs_->remove(session_.csms(), hd);
  if (!res) return refusal(res.error());
  json::object rep{{"status", security::to_string(res->status)}};
  if (res->status == security::DeleteStatus::Failed)
    rep["statusInfo"] =
        json::object{{"reasonCode", "NotAllowed"}, {"additionalInfo", std::string_view(res->reason).substr(0, 512)}};
  return result(std::move(rep));
}

Reply SecurityBlock::on_get_installed_certificate_ids(const json::object& req) {
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
  if (certs_) {
    const auto res = certs_->list(session_.csms(), types);
    if (!res) return refusal(res.error());
    if (!only_unsupported) {
      for (const auto& e : *res) {
        if (e.hash_data.serial_number.size() > 40) continue;  // beyond RFC 5280; OCPP cannot carry it
        chain.push_back(json::object{{"certificateType", security::to_string(e.type)},
                                     {"certificateHashData", hash_json(e.hash_data)}});
      }
    }
  }
  if (chain.empty()) return status_reply("NotFound");
  return result(json::object{{"status", "Accepted"}, {"certificateHashDataChain", std::move(chain)}});
}

}  // namespace cg::ocpp
