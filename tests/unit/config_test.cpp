// Static configuration (docs/configuration.md): a full file parses to the right
// values; every bad input stops the daemon with an error that names the key;
// command-line overrides win over the file.
#include "core/config.hpp"

#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "test_util.hpp"

namespace {

namespace fs = std::filesystem;
using cg::config::Config;
using cg::config::Error;
using cg::config::Overrides;

constexpr const char* kFullToml = R"toml(
# a complete configuration
[station]
identity = "CS001"
serial = "CG-0001"
organization = "Example CPO"
vendor = "acme"
model = "X1"
state_dir = "/var/lib/chargeguard"
hal = "sim"
log_level = "debug"
control_period_ms = 50

[csms]
url = "wss://csms.example.com/ocpp"
security_profile = 2
ca_file = "/etc/chargeguard/csms-root.pem"
password_file = "/etc/chargeguard/csms-password"
allow_insecure_transport = false
max_frame_bytes = 131072

[[evse]]
connectors = 2
max_current_a = 32
phases = 3
voltage_v = 230

[[evse]]
max_current_a = 16.5
phases = 1
voltage_v = 240.0

[device_model]
"OCPPCommCtrlr.RetryBackOffWaitMinimum" = 3
"SampledDataCtrlr.TxUpdatedInterval" = "60"
"AuthCtrlr.OfflineTxForUnknownIdEnabled" = true
)toml";

