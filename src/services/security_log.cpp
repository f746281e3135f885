#include "services/security_log.hpp"

#include <openssl/crypto.h>

#include <algorithm>
#include <fstream>

#include "core/log.hpp"

namespace cg::services {
namespace fs = std::filesystem;
using policy::Operation;

SecurityLogService::SecurityLogService(Gate& gate, audit::AuditLog& log, fs::path diagnostics_log,
                                       security::KeyStore* keys)
    : gate_(gate), log_(&log), audit_dir_(log.dir()), keys_(keys), diagnostics_log_(std::move(diagnostics_log)) {}

Result<std::vector<audit::RecordView>> SecurityLogService::recent(const policy::Principal& who, std::size_t n) {
  if (auto ok = gate_.admit(who, Operation::ReadSecurityLog, "security log view"); !ok) return ok.error();
  if (!log_) return fail(Errc::Unavailable, "no security log");
  n = std::min<std::size_t>(n, 500);
  return guarded("security log view", [&]() -> Result<std::vector<audit::RecordView>> {
    const std::uint64_t last = log_->last_seq();
    const std::uint64_t from = last >= n ? last - n + 1 : 1;
    std::vector<audit::RecordView> out;
    audit::for_each_record(audit::log_file(audit_dir_), from, [&](const audit::RecordView& r) {
      out.push_back(r);
      return out.size() < n;
    });
    std::reverse(out.begin(), out.end());
    return out;
  });
}

SecurityLogService::SecurityLogService(Gate& gate, fs::path audit_dir, security::KeyStore& keys, audit::AuditLog* log)
    : gate_(gate), log_(log), audit_dir_(std::move(audit_dir)), keys_(&keys) {}

Result<audit::LogExport> SecurityLogService::export_for_upload(const policy::Principal& who, LogType type,
                                                               Window w, std::size_t max_bytes) {
  const bool diag = type == LogType::Diagnostics;
  if (auto ok = gate_.admit(who, diag ? Operation::ReadDiagnosticsLog : Operation::ReadSecurityLog,
                            diag ? "GetLog DiagnosticsLog" : "GetLog SecurityLog");
      !ok)
    return ok.error();
  if (!diag && !log_) return fail(Errc::Unavailable, "no security log");
  return guarded("GetLog", [&]() -> Result<audit::LogExport> {
    if (diag)
      return audit::build_text_export({diagnostics_log_.string() + ".1", diagnostics_log_}, w.oldest, w.latest,
                                      max_bytes);
    return audit::build_log_export(*log_, w.oldest, w.latest, max_bytes);
  });
}

void SecurityLogService::upload_finished(const audit::Source& who, const Upload& u) {
  const bool diag = u.type == LogType::Diagnostics;
  const std::uint64_t records = u.exported ? u.exported->records : 0;
  // Records that left the station: full_policy = overwrite_exported may drop
  // them. Noted before the CSMS hears "Uploaded", so that what it is told is
  // already true here.
  if ((u.result == "Uploaded" || u.result == "Downloaded") && !diag && records && log_)
    log_->mark_exported(u.exported->first_seq, u.exported->last_seq);
  gate_.record(who, audit::Event::SecurityLogExported,
               u.result == "Uploaded" || u.result == "Downloaded" ? audit::Outcome::Success : audit::Outcome::Failure,
               audit::Details()
                   .text("logType", diag ? "DiagnosticsLog" : "SecurityLog")
                   .number("requestId", u.request_id)
                   .number("records", static_cast<long long>(records))
                   .text("destination", u.destination_host)
                   .number("attempts", u.attempts)
                   .text("result", u.result)
                   .text("detail", u.detail));
}

Result<audit::VerifyResult> SecurityLogService::verify(const policy::Principal& who,
                                                       const std::optional<fs::path>& file) {
  if (auto ok = gate_.admit(who, Operation::ReadSecurityLog, "audit verify"); !ok) return ok.error();
  if (!keys_) return fail(Errc::Unavailable, "no key store");
  if (!file) return audit::verify_dir(audit_dir_, *keys_);
  audit::VerifyResult r;
  try {
    auto key = audit::load_key(audit_dir_, *keys_);
    r = audit::verify_file(*file, &key);
    OPENSSL_cleanse(key.data(), key.size());
  } catch (const std::exception& e) {
    r.problem = e.what();
  }
  return r;
}

Result<audit::VerifyResult> SecurityLogService::export_to(const policy::Principal& who, std::ostream& out) {
  if (auto ok = gate_.admit(who, Operation::ReadSecurityLog, "audit export"); !ok) return ok.error();
  if (!keys_) return fail(Errc::Unavailable, "no key store");
  // Verify first: what is exported is at least the records proven here (the
  // daemon may append while we copy; those follow in the copy).
  auto r = audit::verify_dir(audit_dir_, *keys_);
  std::ifstream in(audit::log_file(audit_dir_), std::ios::binary);
  if (!in) return fail(Errc::NotFound, "cannot read " + audit::log_file(audit_dir_).string());
  out << in.rdbuf();
  out.flush();
  if (!out) return fail(Errc::Storage, "export incomplete");
  // Records that left the station: full_policy = overwrite_exported may drop them.
  if (r.ok && r.records) {
    try {
      audit::mark_exported(audit_dir_, *keys_, r.first_seq, r.last_seq);
    } catch (const std::exception& e) {
      r.warning = std::string("the export is complete but could not be noted: ") + e.what();
    }
  }
  return r;
}

Result<audit::AuditLog::Result> SecurityLogService::clear(const policy::Principal& who, bool discard_unexported) {
  if (auto ok = gate_.admit(who, Operation::ClearSecurityLog, "audit clear"); !ok) return ok.error();
  if (!log_) return fail(Errc::Unavailable, "the security log is not open");
  return guarded("audit clear", [&]() -> Result<audit::AuditLog::Result> {
    const auto exported = log_->exported_seq();
    if (!discard_unexported && log_->last_seq() >= log_->first_seq() && exported < log_->last_seq()) {
      return fail(Errc::Conflict, "records " + std::to_string(std::max(exported + 1, log_->first_seq())) + ".." +
                                      std::to_string(log_->last_seq()) + " were never exported");
    }
    return log_->clear(audit::Source::of(who));
  });
}

}  // namespace cg::services
