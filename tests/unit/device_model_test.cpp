// The OCPP device model as the CSMS sees it through GetVariables/SetVariables:
// statuses, type and limit checks, mutability, persistence, configuration seeds
// and change listeners.
#include "core/device_model.hpp"

#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>

#include <filesystem>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "core/clock.hpp"

#include "test_util.hpp"

namespace {

namespace fs = std::filesystem;
using cg::core::DeviceModel;
using cg::core::GetStatus;
using cg::core::SetStatus;
using cg::core::VarRef;

VarRef ref(std::string component, std::string name, std::string instance = {}, int evse = 0, int connector = 0) {
  VarRef r;
  r.component = std::move(component);
  r.name = std::move(name);
  r.instance = std::move(instance);
  r.evse = evse;
  r.connector = connector;
  return r;
}

class DeviceModelTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = cg::test::make_temp_dir("dm");
    cfg_.identity = "CS001";
    cfg_.organization = "Example CPO";
    cfg_.security_profile = 2;
    cfg_.max_frame_bytes = 70000;
    cfg_.evses = {cg::config::Evse{2, 32, 3, 230}, cg::config::Evse{1, 16, 1, 230}};
    db_ = std::make_unique<cg::storage::Db>(dir_ / "station.db");
    dm_ = std::make_unique<DeviceModel>(*db_, cfg_);
  }
  void TearDown() override {
    dm_.reset();
    db_.reset();
    fs::remove_all(dir_);
  }
  // A second DeviceModel on the same database, as after a restart.
  std::unique_ptr<DeviceModel> reopen() { return std::make_unique<DeviceModel>(*db_, cfg_); }

  SetStatus set(const VarRef& r, std::string_view value) { return dm_->set(r, "Actual", value).status; }
  std::string stored(const std::string& key) {
    auto s = db_->prepare("SELECT value FROM variables WHERE name=?");
    s.bind(1, std::string_view(key));
    return s.step() ? s.col_text(0) : std::string("<absent>");
  }

  fs::path dir_;
  cg::config::Config cfg_;
  std::unique_ptr<cg::storage::Db> db_;
  std::unique_ptr<DeviceModel> dm_;
};

// ---- GetVariables -----------------------------------------------------------

TEST_F(DeviceModelTest, GetAccepted) {
  auto r = dm_->get(ref("OCPPCommCtrlr", "HeartbeatInterval"), "Actual");
  EXPECT_EQ(r.status, GetStatus::Accepted);
  EXPECT_EQ(r.value, "300");
  // the attribute type is optional (Actual by default)
  EXPECT_EQ(dm_->get(ref("OCPPCommCtrlr", "HeartbeatInterval"), "").status, GetStatus::Accepted);
  // instances
  auto m = dm_->get(ref("OCPPCommCtrlr", "MessageTimeout", "Default"), "Actual");
  EXPECT_EQ(m.status, GetStatus::Accepted);
  EXPECT_EQ(m.value, "30");
}

TEST_F(DeviceModelTest, GetValuesFromTheConfiguration) {
  EXPECT_EQ(dm_->get(ref("SecurityCtrlr", "Identity"), "Actual").value, "CS001");
  EXPECT_EQ(dm_->get(ref("SecurityCtrlr", "OrganizationName"), "Actual").value, "Example CPO");
  EXPECT_EQ(dm_->get(ref("SecurityCtrlr", "SecurityProfile"), "Actual").value, "2");
  EXPECT_EQ(dm_->get(ref("DeviceDataCtrlr", "BytesPerMessage", "GetVariables"), "Actual").value, "70000");
  EXPECT_EQ(dm_->get(ref("ChargingStation", "Model"), "Actual").value, "CG-SIM");
  EXPECT_EQ(dm_->get(ref("EVSE", "SupplyPhases", {}, 1), "Actual").value, "3");
  EXPECT_EQ(dm_->get(ref("EVSE", "SupplyPhases", {}, 2), "Actual").value, "1");
  EXPECT_EQ(dm_->get(ref("Connector", "ConnectorType", {}, 1, 2), "Actual").status, GetStatus::Accepted);
  // EVSE 2 has one connector only
  EXPECT_EQ(dm_->get(ref("Connector", "ConnectorType", {}, 2, 2), "Actual").status, GetStatus::UnknownComponent);
  // and there is no EVSE 3
  EXPECT_EQ(dm_->get(ref("EVSE", "SupplyPhases", {}, 3), "Actual").status, GetStatus::UnknownComponent);
  // the DateTime is live
  auto dt = dm_->get(ref("ClockCtrlr", "DateTime"), "Actual");
  EXPECT_EQ(dt.status, GetStatus::Accepted);
  EXPECT_TRUE(cg::clock::parse_rfc3339(dt.value).has_value()) << dt.value;
}