// A configuration document built from key -> TOML literal maps, so that a test
// can change, add or remove exactly one key of an otherwise valid file.
struct Doc {
  std::map<std::string, std::string> station{
      {"identity", R"("CS001")"},
      {"state_dir", R"("/var/lib/chargeguard")"},
  };
  std::map<std::string, std::string> csms{
      {"url", R"("wss://csms.example.com/ocpp")"},
      {"security_profile", "2"},
      {"ca_file", R"("/etc/cg/root.pem")"},
      {"password_file", R"("/etc/cg/password")"},
  };
  std::vector<std::map<std::string, std::string>> evses{{{"max_current_a", "32"}}};
  std::string extra;  // appended verbatim

  std::string text() const {
    std::string t = "[station]\n";
    for (const auto& [k, v] : station) t += k + " = " + v + "\n";
    t += "[csms]\n";
    for (const auto& [k, v] : csms) t += k + " = " + v + "\n";
    for (const auto& e : evses) {
      t += "[[evse]]\n";
      for (const auto& [k, v] : e) t += k + " = " + v + "\n";
    }
    return t + extra;
  }
};

// parse + validate, as the daemon does (without overrides).
std::optional<Error> check(const std::string& text, Config* out = nullptr) {
  Config cfg;
  if (auto e = cg::config::parse(text, "station.toml", cfg)) return e;
  if (out) *out = cfg;
  return cg::config::validate(cfg);
}

std::optional<Error> check(const Doc& d) {
  return check(d.text());
}

// Expects an error naming KEY whose problem mentions FRAGMENT.
void expect_error(const std::optional<Error>& e, const std::string& key, const std::string& fragment = {}) {
  ASSERT_TRUE(e.has_value()) << "expected an error for " << key;
  EXPECT_EQ(e->key, key) << e->text();
  if (!fragment.empty()) {
    EXPECT_NE(e->problem.find(fragment), std::string::npos) << e->text();
  }
  EXPECT_EQ(e->text().rfind(key + ": ", 0), 0u) << e->text();
}

TEST(Config, FullFileParsesToTheRightValues) {
  Config c;
  ASSERT_FALSE(cg::config::parse(kFullToml, "station.toml", c).has_value());
  EXPECT_FALSE(cg::config::validate(c).has_value());

  EXPECT_EQ(c.identity, "CS001");
  EXPECT_EQ(c.serial, "CG-0001");
  EXPECT_EQ(c.organization, "Example CPO");
  EXPECT_EQ(c.vendor, "acme");
  EXPECT_EQ(c.model, "X1");
  EXPECT_EQ(c.state_dir, fs::path("/var/lib/chargeguard"));
  EXPECT_EQ(c.hal, "sim");
  EXPECT_EQ(c.log_level, "debug");
  EXPECT_EQ(c.control_period_ms, 50);

  EXPECT_EQ(c.csms_url, "wss://csms.example.com/ocpp");
  EXPECT_EQ(c.security_profile, 2);
  EXPECT_EQ(c.ca_file, fs::path("/etc/chargeguard/csms-root.pem"));
  EXPECT_EQ(c.password_file, fs::path("/etc/chargeguard/csms-password"));
  EXPECT_FALSE(c.allow_insecure_transport);
  EXPECT_EQ(c.max_frame_bytes, 131072u);

  ASSERT_EQ(c.evses.size(), 2u);
  EXPECT_EQ(c.evses[0].connectors, 2);
  EXPECT_DOUBLE_EQ(c.evses[0].max_current_a, 32.0);  // TOML integer accepted for a number
  EXPECT_EQ(c.evses[0].phases, 3);
  EXPECT_DOUBLE_EQ(c.evses[0].voltage_v, 230.0);
  EXPECT_EQ(c.evses[1].connectors, 1);  // default
  EXPECT_DOUBLE_EQ(c.evses[1].max_current_a, 16.5);
  EXPECT_EQ(c.evses[1].phases, 1);
  EXPECT_DOUBLE_EQ(c.evses[1].voltage_v, 240.0);

  // [device_model] values are kept as text whatever their TOML type.
  const std::map<std::string, std::string> dm{{"OCPPCommCtrlr.RetryBackOffWaitMinimum", "3"},
                                              {"SampledDataCtrlr.TxUpdatedInterval", "60"},
                                              {"AuthCtrlr.OfflineTxForUnknownIdEnabled", "true"}};
  EXPECT_EQ(c.device_model, dm);
}

TEST(Config, DefaultsApplyWhenKeysAreAbsent) {
  Config c;
  Doc d;
  ASSERT_FALSE(check(d.text(), &c).has_value());
  EXPECT_EQ(c.vendor, "chargeguard");
  EXPECT_EQ(c.model, "CG-SIM");
  EXPECT_EQ(c.hal, "sim");
  EXPECT_EQ(c.log_level, "info");
  EXPECT_EQ(c.control_period_ms, 100);
  EXPECT_EQ(c.max_frame_bytes, 65536u);
  EXPECT_FALSE(c.allow_insecure_transport);
  EXPECT_FALSE(c.allow_security_profile_downgrade);  // COM-6: never lowered remotely by default
  ASSERT_EQ(c.evses.size(), 1u);
  EXPECT_EQ(c.evses[0].connectors, 1);
  EXPECT_EQ(c.evses[0].phases, 3);
  EXPECT_DOUBLE_EQ(c.evses[0].voltage_v, 230.0);
  EXPECT_TRUE(c.device_model.empty());
}

TEST(Config, UnknownKeyInEachSectionIsNamed) {
  {
    Doc d;
    d.station["colour"] = R"("red")";
    expect_error(check(d), "station.colour", "unknown key");
  }
  {
    Doc d;
    d.csms["proxy"] = R"("http://proxy")";
    expect_error(check(d), "csms.proxy", "unknown key");
  }
  {
    Doc d;
    d.evses.push_back({{"max_current_a", "16"}, {"power_kw", "11"}});
    expect_error(check(d), "evse[2].power_kw", "unknown key");
  }
  {
    // a typo of a known key is as unknown as any other
    Doc d;
    d.csms["security_proflie"] = "2";
    expect_error(check(d), "csms.security_proflie", "unknown key");
  }
}

TEST(Config, UnknownSectionIsNamed) {
  Doc d;
  d.extra = "[charging]\nmode = \"fast\"\n";
  expect_error(check(d), "charging", "unknown section");

  Doc top;
  top.extra = "";
  // a top-level key outside any table is an unknown section too
  expect_error(check("verbose = true\n" + top.text()), "verbose", "unknown section");
}

TEST(Config, SectionOfTheWrongShapeIsNamed) {
  expect_error(check("station = \"CS001\"\n"), "station");
  expect_error(check("[evse]\nmax_current_a = 16\n"), "evse");  // [evse] instead of [[evse]]
  expect_error(check("device_model = 3\n"), "device_model");
}

TEST(Config, WrongTypeIsNamed) {
  {
    Doc d;
    d.station["identity"] = "5";
    expect_error(check(d), "station.identity", "must be a string");
  }
  {
    Doc d;
    d.station["control_period_ms"] = R"("100")";
    expect_error(check(d), "station.control_period_ms", "must be an integer");
  }
  {
    Doc d;
    d.csms["security_profile"] = R"("2")";
    expect_error(check(d), "csms.security_profile", "must be an integer");
  }
  {
    Doc d;
    d.csms["allow_insecure_transport"] = R"("yes")";
    expect_error(check(d), "csms.allow_insecure_transport", "must be true or false");
  }
  {
    Doc d;
    d.csms["allow_security_profile_downgrade"] = "1";
    expect_error(check(d), "csms.allow_security_profile_downgrade", "must be true or false");
  }
  {
    Config c;
    Doc d;
    d.csms["allow_security_profile_downgrade"] = "true";
    ASSERT_FALSE(check(d.text(), &c).has_value());
    EXPECT_TRUE(c.allow_security_profile_downgrade);
  }
  {
    Doc d;
    d.csms["max_frame_bytes"] = "65536.0";
    expect_error(check(d), "csms.max_frame_bytes", "must be an integer");
  }
  {
    Doc d;
    d.evses[0]["max_current_a"] = R"("32")";
    expect_error(check(d), "evse[1].max_current_a", "must be a number");
  }
  {
    Doc d;
    d.evses.push_back({{"phases", "3.0"}});
    expect_error(check(d), "evse[2].phases", "must be an integer");
  }
  {
    Doc d;
    d.extra = "[device_model]\n\"OCPPCommCtrlr.HeartbeatInterval\" = [1, 2]\n";
    expect_error(check(d), "device_model.OCPPCommCtrlr.HeartbeatInterval", "must be a string, integer or boolean");
  }
}

TEST(Config, OutOfRangeIsNamed) {
  struct Case {
    std::string section, key, value, expect_key;
  };
  const std::vector<Case> cases{
      {"station", "control_period_ms", "-1", "station.control_period_ms"},
      {"station", "control_period_ms", "9", "station.control_period_ms"},
      {"station", "control_period_ms", "1001", "station.control_period_ms"},
      {"station", "control_period_ms", "99999999999", "station.control_period_ms"},
      {"station", "log_level", R"("trace")", "station.log_level"},
      {"station", "hal", R"("gpio")", "station.hal"},
      {"station", "serial", R"("12345678901234567890123456")", "station.serial"},
      {"station", "vendor", R"("")", "station.vendor"},
      {"station", "model", R"("a model name that is too long")", "station.model"},
      {"csms", "security_profile", "0", "csms.security_profile"},
      {"csms", "certificate_renewal_days", "0", "csms.certificate_renewal_days"},
      {"csms", "certificate_renewal_days", "366", "csms.certificate_renewal_days"},
      {"csms", "security_profile", "4", "csms.security_profile"},
      {"csms", "max_frame_bytes", "4095", "csms.max_frame_bytes"},
      {"csms", "max_frame_bytes", "16777217", "csms.max_frame_bytes"},
      {"csms", "url", R"("https://csms.example.com/ocpp")", "csms.url"},
      {"evse", "connectors", "0", "evse[1].connectors"},
      {"evse", "connectors", "5", "evse[1].connectors"},
      {"evse", "max_current_a", "0", "evse[1].max_current_a"},
      {"evse", "max_current_a", "1000.5", "evse[1].max_current_a"},
      {"evse", "phases", "2", "evse[1].phases"},
      {"evse", "voltage_v", "99", "evse[1].voltage_v"},
      {"evse", "voltage_v", "1001", "evse[1].voltage_v"},
      // TOML floats that are no usable numbers
      {"evse", "max_current_a", "nan", "evse[1].max_current_a"},
      {"evse", "max_current_a", "-nan", "evse[1].max_current_a"},
      {"evse", "max_current_a", "inf", "evse[1].max_current_a"},
      {"evse", "max_current_a", "-inf", "evse[1].max_current_a"},
      {"evse", "voltage_v", "nan", "evse[1].voltage_v"},
      {"evse", "voltage_v", "+inf", "evse[1].voltage_v"},
      // an integer with no exact double (above 2^53)
      {"evse", "max_current_a", "9007199254740993", "evse[1].max_current_a"},
      {"evse", "voltage_v", "9223372036854775807", "evse[1].voltage_v"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.section + "." + c.key + " = " + c.value);
    Doc d;
    if (c.section == "station")
      d.station[c.key] = c.value;
    else if (c.section == "csms")
      d.csms[c.key] = c.value;
    else
      d.evses[0][c.key] = c.value;
    expect_error(check(d), c.expect_key);
  }
}

TEST(Config, BoundaryValuesAreAccepted) {
  Doc d;
  d.station["control_period_ms"] = "10";
  d.csms["max_frame_bytes"] = "4096";
  d.evses[0] = {{"connectors", "4"}, {"max_current_a", "1000"}, {"phases", "1"}, {"voltage_v", "100"}};
  EXPECT_FALSE(check(d).has_value());
  d.station["control_period_ms"] = "1000";
  d.csms["max_frame_bytes"] = "16777216";
  d.evses[0]["voltage_v"] = "1000";
  EXPECT_FALSE(check(d).has_value());
}

TEST(Config, MoreThan32EvsesAreRefused) {
  Doc d;
  d.evses.assign(33, {{"max_current_a", "16"}});
  expect_error(check(d), "evse");
  d.evses.resize(32);
  EXPECT_FALSE(check(d).has_value());
}

TEST(Config, NoEvseIsRefused) {
  Doc d;
  d.evses.clear();
  expect_error(check(d), "evse");
}

TEST(Config, RequiredKeysAreNamed) {
  const std::vector<std::pair<std::string, std::string>> required{
      {"station", "identity"}, {"station", "state_dir"}, {"csms", "url"}, {"csms", "password_file"}};
  for (const auto& [section, key] : required) {
    SCOPED_TRACE(section + "." + key);
    Doc d;
    (section == "station" ? d.station : d.csms).erase(key);
    expect_error(check(d), section + "." + key, "required");
  }
}

TEST(Config, Profile1NeedsAllowInsecureTransport) {
  Doc d;
  d.csms["security_profile"] = "1";
  d.csms["url"] = R"("ws://csms.example.com/ocpp")";
  d.csms.erase("ca_file");
  expect_error(check(d), "csms.security_profile", "allow_insecure_transport");

  d.csms["allow_insecure_transport"] = "false";
  expect_error(check(d), "csms.security_profile", "allow_insecure_transport");

  d.csms["allow_insecure_transport"] = "true";
  EXPECT_FALSE(check(d).has_value()) << check(d)->text();  // and no ca_file is needed
}

TEST(Config, Profile3NeedsSerialAndOrganizationButNoPassword) {
  Doc d;
  d.csms["security_profile"] = "3";
  d.csms.erase("password_file");
  expect_error(check(d), "station.serial", "profile 3");
  d.station["serial"] = R"("CG-0001")";
  expect_error(check(d), "station.organization", "profile 3");
  d.station["organization"] = R"("Example CPO")";
  EXPECT_FALSE(check(d).has_value()) << check(d)->text();
  d.csms["client_ca_file"] = R"("/etc/cg/operator-ca.pem")";
  d.csms["certificate_renewal_days"] = "45";
  Config c;
  ASSERT_FALSE(check(d.text(), &c).has_value());
  EXPECT_EQ(c.client_ca_file, "/etc/cg/operator-ca.pem");
  EXPECT_EQ(c.certificate_renewal_days, 45);
  // profile 3 over ws:// is refused like profile 2
  d.csms["url"] = R"("ws://csms.example.com/ocpp")";
  expect_error(check(d), "csms.url", "security profile 3 needs a wss:// URL");
  // and profile 2 still needs the password
  d.csms["url"] = R"("wss://csms.example.com/ocpp")";
  d.csms["security_profile"] = "2";
  expect_error(check(d), "csms.password_file", "required");
}

TEST(Config, Profile1NeedsAWsUrl) {
  Doc d;
  d.csms["security_profile"] = "1";
  d.csms["allow_insecure_transport"] = "true";
  d.csms["url"] = R"("wss://csms.example.com/ocpp")";
  expect_error(check(d), "csms.url", "ws://");
}

TEST(Config, Profile2RefusesWsUrl) {
  Doc d;
  d.csms["url"] = R"("ws://csms.example.com/ocpp")";
  expect_error(check(d), "csms.url", "wss://");
  // allow_insecure_transport does not make ws:// acceptable for profile 2
  d.csms["allow_insecure_transport"] = "true";
  expect_error(check(d), "csms.url", "wss://");
}

TEST(Config, Profile2NeedsCaFile) {
  Doc d;
  d.csms.erase("ca_file");
  expect_error(check(d), "csms.ca_file", "required");
  d.csms["ca_file"] = R"("")";
  expect_error(check(d), "csms.ca_file", "required");
}

TEST(Config, IdentityRules) {
  {
    Doc d;
    d.station["identity"] = R"("CS:001")";
    expect_error(check(d), "station.identity", "':'");
  }
  {
    Doc d;
    d.station["identity"] = "\"" + std::string(49, 'A') + "\"";
    expect_error(check(d), "station.identity");
  }
  {
    Doc d;
    d.station["identity"] = "\"" + std::string(48, 'A') + "\"";
    EXPECT_FALSE(check(d).has_value());
  }
  {
    Doc d;
    d.station["identity"] = R"("CS 001")";
    expect_error(check(d), "station.identity");
  }
  {
    Doc d;
    d.station["identity"] = R"("CS\u00e9")";  // not ASCII
    expect_error(check(d), "station.identity");
  }
  {
    Doc d;
    d.station["identity"] = R"("")";
    expect_error(check(d), "station.identity", "required");
  }
}

TEST(Config, UrlLongerThan512IsRefused) {
  Doc d;
  d.csms["url"] = "\"wss://csms.example.com/" + std::string(490, 'a') + "\"";
  expect_error(check(d), "csms.url", "512");
}

TEST(Config, BrokenTomlGivesFileLineColumn) {
  Config c;
  auto e = cg::config::parse("[station]\nidentity = \"CS001\"\nserial = \n", "station.toml", c);
  ASSERT_TRUE(e.has_value());
  EXPECT_TRUE(e->key.empty());
  EXPECT_EQ(e->text().rfind("station.toml:3:10: ", 0), 0u) << e->text();

  e = cg::config::parse("[csms\nurl = \"wss://x\"\n", "/etc/cg/station.toml", c);
  ASSERT_TRUE(e.has_value());
  EXPECT_EQ(e->text().rfind("/etc/cg/station.toml:1:6: ", 0), 0u) << e->text();

  // a key defined twice is a TOML error as well
  e = cg::config::parse("[station]\nidentity = \"a\"\nidentity = \"b\"\n", "station.toml", c);
  ASSERT_TRUE(e.has_value());
  EXPECT_EQ(e->text().rfind("station.toml:3:", 0), 0u) << e->text();
}

TEST(Config, OversizedFileIsRefused) {
  Config c;
  std::string text = Doc{}.text() + "# " + std::string(256 * 1024, 'x') + "\n";
  auto e = cg::config::parse(text, "big.toml", c);
  ASSERT_TRUE(e.has_value());
  EXPECT_NE(e->text().find("256 KiB"), std::string::npos) << e->text();
}

class ConfigFile : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = cg::test::make_temp_dir("config");
  }
  void TearDown() override { fs::remove_all(dir_); }
  fs::path dir_;
};

