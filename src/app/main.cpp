// chargeguard — the station daemon and its tools, git-style subcommands.
#include <CLI/CLI.hpp>
#include <iostream>

#include <fstream>

#include "app/audit_cli.hpp"
#include "app/daemon.hpp"
#include "app/firmware_cli.hpp"
#include "app/firmware_station.hpp"
#include "app/pki_cli.hpp"
#include "audit/audit_log.hpp"
#include "app/sim_client.hpp"
#include "app/web_station.hpp"
#include "core/config.hpp"
#include "core/log.hpp"
#include "security/dev_pki.hpp"

namespace {

// The configuration file plus overrides, validated; false (and an error on
// stderr) when it is unusable.
bool load_config(const std::string& config_file, const cg::config::Overrides& ov, cg::config::Config& cfg) {
  if (!config_file.empty()) {
    if (auto err = cg::config::load_file(config_file, cfg)) {
      std::cerr << "error: " << err->text() << "\n";
      return false;
    }
  }
  if (cfg.evses.empty() && !ov.evse_count) cfg.evses.push_back({});
  cg::config::apply(ov, cfg);
  if (auto err = cg::config::validate(cfg)) {
    std::cerr << "error: " << err->text() << "\n";
    return false;
  }
  if (auto err = cg::config::check_files(cfg)) {
    std::cerr << "error: " << err->text() << "\n";
    return false;
  }
  return true;
}

int cmd_run(const std::string& config_file, const cg::config::Overrides& ov, const std::string& log_level,
            char** argv) {
  cg::config::Config cfg;
  if (!load_config(config_file, ov, cfg)) return 1;
  if (!log_level.empty()) cfg.log_level = log_level;
  if (auto err = cg::config::validate(cfg)) {  // the --log-level value
    std::cerr << "error: " << err->text() << "\n";
    return 1;
  }
  cg::log::Level lvl;
  cg::log::parse_level(cfg.log_level, lvl);
  cg::log::set_level(lvl);
  return cg::app::run_daemon(cfg, argv);
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"chargeguard — EV charging station controller (OCPP 2.0.1)"};
  app.require_subcommand(1);
  app.set_version_flag("--version", std::string("chargeguard ") + CG_VERSION);

  // run (and boot, which passes the same flags on to the payload's `run`)
  auto* run = app.add_subcommand("run", "Run the station daemon");
  auto* boot = app.add_subcommand(
      "boot", "Simulated bootloader: verify the firmware slot to boot (A/B, rollback, anti-rollback) and run its "
              "payload as `PAYLOAD run [flags]`");
  std::string config_file, log_level;
  cg::config::Overrides ov;
  std::string state_dir, csms_url, identity, ca_file, password_file, serial, organization, client_ca_file, web_listen;
  int profile = 0, evse_count = 0;
  for (auto* sub : {run, boot}) {
    sub->add_option("--config", config_file, "TOML configuration file (docs/configuration.md)")->check(CLI::ExistingFile);
    sub->add_option("--state-dir", state_dir, "State directory (SQLite database, simulator socket)");
    sub->add_option("--csms-url", csms_url, "CSMS endpoint without the identity, e.g. wss://csms.example.com/ocpp");
    sub->add_option("--identity", identity, "Station identity (appended to the CSMS URL; Basic auth user)");
    sub->add_option("--security-profile", profile,
                    "OCPP security profile: 3 (TLS + client certificate), 2 (TLS + Basic auth) or 1 (needs "
                    "allow_insecure_transport)");
    sub->add_option("--ca-file", ca_file, "PEM file with the CSMS root certificate(s) to trust");
    sub->add_option("--client-ca-file", client_ca_file,
                    "PEM file with the operator CA(s) that issue station certificates (profile 3; default: --ca-file)");
    sub->add_option("--password-file", password_file, "File holding the Basic auth password on one line");
    sub->add_option("--serial", serial, "Serial number");
    sub->add_option("--organization", organization, "Operator organization name");
    sub->add_option("--evse-count", evse_count,
                    "Number of EVSEs (one connector each unless the config file says otherwise)")
        ->check(CLI::Range(1, 32));
    sub->add_option("--log-level", log_level, "debug, info, warn or error");
    sub->add_option("--web-listen", web_listen, "Maintenance web UI address, e.g. 127.0.0.1:8443 (overrides [web] listen)");
  }

