// MemoryExhaustion for the state file system (issue 3: "MemoryExhaustion
// (storage near full …)"): when the file system that holds the state
// directory (SQLite state, audit log, diagnostics log) runs short of space,
// one MemoryExhaustion record (critical: the CSMS hears of it) and an ALARM
// line; again only after the space recovered. The audit log's own capacity
// alarm is AuditLog's (80 % of audit.max_mib).
// REQ: LOG-1, LOG-3
#pragma once
#include <cstdint>
#include <filesystem>

namespace cg::audit {

class AuditLog;

class StorageWatch {
 public:
  // Short = free < min_free_bytes or free < min_free_percent of the total;
  // recovered = free above twice both limits.
  StorageWatch(AuditLog& log, std::filesystem::path dir, std::uint64_t min_free_bytes = 32ull << 20,
               unsigned min_free_percent = 5)
      : log_(log), dir_(std::move(dir)), min_bytes_(min_free_bytes), min_percent_(min_free_percent) {}

  void check();  // statvfs of dir; an unreadable file system is logged, not recorded
  void check(std::uint64_t free_bytes, std::uint64_t total_bytes);
  bool alarmed() const { return alarmed_; }

 private:
  AuditLog& log_;
  std::filesystem::path dir_;
  std::uint64_t min_bytes_;
  unsigned min_percent_;
  bool alarmed_ = false;
};

}  // namespace cg::audit
