#include "services/network_profiles.hpp"

#include <algorithm>
#include <boost/url/parse.hpp>
#include <charconv>

#include "core/log.hpp"

namespace cg::services {
namespace json = boost::json;

namespace {
constexpr const char* kLastGoodSlot = "network.last_good_slot";
constexpr const char* kActiveProfile = "network.active_security_profile";

std::optional<int> to_int(std::string_view s) {
  while (!s.empty() && s.front() == ' ') s.remove_prefix(1);
  while (!s.empty() && s.back() == ' ') s.remove_suffix(1);
  int v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || p != s.data() + s.size() || s.empty()) return std::nullopt;
  return v;
}

std::vector<std::string_view> split(std::string_view s) {
  std::vector<std::string_view> out;
  while (true) {
    const auto c = s.find(',');
    out.push_back(s.substr(0, c));
    if (c == std::string_view::npos) break;
    s.remove_prefix(c + 1);
  }
  return out;
}

// Whether a connection at profile `to` is allowed when `active` is the active one.
bool may_use(int active, int to, bool allow_downgrade_variable) {
  return to >= active || (allow_downgrade_variable && active == 3 && to == 2);
}

bool in_list(std::string_view list, std::string_view item) {
  for (auto e : split(list))
    if (e == item) return true;
  return false;
}
}  // namespace

NetworkProfiles::NetworkProfiles(storage::Db& db, const config::Config& cfg) : db_(db), cfg_(cfg) {
  candidates_.push_back(configured());
}

NetworkProfile NetworkProfiles::configured() const {
  NetworkProfile p;
  p.slot = 0;
  p.security_profile = cfg_.security_profile;
  p.url = cfg_.csms_url;
  return p;
}

std::optional<NetworkProfile> NetworkProfiles::get(int slot) const {
  if (slot == 0) return configured();
  if (slot < 0 || slot > kMaxSlot) return std::nullopt;
  auto s = db_.prepare("SELECT security_profile, url, ocpp_interface, message_timeout FROM network_profiles WHERE slot=?");
  s.bind(1, std::int64_t{slot});
  if (!s.step()) return std::nullopt;
  NetworkProfile p;
  p.slot = slot;
  p.security_profile = static_cast<int>(s.col_int(0));
  p.url = s.col_text(1);
  p.ocpp_interface = s.col_text(2);
  p.message_timeout = static_cast<int>(s.col_int(3));
  return p;
}

std::vector<NetworkProfile> NetworkProfiles::list() const {
  std::vector<NetworkProfile> out;
  for (int slot = 0; slot <= kMaxSlot; ++slot)
    if (auto p = get(slot)) out.push_back(std::move(*p));
  return out;
}

int NetworkProfiles::active_security_profile() const {
  if (auto v = db_.meta(kActiveProfile))
    if (auto n = to_int(*v); n && *n >= 1 && *n <= 3) return *n;
  return cfg_.security_profile;
}

std::optional<int> NetworkProfiles::last_good_slot() const {
  if (auto v = db_.meta(kLastGoodSlot))
    if (auto n = to_int(*v); n && *n >= 0 && *n <= kMaxSlot) return n;
  return std::nullopt;
}

bool NetworkProfiles::downgrade_allowed(int to, bool allow_downgrade_variable) const {
  return may_use(active_security_profile(), to, allow_downgrade_variable);
}

