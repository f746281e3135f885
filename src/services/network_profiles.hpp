// Network connection profiles (OCPP 2.0.1 B09/B10, A05 upgrade, errata 2025
// downgrade rules): where and how the station connects to the CSMS.
//
// Slot 0 is the profile of the configuration file's [csms] section; it cannot
// be changed over OCPP (the local admin edits the file). Slots 1..kMaxSlot are
// set by the CSMS with SetNetworkProfile and kept in SQLite. The order in which
// slots are tried is OCPPCommCtrlr.NetworkConfigurationPriority.
//
// Security rules, stricter than the protocol's minimum:
//  - never profile 1 over OCPP (only the local configuration can opt into it);
//  - never a profile below the active one (the profile of the last successful
//    connection), except 3 -> 2 when SecurityCtrlr.AllowSecurityProfileDowngrade
//    is true; this holds for SetNetworkProfile, for NetworkConfigurationPriority
//    and for the fallback when connections fail, so that an attacker who blocks
//    the profile-3 link cannot push the station back to profile 2;
//  - preconditions: profiles 2/3 need an installed CSMS root, 2 a sealed
//    password, 3 the station certificate and key.
// Fallback (B10): each slot of the priority list gets
// NetworkProfileConnectionAttempts attempts, then the next one; the last slot
// that worked is always among the candidates; the rotation never ends.
// REQ: COM-1, COM-6
#pragma once
#include <boost/json/object.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/config.hpp"
#include "core/result.hpp"
#include "core/storage.hpp"

namespace cg::services {

struct NetworkProfile {
  int slot = 0;
  int security_profile = 2;
  std::string url;                       // CSMS endpoint without the station identity
  std::string ocpp_interface = "Wired0";
  int message_timeout = 0;               // seconds; 0 = OCPPCommCtrlr.MessageTimeout[Default]
  bool operator==(const NetworkProfile&) const = default;
};

// What the station has for the preconditions of a security profile.
struct Credentials {
  bool password = false;       // a sealed Basic-auth password (profile 2)
  bool station_certificate = false;  // station key + certificate (profile 3)
  bool csms_root = false;      // at least one installed CSMS root (profiles 2/3)
};

class NetworkProfiles {
 public:
  static constexpr int kMaxSlot = 3;
  static constexpr std::string_view kSlots = "0,1,2,3";  // valuesList of NetworkConfigurationPriority
  static constexpr std::string_view kInterfaces = "Wired0";  // the interfaces this station has

  NetworkProfiles(storage::Db& db, const config::Config& cfg);

  std::optional<NetworkProfile> get(int slot) const;
  std::vector<NetworkProfile> list() const;  // every slot that holds a profile, by slot

  // The security profile of the last successful connection (the configured one
  // before the first). Downgrades are measured against it.
  int active_security_profile() const;
  std::optional<int> last_good_slot() const;

  // Whether a move from the active profile to `to` is allowed.
  bool downgrade_allowed(int to, bool allow_downgrade_variable) const;

  // SetNetworkProfile: checks slot and connectionData (already schema-valid)
  // against what the station has and the connection the request came over
  // (`in_use`): that slot and the last working one (the fallback) are not
  // overwritten; over profile 1 (unauthenticated) only a profile for the same
  // host is accepted. The profile to store, or a refusal (Errc::Rejected with
  // the OCPP reasonCode in Error::reason, ≤ 20 characters, and a sentence).
  // Throws storage::DbError.
  Result<NetworkProfile> check(int slot, const boost::json::object& connection_data, const Credentials& have,
                               bool allow_downgrade, const NetworkProfile& in_use) const;
  void store(const NetworkProfile& p);

  // NetworkConfigurationPriority: "1,0" → {1,0}, or a refusal as check()'s.
  Result<std::vector<int>> check_priority(std::string_view value, bool allow_downgrade) const;
  static std::vector<int> parse_priority(std::string_view value);  // lenient: bad entries skipped

  // ---- the rotation
  // Starts over at the first slot of `priority` (after a restart or a lost connection).
  // Slots that are empty or below the active profile are skipped (listed in skipped()).
  void begin(const std::vector<int>& priority, bool allow_downgrade);
  const NetworkProfile& current() const { return candidates_.at(pos_); }
  const std::vector<std::string>& skipped() const { return skipped_; }
  std::size_t candidate_count() const { return candidates_.size(); }
  // One connection attempt with current() failed. Returns true when the next
  // attempt uses another slot (after `attempts_per_slot` failures in a row).
  bool attempt_failed(int attempts_per_slot);
  // A connection with current() was accepted: it becomes the last good slot
  // and its security profile the active one (persisted) - except that a
  // fallback to a lower profile (3 -> 2 with AllowSecurityProfileDowngrade)
  // does not lower the active one; only the first slot of the list can.
  void connected();

 private:
  NetworkProfile configured() const;

  storage::Db& db_;
  const config::Config& cfg_;
  std::vector<NetworkProfile> candidates_;
  std::size_t pos_ = 0;
  int failures_ = 0;
  std::vector<std::string> skipped_;
};

}  // namespace cg::services
