// The security audit log: the one place that writes security records.
// Append-only, hash-chained and MAC'ed lines in <state>/audit/security.log:
//
//   {"seq":N,"time":…,"type":…,"critical":…,"outcome":…,"source":{…},"details":{…},"prev":"<hash of N-1>"}\t<hash>\t<mac>\n
//
// hash = SHA-256 of the JSON body (which carries the previous hash), so anyone
// holding an export can check the chain; mac = HMAC-SHA256(device audit key,
// hash), so someone with file access but without the key cannot rewrite it.
// The key is sealed by the key store in <dir>/audit.key.sealed (LOG-2: never in
// plain text next to the log; security/sealed_secret.hpp).
// A record is on disk (fdatasync) before record() returns. Redaction (LOG-5)
// happens here, once, through the typed Details builder.
//
// A log (or an export) that does not start at record 1 begins with a signed
// continuation line, "#continues <seq> <hash> <mac>": the records before seq+1
// were dropped on purpose (after they were exported, full_policy =
// overwrite_exported) or are not part of this export. mac = HMAC(device key),
// so only the station can declare a log to start late; verify checks it.
// REQ: LOG-1, LOG-2, LOG-3, LOG-5, AUTHZ-3
#pragma once
#include <boost/json/object.hpp>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "audit/catalog.hpp"
#include "core/clock.hpp"
#include "policy/policy.hpp"
#include "security/secret_file.hpp"

namespace cg::security {
class KeyStore;
}

namespace cg::audit {

namespace detail {
class Crypto;
}

// Who caused the event, over which interface, from where.
struct Source {
  std::string interface;  // "Wan", "LocalMaintenance", "AuthTerminal", … or "Internal"
  std::string address;    // peer address when known
  std::string principal;  // account, CSMS identity, masked token, "system"
  static Source system() { return {"Internal", "", "system"}; }
  static Source of(const policy::Principal& p, std::string address = {});
};

// Event details. Values are typed so that redaction is decided here:
// free text is cut and stripped of control characters, badge ids are stored
// masked plus a keyed hash (so two records of one badge can be matched), and
// secrets are never stored — only the fact that one was set or changed.
class Details {
 public:
  Details& text(std::string_view key, std::string_view value);
  Details& number(std::string_view key, long long value);
  Details& flag(std::string_view key, bool value);
  Details& id_token(std::string_view key, std::string_view type, std::string_view id);
  Details& secret_changed(std::string_view key);
  const boost::json::object& json() const { return obj_; }
  // Applied by the log when the record is written (needs the device key).
  struct PendingToken {
    std::string key, type, id;
  };
  const std::vector<PendingToken>& tokens() const { return tokens_; }

 private:
  boost::json::object obj_;
  std::vector<PendingToken> tokens_;
};

enum class FullPolicy { RefuseNonCritical, OverwriteExported };

struct Options {
  std::uint64_t max_bytes = 16 * 1024 * 1024;  // capacity of the log (LOG-3)
  FullPolicy full_policy = FullPolicy::RefuseNonCritical;
};

struct RecordView {
  std::uint64_t seq = 0;
  std::string time;
  Event type{};
  Outcome outcome{};
  std::string line;  // the stored line without the trailing newline
  std::string tech_info() const;  // <= 255 chars, for SecurityEventNotification.techInfo
};

class AuditLog {
 public:
  // Opens <dir> (created 0700), its key (sealed by `keys`; created on first
  // use, a plain audit.key of an older release sealed and removed) and
  // recovers a torn last line (possible after a power loss; never after kill -9).
  static std::unique_ptr<AuditLog> open(const std::filesystem::path& dir, security::KeyStore& keys, Options opt = {});
  ~AuditLog();

  struct Result {
    std::uint64_t seq = 0;  // 0 when refused
    bool stored = false;
    std::string error;
  };
  // The one call. Thread-safe. Durable when it returns.
  Result record(Event e, Outcome o, const Source& src, const Details& d = {});
  // Many records, one fdatasync (bulk producers; benchmarks).
  std::vector<Result> record_batch(
      const std::vector<std::tuple<Event, Outcome, Source, Details>>& items);

