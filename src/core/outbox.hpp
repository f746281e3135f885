// The persistent outbox: messages that must reach the CSMS exactly in order
// (TransactionEvents now; SecurityEventNotifications with the audit issue).
// A row is deleted only after the CSMS acknowledged it, so kill -9 loses nothing.
#pragma once
#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>

#include "core/storage.hpp"

namespace cg::core {

struct QueuedMessage {
  std::int64_t seq = 0;
  std::string action;
  std::string payload;  // serialized JSON object
  int attempts = 0;
  std::string tx_id;
};

// What a purge of outbox_rejected removed.
struct Purged {
  std::int64_t rows = 0;
  std::int64_t first_seq = 0, last_seq = 0;  // the range of the removed rows (0 when none)
  std::int64_t by_age = 0;                   // of them, removed for their age (the rest: the count limit)
};

class Outbox {
 public:
  // The retention of outbox_rejected (CHG-2, LOG-5: what it keeps is bounded).
  static constexpr std::int64_t kMaxRejectedRows = 1000;
  static constexpr std::chrono::hours kMaxRejectedAge{24 * 90};

  // `redact`: applied to a message's payload when it leaves the queue for
  // outbox_rejected (the plain idTokens it may carry are kept only until the
  // CSMS has the message; after that only masked ids and keyed hashes).
  using Redactor = std::function<std::string(const std::string& payload)>;
  explicit Outbox(storage::Db& db, Redactor redact = {}) : db_(db), redact_(std::move(redact)) {}
  // Appends; call inside the caller's storage transaction when it must be atomic
  // with other state (e.g. the transaction's seqNo).
  std::int64_t push(const std::string& action, const std::string& payload, const std::string& tx_id = {});
  std::optional<QueuedMessage> front();
  void remove(std::int64_t seq);
  // Moves a message the CSMS will not take (or we could not send) out of the
  // queue into outbox_rejected (payload redacted), with the reason: kept for
  // diagnosis, never silently lost — and never forever: see purge_rejected.
  void quarantine(std::int64_t seq, const std::string& reason);
  // Drops rows of outbox_rejected older than max_age, then the oldest beyond
  // max_rows. The caller audits what went (DataPurged).
  Purged purge_rejected(std::int64_t max_rows = kMaxRejectedRows,
                        std::chrono::seconds max_age = kMaxRejectedAge);
  std::int64_t rejected_count();
  // Applies the redactor to every row of outbox_rejected (rows kept by an
  // older release; the redactor leaves redacted payloads as they are).
  void redact_rejected();
  void count_attempt(std::int64_t seq);
  std::int64_t size();
  std::int64_t size_for_tx(const std::string& tx_id);

 private:
  storage::Db& db_;
  Redactor redact_;
};

}  // namespace cg::core
