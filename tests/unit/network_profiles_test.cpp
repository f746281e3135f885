// Network connection profiles (B09/B10): what SetNetworkProfile and
// NetworkConfigurationPriority accept, the no-downgrade rule, and the fallback
// rotation across slots, persisted in SQLite.
#include "services/network_profiles.hpp"

#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <filesystem>
#include <memory>

#include "test_util.hpp"

namespace {

namespace fs = std::filesystem;
namespace json = boost::json;
using cg::services::Credentials;
using cg::services::NetworkProfile;
using cg::services::NetworkProfiles;

json::object connection(int profile, std::string url = "wss://csms2.example.com/ocpp") {
  return json::object{{"ocppVersion", "OCPP20"},  {"ocppTransport", "JSON"}, {"ocppCsmsUrl", url},
                      {"messageTimeout", 30},     {"securityProfile", profile}, {"ocppInterface", "Wired0"}};
}

constexpr Credentials kAll{true, true, true};

class NetworkProfilesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = cg::test::make_temp_dir("netprof");
    cfg_.csms_url = "wss://csms.example.com/ocpp";
    cfg_.security_profile = 2;
    open();
  }
  void TearDown() override {
    np_.reset();
    db_.reset();
    fs::remove_all(dir_);
  }
  void open() {  // as after a restart
    np_.reset();
    db_ = std::make_unique<cg::storage::Db>(dir_ / "station.db");
    np_ = std::make_unique<NetworkProfiles>(*db_, cfg_);
  }
  // check() as SetNetworkProfile would; "" when accepted (and stored).
  std::string set(int slot, const json::object& cd, Credentials have = kAll, bool allow_downgrade = false,
                  int in_use = 0) {
    const NetworkProfile u{in_use, cfg_.security_profile, cfg_.csms_url};
    const auto r = np_->check(slot, cd, have, allow_downgrade, u);
    if (!r) return r.error().reason + ": " + r.error().message;
    np_->store(*r);
    return "";
  }
  // Connects through `slot` (it must be current()).
  void connect_via(int slot) {
    ASSERT_EQ(np_->current().slot, slot);
    np_->connected();
  }

  fs::path dir_;
  cg::config::Config cfg_;
  std::unique_ptr<cg::storage::Db> db_;
  std::unique_ptr<NetworkProfiles> np_;
};

TEST_F(NetworkProfilesTest, SlotZeroIsTheConfigurationFile) {
  auto p = np_->get(0);
  ASSERT_TRUE(p);
  EXPECT_EQ(p->url, cfg_.csms_url);
  EXPECT_EQ(p->security_profile, 2);
  EXPECT_FALSE(np_->get(1));
  EXPECT_FALSE(np_->get(4));
  EXPECT_EQ(np_->active_security_profile(), 2);
  EXPECT_FALSE(np_->last_good_slot());
  EXPECT_EQ(np_->current().slot, 0);
}

TEST_F(NetworkProfilesTest, AValidProfileIsStoredAndSurvivesARestart) {
  EXPECT_EQ(set(1, connection(3, "wss://new.example.com:8443/ocpp/")), "");
  open();
  auto p = np_->get(1);
  ASSERT_TRUE(p);
  EXPECT_EQ(p->security_profile, 3);
  EXPECT_EQ(p->url, "wss://new.example.com:8443/ocpp/");
  EXPECT_EQ(p->message_timeout, 30);
  EXPECT_EQ(p->ocpp_interface, "Wired0");
  // Overwriting a slot that is not in use is allowed.
  EXPECT_EQ(set(1, connection(2, "wss://other.example.com/ocpp")), "");
  EXPECT_EQ(np_->get(1)->url, "wss://other.example.com/ocpp");
  EXPECT_EQ(np_->list().size(), 2u);
}

TEST_F(NetworkProfilesTest, BadSlotsAreRefused) {
  EXPECT_EQ(set(4, connection(2)).substr(0, 16), "InvalidConfSlot:");
  EXPECT_EQ(set(-1, connection(2)).substr(0, 16), "InvalidConfSlot:");
  EXPECT_NE(set(0, connection(2)).find("configuration file"), std::string::npos) << "slot 0 is local";
  EXPECT_EQ(set(2, connection(2), kAll, false, /*in_use=*/2).substr(0, 18), "ActiveNetworkConf:");
  EXPECT_FALSE(np_->get(2));
}