  // sim
  auto* sim = app.add_subcommand("sim", "Drive the simulated hardware of a running station");
  std::string sim_state_dir;
  std::vector<std::string> sim_args;
  sim->add_option("--state-dir", sim_state_dir, "State directory of the running station")->required();
  sim->add_option("command", sim_args,
                  "plug EVSE | unplug EVSE | badge EVSE TOKEN [TYPE] | draw EVSE AMPS | fault EVSE | clear-fault EVSE | "
                  "case open|close | moved | reset-button | status")
      ->required()
      ->expected(1, 4);
  sim->footer(
      "Examples:\n  chargeguard sim --state-dir DIR plug 1\n  chargeguard sim --state-dir DIR badge 1 04A2B3C4\n"
      "  chargeguard sim --state-dir DIR draw 1 16\n  chargeguard sim --state-dir DIR status\n"
      "Exit status: 0 the station took the event, 1 it refused it, 2 no station runs there.");

  // pki
  auto* pki = app.add_subcommand("pki", "Key and certificate tools");
  pki->require_subcommand(1);
  auto* dev_init = pki->add_subcommand("dev-init", "Generate a development PKI (never for production)");
  std::string pki_out, pki_host = "localhost";
  dev_init->add_option("--out", pki_out, "Directory to create the PKI in (must not hold one already)")->required();
  dev_init->add_option("--csms-host", pki_host, "Host name the CSMS server certificate is issued for");
  std::string pki_config, install_file;
  cg::app::ProvisionOptions prov;
  auto* provision = pki->add_subcommand(
      "provision", "Generate the station key in the key store and its certificate request (CN = serial, O = organization)");
  provision->add_option("--config", pki_config, "The station's TOML configuration file")->required()->check(CLI::ExistingFile);
  provision->add_option("--csr-out", prov.csr_out, "Write the PKCS#10 request here for the operator CA (default: stdout)");
  provision->add_option("--ca-cert", prov.ca_cert, "DEVELOPMENT ONLY: sign at once with this CA certificate…")
      ->check(CLI::ExistingFile);
  provision->add_option("--ca-key", prov.ca_key, "…and this CA key file (e.g. operator-root-ca.* of pki dev-init)")
      ->check(CLI::ExistingFile);
  provision->add_option("--days", prov.days, "Validity of a development-CA certificate")->check(CLI::Range(1, 36500));
  provision->add_option("--key-type", prov.key_type, "ec-p256 (default), ec-p384 or rsa-3072");
  auto* install = pki->add_subcommand("install-cert", "Install the station certificate chain the operator CA issued");
  install->add_option("--config", pki_config, "The station's TOML configuration file")->required()->check(CLI::ExistingFile);
  install->add_option("--cert", install_file, "PEM chain: the station certificate first, then sub-CAs")
      ->required()
      ->check(CLI::ExistingFile);
  auto* install_root = pki->add_subcommand(
      "install-root", "Pin a root certificate (e.g. the first ManufacturerRootCertificate) in the certificate store");
  std::string root_type;
  bool root_replace = false;
  install_root->add_option("--config", pki_config, "The station's TOML configuration file")->required()->check(CLI::ExistingFile);
  install_root->add_option("--type", root_type,
                           "ManufacturerRootCertificate, CSMSRootCertificate, V2GRootCertificate or MORootCertificate")
      ->required();
  install_root->add_option("--cert", install_file, "PEM file with exactly one CA certificate")
      ->required()
      ->check(CLI::ExistingFile);
  install_root->add_flag("--replace", root_replace, "Replace every certificate of that type (default: add next to them)");
  auto* show = pki->add_subcommand("show", "Show the station certificate and key");
  show->add_option("--config", pki_config, "The station's TOML configuration file")->required()->check(CLI::ExistingFile);

  // audit
  auto* audit = app.add_subcommand("audit", "Security audit log tools (need read access to the state directory)");
  audit->require_subcommand(1);
  auto* verify = audit->add_subcommand("verify", "Check the whole hash chain and MACs; report the first broken record");
  std::string audit_state, audit_config, export_out, verify_file;
  const char* kAuditConfigHelp =
      "The station's configuration file: its [key_store] unseals the log's key (needed for PKCS#11), "
      "and its station.state_dir is used when --state-dir is not given";
  verify->add_option("--state-dir", audit_state, "State directory of the station");
  verify->add_option("--config", audit_config, kAuditConfigHelp)->check(CLI::ExistingFile);
  verify->add_option("--file", verify_file, "Verify this export instead of the station's log (checked with the station's key)");
  auto* exp = audit->add_subcommand("export", "Write the log as JSON lines with the chain fields (hash, MAC), verifiable");
  exp->add_option("--state-dir", audit_state, "State directory of the station");
  exp->add_option("--config", audit_config, kAuditConfigHelp)->check(CLI::ExistingFile);
  exp->add_option("--out", export_out, "Output file (default: standard output)");
  auto* clear = audit->add_subcommand(
      "clear", "Remove every record; a new chain starts with SecurityLogWasCleared (local admin; station stopped)");
  bool discard_unexported = false;
  clear->add_option("--state-dir", audit_state, "State directory of the station");
  clear->add_option("--config", audit_config, kAuditConfigHelp)->check(CLI::ExistingFile);
  clear->add_flag("--discard-unexported", discard_unexported,
                  "Clear even though some records were never exported (they are lost)");

