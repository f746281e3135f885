// A04: critical security events reach the CSMS as SecurityEventNotification,
// at once when online, queued persistently otherwise, none lost, none twice.
// The audit log is the source of truth; a cursor (the last record queued for
// the CSMS) moves in the same SQLite commit as the queued message, and at start
// the records after the cursor are queued: a crash between the audit record
// and the outbox loses nothing.
// REQ: LOG-4
#pragma once
#include <cstdint>
#include <filesystem>

#include "audit/audit_log.hpp"
#include "core/storage.hpp"
#include "core/outbox.hpp"

namespace cg::ocpp {

class SecurityEventForwarder {
 public:
  SecurityEventForwarder(storage::Db& db, core::Outbox& outbox, std::filesystem::path audit_log_file);
  // Queues every critical OCPP event recorded after the cursor. Returns how many.
  int catch_up();
  // A record was just stored (called on the I/O thread). Returns true when queued.
  bool on_record(const audit::RecordView& r);

 private:
  bool queue(const audit::RecordView& r);
  storage::Db& db_;
  core::Outbox& outbox_;
  std::filesystem::path file_;
  std::uint64_t cursor_ = 0;
};

}  // namespace cg::ocpp