Result<NetworkProfile> NetworkProfiles::check(int slot, const json::object& cd, const Credentials& have,
                                             bool allow_downgrade, const NetworkProfile& in_use) const {
  const std::string n = std::to_string(slot);
  if (slot < 0 || slot > kMaxSlot)
    return refuse("InvalidConfSlot", "configurationSlot " + n + " is not one of " + std::string(kSlots));
  if (slot == 0)
    return refuse("InvalidConfSlot",
                   "slot 0 is the profile of the station's configuration file and cannot be changed over OCPP; "
                   "use slot 1-" + std::to_string(kMaxSlot));
  if (slot == in_use.slot)
    return refuse("ActiveNetworkConf", "slot " + n + " is used by the current connection; use another slot");
  if (auto good = last_good_slot(); good && *good == slot)
    return refuse("ActiveNetworkConf",
                   "slot " + n + " holds the last profile that worked (the fallback); use another slot");
  const auto str = [&](const char* key) -> std::string {
    auto* v = cd.if_contains(key);
    return v && v->is_string() ? std::string(v->as_string()) : std::string();
  };
  if (str("ocppVersion") != "OCPP20")
    return refuse("InvalidNetworkConf", "ocppVersion " + str("ocppVersion") + " is not supported (OCPP20 only)");
  if (str("ocppTransport") != "JSON")
    return refuse("InvalidNetworkConf", "ocppTransport " + str("ocppTransport") + " is not supported (JSON only)");
  const std::string iface = str("ocppInterface");
  if (!in_list(kInterfaces, iface))
    return refuse("InvalidNetworkConf",
                   "ocppInterface " + iface + " does not exist on this station (" + std::string(kInterfaces) + ")");
  if (cd.contains("vpn")) return refuse("InvalidNetworkConf", "vpn is not supported by this station");
  if (cd.contains("apn")) return refuse("InvalidNetworkConf", "apn is not supported by this station (no modem)");
  const auto* spv = cd.if_contains("securityProfile");
  const long long sp = spv && spv->is_int64() ? spv->as_int64() : 0;
  if (sp < 1 || sp > 3) return refuse("InvalidNetworkConf", "securityProfile must be 2 or 3");
  const int active = active_security_profile();
  if (sp == 1)
    return refuse(active > 1 ? "NoSecurityDowngrade" : "InvalidNetworkConf",
                   "security profile 1 (unencrypted) is never accepted over OCPP; only the configuration file can "
                   "enable it");
  // B09.FR.04 (errata 2025): never a profile below the active one (3 -> 2
  // only with the local permission, COM-6).
  if (!downgrade_allowed(static_cast<int>(sp), allow_downgrade))
    return refuse("NoSecurityDowngrade",
                   "security profile " + std::to_string(sp) + " is below the active profile " +
                       std::to_string(active) +
                       (active == 3 ? " (csms.allow_security_profile_downgrade is false)" : ""));
  const std::string url = str("ocppCsmsUrl");
  if (auto e = config::check_csms_url(url, static_cast<int>(sp)))
    return refuse("InvalidNetworkConf", "ocppCsmsUrl " + *e);
  if (in_use.security_profile == 1) {
    // Nobody authenticated this request: it may upgrade the link to the same
    // host, never send the station elsewhere.
    auto a = boost::urls::parse_uri(url);
    auto b = boost::urls::parse_uri(in_use.url);
    if (!a || !b || a->host() != b->host())
      return refuse("InvalidNetworkConf",
                     "over an unencrypted connection (security profile 1) only a profile for the same host (" +
                         (b ? std::string(b->host()) : std::string("?")) + ") is accepted");
  }
  const auto* mt = cd.if_contains("messageTimeout");
  const long long timeout = mt && mt->is_int64() ? mt->as_int64() : 0;
  if (timeout < 1 || timeout > 600) return refuse("InvalidNetworkConf", "messageTimeout must be 1-600 seconds");
  if (!have.csms_root)
    return refuse("NoRootCertificate", "security profile " + std::to_string(sp) +
                                            " needs an installed CSMSRootCertificate; install one first");
  if (sp == 2 && !have.password)
    return refuse("NoPassword", "security profile 2 needs a BasicAuthPassword; set one first");
  if (sp == 3 && !have.station_certificate)
    return refuse("NoCertificate",
                   "security profile 3 needs a station certificate; renew it (SignChargingStationCertificate) first");
  return NetworkProfile{slot, static_cast<int>(sp), url, iface, static_cast<int>(timeout)};
}

void NetworkProfiles::store(const NetworkProfile& p) {
  auto s = db_.prepare(
      "INSERT INTO network_profiles(slot, security_profile, url, ocpp_interface, message_timeout) VALUES(?,?,?,?,?) "
      "ON CONFLICT(slot) DO UPDATE SET security_profile=excluded.security_profile, url=excluded.url, "
      "ocpp_interface=excluded.ocpp_interface, message_timeout=excluded.message_timeout, "
      "stored_at=strftime('%Y-%m-%dT%H:%M:%SZ','now')");
  s.bind(1, std::int64_t{p.slot})
      .bind(2, std::int64_t{p.security_profile})
      .bind(3, p.url)
      .bind(4, p.ocpp_interface)
      .bind(5, std::int64_t{p.message_timeout})
      .run();
}

