// Where and how the station connects (OCPP B09/B10, A05; COM-1, COM-6), for
// every front end: the CSMS stores profiles (SetNetworkProfile) and orders
// them (NetworkConfigurationPriority, through the settings service); the OCPP
// session asks for the slot to try and reports attempts. The rules are
// NetworkProfiles' (services/network_profiles.hpp); this service adds who may
// ask (ManageSecuritySettings), the local downgrade permission
// (csms.allow_security_profile_downgrade), the station's credentials for the
// preconditions, and the audit records: every SetNetworkProfile, every switch
// to another slot (rate-limited), every change of the working slot.
// REQ: COM-1, COM-6, AUTHZ-1, LOG-1
#pragma once
#include <optional>
#include <string>
#include <vector>

#include "core/config.hpp"
#include "core/device_model.hpp"
#include "core/result.hpp"
#include "core/storage.hpp"
#include "services/network_profiles.hpp"
#include "security/cert_store.hpp"
#include "security/sealed_password.hpp"
#include "security/station_identity.hpp"
#include "services/gate.hpp"

namespace cg::services {

class NetworkService {
 public:
  // Any of the credential sources may be null (the station has none of that kind).
  NetworkService(Gate& gate, storage::Db& db, const config::Config& cfg, core::DeviceModel& dm,
                 security::SealedPassword* password, security::StationIdentity* identity,
                 security::CertStore* certs);

  // ---- B09 SetNetworkProfile (connection_data already schema-valid)
  struct SetProfile {
    enum class Status { Accepted, Rejected, Failed } status = Status::Rejected;
    std::string reason_code, info;  // when not Accepted
  };
  Result<SetProfile> set_profile(const policy::Principal& who, long long slot,
                                 const boost::json::object& connection_data);
  // ---- B10 NetworkConfigurationPriority: checked and normalized ("1,0"), or
  // a refusal (Error::reason: the OCPP reasonCode); for the settings service.
  Result<std::string> check_priority(std::string_view value) const;

  // ---- the rotation, for the OCPP session
  // Starts over at the first slot of the priority list.
  void begin_rotation();
  const NetworkProfile& current() const { return profiles_.current(); }
  // One attempt with current() failed; true when the next one uses another
  // slot (after NetworkProfileConnectionAttempts), which is audited.
  bool attempt_failed(const std::string& reason);
  // The CSMS accepted the boot through current(): the working slot and the
  // active security profile (audited when they change).
  void worked();
  int active_security_profile() const { return profiles_.active_security_profile(); }

 private:
  Credentials credentials() const;
  bool allow_downgrade() const { return cfg_.allow_security_profile_downgrade; }

  Gate& gate_;
  const config::Config& cfg_;
  core::DeviceModel& dm_;
  security::SealedPassword* password_;
  security::StationIdentity* identity_;
  security::CertStore* certs_;
  NetworkProfiles profiles_;
  audit::RecordLimiter fallback_limit_{3, std::chrono::minutes(15)};
};

}  // namespace cg::services