TEST_F(ConfigFile, LoadFileReadsAndNamesTheFile) {
  const fs::path f = dir_ / "station.toml";
  std::ofstream(f) << kFullToml;
  Config c;
  ASSERT_FALSE(cg::config::load_file(f, c).has_value());
  EXPECT_EQ(c.identity, "CS001");
  EXPECT_EQ(c.evses.size(), 2u);

  std::ofstream(f) << "[station]\nidentity = \n";
  auto e = cg::config::load_file(f, c);
  ASSERT_TRUE(e.has_value());
  EXPECT_EQ(e->text().rfind(f.string() + ":2:", 0), 0u) << e->text();

  e = cg::config::load_file(dir_ / "missing.toml", c);
  ASSERT_TRUE(e.has_value());
  EXPECT_NE(e->text().find("missing.toml"), std::string::npos);
}

TEST(Config, OverridesWinOverTheFile) {
  Config c;
  ASSERT_FALSE(cg::config::parse(kFullToml, "station.toml", c).has_value());
  Overrides o;
  o.state_dir = "/tmp/state";
  o.csms_url = "ws://10.0.0.1:9000/ocpp";
  o.identity = "CS999";
  o.ca_file = "/tmp/ca.pem";
  o.password_file = "/tmp/pw";
  o.serial = "SER-9";
  o.organization = "Other CPO";
  o.security_profile = 1;
  cg::config::apply(o, c);
  EXPECT_EQ(c.state_dir, fs::path("/tmp/state"));
  EXPECT_EQ(c.csms_url, "ws://10.0.0.1:9000/ocpp");
  EXPECT_EQ(c.identity, "CS999");
  EXPECT_EQ(c.ca_file, fs::path("/tmp/ca.pem"));
  EXPECT_EQ(c.password_file, fs::path("/tmp/pw"));
  EXPECT_EQ(c.serial, "SER-9");
  EXPECT_EQ(c.organization, "Other CPO");
  EXPECT_EQ(c.security_profile, 1);
  // the overridden profile is validated like a file value
  expect_error(cg::config::validate(c), "csms.security_profile", "allow_insecure_transport");
  // untouched keys keep the file's values
  EXPECT_EQ(c.vendor, "acme");
  EXPECT_EQ(c.max_frame_bytes, 131072u);
  EXPECT_EQ(c.evses.size(), 2u);
}