TEST_F(DeviceModelTest, GetUnknownComponentAndVariable) {
  EXPECT_EQ(dm_->get(ref("NoSuchCtrlr", "HeartbeatInterval"), "Actual").status, GetStatus::UnknownComponent);
  EXPECT_EQ(dm_->get(ref("OCPPCommCtrlr", "NoSuchVariable"), "Actual").status, GetStatus::UnknownVariable);
  // a variable instance that does not exist
  EXPECT_EQ(dm_->get(ref("OCPPCommCtrlr", "MessageTimeout", "Other"), "Actual").status, GetStatus::UnknownVariable);
  // an instanced variable asked without its instance
  EXPECT_EQ(dm_->get(ref("OCPPCommCtrlr", "MessageTimeout"), "Actual").status, GetStatus::UnknownVariable);
  // names are case-sensitive
  EXPECT_EQ(dm_->get(ref("ocppcommctrlr", "HeartbeatInterval"), "Actual").status, GetStatus::UnknownComponent);
  auto r = dm_->get(ref("OCPPCommCtrlr", "NoSuchVariable"), "Actual");
  EXPECT_TRUE(r.value.empty());
}

TEST_F(DeviceModelTest, GetOtherAttributeTypesAreNotSupported) {
  for (const char* attr : {"Target", "MinSet", "MaxSet", "actual"}) {
    EXPECT_EQ(dm_->get(ref("OCPPCommCtrlr", "HeartbeatInterval"), attr).status, GetStatus::NotSupportedAttributeType)
        << attr;
  }
}

TEST_F(DeviceModelTest, GetWriteOnlyIsRejectedWithoutAValue) {
  auto r = dm_->get(ref("SecurityCtrlr", "BasicAuthPassword"), "Actual");
  EXPECT_EQ(r.status, GetStatus::Rejected);
  EXPECT_TRUE(r.value.empty());
}

// ---- SetVariables -----------------------------------------------------------

TEST_F(DeviceModelTest, SetIntegerWithinLimits) {
  const auto hb = ref("OCPPCommCtrlr", "HeartbeatInterval");  // 1..86400
  EXPECT_EQ(set(hb, "1"), SetStatus::Accepted);
  EXPECT_EQ(dm_->get(hb, "Actual").value, "1");
  EXPECT_EQ(set(hb, "86400"), SetStatus::Accepted);
  EXPECT_EQ(dm_->integer("OCPPCommCtrlr.HeartbeatInterval"), 86400);
  for (const char* v : {"0", "86401", "-5", "abc", "12.5", "", " 60", "60 ", "+60", "0x10", "99999999999999999999"}) {
    auto r = dm_->set(hb, "Actual", v);
    EXPECT_EQ(r.status, SetStatus::Rejected) << '"' << v << '"';
    EXPECT_EQ(r.reason, "InvalidValue") << '"' << v << '"';
  }
  EXPECT_EQ(dm_->get(hb, "Actual").value, "86400");  // unchanged by the rejected values

  const auto attempts = ref("OCPPCommCtrlr", "MessageAttempts", "TransactionEvent");  // 0..100
  EXPECT_EQ(set(attempts, "0"), SetStatus::Accepted);
  EXPECT_EQ(set(attempts, "100"), SetStatus::Accepted);
  EXPECT_EQ(set(attempts, "101"), SetStatus::Rejected);
}

TEST_F(DeviceModelTest, SetBoolean) {
  const auto r = ref("AuthCtrlr", "OfflineTxForUnknownIdEnabled");
  EXPECT_EQ(set(r, "true"), SetStatus::Accepted);
  EXPECT_TRUE(dm_->boolean("AuthCtrlr.OfflineTxForUnknownIdEnabled"));
  EXPECT_EQ(set(r, "false"), SetStatus::Accepted);
  EXPECT_FALSE(dm_->boolean("AuthCtrlr.OfflineTxForUnknownIdEnabled"));
  for (const char* v : {"TRUE", "True", "1", "0", "yes", "", "true "}) EXPECT_EQ(set(r, v), SetStatus::Rejected) << v;
  EXPECT_EQ(dm_->text("AuthCtrlr.OfflineTxForUnknownIdEnabled"), "false");
}