  // firmware
  auto* fw = app.add_subcommand("firmware", "Firmware images: pack, sign and verify them as a station does");
  fw->require_subcommand(1);
  cg::app::PackOptions pack_opt;
  auto* fw_pack = fw->add_subcommand("pack", "Build a firmware image (manifest + payload) from a payload file");
  fw_pack->add_option("--payload", pack_opt.payload, "The payload (on the simulated platform: an executable)")
      ->required()
      ->check(CLI::ExistingFile);
  fw_pack->add_option("--model", pack_opt.model, "Station model the image is for (1-20 characters)")->required();
  fw_pack->add_option("--version", pack_opt.version, "Firmware version (1-50 characters, no spaces)")->required();
  fw_pack->add_option("--security-version", pack_opt.security_version,
                      "Anti-rollback counter: stations refuse images below their floor (0-2147483647)")
      ->required();
  fw_pack->add_option("--out", pack_opt.out, "The image file to write")->required();
  std::string fw_key, fw_image;
  std::string fw_cert, fw_root, fw_sig;
  auto* fw_sign = fw->add_subcommand("sign", "Print the base64 signature of an image (what UpdateFirmware carries)");
  fw_sign->add_option("--key", fw_key,
                      "Private key: a PEM file or a PKCS#11 URI "
                      "(pkcs11:token=T;object=K?module-path=/path/lib.so&pin-source=/path/pin)")
      ->required();
  fw_sign->add_option("--cert", fw_cert, "The signing certificate (PEM) the key belongs to")
      ->required()
      ->check(CLI::ExistingFile);
  fw_sign->add_option("image", fw_image, "The image file")->required()->check(CLI::ExistingFile);
  auto* fw_verify = fw->add_subcommand("verify", "Check an image as a station does and say what it is or what failed");
  fw_verify->add_option("--root", fw_root, "PEM file with the manufacturer root certificate(s)")
      ->required()
      ->check(CLI::ExistingFile);
  fw_verify->add_option("--cert", fw_cert, "The signing certificate (PEM; may be followed by intermediate CAs)")
      ->required()
      ->check(CLI::ExistingFile);
  fw_verify->add_option("--signature", fw_sig, "File with the base64 signature")->required()->check(CLI::ExistingFile);
  fw_verify->add_option("image", fw_image, "The image file")->required()->check(CLI::ExistingFile);

  cg::app::FirmwareFiles fw_files;
  std::string fw_config;
  auto* fw_factory = fw->add_subcommand(
      "install-factory", "Manufacturing: write the first image into slot A (same checks as every install; station stopped)");
  auto* fw_install = fw->add_subcommand(
      "install", "Engineer's local update: verify the image and install it into the inactive slot for the next boot "
                 "(station stopped)");
  for (auto* sub : {fw_factory, fw_install}) {
    sub->add_option("--config", fw_config, "The station's TOML configuration file")->required()->check(CLI::ExistingFile);
    sub->add_option("--image", fw_files.image, "The image file")->required()->check(CLI::ExistingFile);
    sub->add_option("--cert", fw_files.cert, "The signing certificate (PEM)")->required()->check(CLI::ExistingFile);
    sub->add_option("--signature", fw_files.signature, "File with the base64 signature")
        ->required()
        ->check(CLI::ExistingFile);
  }
  auto* fw_status = fw->add_subcommand(
      "status", "Print JSON: both slots, the booted slot, the security-version floor, the last update's outcome");
  fw_status->add_option("--config", fw_config, "The station's TOML configuration file")->required()->check(CLI::ExistingFile);

  // accounts, web
  auto* accounts = app.add_subcommand("accounts", "Maintenance accounts of the web UI");
  accounts->require_subcommand(1);
  std::string acc_config;
  auto* acc_init = accounts->add_subcommand(
      "init", "Create the 'admin' account with a random initial password, printed once on standard output "
              "(manufacturing or first start; station stopped; exit 3 when accounts exist)");
  acc_init->add_option("--config", acc_config, "The station's TOML configuration file")->required()->check(CLI::ExistingFile);
  auto* pin = app.add_subcommand("pin", "The commissioning PIN (the installer's commissioning channel)");
  pin->require_subcommand(1);
  auto* pin_init = pin->add_subcommand(
      "init", "Create this station's own commissioning PIN (10 random digits), printed once on standard output; "
              "a default that must be replaced (manufacturing; station stopped; exit 3 when one exists)");
  pin_init->add_option("--config", acc_config, "The station's TOML configuration file")->required()->check(CLI::ExistingFile);
  auto* web = app.add_subcommand("web", "The maintenance web UI");
  web->require_subcommand(1);
  auto* show_cert = web->add_subcommand("show-cert", "Print the web UI certificate's SHA-256 fingerprint (what the browser shows)");
  show_cert->add_option("--config", acc_config, "The station's TOML configuration file")->required()->check(CLI::ExistingFile);