TEST(Config, UnsetOverridesKeepTheFile) {
  Config c;
  ASSERT_FALSE(cg::config::parse(kFullToml, "station.toml", c).has_value());
  const Config before = c;
  cg::config::apply(Overrides{}, c);
  EXPECT_EQ(c.identity, before.identity);
  EXPECT_EQ(c.csms_url, before.csms_url);
  EXPECT_EQ(c.security_profile, before.security_profile);
  EXPECT_EQ(c.evses.size(), before.evses.size());
}

TEST(Config, EvseCountReplicatesTheFirstEvse) {
  Config c;
  ASSERT_FALSE(cg::config::parse(kFullToml, "station.toml", c).has_value());
  Overrides o;
  o.evse_count = 4;
  cg::config::apply(o, c);
  ASSERT_EQ(c.evses.size(), 4u);
  for (const auto& e : c.evses) {
    EXPECT_EQ(e.connectors, 2);
    EXPECT_DOUBLE_EQ(e.max_current_a, 32.0);
    EXPECT_EQ(e.phases, 3);
    EXPECT_DOUBLE_EQ(e.voltage_v, 230.0);
  }
  EXPECT_FALSE(cg::config::validate(c).has_value());

  o.evse_count = 1;  // fewer than the file: the first one stays
  cg::config::apply(o, c);
  ASSERT_EQ(c.evses.size(), 1u);
  EXPECT_EQ(c.evses[0].connectors, 2);
}

