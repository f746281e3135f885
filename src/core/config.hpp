// Static configuration of the daemon: a TOML file (docs/configuration.md) plus
// command-line overrides. Validation is strict: an unknown key or a bad value is
// an error naming the key, and the daemon does not start half-configured.
#pragma once
#include <chrono>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <cstdint>
#include <vector>

namespace cg::config {

// Debian's SoftHSM2 module: the default of key_store.module (the same path as
// security::kSoftHsm2Module; config.cpp checks that they agree).
inline constexpr const char* kDefaultPkcs11Module = "/usr/lib/softhsm/libsofthsm2.so";

struct Evse {
  int connectors = 1;
  double max_current_a = 32.0;  // per phase
  int phases = 3;
  double voltage_v = 230.0;
};

struct Config {
  // [station]
  std::string identity;      // OCPP identity (last URL segment, Basic auth user)
  std::string serial;        // serial number: CN of the station certificate (profile 3)
  std::string organization;  // SecurityCtrlr.OrganizationName
  std::string vendor = "chargeguard";
  std::string model = "CG-SIM";
  std::filesystem::path state_dir;
  std::string hal = "sim";
  std::string log_level = "info";
  int control_period_ms = 100;
  // [csms]
  std::string csms_url;  // endpoint without the identity
  int security_profile = 2;
  std::filesystem::path ca_file;
  std::filesystem::path password_file;
  // Profile 3 (and A02/A03 renewal): the operator CA certificate(s) that issue
  // station certificates; a new station certificate must chain to one of them.
  // Default: ca_file.
  std::filesystem::path client_ca_file;
  // COM-10: renewal of the station certificate starts this many days before it expires.
  int certificate_renewal_days = 30;
  bool allow_insecure_transport = false;  // profile 1 (ws://) only with this set
  // COM-6: whether the CSMS may move the station from security profile 3 to 2
  // (SetNetworkProfile, NetworkConfigurationPriority). A local decision: the
  // CSMS cannot change it (SecurityCtrlr.AllowSecurityProfileDowngrade is
  // ReadOnly and reports it); a change is audited at the next start.
  bool allow_security_profile_downgrade = false;
  std::size_t max_frame_bytes = 65536;    // inbound OCPP frames above this are refused unparsed
  // [[evse]]
  std::vector<Evse> evses;
  // [audit]
  std::uint64_t audit_max_bytes = 32ull * 1024 * 1024;  // capacity of the security log (LOG-3)
  std::string audit_full_policy = "refuse_noncritical";
  // [syslog] (optional; off when absent): forwarding of the audit log, RFC 5424 over TLS
  struct Syslog {
    std::string host;
    int port = 6514;
    std::filesystem::path ca_file, cert_file, key_file;
    int facility = 10;  // authpriv
  };
  std::optional<Syslog> syslog;
  // [key_store]: where the station's keys live and what seals the CSMS password.
  //   backend = "file"   (default) keys in <state_dir>/keys (0700, files 0600); development
  //   backend = "pkcs11" a PKCS#11 token: module, token_label, pin_file (0600)
  struct KeyStore {
    std::string backend = "file";
    std::string module = kDefaultPkcs11Module;
    std::string token_label;
    std::filesystem::path pin_file;
  };
  KeyStore key_store;
  // [firmware] (FW-1…FW-7)
  struct Firmware {
    int boot_attempts = 3;            // boots a new image gets to confirm itself
    std::uint64_t max_image_mib = 512;  // images above this are refused (download, local install)
    // When a new image confirms itself: "boot-accepted" (its BootNotification
    // was Accepted by the CSMS) or "running" (it ran confirm_after_s seconds
    // with its control loop working: stations without a CSMS).
    std::string confirm = "boot-accepted";
    int confirm_after_s = 60;
    // A new image not confirmed this long after its start asks for a reboot
    // (the attempt counts; after boot_attempts the previous image boots).
    int confirm_timeout_s = 600;
  };
  Firmware firmware;
  // [web] (AUTH-6, NET-4): the local maintenance web UI, HTTPS only.
  struct Web {
    bool enabled = true;
    std::string listen = "127.0.0.1:8443";  // ADDRESS:PORT of the maintenance interface; IPv6 as [::1]:8443
    std::chrono::seconds idle_timeout{30 * 60};           // AUTH-6: logout after 30 idle minutes
    std::chrono::seconds session_lifetime{12 * 60 * 60};  // absolute limit, whatever the activity
    int max_sessions = 16;                                // open sessions at once (all accounts)
  };
  Web web;
  // [accounts] (AUTH-3, AUTH-5, AUTH-10)
  struct LockStep {
    int failures = 6;                      // consecutive failures that lock …
    std::chrono::seconds duration{30 * 60};  // … for this long
  };
  struct Accounts {
    // AUTH-5: "6:30m" (default, seed 001) or "10:10m,5:60m" (seed 002: 10 failures
    // lock 10 min, then 5 more lock 60 min); the last step repeats.
    std::vector<LockStep> lockout{LockStep{}};
    std::chrono::seconds password_max_age{90 * 24 * 3600};  // AUTH-10: prompt to change after; 0 = never
    // AUTH-10: accounts not used for this long are disabled (never the last
    // enabled admin); 0 = never.
    std::chrono::seconds disable_unused_after{180 * 24 * 3600};
    // AUTH-9: a commissioning PIN older than this is flagged for renewal; 0 = never.
    std::chrono::seconds pin_max_age{365 * 24 * 3600};
  };
  Accounts accounts;
  // [device_model] "Component.Variable" = "value": initial values of writable variables
  std::map<std::string, std::string> device_model;
};

struct Error {
  std::string key;      // e.g. "csms.security_profile"
  std::string problem;  // e.g. "must be 1, 2 or 3"
  std::string text() const { return key.empty() ? problem : key + ": " + problem; }
};

// Command-line overrides (unset = keep the file's value).
struct Overrides {
  std::optional<std::string> state_dir, csms_url, identity, ca_file, password_file, serial, organization,
      client_ca_file;
  std::optional<int> security_profile, evse_count;
  std::optional<std::string> web_listen;
};

// Parses the TOML text (file name used in messages only).
std::optional<Error> parse(const std::string& text, const std::string& source_name, Config& out);
std::optional<Error> load_file(const std::filesystem::path& file, Config& out);
void apply(const Overrides& o, Config& cfg);
// Checks the whole configuration; call after parse + apply.
std::optional<Error> validate(const Config& cfg);
// "90s", "30m", "12h", "90d" (a number and a unit); nullopt when malformed.
std::optional<std::chrono::seconds> parse_duration(std::string_view text);
// "6:30m" or "10:10m,5:60m" (AUTH-5); nullopt when malformed.
std::optional<std::vector<Config::LockStep>> parse_lockout(std::string_view text);
// "127.0.0.1:8443", "[::1]:8443": host and port; nullopt when malformed.
std::optional<std::pair<std::string, std::uint16_t>> parse_listen(std::string_view text);
// Checks a CSMS endpoint URL for a security profile (1: ws://, 2/3: wss://; a
// host; no credentials, query or fragment; at most 512 characters). Returns
// what is wrong ("must ...", "is not ...") or nothing. Also used for the
// network profiles the CSMS sets (B09).
std::optional<std::string> check_csms_url(std::string_view url, int security_profile);
// Checks the files the configuration names (CA file readable as PEM); after validate.
std::optional<Error> check_files(const Config& cfg);

}  // namespace cg::config
