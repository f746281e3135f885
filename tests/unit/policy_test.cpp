// REQ: AUTHZ-1, AUTHZ-2, AUTHZ-3, AUTH-2 — the access table, checked row by row.
//
// The expectation below is written independently of the table in policy.cpp:
// per role, the set of interfaces it may use and the set of operations it may
// ask for. Every (role, interface, operation) combination is enumerated and
// compared with policy::authorize, so each allowed row and each denied
// combination is checked.
#include "policy/policy.hpp"

#include <gtest/gtest.h>

#include <array>
#include <cstddef>
#include <map>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace {

using cg::policy::authorize;
using cg::policy::Decision;
using cg::policy::Interface;
using cg::policy::Operation;
using cg::policy::Principal;
using cg::policy::Role;
using cg::policy::to_string;

// ---- The enum sizes, kept in one place. -----------------------------------
// Adding an enumerator makes to_string() name it (-Wswitch -Werror), which makes
// EnumsEndAtTheLastKnownEnumerator fail until the constant below is moved; the
// static_asserts then fail until the name lists are extended; and
// EveryOperationIsClassified fails until the expectation says who may do it.
constexpr Role kLastRole = Role::Ems;
constexpr Interface kLastInterface = Interface::EmsLink;
constexpr Operation kLastOperation = Operation::VendorExtension;

constexpr int kRoleCount = static_cast<int>(kLastRole) + 1;
constexpr int kInterfaceCount = static_cast<int>(kLastInterface) + 1;
constexpr int kOperationCount = static_cast<int>(kLastOperation) + 1;

constexpr std::string_view kInvalidName = "(invalid)";

// Expected names, in declaration order (also the test's list of all values).
constexpr std::array<std::pair<Role, std::string_view>, 8> kRoleNames{{
    {Role::Csms, "Csms"},
    {Role::Admin, "Admin"},
    {Role::Engineer, "Engineer"},
    {Role::Viewer, "Viewer"},
    {Role::EvDriver, "EvDriver"},
    {Role::Ev, "Ev"},
    {Role::PeerStation, "PeerStation"},
    {Role::Ems, "Ems"},
}};

constexpr std::array<std::pair<Interface, std::string_view>, 6> kInterfaceNames{{
    {Interface::Wan, "Wan"},
    {Interface::LocalMaintenance, "LocalMaintenance"},
    {Interface::AuthTerminal, "AuthTerminal"},
    {Interface::EvCable, "EvCable"},
    {Interface::Lan, "Lan"},
    {Interface::EmsLink, "EmsLink"},
}};

constexpr std::array<std::pair<Operation, std::string_view>, 25> kOperationNames{{
    {Operation::StartTransaction, "StartTransaction"},
    {Operation::StopTransaction, "StopTransaction"},
    {Operation::ReadTransactions, "ReadTransactions"},
    {Operation::SetTariff, "SetTariff"},
    {Operation::ReadConfiguration, "ReadConfiguration"},
    {Operation::WriteConfiguration, "WriteConfiguration"},
    {Operation::ChangeAvailability, "ChangeAvailability"},
    {Operation::Reset, "Reset"},
    {Operation::UnlockConnector, "UnlockConnector"},
    {Operation::TriggerMessage, "TriggerMessage"},
    {Operation::ManageAuthorization, "ManageAuthorization"},
    {Operation::RestoreBackup, "RestoreBackup"},
    {Operation::UpdateFirmware, "UpdateFirmware"},
    {Operation::ReadDiagnosticsLog, "ReadDiagnosticsLog"},
    {Operation::ReadSecurityLog, "ReadSecurityLog"},
    {Operation::ClearSecurityLog, "ClearSecurityLog"},
    {Operation::SetChargingProfile, "SetChargingProfile"},
    {Operation::Authenticate, "Authenticate"},
    {Operation::ControlCharging, "ControlCharging"},
    {Operation::LoadBalancing, "LoadBalancing"},
    {Operation::SetEnergyLimit, "SetEnergyLimit"},
    {Operation::ManageAccounts, "ManageAccounts"},
    {Operation::ManageSecuritySettings, "ManageSecuritySettings"},
    {Operation::ReadStatus, "ReadStatus"},
    {Operation::VendorExtension, "VendorExtension"},
}};

