#include "audit/catalog.hpp"

#include <array>

namespace cg::audit {
namespace {
using E = Event;
// Criticality per the OCPP 2.0.1 appendix (security events); see
// ../shared/ocpp-security-digest.md §2.
constexpr std::array<EventInfo, kEventCount> kCatalog{{
    {E::FirmwareUpdated, "FirmwareUpdated", true, true},
    {E::FailedToAuthenticateAtCsms, "FailedToAuthenticateAtCsms", true, false},
    {E::CsmsFailedToAuthenticate, "CsmsFailedToAuthenticate", true, false},
    {E::SettingSystemTime, "SettingSystemTime", true, true},
    {E::StartupOfTheDevice, "StartupOfTheDevice", true, true},
    {E::ResetOrReboot, "ResetOrReboot", true, true},
    {E::SecurityLogWasCleared, "SecurityLogWasCleared", true, true},
    {E::ReconfigurationOfSecurityParameters, "ReconfigurationOfSecurityParameters", true, false},
    {E::MemoryExhaustion, "MemoryExhaustion", true, true},
    {E::InvalidMessages, "InvalidMessages", true, false},
    {E::AttemptedReplayAttacks, "AttemptedReplayAttacks", true, false},
    {E::TamperDetectionActivated, "TamperDetectionActivated", true, true},
    {E::InvalidFirmwareSignature, "InvalidFirmwareSignature", true, true},
    {E::InvalidFirmwareSigningCertificate, "InvalidFirmwareSigningCertificate", true, true},
    {E::InvalidCsmsCertificate, "InvalidCsmsCertificate", true, true},
    {E::InvalidChargingStationCertificate, "InvalidChargingStationCertificate", true, true},
    {E::InvalidTLSVersion, "InvalidTLSVersion", true, true},
    {E::InvalidTLSCipherSuite, "InvalidTLSCipherSuite", true, true},
    {E::MaintenanceLoginAccepted, "MaintenanceLoginAccepted", true, true},
    {E::MaintenanceLoginFailed, "MaintenanceLoginFailed", true, true},
    {E::Shutdown, "Shutdown", false, true},
    {E::AccountChanged, "AccountChanged", false, true},
    {E::AuthorizationChanged, "AuthorizationChanged", false, true},
    {E::ConfigurationChanged, "ConfigurationChanged", false, false},
    {E::ServiceChanged, "ServiceChanged", false, true},
    {E::SecurityLogOverwritten, "SecurityLogOverwritten", false, true},
    {E::FactoryReset, "FactoryReset", false, true},
    {E::SecurityLogExported, "SecurityLogExported", false, true},
    {E::TamperCleared, "TamperCleared", false, false},
    {E::AccessDenied, "AccessDenied", false, false},
    {E::DataPurged, "DataPurged", false, false},
    {E::FirmwareUpdateProgress, "FirmwareUpdateProgress", false, true},
    {E::SecureBootFailed, "SecureBootFailed", false, true},
    {E::FirmwareRolledBack, "FirmwareRolledBack", false, true},
    {E::SessionEnded, "SessionEnded", false, false},
}};

constexpr bool catalog_in_order() {
  for (int i = 0; i < kEventCount; ++i)
    if (static_cast<int>(kCatalog[static_cast<std::size_t>(i)].event) != i) return false;
  return true;
}
static_assert(catalog_in_order(), "catalog rows must follow the enum order");
}  // namespace

const EventInfo& info(Event e) { return kCatalog[static_cast<std::size_t>(e)]; }

std::optional<Event> event_from_name(std::string_view name) {
  for (const auto& i : kCatalog)
    if (i.name == name) return i.event;
  return std::nullopt;
}

std::string_view to_string(Outcome o) { return o == Outcome::Success ? "success" : "failure"; }

}  // namespace cg::audit
