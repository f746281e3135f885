// The closed catalog of security events: the 20 OCPP 2.0.1 security event
// types (appendix, with their criticality) and the local ones LOG-1 asks for.
// REQ: LOG-1, LOG-4
#pragma once
#include <cstdint>
#include <optional>
#include <string_view>

namespace cg::audit {

enum class Event : std::uint8_t {
  // OCPP 2.0.1 security events (names are sent as SecurityEventNotification.type)
  FirmwareUpdated,
  FailedToAuthenticateAtCsms,
  CsmsFailedToAuthenticate,
  SettingSystemTime,
  StartupOfTheDevice,
  ResetOrReboot,
  SecurityLogWasCleared,
  ReconfigurationOfSecurityParameters,
  MemoryExhaustion,
  InvalidMessages,
  AttemptedReplayAttacks,
  TamperDetectionActivated,
  InvalidFirmwareSignature,
  InvalidFirmwareSigningCertificate,
  InvalidCsmsCertificate,
  InvalidChargingStationCertificate,
  InvalidTLSVersion,
  InvalidTLSCipherSuite,
  MaintenanceLoginAccepted,
  MaintenanceLoginFailed,
  // Local events (LOG-1); kept in the log and forwarded to syslog, not sent as
  // SecurityEventNotification (OCPP asks for its own names only).
  Shutdown,
  AccountChanged,
  AuthorizationChanged,
  ConfigurationChanged,
  ServiceChanged,
  SecurityLogOverwritten,  // oldest exported records dropped (full_policy = overwrite_exported)
  FactoryReset,
  SecurityLogExported,
  TamperCleared,
  AccessDenied,  // a request the one policy refused (AUTHZ-1): who, over which interface, what
  DataPurged,    // stored data dropped by its retention limit (e.g. refused outbox messages, LOG-5)
  FirmwareUpdateProgress,  // a step of a firmware update: requested, downloaded, verified, installing, failed (FW-1..7)
  SecureBootFailed,        // the boot stage refused a slot (signature, certificate, floor, model) (FW-4)
  FirmwareRolledBack,      // a new image never confirmed itself; the previous slot boots (FW-5)
  SessionEnded,            // a maintenance session ended: logout, idle, address change, by an admin (AUTH-6)
};

inline constexpr int kEventCount = static_cast<int>(Event::SessionEnded) + 1;

struct EventInfo {
  Event event;
  std::string_view name;
  bool ocpp;      // one of the 20 OCPP security event types
  bool critical;  // sent to the CSMS at once (OCPP) / always stored (local)
};

const EventInfo& info(Event e);
std::optional<Event> event_from_name(std::string_view name);

enum class Outcome : std::uint8_t { Success, Failure };
std::string_view to_string(Outcome o);

}  // namespace cg::audit