TEST(Config, EvseCountWithoutEvseTablesUsesDefaults) {
  Config c;
  Doc d;
  d.evses.clear();
  ASSERT_FALSE(cg::config::parse(d.text(), "station.toml", c).has_value());
  Overrides o;
  o.evse_count = 3;
  cg::config::apply(o, c);
  ASSERT_EQ(c.evses.size(), 3u);
  for (const auto& e : c.evses) {
    EXPECT_EQ(e.connectors, 1);
    EXPECT_DOUBLE_EQ(e.max_current_a, 32.0);
    EXPECT_EQ(e.phases, 3);
  }
  EXPECT_FALSE(cg::config::validate(c).has_value());

  o.evse_count = 0;
  cg::config::apply(o, c);
  expect_error(cg::config::validate(c), "evse");
}

}  // namespace

namespace {

TEST(Config, CsmsUrlWithCredentialsQueryOrFragmentIsRefused) {
  Doc d;
  d.csms["url"] = R"("wss://user:secret@csms.example.com/ocpp")";
  expect_error(check(d), "csms.url", "password_file");
  d.csms["url"] = R"("wss://csms.example.com/ocpp?x=1")";
  expect_error(check(d), "csms.url", "query");
  d.csms["url"] = R"("wss://csms.example.com/ocpp#frag")";
  expect_error(check(d), "csms.url", "fragment");
  d.csms["url"] = R"("wss:///ocpp")";
  expect_error(check(d), "csms.url", "valid URL");
}

TEST(Config, StateDirPathMustFitTheSimulatorSocket) {
  Doc d;
  d.station["state_dir"] = "\"/" + std::string(120, 'd') + "\"";
  expect_error(check(d), "station.state_dir", "too long");
}

TEST(Config, CheckFilesNeedsAReadableCaCertificate) {
  const auto dir = cg::test::make_temp_dir("config-ca");
  Config c;
  c.security_profile = 2;
  c.ca_file = dir / "missing.pem";
  auto e = cg::config::check_files(c);
  ASSERT_TRUE(e.has_value());
  EXPECT_EQ(e->key, "csms.ca_file");
  {
    std::ofstream(dir / "garbage.pem") << "not a certificate\n";
  }
  c.ca_file = dir / "garbage.pem";
  EXPECT_TRUE(cg::config::check_files(c).has_value());
  // Profile 1 does not use a CA file.
  c.security_profile = 1;
  EXPECT_FALSE(cg::config::check_files(c).has_value());
  fs::remove_all(dir);
}

}  // namespace