TEST_F(NetworkProfilesTest, UnsupportedConnectionDataIsRefusedWithTheReason) {
  auto with = [](json::object o, const char* key, json::value v) {
    o[key] = std::move(v);
    return o;
  };
  const auto base = connection(2);
  EXPECT_NE(set(1, with(base, "ocppVersion", "OCPP16")).find("OCPP20 only"), std::string::npos);
  EXPECT_NE(set(1, with(base, "ocppTransport", "SOAP")).find("JSON only"), std::string::npos);
  EXPECT_NE(set(1, with(base, "ocppInterface", "Wireless0")).find("does not exist"), std::string::npos);
  EXPECT_NE(set(1, with(base, "apn", json::object{{"apn", "x"}, {"apnAuthentication", "NONE"}})).find("apn"),
            std::string::npos);
  EXPECT_NE(set(1, with(base, "messageTimeout", 0)).find("messageTimeout"), std::string::npos);
  EXPECT_NE(set(1, with(base, "ocppCsmsUrl", "ws://csms.example.com/ocpp")).find("needs a wss:// URL"),
            std::string::npos);
  EXPECT_NE(set(1, with(base, "ocppCsmsUrl", "wss://user:pw@csms.example.com/")).find("user:password"),
            std::string::npos);
  EXPECT_NE(set(1, with(base, "ocppCsmsUrl", "https://csms.example.com/")).find("wss://"), std::string::npos);
  EXPECT_FALSE(np_->get(1)) << "nothing stored";
}

TEST_F(NetworkProfilesTest, ProfileOneIsNeverAcceptedOverOcpp) {
  EXPECT_EQ(set(1, connection(1, "ws://csms.example.com/ocpp")).substr(0, 20), "NoSecurityDowngrade:");
  // Not even with the downgrade variable, and not from a profile-1 station.
  EXPECT_EQ(set(1, connection(1, "ws://csms.example.com/ocpp"), kAll, true).substr(0, 20), "NoSecurityDowngrade:");
  cfg_.security_profile = 1;
  cfg_.csms_url = "ws://csms.example.com/ocpp";
  open();
  EXPECT_NE(set(1, connection(1, "ws://csms.example.com/ocpp")).find("never accepted over OCPP"), std::string::npos);
  EXPECT_EQ(set(1, connection(2, "wss://csms.example.com/ocpp")), "") << "an upgrade from 1 to 2 is fine";
}

TEST_F(NetworkProfilesTest, NoDowngradeBelowTheActiveProfileExceptThreeToTwoWhenAllowed) {
  EXPECT_EQ(set(1, connection(3)), "") << "upgrade 2 -> 3";
  np_->begin({1, 0}, false);
  connect_via(1);
  EXPECT_EQ(np_->active_security_profile(), 3);
  EXPECT_EQ(set(2, connection(2), kAll, false, 1).substr(0, 20), "NoSecurityDowngrade:");
  EXPECT_EQ(set(2, connection(2), kAll, /*allow_downgrade=*/true, 1), "");
  EXPECT_TRUE(np_->downgrade_allowed(2, true));
  EXPECT_FALSE(np_->downgrade_allowed(2, false));
  EXPECT_FALSE(np_->downgrade_allowed(1, true));
}

TEST_F(NetworkProfilesTest, PreconditionsOfTheSecurityProfile) {
  EXPECT_EQ(set(1, connection(2), Credentials{true, true, false}).substr(0, 18), "NoRootCertificate:");
  EXPECT_EQ(set(1, connection(2), Credentials{false, true, true}).substr(0, 11), "NoPassword:");
  EXPECT_EQ(set(1, connection(3), Credentials{true, false, true}).substr(0, 14), "NoCertificate:");
  EXPECT_EQ(set(1, connection(3), Credentials{false, true, true}), "") << "profile 3 needs no password";
}