  // Clears the log (an admin operation; the front end asks the policy first):
  // every record is removed and a new chain starts with SecurityLogWasCleared,
  // whose seq continues the old numbering and whose prev is the last hash of
  // the old chain, with the number of records removed in its details.
  Result clear(const Source& who);

  // Records [first, last] left the station in an export (GetLog upload, CLI
  // export). Only an export that joins the exported prefix moves the mark;
  // overwrite_exported drops records up to the mark only.
  void mark_exported(std::uint64_t first, std::uint64_t last);
  std::uint64_t exported_seq() const;
  // The signed continuation line for a log or export whose first record
  // follows record `after_seq` with hash `prev_hash` (with its newline).
  std::string continuation_line(std::uint64_t after_seq, std::string_view prev_hash) const;

  // Called after each stored record (on the caller's thread, lock released).
  void on_record(std::function<void(const RecordView&)> fn);

  std::uint64_t last_seq() const;
  std::uint64_t first_seq() const;  // first record still in the log (last_seq()+1 when empty)
  std::uint64_t size_bytes() const;
  const Options& options() const { return opt_; }
  const std::filesystem::path& dir() const { return dir_; }

 private:
  AuditLog(std::filesystem::path dir, Options opt);
  // Appends one record; stored records (and any record the append caused,
  // such as SecurityLogOverwritten) are added to `views`.
  Result append_locked(Event e, Outcome o, const Source& src, const Details& d, std::vector<RecordView>& views);
  Result write_record_locked(Event e, Outcome o, const Source& src, const Details& d, std::vector<RecordView>& views);
  void write_anchor_locked();
  // overwrite_exported: drops the oldest exported records so that the log is
  // at most 60% full again. False when nothing could be dropped.
  bool reclaim_locked(std::vector<RecordView>& views);
  void check_capacity_locked(std::vector<RecordView>& views);

  std::filesystem::path dir_;
  Options opt_;
  security::Secret32 key_{};
  std::unique_ptr<detail::Crypto> crypto_;  // hash and MAC contexts, fetched once
  int fd_ = -1;
  int anchor_fd_ = -1;
  mutable std::mutex mu_;
  std::uint64_t seq_ = 0;
  std::string prev_hash_;  // hex
  std::uint64_t bytes_ = 0;
  std::uint64_t first_seq_ = 1;
  std::uint64_t header_bytes_ = 0;      // length of the continuation line, 0 when none
  std::uint64_t reclaim_tried_at_ = 0;  // exported mark at the last reclaim that freed nothing
  bool warned_nearly_full_ = false;
  std::vector<std::function<void(const RecordView&)>> listeners_;
};

// Checks a log (or an export) record by record. With the key, MACs are checked
// too; an export checked without the key proves the chain only.
struct VerifyResult {
  bool ok = false;
  std::uint64_t records = 0;
  std::uint64_t first_seq = 0;  // first record checked (> 1 when the log or export continues a chain)
  std::uint64_t last_seq = 0;
  std::uint64_t bad_seq = 0;  // first bad record (0 when the problem is not one record)
  std::uint64_t bad_line = 0;
  std::string problem;
  std::string warning;  // set on success when something could not be checked
};
VerifyResult verify_file(const std::filesystem::path& log_file, const security::Secret32* key,
                         std::optional<std::uint64_t> anchor_seq = std::nullopt);
// Verifies <state>/audit with its key (unsealed by `keys`) and anchor.
VerifyResult verify_dir(const std::filesystem::path& audit_dir, security::KeyStore& keys);

// The MAC key of the log in audit_dir (tools beside the daemon: never created
// here). Throws security::KeyStoreError.
security::Secret32 load_key(const std::filesystem::path& audit_dir, security::KeyStore& keys);

std::filesystem::path log_file(const std::filesystem::path& audit_dir);

// For tools running beside the daemon (the CLI export): the same as
// AuditLog::mark_exported, on the files of <state>/audit.
void mark_exported(const std::filesystem::path& audit_dir, security::KeyStore& keys, std::uint64_t first,
                   std::uint64_t last);

// Reads the records with seq >= from, oldest first, calling fn until it
// returns false. Unreadable lines are skipped (verify reports them).
void for_each_record(const std::filesystem::path& log_file, std::uint64_t from,
                     const std::function<bool(const RecordView&)>& fn);

}  // namespace cg::audit