TEST_F(DeviceModelTest, SetMemberListMembership) {
  const auto r = ref("SampledDataCtrlr", "TxUpdatedMeasurands");
  EXPECT_EQ(set(r, "Energy.Active.Import.Register"), SetStatus::Accepted);
  EXPECT_EQ(set(r, "Energy.Active.Import.Register,Voltage,Current.Import,Power.Active.Import"), SetStatus::Accepted);
  EXPECT_EQ(dm_->text("SampledDataCtrlr.TxUpdatedMeasurands"),
            "Energy.Active.Import.Register,Voltage,Current.Import,Power.Active.Import");
  for (const char* v : {"Energy.Active.Import.Register,SoC", "SoC", "", ",Voltage", "Voltage,",
                        "Voltage,,Current.Import", "voltage", "Energy.Active.Import"}) {
    EXPECT_EQ(set(r, v), SetStatus::Rejected) << '"' << v << '"';
  }
}

TEST_F(DeviceModelTest, SettingsThisBuildDoesNotImplementAreReadOnly) {
  // Accepting a value that changes nothing would mislead the CSMS.
  for (const auto& r : {ref("ClockCtrlr", "TimeSource"), ref("OCPPCommCtrlr", "OfflineThreshold"), ref("OCPPCommCtrlr", "ResetRetries"),
                        ref("OCPPCommCtrlr", "UnlockOnEVSideDisconnect"), ref("TxCtrlr", "MaxEnergyOnInvalidId"),
                        ref("SampledDataCtrlr", "TxEndedInterval"), ref("AlignedDataCtrlr", "TxEndedInterval"),
                        ref("AlignedDataCtrlr", "TxEndedMeasurands")}) {
    const auto current = dm_->get(r, "Actual").value;
    EXPECT_EQ(set(r, current), SetStatus::Rejected) << r.component << "." << r.name;
  }
}

TEST_F(DeviceModelTest, CertificateSigningRetriesAreWritableWithinLimits) {
  // A02: the station resends its CSR after CertSigningWaitMinimum, CertSigningRepeatTimes times.
  EXPECT_EQ(set(ref("SecurityCtrlr", "CertSigningWaitMinimum"), "5"), SetStatus::Accepted);
  EXPECT_EQ(dm_->integer("SecurityCtrlr.CertSigningWaitMinimum"), 5);
  EXPECT_EQ(set(ref("SecurityCtrlr", "CertSigningWaitMinimum"), "0"), SetStatus::Rejected);
  EXPECT_EQ(set(ref("SecurityCtrlr", "CertSigningRepeatTimes"), "101"), SetStatus::Rejected);
  EXPECT_EQ(set(ref("SecurityCtrlr", "CertSigningRepeatTimes"), "0"), SetStatus::Accepted);
}

TEST_F(DeviceModelTest, ReadOnlyVariablesCannotBeSeeded) {
  // A seeded SecurityProfile or ItemsPerMessage would make reports lie (or break them).
  auto cfg = cfg_;
  for (const char* key : {"ChargingStation.AvailabilityState", "SecurityCtrlr.SecurityProfile",
                          "DeviceDataCtrlr.ItemsPerMessage[GetReport]"}) {
    cfg.device_model = {{key, "1"}};
    try {
      DeviceModel dm(*db_, cfg);
      ADD_FAILURE() << key << " was seeded";
    } catch (const std::runtime_error& e) {
      EXPECT_NE(std::string(e.what()).find(key), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find("read-only"), std::string::npos) << e.what();
    }
  }
  // Seeds go through the same value check as SetVariables.
  cfg.device_model = {{"SampledDataCtrlr.TxUpdatedMeasurands", "Voltage,Bogus"}};
  EXPECT_THROW((DeviceModel{*db_, cfg}), std::runtime_error);
}

TEST_F(DeviceModelTest, SetStringLength) {
  const auto r = ref("SecurityCtrlr", "OrganizationName");  // 0..64
  EXPECT_EQ(set(r, std::string(64, 'o')), SetStatus::Accepted);
  EXPECT_EQ(set(r, std::string(65, 'o')), SetStatus::Rejected);
  EXPECT_EQ(set(r, ""), SetStatus::Accepted);
}