static_assert(kRoleNames.size() == kRoleCount, "kRoleNames must list every Role");
static_assert(kInterfaceNames.size() == kInterfaceCount,
              "kInterfaceNames must list every Interface");
static_assert(kOperationNames.size() == kOperationCount,
              "kOperationNames must list every Operation; update kAllowed too");

template <typename Names>
constexpr bool in_declaration_order(const Names& names) {
  for (std::size_t i = 0; i < names.size(); ++i) {
    if (static_cast<std::size_t>(names[i].first) != i) return false;
  }
  return true;
}
static_assert(in_declaration_order(kRoleNames));
static_assert(in_declaration_order(kInterfaceNames));
static_assert(in_declaration_order(kOperationNames));
static_assert(kRoleNames.back().first == kLastRole);
static_assert(kInterfaceNames.back().first == kLastInterface);
static_assert(kOperationNames.back().first == kLastOperation);

std::vector<Role> all_roles() {
  std::vector<Role> v;
  for (const auto& [r, name] : kRoleNames) v.push_back(r);
  return v;
}
std::vector<Interface> all_interfaces() {
  std::vector<Interface> v;
  for (const auto& [i, name] : kInterfaceNames) v.push_back(i);
  return v;
}
std::vector<Operation> all_operations() {
  std::vector<Operation> v;
  for (const auto& [o, name] : kOperationNames) v.push_back(o);
  return v;
}

// ---- The expectation: EV-311 table 1 + AUTH-2 + AUTHZ-3. -------------------
struct Expected {
  std::set<Interface> interfaces;
  std::set<Operation> operations;
};

const std::map<Role, Expected>& expected_table() {
  using enum Operation;
  static const std::map<Role, Expected> table{
      {Role::Csms,
       {{Interface::Wan},
        {StartTransaction, StopTransaction, ReadTransactions, SetTariff, ReadConfiguration,
         WriteConfiguration, ChangeAvailability, Reset, UnlockConnector, TriggerMessage,
         ManageAuthorization, RestoreBackup, UpdateFirmware, ReadDiagnosticsLog, ReadSecurityLog,
         SetChargingProfile, VendorExtension, ReadStatus, ManageSecuritySettings}}},
      {Role::Admin,
       {{Interface::LocalMaintenance},
        {ManageAccounts, ManageSecuritySettings, ReadSecurityLog, ClearSecurityLog, ReadStatus,
         ReadConfiguration, ReadDiagnosticsLog}}},
      {Role::Engineer,
       {{Interface::LocalMaintenance},
        {ReadConfiguration, WriteConfiguration, RestoreBackup, UpdateFirmware, ReadDiagnosticsLog,
         ReadStatus, ChangeAvailability, Reset, UnlockConnector}}},
      {Role::Viewer, {{Interface::LocalMaintenance}, {ReadStatus}}},
      {Role::EvDriver, {{Interface::AuthTerminal}, {Authenticate, StopTransaction}}},
      {Role::Ev, {{Interface::EvCable}, {ControlCharging}}},
      {Role::PeerStation, {{Interface::Lan}, {LoadBalancing}}},
      {Role::Ems, {{Interface::EmsLink}, {SetEnergyLimit}}},
  };
  return table;
}

// Operations nobody may ask for (none today). A new operation must go either
// into some role's set above or here.
const std::set<Operation> kDeniedToEveryone{};

bool expected_allowed(Role r, Interface i, Operation o) {
  const auto it = expected_table().find(r);
  if (it == expected_table().end()) return false;
  return it->second.interfaces.contains(i) && it->second.operations.contains(o);
}

Decision ask(Role r, Interface i, Operation o) {
  return authorize(Principal{r, i, "policy-test"}, o);
}

bool allowed(Role r, Interface i, Operation o) { return ask(r, i, o) == Decision::Allow; }