TEST_F(NetworkProfilesTest, PriorityListsAreChecked) {
  ASSERT_EQ(set(1, connection(2)), "");
  const auto out = np_->check_priority("1,0", false);
  ASSERT_TRUE(out.ok());
  EXPECT_EQ(*out, (std::vector<int>{1, 0}));
  EXPECT_EQ(np_->check_priority("", false).error().reason, "InvalidValue");
  EXPECT_EQ(np_->check_priority("1,x", false).error().reason, "InvalidValue");
  EXPECT_EQ(np_->check_priority("1,4", false).error().reason, "InvalidValue");
  EXPECT_EQ(np_->check_priority("1,1", false).error().reason, "InvalidValue");
  EXPECT_EQ(np_->check_priority("2,0", false).error().reason, "InvalidNetworkConf") << "slot 2 is empty";
  // After a profile-3 connection, slot 0 (profile 2) is a downgrade.
  ASSERT_EQ(set(2, connection(3)), "");
  np_->begin({2}, false);
  connect_via(2);
  EXPECT_EQ(np_->check_priority("2,0", false).error().reason, "NoSecurityDowngrade");
  EXPECT_TRUE(np_->check_priority("2,0", true).ok()) << "3 -> 2 with AllowSecurityProfileDowngrade";
  EXPECT_EQ(NetworkProfiles::parse_priority(" 2, 0,x,9,2"), (std::vector<int>{2, 0}));
}

TEST_F(NetworkProfilesTest, FallbackRotatesThroughTheSlotsAndNeverEnds) {
  ASSERT_EQ(set(1, connection(2, "wss://broken.example.com/")), "");
  np_->begin({1, 0}, false);
  EXPECT_EQ(np_->current().slot, 1);
  EXPECT_FALSE(np_->attempt_failed(3));
  EXPECT_FALSE(np_->attempt_failed(3));
  EXPECT_TRUE(np_->attempt_failed(3)) << "three attempts per slot";
  EXPECT_EQ(np_->current().slot, 0);
  for (int i = 0; i < 2; ++i) EXPECT_FALSE(np_->attempt_failed(3));
  EXPECT_TRUE(np_->attempt_failed(3));
  EXPECT_EQ(np_->current().slot, 1) << "back to the first slot: reconnection never stops";
  // A single candidate: every attempt stays on it.
  np_->begin({0}, false);
  for (int i = 0; i < 10; ++i) EXPECT_FALSE(np_->attempt_failed(1));
  EXPECT_EQ(np_->current().slot, 0);
}

TEST_F(NetworkProfilesTest, TheLastGoodSlotIsAlwaysACandidateAndPersists) {
  np_->begin({0}, false);
  connect_via(0);
  ASSERT_EQ(set(1, connection(2, "wss://broken.example.com/")), "");
  // The CSMS left slot 0 out of the list: it is still tried after slot 1.
  np_->begin({1}, false);
  EXPECT_EQ(np_->candidate_count(), 2u);
  EXPECT_TRUE(np_->attempt_failed(1));
  EXPECT_EQ(np_->current().slot, 0);
  open();
  EXPECT_EQ(np_->last_good_slot(), 0);
  EXPECT_EQ(np_->active_security_profile(), 2);
}

TEST_F(NetworkProfilesTest, TheFallbackSkipsSlotsBelowTheActiveProfile) {
  // Upgraded to 3 through slot 1; slot 0 (the file, profile 2) must not be
  // reached by blocking slot 1.
  ASSERT_EQ(set(1, connection(3)), "");
  np_->begin({1, 0}, false);
  connect_via(1);
  open();
  np_->begin({1, 0}, false);
  EXPECT_EQ(np_->candidate_count(), 1u);
  ASSERT_EQ(np_->skipped().size(), 1u);
  EXPECT_NE(np_->skipped()[0].find("below the active profile 3"), std::string::npos);
  for (int i = 0; i < 5; ++i) np_->attempt_failed(1);
  EXPECT_EQ(np_->current().slot, 1);
  np_->begin({1, 0}, /*allow_downgrade=*/true);
  EXPECT_EQ(np_->candidate_count(), 2u);
}

