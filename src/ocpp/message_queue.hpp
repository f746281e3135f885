// The persistent outbox: messages that must reach the CSMS exactly in order
// (TransactionEvents now; SecurityEventNotifications with the audit issue).
// A row is deleted only after the CSMS acknowledged it, so kill -9 loses nothing.
#pragma once
#include <cstdint>
#include <optional>
#include <string>

#include "core/storage.hpp"

namespace cg::ocpp {

struct QueuedMessage {
  std::int64_t seq = 0;
  std::string action;
  std::string payload;  // serialized JSON object
  int attempts = 0;
  std::string tx_id;
};

class Outbox {
 public:
  explicit Outbox(storage::Db& db) : db_(db) {}
  // Appends; call inside the caller's storage transaction when it must be atomic
  // with other state (e.g. the transaction's seqNo).
  std::int64_t push(const std::string& action, const std::string& payload, const std::string& tx_id = {});
  std::optional<QueuedMessage> front();
  void remove(std::int64_t seq);
  // Moves a message the CSMS will not take (or we could not send) out of the
  // queue into outbox_rejected, with the reason: kept, never silently lost.
  void quarantine(std::int64_t seq, const std::string& reason);
  void count_attempt(std::int64_t seq);
  std::int64_t size();
  std::int64_t size_for_tx(const std::string& tx_id);

 private:
  storage::Db& db_;
};

}  // namespace cg::ocpp