namespace {

TEST(Config, SyslogSectionIsOptionalAndChecked) {
  Config c;
  ASSERT_FALSE(check(Doc{}.text(), &c).has_value());
  EXPECT_FALSE(c.syslog.has_value()) << "off unless configured";
  Doc d;
  d.extra = "[syslog]\nhost = \"siem.example.com\"\nca_file = \"/etc/cg/siem-ca.pem\"\n"
            "cert_file = \"/etc/cg/station.pem\"\nkey_file = \"/etc/cg/station.key\"\n";
  ASSERT_FALSE(check(d.text(), &c).has_value()) << check(d)->text();
  ASSERT_TRUE(c.syslog.has_value());
  EXPECT_EQ(c.syslog->port, 6514);
  EXPECT_EQ(c.syslog->facility, 10);
  d.extra = "[syslog]\nhost = \"siem.example.com\"\nca_file = \"/etc/cg/siem-ca.pem\"\n";
  expect_error(check(d), "syslog.cert_file", "client certificate");
  d.extra = "[syslog]\nhost = \"siem.example.com\"\ncert_file = \"a\"\nkey_file = \"b\"\n";
  expect_error(check(d), "syslog.ca_file", "verified");
  d.extra = "[syslog]\nhost = \"x\"\nca_file = \"c\"\ncert_file = \"a\"\nkey_file = \"b\"\nport = 70000\n";
  expect_error(check(d), "syslog.port");
  d.extra = "[syslog]\nhost = \"x\"\nprotocol = \"udp\"\n";
  expect_error(check(d), "syslog.protocol", "unknown key");
}

}  // namespace

