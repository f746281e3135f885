#include "core/config.hpp"

#include <fstream>
#include <set>
#include <sstream>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <boost/url/parse.hpp>
#include <toml++/toml.h>

#include "security/key_store.hpp"

#include <boost/asio/ip/address.hpp>

namespace cg::config {
namespace {

constexpr std::size_t kMaxConfigBytes = 256 * 1024;
static_assert(std::string_view(kDefaultPkcs11Module) == std::string_view(security::kSoftHsm2Module));

struct Reader {
  const toml::table& tbl;
  std::string prefix;
  std::set<std::string> known;
  std::optional<Error> err;

  template <typename T>
  void get(const char* key, T& out) {
    known.insert(key);
    if (err) return;
    const toml::node* n = tbl.get(key);
    if (!n) return;
    const std::string name = prefix + key;
    if constexpr (std::is_same_v<T, std::string> || std::is_same_v<T, std::filesystem::path>) {
      auto v = n->value<std::string>();
      if (!n->is_string() || !v) { err = Error{name, "must be a string"}; return; }
      out = *v;
    } else if constexpr (std::is_same_v<T, std::chrono::seconds>) {
      // "90s", "30m", "12h", "90d", or "0"; the ranges are validate()'s.
      auto v = n->value<std::string>();
      const auto d = v && *v == "0" ? std::optional<std::chrono::seconds>(0) : v ? parse_duration(*v) : std::nullopt;
      if (!d) { err = Error{name, "must be a duration such as \"30m\" (s, m, h or d), or \"0\""}; return; }
      out = *d;
    } else if constexpr (std::is_same_v<T, bool>) {
      if (!n->is_boolean()) { err = Error{name, "must be true or false"}; return; }
      out = *n->value<bool>();
    } else if constexpr (std::is_same_v<T, double>) {
      if (!n->is_number()) { err = Error{name, "must be a number"}; return; }
      // toml++ gives no double for an integer it cannot convert exactly (above 2^53).
      const auto v = n->value<double>();
      if (!v) { err = Error{name, "out of range"}; return; }
      out = *v;
    } else {
      if (!n->is_integer()) { err = Error{name, "must be an integer"}; return; }
      const auto v = *n->value<int64_t>();
      if (v < 0 || v > 1'000'000'000) { err = Error{name, "out of range"}; return; }
      out = static_cast<T>(v);
    }
  }

  void finish() {
    if (err) return;
    for (const auto& [k, v] : tbl) {
      if (!known.count(std::string(k.str()))) {
        err = Error{prefix + std::string(k.str()), "unknown key"};
        return;
      }
    }
  }
};

}  // namespace

std::optional<Error> parse(const std::string& text, const std::string& source_name, Config& out) {
  if (text.size() > kMaxConfigBytes) return Error{"", source_name + ": file larger than 256 KiB"};
  toml::table root;
  try {
    root = toml::parse(text, source_name);
  } catch (const toml::parse_error& e) {
    std::ostringstream os;
    os << source_name << ":" << e.source().begin.line << ":" << e.source().begin.column << ": " << e.description();
    return Error{"", os.str()};
  }
  for (const auto& [k, v] : root) {
    const std::string key(k.str());
    if (key == "station" || key == "csms" || key == "device_model" || key == "audit" || key == "syslog" ||
        key == "key_store" || key == "firmware" || key == "web" || key == "accounts") {
      if (!v.is_table()) return Error{key, "must be a table ([" + key + "])"};
    } else if (key == "evse") {
      if (!v.is_array_of_tables()) return Error{key, "must be an array of tables ([[evse]])"};
    } else {
      return Error{key, "unknown section"};
    }
  }
  if (auto* st = root["station"].as_table()) {
    Reader r{*st, "station.", {}, {}};
    r.get("identity", out.identity);
    r.get("serial", out.serial);
    r.get("organization", out.organization);
    r.get("vendor", out.vendor);
    r.get("model", out.model);
    r.get("state_dir", out.state_dir);
    r.get("hal", out.hal);
    r.get("log_level", out.log_level);
    r.get("control_period_ms", out.control_period_ms);
    r.finish();
    if (r.err) return r.err;
  }
  if (auto* cs = root["csms"].as_table()) {
    Reader r{*cs, "csms.", {}, {}};
    r.get("url", out.csms_url);
    r.get("security_profile", out.security_profile);
    r.get("ca_file", out.ca_file);
    r.get("password_file", out.password_file);
    r.get("client_ca_file", out.client_ca_file);
    r.get("certificate_renewal_days", out.certificate_renewal_days);
    r.get("allow_insecure_transport", out.allow_insecure_transport);
    r.get("allow_security_profile_downgrade", out.allow_security_profile_downgrade);
    r.get("max_frame_bytes", out.max_frame_bytes);
    r.finish();
    if (r.err) return r.err;
  }
  if (auto* au = root["audit"].as_table()) {
    Reader r{*au, "audit.", {}, {}};
    long long mib = static_cast<long long>(out.audit_max_bytes / (1024 * 1024));
    r.get("max_mib", mib);
    r.get("full_policy", out.audit_full_policy);
    r.finish();
    if (r.err) return r.err;
    if (mib < 1 || mib > 4096) return Error{"audit.max_mib", "must be between 1 and 4096"};
    out.audit_max_bytes = static_cast<std::uint64_t>(mib) * 1024 * 1024;
  }
  if (auto* fw = root["firmware"].as_table()) {
    Reader r{*fw, "firmware.", {}, {}};
    long long mib = static_cast<long long>(out.firmware.max_image_mib);
    r.get("boot_attempts", out.firmware.boot_attempts);
    r.get("max_image_mib", mib);
    r.get("confirm", out.firmware.confirm);
    r.get("confirm_after_s", out.firmware.confirm_after_s);
    r.get("confirm_timeout_s", out.firmware.confirm_timeout_s);
    r.finish();
    if (r.err) return r.err;
    if (mib < 1 || mib > 16384) return Error{"firmware.max_image_mib", "must be between 1 and 16384"};
    out.firmware.max_image_mib = static_cast<std::uint64_t>(mib);
  }
  if (auto* w = root["web"].as_table()) {
    Reader r{*w, "web.", {}, {}};
    r.get("enabled", out.web.enabled);
    r.get("listen", out.web.listen);
    r.get("idle_timeout", out.web.idle_timeout);
    r.get("session_lifetime", out.web.session_lifetime);
    r.get("max_sessions", out.web.max_sessions);
    r.finish();
    if (r.err) return r.err;
  }
  if (auto* a = root["accounts"].as_table()) {
    Reader r{*a, "accounts.", {}, {}};
    std::string lockout;
    r.get("lockout", lockout);
    r.get("password_max_age", out.accounts.password_max_age);
    r.get("disable_unused_after", out.accounts.disable_unused_after);
    r.get("pin_max_age", out.accounts.pin_max_age);
    r.finish();
    if (r.err) return r.err;
    if (!lockout.empty()) {
      const auto l = parse_lockout(lockout);
      if (!l) return Error{"accounts.lockout", "must be FAILURES:DURATION[,FAILURES:DURATION…], e.g. \"6:30m\" or \"10:10m,5:60m\""};
      out.accounts.lockout = *l;
    }
  }
  if (auto* sl = root["syslog"].as_table()) {
    Reader r{*sl, "syslog.", {}, {}};
    Config::Syslog s;
    r.get("host", s.host);
    r.get("port", s.port);
    r.get("ca_file", s.ca_file);
    r.get("cert_file", s.cert_file);
    r.get("key_file", s.key_file);
    r.get("facility", s.facility);
    r.finish();
    if (r.err) return r.err;
    out.syslog = s;
  }
  if (auto* ks = root["key_store"].as_table()) {
    Reader r{*ks, "key_store.", {}, {}};
    r.get("backend", out.key_store.backend);
    r.get("module", out.key_store.module);
    r.get("token_label", out.key_store.token_label);
    r.get("pin_file", out.key_store.pin_file);
    r.finish();
    if (r.err) return r.err;
    // Keys that only make sense for a token are refused with the file backend
    // (a typo in backend would otherwise silently keep keys in files).
    if (out.key_store.backend == "file") {
      for (const char* k : {"module", "token_label", "pin_file"})
        if (ks->contains(k)) return Error{std::string("key_store.") + k, "only for backend = \"pkcs11\""};
    }
  }
  if (auto* arr = root["evse"].as_array()) {
    out.evses.clear();
    int i = 0;
    for (auto& el : *arr) {
      ++i;
      Evse e;
      Reader r{*el.as_table(), "evse[" + std::to_string(i) + "].", {}, {}};
      r.get("connectors", e.connectors);
      r.get("max_current_a", e.max_current_a);
      r.get("phases", e.phases);
      r.get("voltage_v", e.voltage_v);
      r.finish();
      if (r.err) return r.err;
      out.evses.push_back(e);
    }
  }
  if (auto* dm = root["device_model"].as_table()) {
    for (const auto& [k, v] : *dm) {
      const std::string key(k.str());
      if (v.is_string()) out.device_model[key] = *v.value<std::string>();
      else if (v.is_integer()) out.device_model[key] = std::to_string(*v.value<int64_t>());
      else if (v.is_boolean()) out.device_model[key] = *v.value<bool>() ? "true" : "false";
      else return Error{"device_model." + key, "must be a string, integer or boolean"};
    }
  }
  return std::nullopt;
}

std::optional<Error> load_file(const std::filesystem::path& file, Config& out) {
  std::ifstream in(file, std::ios::binary);
  if (!in) return Error{"", "cannot read config file " + file.string()};
  std::string text;
  text.resize(kMaxConfigBytes + 1);
  in.read(text.data(), static_cast<std::streamsize>(text.size()));
  text.resize(static_cast<std::size_t>(in.gcount()));
  return parse(text, file.string(), out);
}

void apply(const Overrides& o, Config& cfg) {
  if (o.state_dir) cfg.state_dir = *o.state_dir;
  if (o.csms_url) cfg.csms_url = *o.csms_url;
  if (o.identity) cfg.identity = *o.identity;
  if (o.ca_file) cfg.ca_file = *o.ca_file;
  if (o.password_file) cfg.password_file = *o.password_file;
  if (o.serial) cfg.serial = *o.serial;
  if (o.organization) cfg.organization = *o.organization;
  if (o.client_ca_file) cfg.client_ca_file = *o.client_ca_file;
  if (o.security_profile) cfg.security_profile = *o.security_profile;
  if (o.web_listen) cfg.web.listen = *o.web_listen;
  if (o.evse_count) {
    const Evse tmpl = cfg.evses.empty() ? Evse{} : cfg.evses.front();
    cfg.evses.assign(static_cast<std::size_t>(std::max(0, *o.evse_count)), tmpl);
  }
}

namespace {
// At least one PEM certificate can be read from the file.
bool ca_file_usable(const std::filesystem::path& f) {
  BIO* bio = BIO_new_file(f.c_str(), "r");
  if (!bio) return false;
  X509* cert = PEM_read_bio_X509(bio, nullptr, nullptr, nullptr);
  const bool ok = cert != nullptr;
  X509_free(cert);
  BIO_free(bio);
  ERR_clear_error();
  return ok;
}
}  // namespace

std::optional<Error> check_files(const Config& c) {
  if (c.security_profile >= 2 && !ca_file_usable(c.ca_file))
    return Error{"csms.ca_file", "cannot read a PEM certificate from " + c.ca_file.string()};
  if (!c.client_ca_file.empty() && !ca_file_usable(c.client_ca_file))
    return Error{"csms.client_ca_file", "cannot read a PEM certificate from " + c.client_ca_file.string()};
  return std::nullopt;
}

std::optional<std::string> check_csms_url(std::string_view url, int security_profile) {
  const bool wss = url.rfind("wss://", 0) == 0;
  const bool ws = url.rfind("ws://", 0) == 0;
  if (!wss && !ws) return "must start with wss:// (or ws:// for security profile 1)";
  if (url.size() > 512) return "longer than 512 characters";
  auto u = boost::urls::parse_uri(url);
  if (!u || u->host().empty()) return "is not a valid URL";
  if (u->has_userinfo()) return "must not contain user:password@ (the password belongs in csms.password_file)";
  if (u->has_query() || u->has_fragment()) return "must not contain a query or fragment";
  if (security_profile == 1 && !ws) return "security profile 1 needs a ws:// URL";
  if (security_profile >= 2 && !wss) return "security profile " + std::to_string(security_profile) + " needs a wss:// URL";
  return std::nullopt;
}

std::optional<std::chrono::seconds> parse_duration(std::string_view t) {
  if (t.size() < 2 || t.size() > 12) return std::nullopt;
  long long n = 0;
  for (char ch : t.substr(0, t.size() - 1)) {
    if (ch < '0' || ch > '9') return std::nullopt;
    n = n * 10 + (ch - '0');
  }
  switch (t.back()) {
    case 's': return std::chrono::seconds(n);
    case 'm': return std::chrono::seconds(n * 60);
    case 'h': return std::chrono::seconds(n * 3600);
    case 'd': return std::chrono::seconds(n * 86400);
    default: return std::nullopt;
  }
}

std::optional<std::vector<Config::LockStep>> parse_lockout(std::string_view t) {
  if (t.empty() || t.size() > 128) return std::nullopt;
  std::vector<Config::LockStep> steps;
  while (!t.empty()) {
    const auto comma = t.find(',');
    std::string_view item = t.substr(0, comma);
    t = comma == std::string_view::npos ? std::string_view{} : t.substr(comma + 1);
    const auto colon = item.find(':');
    if (colon == std::string_view::npos || colon == 0 || colon > 3) return std::nullopt;
    int n = 0;
    for (char ch : item.substr(0, colon)) {
      if (ch < '0' || ch > '9') return std::nullopt;
      n = n * 10 + (ch - '0');
    }
    const auto d = parse_duration(item.substr(colon + 1));
    if (!d) return std::nullopt;
    steps.push_back({n, *d});
    if (comma != std::string_view::npos && t.empty()) return std::nullopt;
  }
  return steps;
}

std::optional<std::pair<std::string, std::uint16_t>> parse_listen(std::string_view t) {
  if (t.size() > 64) return std::nullopt;
  const auto colon = t.rfind(':');
  if (colon == std::string_view::npos || colon + 1 >= t.size() || t.size() - colon - 1 > 5) return std::nullopt;
  std::string host(t.substr(0, colon));
  unsigned port = 0;
  for (char ch : t.substr(colon + 1)) {
    if (ch < '0' || ch > '9') return std::nullopt;
    port = port * 10 + static_cast<unsigned>(ch - '0');
  }
  if (port == 0 || port > 65535) return std::nullopt;
  if (host.size() > 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  boost::system::error_code ec;
  boost::asio::ip::make_address(host, ec);  // numeric only: no name resolution for a listener
  if (ec) return std::nullopt;
  return std::make_pair(host, static_cast<std::uint16_t>(port));
}

std::optional<Error> validate(const Config& c) {
  auto printable = [](const std::string& s) {
    for (unsigned char ch : s)
      if (ch < 0x21 || ch > 0x7e) return false;
    return true;
  };
  if (c.identity.empty()) return Error{"station.identity", "is required (or --identity)"};
  if (c.identity.size() > 48 || !printable(c.identity) || c.identity.find(':') != std::string::npos)
    return Error{"station.identity", "must be 1-48 printable ASCII characters without ':' or spaces"};
  if (c.serial.size() > 25 || !printable(c.serial))
    return Error{"station.serial", "must be at most 25 printable ASCII characters"};
  if (c.organization.size() > 64) return Error{"station.organization", "must be at most 64 characters"};
  if (c.vendor.empty() || c.vendor.size() > 50) return Error{"station.vendor", "must be 1-50 characters"};
  if (!parse_listen(c.web.listen))
    return Error{"web.listen", "must be ADDRESS:PORT with a numeric IPv4 address or [IPv6], e.g. 127.0.0.1:8443"};
  if (c.web.idle_timeout < std::chrono::seconds(10) || c.web.idle_timeout > std::chrono::hours(24))
    return Error{"web.idle_timeout", "must be between 10s and 24h"};
  if (c.web.session_lifetime < c.web.idle_timeout || c.web.session_lifetime > std::chrono::hours(24 * 7))
    return Error{"web.session_lifetime", "must be at least web.idle_timeout and at most 7d"};
  if (c.web.max_sessions < 1 || c.web.max_sessions > 256) return Error{"web.max_sessions", "must be between 1 and 256"};
  for (const auto& s : c.accounts.lockout) {
    if (s.failures < 1 || s.failures > 100) return Error{"accounts.lockout", "failures must be between 1 and 100"};
    if (s.duration < std::chrono::seconds(1) || s.duration > std::chrono::hours(24 * 7))
      return Error{"accounts.lockout", "a lock lasts between 1s and 7d"};
  }
  if (c.accounts.lockout.empty() || c.accounts.lockout.size() > 8)
    return Error{"accounts.lockout", "needs 1 to 8 steps"};
  if (c.accounts.disable_unused_after.count() != 0 && c.accounts.disable_unused_after < std::chrono::hours(24))
    return Error{"accounts.disable_unused_after", "must be 0 (never) or at least 1d"};
  if (c.accounts.password_max_age.count() != 0 && c.accounts.password_max_age < std::chrono::hours(24))
    return Error{"accounts.password_max_age", "must be 0 (never) or at least 1d"};
  if (c.accounts.pin_max_age.count() != 0 && c.accounts.pin_max_age < std::chrono::hours(24))
    return Error{"accounts.pin_max_age", "must be 0 (never) or at least 1d"};
  if (c.firmware.boot_attempts < 1 || c.firmware.boot_attempts > 10)
    return Error{"firmware.boot_attempts", "must be between 1 and 10"};
  if (c.firmware.confirm != "boot-accepted" && c.firmware.confirm != "running")
    return Error{"firmware.confirm", "must be \"boot-accepted\" or \"running\""};
  if (c.firmware.confirm_after_s < 1 || c.firmware.confirm_after_s > 3600)
    return Error{"firmware.confirm_after_s", "must be between 1 and 3600"};
  if (c.firmware.confirm_timeout_s < 10 || c.firmware.confirm_timeout_s > 86400)
    return Error{"firmware.confirm_timeout_s", "must be between 10 and 86400"};
  if (c.firmware.confirm == "running" && c.firmware.confirm_after_s >= c.firmware.confirm_timeout_s)
    return Error{"firmware.confirm_after_s", "must be below firmware.confirm_timeout_s"};
  if (c.model.empty() || c.model.size() > 20) return Error{"station.model", "must be 1-20 characters"};
  if (c.state_dir.empty()) return Error{"station.state_dir", "is required (or --state-dir)"};
  // The simulator socket lives there; a Unix socket path is limited to 107 bytes.
  if ((c.state_dir / "sim.sock").string().size() > 100)
    return Error{"station.state_dir", "path too long (at most 90 characters)"};
  if (c.hal != "sim") return Error{"station.hal", "unknown HAL '" + c.hal + "' (supported: sim)"};
  if (c.log_level != "debug" && c.log_level != "info" && c.log_level != "warn" && c.log_level != "error")
    return Error{"station.log_level", "must be debug, info, warn or error"};
  if (c.control_period_ms < 10 || c.control_period_ms > 1000)
    return Error{"station.control_period_ms", "must be between 10 and 1000"};
  if (c.csms_url.empty()) return Error{"csms.url", "is required (or --csms-url)"};
  if (c.security_profile < 1 || c.security_profile > 3) return Error{"csms.security_profile", "must be 1, 2 or 3"};
  if (auto e = check_csms_url(c.csms_url, c.security_profile)) return Error{"csms.url", *e};
  if (c.security_profile == 1) {
    if (!c.allow_insecure_transport)
      return Error{"csms.security_profile",
                   "profile 1 sends everything unencrypted; it needs csms.allow_insecure_transport = true"};
  } else {
    const std::string p = std::to_string(c.security_profile);
    if (c.ca_file.empty()) return Error{"csms.ca_file", "is required for security profile " + p + " (or --ca-file)"};
  }
  if (c.security_profile == 3) {
    // The station certificate says CN = serial number, O = organization (digest §1.4).
    if (c.serial.empty()) return Error{"station.serial", "is required for security profile 3 (the CN of the station certificate)"};
    if (c.organization.empty())
      return Error{"station.organization", "is required for security profile 3 (the O of the station certificate)"};
  } else if (c.password_file.empty()) {
    return Error{"csms.password_file", "is required: profiles 1 and 2 authenticate with a password (or --password-file)"};
  }
  if (c.certificate_renewal_days < 1 || c.certificate_renewal_days > 365)
    return Error{"csms.certificate_renewal_days", "must be between 1 and 365"};
  if (c.max_frame_bytes < 4096 || c.max_frame_bytes > 16 * 1024 * 1024)
    return Error{"csms.max_frame_bytes", "must be between 4096 and 16777216"};
  if (c.audit_full_policy != "refuse_noncritical" && c.audit_full_policy != "overwrite_exported")
    return Error{"audit.full_policy", "must be refuse_noncritical or overwrite_exported"};
  {
    const auto& k = c.key_store;
    if (k.backend != "file" && k.backend != "pkcs11") return Error{"key_store.backend", "must be \"file\" or \"pkcs11\""};
    if (k.backend == "pkcs11") {
      if (k.module.empty() || k.module.size() > 4096 || k.module.front() != '/')
        return Error{"key_store.module", "must be the absolute path of the PKCS#11 module"};
      if (k.token_label.empty() || k.token_label.size() > 32)
        return Error{"key_store.token_label", "is required for backend = \"pkcs11\" (1-32 characters)"};
      if (k.pin_file.empty())
        return Error{"key_store.pin_file", "is required for backend = \"pkcs11\" (a file with the user PIN, mode 0600)"};
    }
  }
  if (c.syslog) {
    const auto& s = *c.syslog;
    if (s.host.empty() || s.host.size() > 253) return Error{"syslog.host", "is required (1-253 characters)"};
    if (s.port < 1 || s.port > 65535) return Error{"syslog.port", "must be 1-65535"};
    if (s.ca_file.empty()) return Error{"syslog.ca_file", "is required: the collector's certificate is verified"};
    if (s.cert_file.empty() || s.key_file.empty())
      return Error{s.cert_file.empty() ? "syslog.cert_file" : "syslog.key_file",
                   "is required: the station authenticates with a client certificate"};
    if (s.facility < 0 || s.facility > 23) return Error{"syslog.facility", "must be 0-23"};
  }
  if (c.evses.empty() || c.evses.size() > 32) return Error{"evse", "between 1 and 32 EVSEs are needed"};
  for (std::size_t i = 0; i < c.evses.size(); ++i) {
    const auto& e = c.evses[i];
    const std::string p = "evse[" + std::to_string(i + 1) + "].";
    if (e.connectors < 1 || e.connectors > 4) return Error{p + "connectors", "must be 1-4"};
    // Written so that NaN (TOML "nan") fails too.
    if (!(e.max_current_a > 0 && e.max_current_a <= 1000)) return Error{p + "max_current_a", "must be in (0, 1000]"};
    if (e.phases != 1 && e.phases != 3) return Error{p + "phases", "must be 1 or 3"};
    if (!(e.voltage_v >= 100 && e.voltage_v <= 1000)) return Error{p + "voltage_v", "must be 100-1000"};
  }
  return std::nullopt;
}

}  // namespace cg::config