  auto* web_routes = web->add_subcommand("routes", "Print the web UI's route table as JSON lines (method, path, access)");

  CLI11_PARSE(app, argc, argv);

  if (web_routes->parsed()) return cg::app::web_print_routes();

  if (acc_init->parsed() || pin_init->parsed() || show_cert->parsed()) {
    cg::config::Config cfg;
    if (!load_config(acc_config, {}, cfg)) return 1;
    cg::log::set_level(cg::log::Level::Warn);
    if (acc_init->parsed()) return cg::app::accounts_init(cfg);
    return pin_init->parsed() ? cg::app::pin_init(cfg) : cg::app::web_show_cert(cfg);
  }

  if (fw_factory->parsed() || fw_install->parsed() || fw_status->parsed()) {
    cg::config::Config cfg;
    if (!load_config(fw_config, {}, cfg)) return 1;
    cg::log::set_level(cg::log::Level::Warn);
    if (fw_status->parsed()) return cg::app::firmware_status(cfg);
    return cg::app::firmware_install(cfg, fw_files, fw_factory->parsed());
  }

  if (fw_pack->parsed()) return cg::app::firmware_pack(pack_opt);
  if (fw_sign->parsed()) return cg::app::firmware_sign(fw_key, fw_cert, fw_image);
  if (fw_verify->parsed()) return cg::app::firmware_verify(fw_root, fw_cert, fw_sig, fw_image);

  const cg::app::AuditTarget audit_target{audit_state, audit_config};
  if (verify->parsed()) return cg::app::audit_verify(audit_target, verify_file);
  if (exp->parsed()) return cg::app::audit_export(audit_target, export_out);
  if (clear->parsed()) return cg::app::audit_clear(audit_target, discard_unexported);

  if (provision->parsed() || install->parsed() || install_root->parsed() || show->parsed()) {
    cg::config::Config cfg;
    if (!load_config(pki_config, {}, cfg)) return 1;
    cg::log::set_level(cg::log::Level::Warn);
    if (provision->parsed()) return cg::app::pki_provision(cfg, prov);
    if (install->parsed()) return cg::app::pki_install_cert(cfg, install_file);
    if (install_root->parsed()) return cg::app::pki_install_root(cfg, root_type, install_file, root_replace);
    return cg::app::pki_show(cfg);
  }
  if (run->parsed() || boot->parsed()) {
    if (!state_dir.empty()) ov.state_dir = state_dir;
    if (!csms_url.empty()) ov.csms_url = csms_url;
    if (!identity.empty()) ov.identity = identity;
    if (!ca_file.empty()) ov.ca_file = ca_file;
    if (!password_file.empty()) ov.password_file = password_file;
    if (!client_ca_file.empty()) ov.client_ca_file = client_ca_file;
    if (!serial.empty()) ov.serial = serial;
    if (!organization.empty()) ov.organization = organization;
    if (profile) ov.security_profile = profile;
    if (evse_count) ov.evse_count = evse_count;
    if (!web_listen.empty()) ov.web_listen = web_listen;
    if (boot->parsed()) {
      cg::config::Config cfg;
      if (!load_config(config_file, ov, cfg)) return 1;
      std::vector<std::string> run_args(argv + 2, argv + argc);
      return cg::app::firmware_boot(cfg, run_args);
    }
    return cmd_run(config_file, ov, log_level, argv);
  }
  if (sim->parsed()) {
    std::string line;
    for (const auto& a : sim_args) line += (line.empty() ? "" : " ") + a;
    return cg::app::sim_command(sim_state_dir, line);
  }
  if (dev_init->parsed()) {
    cg::security::DevPkiOptions opt;
    opt.csms_host = pki_host;
    const auto r = cg::security::dev_pki_init(pki_out, opt);
    if (!r.ok) {
      std::cerr << "error: " << r.error << "\n";
      return 1;
    }
    for (const auto& f : r.written) std::cout << "wrote " << f.string() << "\n";
    std::cout << "Development PKI ready in " << pki_out << " (development only: keys are unprotected files).\n";
    return 0;
  }
  return 0;
}