TEST_F(NetworkProfilesTest, TheLastWorkingSlotIsNotOverwritten) {
  ASSERT_EQ(set(1, connection(2)), "");
  np_->begin({1, 0}, false);
  connect_via(1);
  // In use now, and the fallback afterwards: neither may be replaced by an untested profile.
  EXPECT_EQ(set(1, connection(2, "wss://other.example.com/"), kAll, false, 1).substr(0, 18), "ActiveNetworkConf:");
  np_->begin({0}, false);
  EXPECT_NE(set(1, connection(2, "wss://other.example.com/")).find("last profile that worked"), std::string::npos);
  EXPECT_EQ(set(2, connection(2, "wss://other.example.com/")), "");
}

TEST_F(NetworkProfilesTest, OverProfileOneOnlyTheSameHost) {
  cfg_.security_profile = 1;
  cfg_.csms_url = "ws://csms.example.com:8080/ocpp";
  open();
  EXPECT_NE(set(1, connection(2, "wss://attacker.example.net/ocpp")).find("same host (csms.example.com)"),
            std::string::npos);
  EXPECT_EQ(set(1, connection(2, "wss://csms.example.com:8443/ocpp")), "") << "the upgrade of the same CSMS";
}

TEST_F(NetworkProfilesTest, OtherLimits) {
  auto cd = connection(2);
  cd["messageTimeout"] = 601;
  EXPECT_NE(set(1, cd).find("messageTimeout"), std::string::npos);
  EXPECT_NE(set(1, connection(2, "wss://csms.example.com/" + std::string(500, 'p'))).find("512"), std::string::npos);
}

TEST_F(NetworkProfilesTest, AFallbackToALowerProfileDoesNotLowerTheFloor) {
  ASSERT_EQ(set(1, connection(3)), "");
  np_->begin({1, 0}, false);
  connect_via(1);
  ASSERT_EQ(np_->active_security_profile(), 3);
  // Slot 1 blocked; with the downgrade allowed the station falls back to slot 0 (profile 2) …
  np_->begin({1, 0}, true);
  ASSERT_TRUE(np_->attempt_failed(1));
  connect_via(0);
  EXPECT_EQ(np_->last_good_slot(), 0);
  EXPECT_EQ(np_->active_security_profile(), 3) << "… but profile 3 stays the floor";
  // A profile 2 the CSMS put first does lower it.
  np_->begin({0, 1}, true);
  connect_via(0);
  EXPECT_EQ(np_->active_security_profile(), 2);
}

TEST_F(NetworkProfilesTest, ALastGoodSlotBelowTheFloorIsNoCandidate) {
  ASSERT_EQ(set(2, connection(3)), "");
  ASSERT_EQ(set(1, connection(2)), "");
  np_->begin({1}, false);
  connect_via(1);  // slot 1, profile 2 works
  np_->begin({2}, false);
  connect_via(2);  // upgraded to 3 through slot 2
  ASSERT_EQ(set(3, connection(3)), "");
  np_->begin({3}, false);
  EXPECT_EQ(np_->candidate_count(), 2u) << "slot 3 and the last good slot 2";
  db_->set_meta("network.last_good_slot", "1");  // as if slot 1 had been the last one
  np_->begin({3}, false);
  EXPECT_EQ(np_->candidate_count(), 1u) << "slot 1 (profile 2) is below the floor";
}

TEST_F(NetworkProfilesTest, DatabaseErrorsNeverLeaveNoProfile) {
  ASSERT_EQ(set(1, connection(2)), "");
  np_->begin({1, 0}, false);
  db_->exec("DROP TABLE network_profiles");
  np_->begin({1, 0}, false);
  EXPECT_EQ(np_->current().slot, 0) << "an unreadable slot is skipped";
  EXPECT_NE(np_->skipped()[0].find("cannot be read"), std::string::npos);
  db_->exec("DROP TABLE meta");
  np_->begin({1, 0}, false);
  EXPECT_EQ(np_->current().slot, 0) << "the candidates stay when the floor cannot be read";
  EXPECT_NE(np_->skipped()[0].find("active profile cannot be read"), std::string::npos);
}

TEST_F(NetworkProfilesTest, EmptySlotsAreSkippedAndTheFileProfileIsTheLastResort) {
  np_->begin({2, 3}, false);
  EXPECT_EQ(np_->current().slot, 0);
  EXPECT_EQ(np_->candidate_count(), 1u);
  EXPECT_EQ(np_->skipped().size(), 3u);  // two empty slots + "no slot qualifies"
}

}  // namespace