namespace {
TEST(Config, AuditSectionCapacityAndFullPolicy) {
  Config c;
  ASSERT_FALSE(check(Doc{}.text(), &c).has_value());
  EXPECT_EQ(c.audit_full_policy, "refuse_noncritical") << "never drop records unless the operator chose to";
  Doc d;
  d.extra = "[audit]\nmax_mib = 64\nfull_policy = \"overwrite_exported\"\n";
  ASSERT_FALSE(check(d.text(), &c).has_value()) << check(d)->text();
  EXPECT_EQ(c.audit_full_policy, "overwrite_exported");
  EXPECT_EQ(c.audit_max_bytes, 64ull * 1024 * 1024);
  d.extra = "[audit]\nfull_policy = \"overwrite_oldest\"\n";
  expect_error(check(d), "audit.full_policy", "overwrite_exported");
  d.extra = "[audit]\nmax_mib = 0\n";
  expect_error(check(d), "audit.max_mib");
}

// [firmware] (issue 11): boot attempts, image cap, how a new image confirms itself.
TEST(Config, FirmwareSectionDefaultsAndRanges) {
  Config c;
  ASSERT_FALSE(check(Doc{}.text(), &c).has_value());
  EXPECT_EQ(c.firmware.boot_attempts, 3);
  EXPECT_EQ(c.firmware.max_image_mib, 512u);
  EXPECT_EQ(c.firmware.confirm, "boot-accepted");
  Doc d;
  d.extra = "[firmware]\nboot_attempts = 5\nmax_image_mib = 64\nconfirm = \"running\"\nconfirm_after_s = 30\n"
            "confirm_timeout_s = 120\n";
  ASSERT_FALSE(check(d.text(), &c).has_value()) << check(d)->text();
  EXPECT_EQ(c.firmware.boot_attempts, 5);
  EXPECT_EQ(c.firmware.max_image_mib, 64u);
  EXPECT_EQ(c.firmware.confirm, "running");
  EXPECT_EQ(c.firmware.confirm_after_s, 30);
  EXPECT_EQ(c.firmware.confirm_timeout_s, 120);
  d.extra = "[firmware]\nboot_attempts = 0\n";
  expect_error(check(d), "firmware.boot_attempts");
  d.extra = "[firmware]\nboot_attempts = 11\n";
  expect_error(check(d), "firmware.boot_attempts");
  d.extra = "[firmware]\nmax_image_mib = 0\n";
  expect_error(check(d), "firmware.max_image_mib");
  d.extra = "[firmware]\nconfirm = \"never\"\n";
  expect_error(check(d), "firmware.confirm", "boot-accepted");
  d.extra = "[firmware]\nconfirm = \"running\"\nconfirm_after_s = 600\nconfirm_timeout_s = 600\n";
  expect_error(check(d), "firmware.confirm_after_s", "confirm_timeout_s");
  d.extra = "[firmware]\nconfirm_timeout_s = 5\n";
  expect_error(check(d), "firmware.confirm_timeout_s");
  d.extra = "[firmware]\nbogus = 1\n";
  expect_error(check(d), "firmware.bogus");
}
}  // namespace

