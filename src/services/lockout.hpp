// REQ: AUTH-5 — brute-force protection of the maintenance logins: consecutive
// failures per subject ("account:NAME" and "address:IP") lock that subject for
// the configured time, then it unlocks on its own. Steps: the default "6:30m"
// (seed 001) locks for 30 min after 6 failures, again after 6 more; "10:10m,5:60m"
// (seed 002) locks 10 min after 10 failures, then 60 min after each 5 more.
// A success clears the subject. State is in SQLite, so a lock survives a
// restart of the daemon; entries unused for a day are purged.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/config.hpp"
#include "core/storage.hpp"

namespace cg::services {

class Lockout {
 public:
  Lockout(storage::Db& db, std::vector<config::Config::LockStep> steps);

  // Unix seconds until which `subject` is locked, or nullopt when it is not.
  std::optional<std::int64_t> locked_until(std::string_view subject, std::int64_t now);
  // Counts a failure; returns the end of the lock when this one locks.
  std::optional<std::int64_t> failure(std::string_view subject, std::int64_t now);
  void success(std::string_view subject);
  void purge(std::int64_t now);

  static std::string account(std::string_view name) { return "account:" + std::string(name); }
  static std::string address(std::string_view ip) { return "address:" + std::string(ip); }

 private:
  storage::Db& db_;
  std::vector<config::Config::LockStep> steps_;
};

}  // namespace cg::services