TEST_F(DeviceModelTest, SetReadOnlyIsRejected) {
  for (const auto& r : {ref("OCPPCommCtrlr", "MessageTimeout", "Default"), ref("SecurityCtrlr", "SecurityProfile"),
                        ref("SecurityCtrlr", "Identity"), ref("TxCtrlr", "TxStartPoint"),
                        ref("EVSE", "SupplyPhases", {}, 1), ref("ClockCtrlr", "DateTime")}) {
    const std::string before = dm_->get(r, "Actual").value;
    auto res = dm_->set(r, "Actual", "1");
    EXPECT_EQ(res.status, SetStatus::Rejected) << r.component << "." << r.name;
    EXPECT_EQ(res.reason, "ReadOnly");
    if (r.name != "DateTime") {
      EXPECT_EQ(dm_->get(r, "Actual").value, before);
    }
  }
  EXPECT_EQ(stored("SecurityCtrlr.SecurityProfile"), "<absent>");
}

// COM-6: the CSMS cannot grant itself a security profile downgrade. The
// permission is csms.allow_security_profile_downgrade, reported ReadOnly; a
// value a CSMS stored when the variable was writable no longer counts.
TEST_F(DeviceModelTest, AllowSecurityProfileDowngradeIsTheLocalSettingAndReadOnly) {
  const auto r = ref("SecurityCtrlr", "AllowSecurityProfileDowngrade");
  EXPECT_EQ(dm_->get(r, "Actual").value, "false");
  const auto res = dm_->set(r, "Actual", "true");
  EXPECT_EQ(res.status, SetStatus::Rejected);
  EXPECT_EQ(res.reason, "ReadOnly");
  EXPECT_FALSE(dm_->boolean("SecurityCtrlr.AllowSecurityProfileDowngrade"));
  EXPECT_EQ(stored("SecurityCtrlr.AllowSecurityProfileDowngrade"), "<absent>");
  // A row from a build where the CSMS could write it.
  db_->prepare("INSERT INTO variables(name,value) VALUES('SecurityCtrlr.AllowSecurityProfileDowngrade','true')").run();
  EXPECT_EQ(reopen()->get(r, "Actual").value, "false");
  auto cfg = cfg_;
  cfg.allow_security_profile_downgrade = true;
  EXPECT_EQ(DeviceModel(*db_, cfg).get(r, "Actual").value, "true");
  // Nor can it be seeded through [device_model]; the error names the setting to use.
  cfg.device_model = {{"SecurityCtrlr.AllowSecurityProfileDowngrade", "true"}};
  try {
    DeviceModel dm(*db_, cfg);
    ADD_FAILURE() << "seeded";
  } catch (const std::runtime_error& e) {
    EXPECT_TRUE(cg::test::has(e.what(), "csms.allow_security_profile_downgrade"));
  }
}

TEST_F(DeviceModelTest, SetBasicAuthPasswordIsRejected) {
  const std::string pw = "a-valid-password-of-24ch";
  auto res = dm_->set(ref("SecurityCtrlr", "BasicAuthPassword"), "Actual", pw);
  EXPECT_EQ(res.status, SetStatus::Rejected);
  EXPECT_FALSE(res.reason.empty());
  EXPECT_EQ(stored("SecurityCtrlr.BasicAuthPassword"), "<absent>");
  for (const auto& v : dm_->all()) EXPECT_NE(v.value, pw) << v.key();
}

TEST_F(DeviceModelTest, SetUnknownAndAttributeType) {
  EXPECT_EQ(set(ref("NoSuchCtrlr", "X"), "1"), SetStatus::UnknownComponent);
  EXPECT_EQ(set(ref("OCPPCommCtrlr", "X"), "1"), SetStatus::UnknownVariable);
  EXPECT_EQ(dm_->set(ref("OCPPCommCtrlr", "HeartbeatInterval"), "Target", "60").status,
            SetStatus::NotSupportedAttributeType);
  EXPECT_EQ(dm_->set(ref("OCPPCommCtrlr", "HeartbeatInterval"), "", "60").status, SetStatus::Accepted);
}