namespace {
// [key_store] (issue 4): the file backend by default; pkcs11 needs a token and a PIN file.
TEST(Config, KeyStoreSectionDefaultsToTheFileBackend) {
  Config c;
  ASSERT_FALSE(check(Doc{}.text(), &c).has_value());
  EXPECT_EQ(c.key_store.backend, "file");
  EXPECT_EQ(c.key_store.module, "/usr/lib/softhsm/libsofthsm2.so");
  EXPECT_TRUE(c.key_store.token_label.empty());
  Doc d;
  d.extra = "[key_store]\nbackend = \"file\"\n";
  ASSERT_FALSE(check(d.text(), &c).has_value()) << check(d)->text();
  EXPECT_EQ(c.key_store.backend, "file");
}

TEST(Config, KeyStorePkcs11NeedsTokenAndPinFile) {
  Config c;
  Doc d;
  d.extra = "[key_store]\nbackend = \"pkcs11\"\ntoken_label = \"station\"\npin_file = \"/etc/cg/pin\"\n";
  ASSERT_FALSE(check(d.text(), &c).has_value()) << check(d)->text();
  EXPECT_EQ(c.key_store.backend, "pkcs11");
  EXPECT_EQ(c.key_store.module, "/usr/lib/softhsm/libsofthsm2.so") << "Debian's SoftHSM2 module by default";
  EXPECT_EQ(c.key_store.token_label, "station");
  EXPECT_EQ(c.key_store.pin_file, fs::path("/etc/cg/pin"));
  d.extra = "[key_store]\nbackend = \"pkcs11\"\nmodule = \"/opt/hsm/lib.so\"\ntoken_label = \"t\"\npin_file = \"p\"\n";
  ASSERT_FALSE(check(d.text(), &c).has_value()) << check(d)->text();
  EXPECT_EQ(c.key_store.module, "/opt/hsm/lib.so");

  d.extra = "[key_store]\nbackend = \"pkcs11\"\npin_file = \"/etc/cg/pin\"\n";
  expect_error(check(d), "key_store.token_label", "required");
  d.extra = "[key_store]\nbackend = \"pkcs11\"\ntoken_label = \"station\"\n";
  expect_error(check(d), "key_store.pin_file", "required");
  d.extra = "[key_store]\nbackend = \"pkcs11\"\ntoken_label = \"a-token-label-longer-than-32-chars\"\npin_file = \"p\"\n";
  expect_error(check(d), "key_store.token_label");
  d.extra = "[key_store]\nbackend = \"pkcs11\"\nmodule = \"libsofthsm2.so\"\ntoken_label = \"t\"\npin_file = \"p\"\n";
  expect_error(check(d), "key_store.module", "absolute");
}

TEST(Config, KeyStoreRefusesUnknownKeysAndBackends) {
  Doc d;
  d.extra = "[key_store]\nbackend = \"tpm\"\n";
  expect_error(check(d), "key_store.backend", "pkcs11");
  d.extra = "[key_store]\nbackend = \"pkcs11\"\ntoken_label = \"t\"\npin_file = \"p\"\npin = \"1234\"\n";
  expect_error(check(d), "key_store.pin", "unknown key");
  d.extra = "[key_store]\ntoken_label = \"station\"\n";
  expect_error(check(d), "key_store.token_label", "pkcs11");
  d.extra = "[key_store]\nbackend = 11\n";
  expect_error(check(d), "key_store.backend", "string");
}
}  // namespace

namespace {
// AUTH-9: the commissioning PIN's renewal period is 0 (never) or at least a day.
TEST(Config, PinMaxAgeIsNeverOrAtLeastADay) {
  Doc d;
  d.extra = "[accounts]\npin_max_age = \"1h\"\n";
  expect_error(check(d), "accounts.pin_max_age", "at least 1d");
  d.extra = "[accounts]\npin_max_age = \"0\"\n";
  Config c;
  EXPECT_FALSE(check(d.text(), &c));
  EXPECT_EQ(c.accounts.pin_max_age.count(), 0);
}
}  // namespace
