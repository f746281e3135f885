// REQ: AUTHZ-1, AUTHZ-2 — the one access policy. Every front end (OCPP handlers,
// the simulator / HAL driver path, later the web UI and the EMS/LAN interfaces)
// turns its input into (Principal, Operation) and asks policy::authorize.
// Deny by default: anything not in the table is denied.
#pragma once
#include <string>
#include <string_view>

namespace cg::policy {

// Who asks. Roles of EV-311 table 1 plus the local maintenance roles of AUTH-2.
enum class Role {
  Csms,         // the operator's central system, over OCPP
  Admin,        // local maintenance: accounts, security settings, audit log
  Engineer,     // local maintenance: configure, restore, firmware, logs
  Viewer,       // local maintenance: read status
  EvDriver,     // authentication terminal (RFID / app)
  Ev,           // the vehicle, over the charging cable
  PeerStation,  // other charging stations on the LAN
  Ems,          // energy management system
};

// Over which interface the request arrives.
enum class Interface {
  Wan,               // OCPP to the CSMS
  LocalMaintenance,  // local web UI / maintenance port / local CLI
  AuthTerminal,      // RFID reader, display, app
  EvCable,           // IEC 61851 / ISO 15118
  Lan,               // other stations
  EmsLink,           // energy management system
};

struct Principal {
  Role role;
  Interface iface;
  std::string name;  // account name, CSMS identity, masked token… for audit records
};

// What is asked. Grouped as in EV-311 table 1.
enum class Operation {
  // transactions and meter values
  StartTransaction,
  StopTransaction,
  ReadTransactions,   // transaction status, meter values
  // tariffs
  SetTariff,
  // configuration
  ReadConfiguration,
  WriteConfiguration,
  ChangeAvailability,
  Reset,
  UnlockConnector,
  TriggerMessage,
  ManageAuthorization,  // local list, authorization cache
  // restore from backup
  RestoreBackup,
  // firmware update
  UpdateFirmware,
  // logs
  ReadDiagnosticsLog,
  ReadSecurityLog,   // AUTHZ-3: admins (and the CSMS via GetLog) only
  ClearSecurityLog,  // LOG-3: local admins only; the new chain starts with SecurityLogWasCleared
  // charging profiles
  SetChargingProfile,
  // driver
  Authenticate,      // present an idToken at the terminal
  // EV
  ControlCharging,   // EV requests/ends energy transfer over the cable
  // other stations
  LoadBalancing,
  // EMS
  SetEnergyLimit,
  // accounts and security settings (local admin)
  ManageAccounts,
  ManageSecuritySettings,
  ReadStatus,
  // vendor-specific extension messages (DataTransfer)
  VendorExtension,
};

enum class Decision { Allow, Deny };

Decision authorize(const Principal& who, Operation what);

std::string_view to_string(Role r);
std::string_view to_string(Interface i);
std::string_view to_string(Operation o);

}  // namespace cg::policy
