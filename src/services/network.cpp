#include "services/network.hpp"

#include "core/log.hpp"

namespace cg::services {
using audit::Event;
using audit::Outcome;

NetworkService::NetworkService(Gate& gate, storage::Db& db, const config::Config& cfg, core::DeviceModel& dm,
                               security::SealedPassword* password, security::StationIdentity* identity,
                               security::CertStore* certs)
    : gate_(gate), cfg_(cfg), dm_(dm), password_(password), identity_(identity), certs_(certs), profiles_(db, cfg) {
  begin_rotation();  // current() is valid from the start (the session starts over when it connects)
}

Credentials NetworkService::credentials() const {
  Credentials c;
  c.password = password_ && password_->has_current();
  c.station_certificate = identity_ && identity_->has_key(security::kStationKeyLabel) &&
                          identity_->has_certificate(security::kStationKeyLabel);
  c.csms_root = certs_ && certs_->count(security::CertificateType::CSMSRootCertificate) > 0;
  return c;
}

// B09: a new network connection profile in a slot. It is used after the CSMS
// puts the slot into NetworkConfigurationPriority and the station reconnects
// (Reset, or a lost connection). Every attempt is audited.
Result<NetworkService::SetProfile> NetworkService::set_profile(const policy::Principal& who, long long raw_slot,
                                                               const boost::json::object& connection_data) {
  if (auto ok = gate_.admit(who, policy::Operation::ManageSecuritySettings, "SetNetworkProfile"); !ok)
    return ok.error();
  const int slot = raw_slot < 0 || raw_slot > 1000 ? -1 : static_cast<int>(raw_slot);
  audit::Details d;
  d.text("change", "setNetworkProfile").number("slot", raw_slot);
  Result<NetworkProfile> checked = fail(Errc::Internal, "not checked");
  try {
    checked = profiles_.check(slot, connection_data, credentials(), allow_downgrade(), profiles_.current());
  } catch (const std::exception& e) {
    checked = refuse("InternalError", e.what());
  }
  if (!checked) {
    const Error& refusal = checked.error();
    log::warn("network", "SetNetworkProfile slot ", raw_slot, " rejected: ", refusal.message);
    gate_.record(who, Event::ReconfigurationOfSecurityParameters, Outcome::Failure,
                 d.text("status", "Rejected").text("reason", refusal.reason).text("info", refusal.message));
    return SetProfile{SetProfile::Status::Rejected, refusal.reason, refusal.message};
  }
  const NetworkProfile& p = *checked;
  d.number("securityProfile", p.security_profile).text("url", p.url);
  try {
    profiles_.store(p);
  } catch (const std::exception& e) {
    log::error("network", "cannot store network profile slot ", slot, ": ", e.what());
    gate_.record(who, Event::ReconfigurationOfSecurityParameters, Outcome::Failure,
                 d.text("status", "Failed").text("reason", "cannot be stored"));
    return SetProfile{SetProfile::Status::Failed, "InternalError", "the profile could not be stored"};
  }
  log::info("network", "network profile slot ", slot, " stored: ", p.url, " (security profile ", p.security_profile,
            "); used once it is in NetworkConfigurationPriority");
  gate_.record(who, Event::ReconfigurationOfSecurityParameters, Outcome::Success, d.text("status", "Accepted"));
  return SetProfile{SetProfile::Status::Accepted, {}, {}};
}

Result<std::string> NetworkService::check_priority(std::string_view value) const {
  auto slots = guarded("NetworkConfigurationPriority",
                       [&]() -> Result<std::vector<int>> { return profiles_.check_priority(value, allow_downgrade()); });
  if (!slots) return slots.error();
  std::string normalized;
  for (int s : *slots) normalized += (normalized.empty() ? "" : ",") + std::to_string(s);
  return normalized;
}

void NetworkService::begin_rotation() {
  profiles_.begin(NetworkProfiles::parse_priority(dm_.text("OCPPCommCtrlr.NetworkConfigurationPriority")),
                  allow_downgrade());
  for (const auto& s : profiles_.skipped()) log::warn("network", "network profiles: ", s);
}

bool NetworkService::attempt_failed(const std::string& reason) {
  const auto from = profiles_.current();
  if (!profiles_.attempt_failed(static_cast<int>(dm_.integer("OCPPCommCtrlr.NetworkProfileConnectionAttempts", 3))))
    return false;
  const auto& to = profiles_.current();
  log::warn("network", "network profile slot ", from.slot, " failed ", "(", reason, "); falling back to slot ", to.slot,
            " (", to.url, ", security profile ", to.security_profile, ")");
  gate_.record_limited(fallback_limit_, system_source(), Event::ConfigurationChanged, Outcome::Failure,
                       audit::Details()
                           .text("change", "networkProfileFallback")
                           .number("fromSlot", from.slot)
                           .number("toSlot", to.slot)
                           .number("securityProfile", to.security_profile)
                           .text("reason", reason));
  return true;
}

void NetworkService::worked() {
  // B10: the slot whose connection was accepted becomes the last good one and
  // its security profile the active one; a change of either is audited.
  const auto& np = profiles_.current();
  std::optional<int> before;
  int profile_before = np.security_profile;
  try {
    before = profiles_.last_good_slot();
    profile_before = profiles_.active_security_profile();
    profiles_.connected();
  } catch (const std::exception& e) {
    log::error("network", "cannot record the working network profile: ", e.what());
    return;
  }
  if (before && *before == np.slot && profile_before == np.security_profile) return;
  log::info("network", "network profile slot ", np.slot, " (security profile ", np.security_profile, ") works",
            before ? "; it was slot " + std::to_string(*before) : std::string());
  if (!before && np.slot == 0) return;  // the first connection ever, with the configured profile
  gate_.record(system_source(), Event::ReconfigurationOfSecurityParameters, Outcome::Success,
               audit::Details()
                   .text("change", "networkProfile")
                   .number("slot", np.slot)
                   .number("previousSlot", before.value_or(0))
                   .number("securityProfile", np.security_profile)
                   .number("previousSecurityProfile", profile_before)
                   .text("url", np.url));
}

}  // namespace cg::services