std::string describe(Role r, Interface i, Operation o) {
  return std::string(to_string(r)) + " over " + std::string(to_string(i)) + " asking " +
         std::string(to_string(o));
}

// ---- Enumeration of the whole table, one test instance per role. -----------
class PolicyTableTest : public ::testing::TestWithParam<Role> {};

TEST_P(PolicyTableTest, EveryInterfaceAndOperationMatchesTheExpectation) {
  const Role r = GetParam();
  int allows = 0;
  for (Interface i : all_interfaces()) {
    for (Operation o : all_operations()) {
      const bool want = expected_allowed(r, i, o);
      EXPECT_EQ(allowed(r, i, o), want)
          << describe(r, i, o) << ": expected " << (want ? "Allow" : "Deny");
      allows += want ? 1 : 0;
    }
  }
  const Expected& e = expected_table().at(r);
  EXPECT_EQ(allows, static_cast<int>(e.interfaces.size() * e.operations.size()));
}

TEST_P(PolicyTableTest, DeniedForEverythingOnAForeignInterface) {
  const Role r = GetParam();
  const Expected& e = expected_table().at(r);
  ASSERT_EQ(e.interfaces.size(), 1u) << "each role has exactly one interface";
  for (Interface i : all_interfaces()) {
    if (e.interfaces.contains(i)) continue;
    for (Operation o : all_operations()) {
      EXPECT_EQ(ask(r, i, o), Decision::Deny) << describe(r, i, o);
    }
  }
}

TEST_P(PolicyTableTest, OperationsOutsideTheEnumAreDenied) {
  const Role r = GetParam();
  for (Interface i : all_interfaces()) {
    for (int raw : {-1, kOperationCount, kOperationCount + 1, 999}) {
      EXPECT_EQ(ask(r, i, static_cast<Operation>(raw)), Decision::Deny)
          << to_string(r) << " over " << to_string(i) << " asking Operation(" << raw << ")";
    }
  }
}

INSTANTIATE_TEST_SUITE_P(AllRoles, PolicyTableTest, ::testing::ValuesIn(all_roles()),
                         [](const ::testing::TestParamInfo<Role>& param_info) {
                           return std::string(to_string(param_info.param));
                         });

// ---- Completeness of the expectation itself. -------------------------------
TEST(PolicyEnumTest, EnumsEndAtTheLastKnownEnumerator) {
  // If one of these fails, an enumerator was added: move kLast*, extend the
  // name lists and the expectation.
  EXPECT_EQ(to_string(static_cast<Role>(kRoleCount)), kInvalidName);
  EXPECT_EQ(to_string(static_cast<Interface>(kInterfaceCount)), kInvalidName);
  EXPECT_EQ(to_string(static_cast<Operation>(kOperationCount)), kInvalidName);
}

TEST(PolicyEnumTest, ExpectationCoversEveryRole) {
  EXPECT_EQ(expected_table().size(), static_cast<std::size_t>(kRoleCount));
  for (Role r : all_roles()) EXPECT_TRUE(expected_table().contains(r)) << to_string(r);
}

TEST(PolicyEnumTest, EveryOperationIsClassified) {
  for (Operation o : all_operations()) {
    bool granted_somewhere = false;
    for (const auto& [role, e] : expected_table()) {
      granted_somewhere = granted_somewhere || e.operations.contains(o);
    }
    EXPECT_NE(granted_somewhere, kDeniedToEveryone.contains(o))
        << to_string(o) << " must be granted to some role or listed in kDeniedToEveryone";
  }
}

// ---- to_string. -------------------------------------------------------------
TEST(PolicyToStringTest, NamesAreTheEnumeratorNames) {
  for (const auto& [r, name] : kRoleNames) EXPECT_EQ(to_string(r), name);
  for (const auto& [i, name] : kInterfaceNames) EXPECT_EQ(to_string(i), name);
  for (const auto& [o, name] : kOperationNames) EXPECT_EQ(to_string(o), name);
}

