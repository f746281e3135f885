// Exports of the logs for an upload (GetLog): the security log with its chain
// fields, and the diagnostics log's text lines, within a time window.
// REQ: LOG-4
#pragma once
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "core/clock.hpp"

namespace cg::audit {

class AuditLog;

// An exported log: the body and what is in it. Stops before max_bytes (truncated set).
struct LogExport {
  std::string body;
  std::uint64_t records = 0, first_seq = 0, last_seq = 0;
  bool truncated = false;
};

// The security log for GetLog(SecurityLog): the stored lines (with their chain
// fields) from the first to the last record whose time lies in [oldest,
// latest], with every record in between (the clock may have been set back, and
// an export with gaps would not verify), each ending in '\n'. An export that
// does not start at record 1 begins with the log's signed continuation line,
// so `chargeguard audit verify --file` checks it. Stops before max_bytes
// (truncated set; the export then ends at a whole record).
LogExport build_log_export(const audit::AuditLog& log, std::optional<clock::SysTime> oldest,
                           std::optional<clock::SysTime> latest, std::size_t max_bytes);

// The lines of text log files (oldest file first) whose leading RFC 3339
// timestamp lies in [oldest, latest]; lines without one follow their
// predecessor's fate. Stops before max_bytes (*truncated set).
LogExport build_text_export(const std::vector<std::filesystem::path>& files, std::optional<clock::SysTime> oldest,
                            std::optional<clock::SysTime> latest, std::size_t max_bytes);

}  // namespace cg::audit
