// chargeguard — the station daemon and its tools, git-style subcommands.
#include <CLI/CLI.hpp>
#include <iostream>

#include <fstream>

#include "app/audit_cli.hpp"
#include "app/daemon.hpp"
#include "audit/audit_log.hpp"
#include "app/sim_client.hpp"
#include "core/config.hpp"
#include "core/log.hpp"
#include "security/dev_pki.hpp"

namespace {

int cmd_run(const std::string& config_file, const cg::config::Overrides& ov, const std::string& log_level,
            char** argv) {
  cg::config::Config cfg;
  if (!config_file.empty()) {
    if (auto err = cg::config::load_file(config_file, cfg)) {
      std::cerr << "error: " << err->text() << "\n";
      return 1;
    }
  }
  if (cfg.evses.empty() && !ov.evse_count) cfg.evses.push_back({});
  cg::config::apply(ov, cfg);
  if (!log_level.empty()) cfg.log_level = log_level;
  if (auto err = cg::config::validate(cfg)) {
    std::cerr << "error: " << err->text() << "\n";
    return 1;
  }
  if (auto err = cg::config::check_files(cfg)) {
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

  // run
  auto* run = app.add_subcommand("run", "Run the station daemon");
  std::string config_file, log_level;
  cg::config::Overrides ov;
  std::string state_dir, csms_url, identity, ca_file, password_file, serial, organization;
  int profile = 0, evse_count = 0;
  run->add_option("--config", config_file, "TOML configuration file (docs/configuration.md)")->check(CLI::ExistingFile);
  run->add_option("--state-dir", state_dir, "State directory (SQLite database, simulator socket)");
  run->add_option("--csms-url", csms_url, "CSMS endpoint without the identity, e.g. wss://csms.example.com/ocpp");
  run->add_option("--identity", identity, "Station identity (appended to the CSMS URL; Basic auth user)");
  run->add_option("--security-profile", profile, "OCPP security profile: 2 (TLS + Basic auth) or 1 (needs allow_insecure_transport)");
  run->add_option("--ca-file", ca_file, "PEM file with the CSMS root certificate(s) to trust");
  run->add_option("--password-file", password_file, "File holding the Basic auth password on one line");
  run->add_option("--serial", serial, "Serial number");
  run->add_option("--organization", organization, "Operator organization name");
  run->add_option("--evse-count", evse_count, "Number of EVSEs (one connector each unless the config file says otherwise)")
      ->check(CLI::Range(1, 32));
  run->add_option("--log-level", log_level, "debug, info, warn or error");

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

  // audit
  auto* audit = app.add_subcommand("audit", "Security audit log tools (need read access to the state directory)");
  audit->require_subcommand(1);
  auto* verify = audit->add_subcommand("verify", "Check the whole hash chain and MACs; report the first broken record");
  std::string audit_state, export_out, verify_file;
  verify->add_option("--state-dir", audit_state, "State directory of the station")->required();
  verify->add_option("--file", verify_file, "Verify this export instead of the station's log (checked with the station's key)");
  auto* exp = audit->add_subcommand("export", "Write the log as JSON lines with the chain fields (hash, MAC), verifiable");
  exp->add_option("--state-dir", audit_state, "State directory of the station")->required();
  exp->add_option("--out", export_out, "Output file (default: standard output)");
  auto* clear = audit->add_subcommand(
      "clear", "Remove every record; a new chain starts with SecurityLogWasCleared (local admin; station stopped)");
  bool discard_unexported = false;
  clear->add_option("--state-dir", audit_state, "State directory of the station")->required();
  clear->add_flag("--discard-unexported", discard_unexported,
                  "Clear even though some records were never exported (they are lost)");

  CLI11_PARSE(app, argc, argv);

  if (verify->parsed()) return cg::app::audit_verify(audit_state, verify_file);
  if (exp->parsed()) return cg::app::audit_export(audit_state, export_out);
  if (clear->parsed()) return cg::app::audit_clear(audit_state, discard_unexported);

  if (run->parsed()) {
    if (!state_dir.empty()) ov.state_dir = state_dir;
    if (!csms_url.empty()) ov.csms_url = csms_url;
    if (!identity.empty()) ov.identity = identity;
    if (!ca_file.empty()) ov.ca_file = ca_file;
    if (!password_file.empty()) ov.password_file = password_file;
    if (!serial.empty()) ov.serial = serial;
    if (!organization.empty()) ov.organization = organization;
    if (profile) ov.security_profile = profile;
    if (evse_count) ov.evse_count = evse_count;
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