TEST_F(DeviceModelTest, ValueLongerThanConfigurationValueSizeIsRejected) {
  EXPECT_EQ(set(ref("SampledDataCtrlr", "TxUpdatedMeasurands"), std::string(1001, 'x')), SetStatus::Rejected);
}

// ---- persistence ------------------------------------------------------------

TEST_F(DeviceModelTest, SetValuePersistsAcrossANewDeviceModel) {
  ASSERT_EQ(set(ref("OCPPCommCtrlr", "HeartbeatInterval"), "120"), SetStatus::Accepted);
  ASSERT_EQ(set(ref("OCPPCommCtrlr", "MessageAttempts", "TransactionEvent"), "7"), SetStatus::Accepted);
  ASSERT_EQ(set(ref("AuthCtrlr", "LocalPreAuthorize"), "false"), SetStatus::Accepted);
  auto again = reopen();
  EXPECT_EQ(again->text("OCPPCommCtrlr.HeartbeatInterval"), "120");
  EXPECT_EQ(again->text("OCPPCommCtrlr.MessageAttempts[TransactionEvent]"), "7");
  EXPECT_FALSE(again->boolean("AuthCtrlr.LocalPreAuthorize"));
  // untouched values keep their defaults
  EXPECT_EQ(again->text("OCPPCommCtrlr.OfflineThreshold"), "60");
}

TEST_F(DeviceModelTest, SetValuePersistsAcrossDatabaseReopen) {
  ASSERT_EQ(set(ref("TxCtrlr", "EVConnectionTimeOut"), "90"), SetStatus::Accepted);
  dm_.reset();
  db_ = std::make_unique<cg::storage::Db>(dir_ / "station.db");
  dm_ = std::make_unique<DeviceModel>(*db_, cfg_);
  EXPECT_EQ(dm_->integer("TxCtrlr.EVConnectionTimeOut"), 90);
}

TEST_F(DeviceModelTest, RejectedSetIsNotPersisted) {
  ASSERT_EQ(set(ref("OCPPCommCtrlr", "HeartbeatInterval"), "0"), SetStatus::Rejected);
  EXPECT_EQ(stored("OCPPCommCtrlr.HeartbeatInterval"), "<absent>");
  EXPECT_EQ(reopen()->text("OCPPCommCtrlr.HeartbeatInterval"), "300");
}

// ---- [device_model] seeds ---------------------------------------------------

TEST_F(DeviceModelTest, SeedsFromTheConfigurationApply) {
  auto cfg = cfg_;
  cfg.device_model = {{"OCPPCommCtrlr.HeartbeatInterval", "60"},
                      {"OCPPCommCtrlr.MessageAttempts[TransactionEvent]", "5"},
                      {"AuthCtrlr.OfflineTxForUnknownIdEnabled", "true"},
                      {"SampledDataCtrlr.TxUpdatedMeasurands", "Energy.Active.Import.Register,Voltage"}};
  DeviceModel dm(*db_, cfg);
  EXPECT_EQ(dm.text("OCPPCommCtrlr.HeartbeatInterval"), "60");
  EXPECT_EQ(dm.text("OCPPCommCtrlr.MessageAttempts[TransactionEvent]"), "5");
  EXPECT_TRUE(dm.boolean("AuthCtrlr.OfflineTxForUnknownIdEnabled"));
  EXPECT_EQ(dm.text("SampledDataCtrlr.TxUpdatedMeasurands"), "Energy.Active.Import.Register,Voltage");
  // a seed is a default, not a CSMS setting: nothing is written
  EXPECT_EQ(stored("OCPPCommCtrlr.HeartbeatInterval"), "<absent>");
}

TEST_F(DeviceModelTest, StoredCsmsValueWinsOverTheSeed) {
  ASSERT_EQ(set(ref("OCPPCommCtrlr", "HeartbeatInterval"), "120"), SetStatus::Accepted);
  auto cfg = cfg_;
  cfg.device_model = {{"OCPPCommCtrlr.HeartbeatInterval", "60"}, {"SampledDataCtrlr.TxUpdatedInterval", "30"}};
  DeviceModel dm(*db_, cfg);
  EXPECT_EQ(dm.text("OCPPCommCtrlr.HeartbeatInterval"), "120");     // the CSMS's value
  EXPECT_EQ(dm.text("SampledDataCtrlr.TxUpdatedInterval"), "30");  // the seed
}