Result<std::vector<int>> NetworkProfiles::check_priority(std::string_view value, bool allow_downgrade) const {
  std::vector<int> out;
  if (value.empty()) return refuse("InvalidValue", "the list is empty; at least one slot is needed");
  for (auto item : split(value)) {
    auto slot = to_int(item);
    if (!slot || *slot < 0 || *slot > kMaxSlot)
      return refuse("InvalidValue", "'" + std::string(item.substr(0, 8)) + "' is not one of " + std::string(kSlots));
    if (std::find(out.begin(), out.end(), *slot) != out.end())
      return refuse("InvalidValue", "slot " + std::to_string(*slot) + " is listed twice");
    const auto p = get(*slot);
    if (!p) return refuse("InvalidNetworkConf", "slot " + std::to_string(*slot) + " holds no network profile");
    if (!downgrade_allowed(p->security_profile, allow_downgrade))
      return refuse("NoSecurityDowngrade", "slot " + std::to_string(*slot) + " uses security profile " +
                                                std::to_string(p->security_profile) + ", below the active profile " +
                                                std::to_string(active_security_profile()));
    out.push_back(*slot);
  }
  return out;
}

std::vector<int> NetworkProfiles::parse_priority(std::string_view value) {
  std::vector<int> out;
  for (auto item : split(value))
    if (auto slot = to_int(item); slot && *slot >= 0 && *slot <= kMaxSlot &&
                                  std::find(out.begin(), out.end(), *slot) == out.end())
      out.push_back(*slot);
  return out;
}

void NetworkProfiles::begin(const std::vector<int>& priority, bool allow_downgrade) {
  // Built aside and swapped in at the end: current() is valid whatever happens.
  std::vector<NetworkProfile> list;
  std::vector<std::string> skipped;
  auto has = [&](int slot) {
    return std::any_of(list.begin(), list.end(), [&](const auto& c) { return c.slot == slot; });
  };
  // A slot that cannot be read (database error) is skipped like an empty one.
  auto read = [&](int slot) -> std::optional<NetworkProfile> {
    try {
      return get(slot);
    } catch (const std::exception& e) {
      skipped.push_back("slot " + std::to_string(slot) + " cannot be read: " + e.what());
      return std::nullopt;
    }
  };
  int active = cfg_.security_profile;
  std::optional<int> good;
  try {
    active = active_security_profile();
    good = last_good_slot();
  } catch (const std::exception& e) {
    // Without the active profile the floor is unknown: keep the candidates as they are.
    skipped_ = {std::string("the active profile cannot be read (") + e.what() + "); the slots stay as they were"};
    return;
  }
  for (int slot : priority) {
    if (has(slot)) continue;
    auto p = read(slot);
    if (!p) {
      skipped.push_back("slot " + std::to_string(slot) + " holds no profile");
    } else if (!may_use(active, p->security_profile, allow_downgrade)) {
      skipped.push_back("slot " + std::to_string(slot) + " (security profile " + std::to_string(p->security_profile) +
                        ") is below the active profile " + std::to_string(active));
    } else {
      list.push_back(std::move(*p));
    }
  }
  // The last slot that worked stays a candidate (B10 fallback), even when the
  // CSMS left it out of the priority list.
  // Slot 0 is the local configuration: its profile is the local admin's choice.
  if (good && !has(*good))
    if (auto p = read(*good); p && (p->slot == 0 || may_use(active, p->security_profile, allow_downgrade)))
      list.push_back(std::move(*p));
  if (list.empty()) {
    // Nothing qualifies (e.g. the configuration file was changed to a lower
    // profile): the local configuration decides.
    skipped.push_back("no slot qualifies; using the configuration file's profile");
    list.push_back(configured());
  }
  candidates_ = std::move(list);
  skipped_ = std::move(skipped);
  pos_ = 0;
  failures_ = 0;
}

bool NetworkProfiles::attempt_failed(int attempts_per_slot) {
  if (++failures_ < std::max(1, attempts_per_slot)) return false;
  failures_ = 0;
  if (candidates_.size() < 2) return false;
  pos_ = (pos_ + 1) % candidates_.size();
  return true;
}

void NetworkProfiles::connected() {
  failures_ = 0;
  const auto& p = current();
  const bool lowers = p.security_profile < active_security_profile();
  storage::Db::Tx tx(db_);
  db_.set_meta(kLastGoodSlot, std::to_string(p.slot));
  if (!lowers || pos_ == 0) db_.set_meta(kActiveProfile, std::to_string(p.security_profile));
  tx.commit();
}

}  // namespace cg::services