TEST(PolicyToStringTest, ValuesOutsideTheEnumsAreInvalid) {
  EXPECT_EQ(to_string(static_cast<Role>(-1)), kInvalidName);
  EXPECT_EQ(to_string(static_cast<Role>(999)), kInvalidName);
  EXPECT_EQ(to_string(static_cast<Interface>(-1)), kInvalidName);
  EXPECT_EQ(to_string(static_cast<Interface>(999)), kInvalidName);
  EXPECT_EQ(to_string(static_cast<Operation>(-1)), kInvalidName);
  EXPECT_EQ(to_string(static_cast<Operation>(999)), kInvalidName);
}

// ---- The important decisions, by name. --------------------------------------
TEST(PolicyDecisionTest, EngineerCannotReadSecurityLog) {  // AUTHZ-3
  EXPECT_EQ(ask(Role::Engineer, Interface::LocalMaintenance, Operation::ReadSecurityLog),
            Decision::Deny);
}

TEST(PolicyDecisionTest, OnlyALocalAdminClearsTheSecurityLog) {  // LOG-3, AUTHZ-3
  EXPECT_EQ(ask(Role::Admin, Interface::LocalMaintenance, Operation::ClearSecurityLog), Decision::Allow);
  for (Role r : {Role::Csms, Role::Engineer, Role::Viewer, Role::EvDriver, Role::Ev, Role::PeerStation, Role::Ems})
    for (Interface i : {Interface::Wan, Interface::LocalMaintenance, Interface::AuthTerminal, Interface::EvCable,
                        Interface::Lan, Interface::EmsLink})
      EXPECT_EQ(ask(r, i, Operation::ClearSecurityLog), Decision::Deny) << to_string(r) << " " << to_string(i);
  EXPECT_EQ(ask(Role::Admin, Interface::Wan, Operation::ClearSecurityLog), Decision::Deny);
}

TEST(PolicyDecisionTest, EngineerCannotManageAccountsOrSecuritySettings) {  // AUTH-2
  EXPECT_EQ(ask(Role::Engineer, Interface::LocalMaintenance, Operation::ManageAccounts),
            Decision::Deny);
  EXPECT_EQ(ask(Role::Engineer, Interface::LocalMaintenance, Operation::ManageSecuritySettings),
            Decision::Deny);
}

TEST(PolicyDecisionTest, EngineerConfiguresRestoresAndUpdatesLocally) {  // EV-311 table 1
  for (Operation o : {Operation::ReadConfiguration, Operation::WriteConfiguration,
                      Operation::RestoreBackup, Operation::UpdateFirmware,
                      Operation::ReadDiagnosticsLog}) {
    EXPECT_EQ(ask(Role::Engineer, Interface::LocalMaintenance, o), Decision::Allow)
        << to_string(o);
  }
}

TEST(PolicyDecisionTest, AdminDoesNotConfigureRestoreOrUpdate) {  // separation of duties
  for (Operation o : {Operation::WriteConfiguration, Operation::RestoreBackup,
                      Operation::UpdateFirmware, Operation::ChangeAvailability, Operation::Reset,
                      Operation::UnlockConnector}) {
    EXPECT_EQ(ask(Role::Admin, Interface::LocalMaintenance, o), Decision::Deny) << to_string(o);
  }
}

TEST(PolicyDecisionTest, AdminManagesAccountsSecurityAndReadsAuditLog) {
  for (Operation o : {Operation::ManageAccounts, Operation::ManageSecuritySettings,
                      Operation::ReadSecurityLog}) {
    EXPECT_EQ(ask(Role::Admin, Interface::LocalMaintenance, o), Decision::Allow) << to_string(o);
  }
}

TEST(PolicyDecisionTest, ViewerOnlyReadsStatus) {
  EXPECT_EQ(ask(Role::Viewer, Interface::LocalMaintenance, Operation::ReadStatus),
            Decision::Allow);
  for (Operation o : {Operation::ReadConfiguration, Operation::ReadDiagnosticsLog,
                      Operation::ReadSecurityLog, Operation::ReadTransactions}) {
    EXPECT_EQ(ask(Role::Viewer, Interface::LocalMaintenance, o), Decision::Deny) << to_string(o);
  }
}