TEST_F(DeviceModelTest, UnknownSeedKeyThrowsNamingIt) {
  auto cfg = cfg_;
  cfg.device_model = {{"OCPPCommCtrlr.HeartbeatIntervall", "60"}};
  try {
    DeviceModel dm(*db_, cfg);
    FAIL() << "unknown seed accepted";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("device_model.OCPPCommCtrlr.HeartbeatIntervall"), std::string::npos)
        << e.what();
  }
}

TEST_F(DeviceModelTest, InvalidSeedValueThrowsNamingIt) {
  auto cfg = cfg_;
  cfg.device_model = {{"OCPPCommCtrlr.HeartbeatInterval", "0"}};
  try {
    DeviceModel dm(*db_, cfg);
    FAIL() << "invalid seed accepted";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("device_model.OCPPCommCtrlr.HeartbeatInterval"), std::string::npos)
        << e.what();
  }
  cfg.device_model = {{"AuthCtrlr.Enabled", "yes"}};
  EXPECT_THROW((DeviceModel{*db_, cfg}), std::runtime_error);
}

TEST_F(DeviceModelTest, WriteOnlySeedIsRefused) {
  // the password comes from csms.password_file; a seed would be silently ignored
  auto cfg = cfg_;
  cfg.device_model = {{"SecurityCtrlr.BasicAuthPassword", "a-valid-password-of-24ch"}};
  try {
    DeviceModel dm(*db_, cfg);
    FAIL() << "a write-only seed was accepted";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("device_model.SecurityCtrlr.BasicAuthPassword"), std::string::npos)
        << e.what();
    EXPECT_EQ(std::string(e.what()).find("a-valid-password-of-24ch"), std::string::npos) << "the value is echoed";
  }
}

// ---- listeners --------------------------------------------------------------

TEST_F(DeviceModelTest, OnChangeListenersFire) {
  std::vector<std::string> a, b;
  dm_->on_change([&](const cg::core::Variable& v) { a.push_back(v.key() + "=" + v.value); });
  dm_->on_change([&](const cg::core::Variable& v) { b.push_back(v.key()); });
  ASSERT_EQ(set(ref("OCPPCommCtrlr", "HeartbeatInterval"), "45"), SetStatus::Accepted);
  ASSERT_EQ(set(ref("OCPPCommCtrlr", "MessageAttempts", "TransactionEvent"), "4"), SetStatus::Accepted);
  EXPECT_EQ(a, (std::vector<std::string>{"OCPPCommCtrlr.HeartbeatInterval=45",
                                         "OCPPCommCtrlr.MessageAttempts[TransactionEvent]=4"}));
  EXPECT_EQ(b.size(), 2u);
  // rejected and unknown sets do not notify
  set(ref("OCPPCommCtrlr", "HeartbeatInterval"), "0");
  set(ref("OCPPCommCtrlr", "MessageTimeout", "Default"), "5");
  set(ref("SecurityCtrlr", "BasicAuthPassword"), "a-valid-password-of-24ch");
  set(ref("Nope", "Nope"), "1");
  EXPECT_EQ(a.size(), 2u);
  EXPECT_EQ(b.size(), 2u);
}

TEST_F(DeviceModelTest, ListenerSeesThePersistedValue) {
  std::string seen;
  dm_->on_change([&](const cg::core::Variable& v) { seen = stored(v.key()); });
  ASSERT_EQ(set(ref("OCPPCommCtrlr", "HeartbeatInterval"), "77"), SetStatus::Accepted);
  EXPECT_EQ(seen, "77");
}

TEST_F(DeviceModelTest, KeysAreUniqueAndFindable) {
  std::set<std::string> keys;
  for (const auto& v : dm_->all()) {
    EXPECT_TRUE(keys.insert(v.key()).second) << "duplicate " << v.key();
    EXPECT_EQ(dm_->find(v.key()), &v);
    // what is reported ReadWrite must accept its own current value
    if (v.mutability == cg::core::Mutability::ReadWrite) {
      VarRef r{v.component, v.component_instance, v.evse, v.connector, v.name, v.instance};
      EXPECT_EQ(dm_->set(r, "Actual", dm_->current_value(v)).status, SetStatus::Accepted) << v.key();
    }
  }
  EXPECT_EQ(dm_->find("Connector@1:2.ConnectorType")->connector, 2);
}

}  // namespace
