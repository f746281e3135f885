// The security log as an operation, for every front end: the CSMS uploads it
// (GetLog, N01: SecurityLog needs ReadSecurityLog, DiagnosticsLog
// ReadDiagnosticsLog), a local admin verifies, exports and clears it
// (`chargeguard audit …`). Each export leaves one SecurityLogExported record
// (when the log is open for writing) and moves the exported mark after a
// whole-log export; clearing is the audit module's own operation (its first
// record is SecurityLogWasCleared). Nobody edits records (AUTHZ-3).
// REQ: LOG-2, LOG-3, LOG-4, AUTHZ-1, AUTHZ-3
#pragma once
#include <filesystem>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include "audit/audit_log.hpp"
#include "audit/export.hpp"
#include "core/result.hpp"
#include "services/gate.hpp"

namespace cg::security {
class KeyStore;
}

namespace cg::services {

class SecurityLogService {
 public:
  // The daemon: the open log (also the gate's). `diagnostics_log` is the
  // bounded diagnostics log file (its previous generation is `.1`).
  // `keys` (optional) unseals the log's key for verify().
  SecurityLogService(Gate& gate, audit::AuditLog& log, std::filesystem::path diagnostics_log,
                     security::KeyStore* keys = nullptr);
  // Tools beside the daemon: the log's directory and the key store that
  // unseals its key; `log` when the tool holds the state-directory lock.
  SecurityLogService(Gate& gate, std::filesystem::path audit_dir, security::KeyStore& keys,
                     audit::AuditLog* log = nullptr);

  enum class LogType { Security, Diagnostics };
  struct Window {
    std::optional<clock::SysTime> oldest, latest;
  };
  // GetLog: what to upload.
  Result<audit::LogExport> export_for_upload(const policy::Principal& who, LogType type, Window window,
                                             std::size_t max_bytes);
  // The upload ended (Uploaded, UploadFailure, Canceled; Downloaded for the
  // web UI's download): the exported mark first (a whole security log), then one SecurityLogExported record naming
  // the destination host only (a URL may carry a token).
  struct Upload {
    LogType type = LogType::Security;
    long long request_id = 0;
    const audit::LogExport* exported = nullptr;  // counts and range
    std::string destination_host;
    int attempts = 0;
    std::string result, detail;
  };
  void upload_finished(const audit::Source& who, const Upload& u);

  // The web UI's view: the last `n` records (at most 500), newest first.
  Result<std::vector<audit::RecordView>> recent(const policy::Principal& who, std::size_t n);

  // `audit verify`: the log (or an export file) checked record by record.
  Result<audit::VerifyResult> verify(const policy::Principal& who, const std::optional<std::filesystem::path>& file);
  // `audit export`: verified, written to `out`, the exported mark moved.
  Result<audit::VerifyResult> export_to(const policy::Principal& who, std::ostream& out);
  // `audit clear`: refused while records were never exported, unless discard_unexported.
  Result<audit::AuditLog::Result> clear(const policy::Principal& who, bool discard_unexported);

 private:
  Gate& gate_;
  audit::AuditLog* log_;
  std::filesystem::path audit_dir_;
  security::KeyStore* keys_ = nullptr;
  std::filesystem::path diagnostics_log_;
};

}  // namespace cg::services