TEST(PolicyDecisionTest, SecurityLogOnlyForAdminLocallyAndCsmsOverWan) {  // AUTHZ-3, LOG-4
  std::set<std::pair<Role, Interface>> readers;
  for (Role r : all_roles()) {
    for (Interface i : all_interfaces()) {
      if (allowed(r, i, Operation::ReadSecurityLog)) readers.insert({r, i});
    }
  }
  const std::set<std::pair<Role, Interface>> want{{Role::Csms, Interface::Wan},
                                                  {Role::Admin, Interface::LocalMaintenance}};
  EXPECT_EQ(readers, want);
}

TEST(PolicyDecisionTest, OnlyCsmsAndEngineerUpdateFirmwareOrRestore) {  // FW-6, CFG-1
  for (Operation o : {Operation::UpdateFirmware, Operation::RestoreBackup,
                      Operation::WriteConfiguration}) {
    std::set<std::pair<Role, Interface>> who;
    for (Role r : all_roles()) {
      for (Interface i : all_interfaces()) {
        if (allowed(r, i, o)) who.insert({r, i});
      }
    }
    const std::set<std::pair<Role, Interface>> want{
        {Role::Csms, Interface::Wan}, {Role::Engineer, Interface::LocalMaintenance}};
    EXPECT_EQ(who, want) << to_string(o);
  }
}

TEST(PolicyDecisionTest, OnlyAdminManagesAccounts) {
  for (Role r : all_roles()) {
    for (Interface i : all_interfaces()) {
      const bool want = r == Role::Admin && i == Interface::LocalMaintenance;
      EXPECT_EQ(allowed(r, i, Operation::ManageAccounts), want)
          << describe(r, i, Operation::ManageAccounts);
    }
  }
}

TEST(PolicyDecisionTest, CsmsOverLocalMaintenanceIsDenied) {
  for (Operation o : all_operations()) {
    EXPECT_EQ(ask(Role::Csms, Interface::LocalMaintenance, o), Decision::Deny) << to_string(o);
  }
}

TEST(PolicyDecisionTest, CsmsOverTheLanIsDenied) {
  EXPECT_EQ(ask(Role::Csms, Interface::Lan, Operation::UpdateFirmware), Decision::Deny);
  EXPECT_EQ(ask(Role::Csms, Interface::Lan, Operation::WriteConfiguration), Decision::Deny);
}

TEST(PolicyDecisionTest, EvDriverCannotStartTransactionRemotelyOrLocally) {
  EXPECT_EQ(ask(Role::EvDriver, Interface::Wan, Operation::StartTransaction), Decision::Deny);
  EXPECT_EQ(ask(Role::EvDriver, Interface::AuthTerminal, Operation::StartTransaction),
            Decision::Deny);
}

TEST(PolicyDecisionTest, EvDriverAuthenticatesAndStopsAtTheTerminalOnly) {
  EXPECT_EQ(ask(Role::EvDriver, Interface::AuthTerminal, Operation::Authenticate), Decision::Allow);
  EXPECT_EQ(ask(Role::EvDriver, Interface::AuthTerminal, Operation::StopTransaction),
            Decision::Allow);
  EXPECT_EQ(ask(Role::EvDriver, Interface::Wan, Operation::StopTransaction), Decision::Deny);
  EXPECT_EQ(ask(Role::EvDriver, Interface::Wan, Operation::Authenticate), Decision::Deny);
  EXPECT_EQ(ask(Role::EvDriver, Interface::AuthTerminal, Operation::ReadTransactions),
            Decision::Deny);
}

