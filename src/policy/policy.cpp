// The access table of EV-311 table 1 (section 2.3) plus the local maintenance
// roles of AUTH-2. See policy.hpp for the contract: one table, deny by default.
#include "policy/policy.hpp"

#include <array>
#include <cstddef>

namespace cg::policy {
namespace {

struct Grant {
  Role role;
  Interface iface;
  Operation op;
};

using enum Operation;
using enum Role;
using enum Interface;

// REQ: AUTHZ-1, AUTHZ-2, AUTHZ-3
//
// Every row is one ALLOWED (role, interface, operation). Anything not listed is
// denied, including a role that arrives over an interface that is not its own
// and any value outside the enums.
//
// Each role has exactly one interface (checked below): the CSMS only over the
// WAN, the maintenance roles only over the local maintenance interface, the
// driver only at the authentication terminal, the EV only over the cable,
// other stations only over the LAN, the EMS only over the EMS link.
//
// Audit information (AUTHZ-3, CR 3.9): ReadSecurityLog is granted to Admin
// locally and to the CSMS (GetLog type SecurityLog, LOG-4; the operator is the
// "infrastructure administrator" of CR 3.9). No operation writes or edits
// audit records, so nobody can. Clearing the whole log (ClearSecurityLog) is a
// local admin operation only: OCPP has no message for it, and the cleared log
// restarts with a SecurityLogWasCleared record that reaches the CSMS.
//
// Admin vs. engineer (AUTH-2, separation of duties): EV-311 table 1 has no
// admin, only the engineer (configure, restore from backup, update firmware,
// analyze operational logs). AUTH-2 adds an admin for accounts and security
// settings. Decision: the admin does NOT configure, restore, update firmware,
// reset or change availability; it only READS configuration, status and the
// diagnostics log besides its own duties (accounts, security settings, the
// audit log). The engineer in turn cannot touch accounts, security settings or
// the audit log. This agrees with FW-6 (updates by CSMS or engineer), CFG-1
// (restore by CSMS or engineer), NET-1 (enabling a service is an admin action)
// and LOG-4 (local audit view for admins). One person doing both jobs gets two
// accounts. Consequence for front ends: security-relevant settings (optional
// services, security profile, lockout and password policy, credentials,
// certificates) are ManageSecuritySettings, never WriteConfiguration.
constexpr std::array kGrants{
    // --- CSMS over the WAN (EV-311 table 1 row 1, CHG-1, COM-6)
    Grant{Csms, Wan, StartTransaction},         // RequestStartTransaction
    Grant{Csms, Wan, StopTransaction},          // RequestStopTransaction
    Grant{Csms, Wan, ReadTransactions},         // transaction data, meter values
    Grant{Csms, Wan, SetTariff},
    Grant{Csms, Wan, ReadConfiguration},        // GetVariables, GetBaseReport
    Grant{Csms, Wan, WriteConfiguration},       // SetVariables
    Grant{Csms, Wan, ChangeAvailability},
    Grant{Csms, Wan, Reset},
    Grant{Csms, Wan, UnlockConnector},
    Grant{Csms, Wan, TriggerMessage},
    Grant{Csms, Wan, ManageAuthorization},      // SendLocalList, ClearCache
    Grant{Csms, Wan, RestoreBackup},
    Grant{Csms, Wan, UpdateFirmware},           // signed update only (FW-2)
    Grant{Csms, Wan, ReadDiagnosticsLog},       // GetLog DiagnosticsLog
    Grant{Csms, Wan, ReadSecurityLog},          // GetLog SecurityLog (LOG-4)
    Grant{Csms, Wan, SetChargingProfile},       // optional in table 1
    Grant{Csms, Wan, VendorExtension},          // DataTransfer
    Grant{Csms, Wan, ReadStatus},
    Grant{Csms, Wan, ManageSecuritySettings},   // keys, passwords, certs (COM-6)

    // --- Admin over local maintenance (AUTH-2: accounts, security settings)
    Grant{Admin, LocalMaintenance, ManageAccounts},
    Grant{Admin, LocalMaintenance, ManageSecuritySettings},
    Grant{Admin, LocalMaintenance, ReadSecurityLog},  // AUTHZ-3: admins only
    Grant{Admin, LocalMaintenance, ClearSecurityLog},  // LOG-3
    Grant{Admin, LocalMaintenance, ReadStatus},
    Grant{Admin, LocalMaintenance, ReadConfiguration},  // read only, see above
    Grant{Admin, LocalMaintenance, ReadDiagnosticsLog},

    // --- Engineer over local maintenance (EV-311 table 1 row 2, AUTH-2)
    Grant{Engineer, LocalMaintenance, ReadConfiguration},
    Grant{Engineer, LocalMaintenance, WriteConfiguration},
    Grant{Engineer, LocalMaintenance, RestoreBackup},
    Grant{Engineer, LocalMaintenance, UpdateFirmware},
    Grant{Engineer, LocalMaintenance, ReadDiagnosticsLog},  // "operational logs"
    Grant{Engineer, LocalMaintenance, ReadStatus},
    Grant{Engineer, LocalMaintenance, ChangeAvailability},
    Grant{Engineer, LocalMaintenance, Reset},
    Grant{Engineer, LocalMaintenance, UnlockConnector},

    // --- Viewer over local maintenance (AUTH-2)
    Grant{Viewer, LocalMaintenance, ReadStatus},

    // --- EV driver at the authentication terminal (table 1 row 3). Stopping is
    // badging again; the caller checks the token belongs to the transaction.
    Grant{EvDriver, AuthTerminal, Authenticate},
    Grant{EvDriver, AuthTerminal, StopTransaction},

    // --- EV over the charging cable (table 1 row 4)
    Grant{Ev, EvCable, ControlCharging},

    // --- Other charging stations over the LAN (table 1 row 5)
    Grant{PeerStation, Lan, LoadBalancing},

    // --- EMS over its link (table 1 row 6; AUTHZ-2: energy limits only)
    Grant{Ems, EmsLink, SetEnergyLimit},
};

constexpr bool same(const Grant& a, const Grant& b) {
  return a.role == b.role && a.iface == b.iface && a.op == b.op;
}

constexpr bool no_duplicate_rows() {
  for (std::size_t i = 0; i < kGrants.size(); ++i) {
    for (std::size_t j = i + 1; j < kGrants.size(); ++j) {
      if (same(kGrants[i], kGrants[j])) return false;
    }
  }
  return true;
}

constexpr bool each_role_on_one_interface() {
  for (const Grant& a : kGrants) {
    for (const Grant& b : kGrants) {
      if (a.role == b.role && a.iface != b.iface) return false;
    }
  }
  return true;
}

static_assert(no_duplicate_rows(), "duplicate row in the access table");
static_assert(each_role_on_one_interface(),
              "a role is bound to one interface; a second one needs a deliberate review");

}  // namespace

Decision authorize(const Principal& who, Operation what) {
  const Grant asked{who.role, who.iface, what};
  for (const Grant& g : kGrants) {
    if (same(g, asked)) return Decision::Allow;
  }
  return Decision::Deny;
}

// The switches have no default on purpose: -Wswitch (-Wall, -Werror) fails the
// build when an enumerator is added without a name here.
std::string_view to_string(Role r) {
  switch (r) {
    case Csms: return "Csms";
    case Admin: return "Admin";
    case Engineer: return "Engineer";
    case Viewer: return "Viewer";
    case EvDriver: return "EvDriver";
    case Ev: return "Ev";
    case PeerStation: return "PeerStation";
    case Ems: return "Ems";
  }
  return "(invalid)";
}

std::string_view to_string(Interface i) {
  switch (i) {
    case Wan: return "Wan";
    case LocalMaintenance: return "LocalMaintenance";
    case AuthTerminal: return "AuthTerminal";
    case EvCable: return "EvCable";
    case Lan: return "Lan";
    case EmsLink: return "EmsLink";
  }
  return "(invalid)";
}

std::string_view to_string(Operation o) {
  switch (o) {
    case StartTransaction: return "StartTransaction";
    case StopTransaction: return "StopTransaction";
    case ReadTransactions: return "ReadTransactions";
    case SetTariff: return "SetTariff";
    case ReadConfiguration: return "ReadConfiguration";
    case WriteConfiguration: return "WriteConfiguration";
    case ChangeAvailability: return "ChangeAvailability";
    case Reset: return "Reset";
    case UnlockConnector: return "UnlockConnector";
    case TriggerMessage: return "TriggerMessage";
    case ManageAuthorization: return "ManageAuthorization";
    case RestoreBackup: return "RestoreBackup";
    case UpdateFirmware: return "UpdateFirmware";
    case ReadDiagnosticsLog: return "ReadDiagnosticsLog";
    case ReadSecurityLog: return "ReadSecurityLog";
    case ClearSecurityLog: return "ClearSecurityLog";
    case SetChargingProfile: return "SetChargingProfile";
    case Authenticate: return "Authenticate";
    case ControlCharging: return "ControlCharging";
    case LoadBalancing: return "LoadBalancing";
    case SetEnergyLimit: return "SetEnergyLimit";
    case ManageAccounts: return "ManageAccounts";
    case ManageSecuritySettings: return "ManageSecuritySettings";
    case ReadStatus: return "ReadStatus";
    case VendorExtension: return "VendorExtension";
  }
  return "(invalid)";
}

}  // namespace cg::policy
