// The command-line front ends (`chargeguard audit …`, `pki …`) go through the
// services: with a policy that denies everything every command refuses,
// changes nothing, and — where the command holds the security log — the
// denial is audited; with the real policy the same commands work.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "app/audit_cli.hpp"
#include "app/firmware_station.hpp"
#include "app/pki_cli.hpp"
#include "app/web_station.hpp"
#include "core/storage.hpp"
#include "audit/audit_log.hpp"
#include "core/log.hpp"
#include "firmware/image_tools.hpp"
#include "firmware/slots.hpp"
#include "security/cert_store.hpp"
#include "security/dev_pki.hpp"
#include "security/key_store.hpp"
#include <openssl/pem.h>

#include "test_util.hpp"

namespace {
namespace fs = std::filesystem;
using cg::policy::Decision;

Decision deny_all(const cg::policy::Principal&, cg::policy::Operation) { return Decision::Deny; }

struct CliTest : ::testing::Test {
  fs::path dir = cg::test::make_temp_dir("cli");
  cg::config::Config cfg;
  CliTest() {
    cg::log::set_level(cg::log::Level::Error);
    cfg.state_dir = dir / "state";
    cfg.identity = "CS001";
    fs::create_directories(cfg.state_dir);
    fs::permissions(cfg.state_dir, fs::perms::owner_all, fs::perm_options::replace);
    // A security log with a few records, as a station leaves it.
    auto keys = cg::security::open_file_key_store({cfg.state_dir / "keys"});
    auto log = cg::audit::AuditLog::open(cfg.state_dir / "audit", *keys);
    for (int i = 0; i < 3; ++i)
      log->record(cg::audit::Event::StartupOfTheDevice, cg::audit::Outcome::Success, cg::audit::Source::system());
  }
  ~CliTest() override { fs::remove_all(dir); }
  std::uint64_t last_seq() {
    auto keys = cg::security::open_file_key_store({cfg.state_dir / "keys"});
    return cg::audit::verify_dir(cfg.state_dir / "audit", *keys).last_seq;
  }
  std::size_t denials() {
    std::size_t n = 0;
    cg::audit::for_each_record(cg::audit::log_file(cfg.state_dir / "audit"), 1, [&](const cg::audit::RecordView& r) {
      n += r.type == cg::audit::Event::AccessDenied;
      return true;
    });
    return n;
  }
};

TEST_F(CliTest, AuditCommandsAskThePolicy) {
  const cg::app::AuditTarget t{cfg.state_dir, {}};
  EXPECT_EQ(cg::app::audit_verify(t, {}, &deny_all), 1);
  const fs::path out = dir / "export.ndjson";
  EXPECT_EQ(cg::app::audit_export(t, out.string(), &deny_all), 1);
  EXPECT_EQ(fs::exists(out) ? fs::file_size(out) : 0u, 0u) << "nothing exported";
  EXPECT_EQ(cg::app::audit_clear(t, true, &deny_all), 1);
  EXPECT_EQ(last_seq(), 4u) << "not cleared: the three records and the denial";
  EXPECT_EQ(denials(), 1u) << "clear holds the log: its denial is recorded";
  // The real policy lets the local admin do all three.
  EXPECT_EQ(cg::app::audit_verify(t, {}), 0);
  EXPECT_EQ(cg::app::audit_export(t, out.string()), 0);
  EXPECT_GT(fs::file_size(out), 0u);
  EXPECT_EQ(cg::app::audit_clear(t, false), 0);
}

TEST_F(CliTest, PkiInstallRootAsksThePolicyAndTheDenialIsAudited) {
  ASSERT_TRUE(cg::security::dev_pki_init(dir / "pki").ok);
  const fs::path root = dir / "pki" / "manufacturer-root-ca.pem";
  EXPECT_EQ(cg::app::pki_install_root(cfg, "ManufacturerRootCertificate", root, false, &deny_all), 1);
  EXPECT_EQ(cg::security::CertStore(cfg.state_dir).count(cg::security::CertificateType::ManufacturerRootCertificate), 0u);
  EXPECT_EQ(denials(), 1u);
  EXPECT_EQ(cg::app::pki_install_root(cfg, "ManufacturerRootCertificate", root, false), 0);
  EXPECT_EQ(cg::security::CertStore(cfg.state_dir).count(cg::security::CertificateType::ManufacturerRootCertificate), 1u);
}

TEST_F(CliTest, PkiProvisionAsksThePolicyAndMakesNoKeyWhenDenied) {
  ASSERT_TRUE(cg::security::dev_pki_init(dir / "pki").ok);
  cfg.serial = "CG-CLI-0001";
  cfg.organization = "Test CPO";
  cfg.ca_file = dir / "pki" / "csms-root-ca.pem";
  cfg.client_ca_file = dir / "pki" / "operator-root-ca.pem";
  cg::app::ProvisionOptions opt;
  opt.ca_cert = dir / "pki" / "operator-root-ca.pem";
  opt.ca_key = dir / "pki" / "operator-root-ca.key";
  EXPECT_EQ(cg::app::pki_provision(cfg, opt, &deny_all), 1);
  auto keys = cg::security::open_file_key_store({cfg.state_dir / "keys"});
  EXPECT_FALSE(keys->find_key("station").has_value()) << "a key was made for a denied request";
  EXPECT_EQ(denials(), 1u);
  EXPECT_EQ(cg::app::pki_provision(cfg, opt), 0);
  EXPECT_TRUE(keys->find_key("station").has_value());
}

// FW-3: the firmware install commands go through the firmware service and its policy.
TEST_F(CliTest, FirmwareInstallAsksThePolicyAndTheDenialIsAudited) {
  ASSERT_TRUE(cg::security::dev_pki_init(dir / "pki").ok);
  ASSERT_EQ(cg::app::pki_install_root(cfg, "ManufacturerRootCertificate", dir / "pki" / "manufacturer-root-ca.pem",
                                      false),
            0);
  cfg.model = "CG-SIM";
  cg::test::write_file(dir / "payload", "#!/bin/sh\nexit 0\n");
  cg::firmware::Manifest fields;
  fields.model = "CG-SIM";
  fields.version = "1.0.0";
  fields.security_version = 1;
  const fs::path image = dir / "fw.img";
  ASSERT_TRUE(cg::firmware::pack_image(dir / "payload", fields, image));
  FILE* kf = std::fopen((dir / "pki" / "firmware-signer.key").c_str(), "r");
  FILE* cf = std::fopen((dir / "pki" / "firmware-signer.pem").c_str(), "r");
  ASSERT_TRUE(kf && cf);
  EVP_PKEY* key = PEM_read_PrivateKey(kf, nullptr, nullptr, nullptr);
  X509* cert = PEM_read_X509(cf, nullptr, nullptr, nullptr);
  std::fclose(kf);
  std::fclose(cf);
  auto sig = cg::firmware::sign_image(image, key, cert);
  EVP_PKEY_free(key);
  X509_free(cert);
  ASSERT_TRUE(sig);
  cg::test::write_file(dir / "fw.sig", *sig + "\n");
  const cg::app::FirmwareFiles files{image, dir / "pki" / "firmware-signer.pem", dir / "fw.sig"};

  const std::size_t before = denials();
  EXPECT_EQ(cg::app::firmware_install(cfg, files, true, &deny_all), 1);
  EXPECT_EQ(cg::app::firmware_install(cfg, files, false, &deny_all), 1);
  EXPECT_EQ(cg::app::firmware_status(cfg, &deny_all), 1);
  EXPECT_EQ(denials(), before + 2) << "both installs' denials recorded (status only reads, beside a daemon)";
  cg::firmware::SlotStore slots(cfg.state_dir / "firmware");
  EXPECT_EQ((*slots.load())[cg::firmware::Slot::A].health, cg::firmware::SlotHealth::Empty);
  EXPECT_FALSE(fs::exists(slots.image_path(cg::firmware::Slot::A)));

  EXPECT_EQ(cg::app::firmware_install(cfg, files, true), 0);
  EXPECT_EQ((*slots.load())[cg::firmware::Slot::A].health, cg::firmware::SlotHealth::Good);
  EXPECT_EQ(cg::app::firmware_status(cfg), 0);
}

}  // namespace

// AUTH-4: accounts init asks the policy (ManageAccounts as the local admin) and
// creates nothing when refused; allowed, it creates the admin once.
TEST_F(CliTest, AccountsInitAsksThePolicy) {
  const std::size_t before = denials();
  EXPECT_EQ(cg::app::accounts_init(cfg, &deny_all), 1);
  EXPECT_EQ(denials(), before + 1);
  {
    cg::storage::Db db(cfg.state_dir / "station.db");
    auto st = db.prepare("SELECT COUNT(*) FROM accounts");
    st.step();
    EXPECT_EQ(st.col_int(0), 0);
  }
  testing::internal::CaptureStdout();
  EXPECT_EQ(cg::app::accounts_init(cfg), 0);
  const std::string printed = testing::internal::GetCapturedStdout();
  EXPECT_EQ(printed.size(), 20u) << "the password alone and a newline: " << printed;
  EXPECT_EQ(cg::app::accounts_init(cfg), 3) << "once only";
  EXPECT_EQ(cg::test::all_bytes(cfg.state_dir).find(printed.substr(0, 19)), std::string::npos);
}