TEST(PolicyDecisionTest, EvOnlyControlsCharging) {
  EXPECT_EQ(ask(Role::Ev, Interface::EvCable, Operation::ControlCharging), Decision::Allow);
  // EV-311 lists EV authentication (Plug & Charge) as optional; not granted.
  EXPECT_EQ(ask(Role::Ev, Interface::EvCable, Operation::Authenticate), Decision::Deny);
  EXPECT_EQ(ask(Role::Ev, Interface::EvCable, Operation::StartTransaction), Decision::Deny);
  EXPECT_EQ(ask(Role::Ev, Interface::EvCable, Operation::UpdateFirmware), Decision::Deny);
}

TEST(PolicyDecisionTest, PeerStationOnlyBalancesLoad) {
  EXPECT_EQ(ask(Role::PeerStation, Interface::Lan, Operation::LoadBalancing), Decision::Allow);
  EXPECT_EQ(ask(Role::PeerStation, Interface::Lan, Operation::SetEnergyLimit), Decision::Deny);
  EXPECT_EQ(ask(Role::PeerStation, Interface::Lan, Operation::WriteConfiguration), Decision::Deny);
  EXPECT_EQ(ask(Role::PeerStation, Interface::Lan, Operation::SetChargingProfile), Decision::Deny);
}

TEST(PolicyDecisionTest, EmsSetsEnergyLimitsOnly) {  // AUTHZ-2
  EXPECT_EQ(ask(Role::Ems, Interface::EmsLink, Operation::SetEnergyLimit), Decision::Allow);
  EXPECT_EQ(ask(Role::Ems, Interface::EmsLink, Operation::SetChargingProfile), Decision::Deny);
  EXPECT_EQ(ask(Role::Ems, Interface::EmsLink, Operation::StartTransaction), Decision::Deny);
  EXPECT_EQ(ask(Role::Ems, Interface::EmsLink, Operation::WriteConfiguration), Decision::Deny);
  EXPECT_EQ(ask(Role::Ems, Interface::EmsLink, Operation::LoadBalancing), Decision::Deny);
  EXPECT_EQ(ask(Role::Ems, Interface::Lan, Operation::SetEnergyLimit), Decision::Deny);
}

TEST(PolicyDecisionTest, MaintenanceRolesAreDeniedOverTheWan) {
  for (Role r : {Role::Admin, Role::Engineer, Role::Viewer}) {
    for (Operation o : all_operations()) {
      EXPECT_EQ(ask(r, Interface::Wan, o), Decision::Deny) << describe(r, Interface::Wan, o);
    }
  }
}

TEST(PolicyDecisionTest, NameInThePrincipalGrantsNothing) {
  EXPECT_EQ(authorize(Principal{Role::Viewer, Interface::LocalMaintenance, "admin"},
                      Operation::ManageAccounts),
            Decision::Deny);
  EXPECT_EQ(authorize(Principal{Role::Viewer, Interface::LocalMaintenance, "csms"},
                      Operation::WriteConfiguration),
            Decision::Deny);
}

TEST(PolicyDecisionTest, OperationOutsideTheTableIsDenied) {
  EXPECT_EQ(ask(Role::Csms, Interface::Wan, static_cast<Operation>(999)), Decision::Deny);
  EXPECT_EQ(ask(Role::Admin, Interface::LocalMaintenance, static_cast<Operation>(999)),
            Decision::Deny);
  EXPECT_EQ(ask(Role::Csms, Interface::Wan, static_cast<Operation>(-1)), Decision::Deny);
}

TEST(PolicyDecisionTest, RoleOrInterfaceOutsideTheEnumIsDenied) {
  for (int raw : {-1, kRoleCount, 999}) {
    for (Interface i : all_interfaces()) {
      for (Operation o : all_operations()) {
        EXPECT_EQ(ask(static_cast<Role>(raw), i, o), Decision::Deny)
            << "Role(" << raw << ") over " << to_string(i) << " asking " << to_string(o);
      }
    }
  }
  for (int raw : {-1, kInterfaceCount, 999}) {
    for (Role r : all_roles()) {
      for (Operation o : all_operations()) {
        EXPECT_EQ(ask(r, static_cast<Interface>(raw), o), Decision::Deny)
            << to_string(r) << " over Interface(" << raw << ") asking " << to_string(o);
      }
    }
  }
}

}  // namespace
