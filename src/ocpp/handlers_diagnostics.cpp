// N01 GetLog: the security log exported to an HTTPS location chosen by the CSMS.
// One upload at a time; a new GetLog cancels the running one (AcceptedCanceled).
// LogStatusNotification Uploading → Uploaded | UploadFailure; retries with
// retryInterval; one SecurityLogExported audit record per export (destination
// host only: the URL may carry tokens). DiagnosticsLog uploads the bounded
// diagnostics log file. LogStatusNotifications go through the persistent
// outbox; a station stopped mid-upload reports UploadFailure after its restart.
// A successful SecurityLog export moves the exported mark (overwrite_exported).
// REQ: LOG-4, COM-9, AUTHZ-3
#include <boost/json.hpp>

#include "core/log.hpp"
#include "ocpp/charge_point.hpp"
#include "ocpp/log_upload.hpp"

namespace cg::ocpp {
namespace json = boost::json;

namespace {
constexpr std::size_t kMaxExportBytes = 32 * 1024 * 1024;  // body cap (the log itself is capped at 16 MiB)
constexpr long long kMaxRetries = 10;
constexpr long long kDefaultRetryInterval = 30;  // seconds, when the CSMS gives none
constexpr long long kMaxRetryInterval = 3600;

ChargePoint::Reply log_rejected(std::string_view reason, std::string_view info) {
  json::object si{{"reasonCode", reason}};
  if (!info.empty()) si["additionalInfo"] = std::string(info.substr(0, 512));
  return {json::object{{"status", "Rejected"}, {"statusInfo", std::move(si)}}, {}, {}, {}};
}
}  // namespace

struct ChargePoint::LogJob {
  long long request_id = 0;
  bool diagnostics = false;  // DiagnosticsLog (text file) instead of SecurityLog
  UploadUrl url;
  std::optional<clock::SysTime> oldest, latest;
  long long retries_left = 0;
  long long interval = kDefaultRetryInterval;
  int attempts = 0;
  std::shared_ptr<const std::string> body;
  LogExport meta;  // counts (body moved out)
  std::shared_ptr<HttpsPut> put;
};

ChargePoint::Reply ChargePoint::on_get_log(const json::object& req) {
  const std::string log_type(req.at("logType").as_string());
  const long long request_id = req.at("requestId").to_number<long long>();
  const bool diagnostics = log_type == "DiagnosticsLog";
  if (diagnostics) {
    const policy::Principal csms = csms_principal();
    if (policy::authorize(csms, policy::Operation::ReadDiagnosticsLog) != policy::Decision::Allow)
      return Reply{std::nullopt, RpcError::SecurityError, "not permitted", {}};
  } else if (!d_.audit) {
    return log_rejected("InternalError", "no security log");
  }
  const auto& log = req.at("log").as_object();
  std::string why;
  auto url = parse_upload_url(log.at("remoteLocation").as_string(), &why);
  if (!url) {
    log::warn("ocpp", "GetLog ", request_id, " refused: ", why);
    return log_rejected("InvalidURL", why);
  }
  auto job = std::make_shared<LogJob>();
  job->request_id = request_id;
  job->diagnostics = diagnostics;
  job->url = std::move(*url);
  for (auto [key, out] : {std::pair{"oldestTimestamp", &job->oldest}, std::pair{"latestTimestamp", &job->latest}}) {
    if (auto* v = log.if_contains(key)) {
      auto t = clock::parse_rfc3339(v->as_string());
      if (!t) return log_rejected("InvalidValue", std::string(key) + " is not an RFC 3339 time");
      *out = *t;
    }
  }
  if (auto* v = req.if_contains("retries")) job->retries_left = std::clamp(v->to_number<long long>(), 0LL, kMaxRetries);
  if (auto* v = req.if_contains("retryInterval"))
    job->interval = std::clamp(v->to_number<long long>(), 0LL, kMaxRetryInterval);
  const bool replaced = static_cast<bool>(log_job_);
  if (replaced) cancel_log_job(true);
  log_job_ = job;
  const std::string filename = diagnostics ? "diagnostics-log-" + std::to_string(request_id) + ".log"
                                           : "security-log-" + std::to_string(request_id) + ".ndjson";
  Reply r{json::object{{"status", replaced ? "AcceptedCanceled" : "Accepted"}, {"filename", filename}}, {}, {}, {}};
  r.after = [this, job] { start_log_job(job); };
  return r;
}

void ChargePoint::start_log_job(const std::shared_ptr<LogJob>& job) {
  if (log_job_ != job) return;
  const auto diag = d_.cfg.state_dir / "diagnostics.log";
  auto ex = job->diagnostics
                ? build_text_export({diag.string() + ".1", diag}, job->oldest, job->latest, kMaxExportBytes)
                : build_log_export(*d_.audit, job->oldest, job->latest, kMaxExportBytes);
  if (ex.truncated) log::warn("ocpp", "GetLog ", job->request_id, ": export cut at ", kMaxExportBytes, " bytes");
  job->body = std::make_shared<const std::string>(std::move(ex.body));
  ex.body.clear();
  job->meta = std::move(ex);
  log::info("ocpp", "GetLog ", job->request_id, ": uploading ", job->meta.records, " records (", job->body->size(),
            " bytes) to ", job->url.host);
  queue_log_status("Uploading", job->request_id);
  log_attempt(job);
}

void ChargePoint::log_attempt(const std::shared_ptr<LogJob>& job) {
  if (log_job_ != job) return;
  ++job->attempts;
  HttpsPut::Settings s;
  s.url = job->url;
  std::tie(s.ca_file, s.partial_chain) = csms_trust();  // COM-9: the store's roots, as the OCPP link
  if (job->diagnostics) s.content_type = "text/plain; charset=utf-8";
  s.filename = log_upload_filename(job->diagnostics, job->request_id);  // as announced in GetLogResponse
  job->put = HttpsPut::start(d_.io, std::move(s), job->body, [this, job](bool ok, const std::string& detail) {
    if (log_job_ != job) return;
    job->put.reset();
    if (ok) return log_finish(job, "Uploaded", detail);
    log::warn("ocpp", "GetLog ", job->request_id, ": upload attempt ", job->attempts, " failed: ", detail);
    if (job->retries_left <= 0) return log_finish(job, "UploadFailure", detail);
    --job->retries_left;
    log_timer_.expires_after(std::chrono::seconds(job->interval));
    log_timer_.async_wait([this, job](boost::system::error_code ec) {
      if (!ec) log_attempt(job);
    });
  });
}

void ChargePoint::log_finish(const std::shared_ptr<LogJob>& job, std::string_view status, const std::string& detail) {
  if (log_job_ == job) log_job_.reset();
  if (job->put) {
    job->put->cancel();
    job->put.reset();
  }
  log::info("ocpp", "GetLog ", job->request_id, ": ", status, " (", detail, ")");
  // Records that left the station: full_policy = overwrite_exported may drop
  // them. Noted before the CSMS hears "Uploaded", so that what it was told is
  // already true here.
  if (status == "Uploaded" && !job->diagnostics && job->meta.records)
    d_.audit->mark_exported(job->meta.first_seq, job->meta.last_seq);
  if (status != "Canceled") queue_log_status(status, job->request_id);
  // One record per export. The destination is the host only: the URL may carry tokens.
  audit(audit::Event::SecurityLogExported, status == "Uploaded" ? audit::Outcome::Success : audit::Outcome::Failure,
        audit::Details()
            .text("logType", job->diagnostics ? "DiagnosticsLog" : "SecurityLog")
            .number("requestId", job->request_id)
            .number("records", static_cast<long long>(job->meta.records))
            .text("destination", job->url.host)
            .number("attempts", job->attempts)
            .text("result", status)
            .text("detail", detail));
}

// Through the persistent outbox: a status the CSMS waits for survives a lost
// connection and a restart (it is sent once the boot is accepted again).
void ChargePoint::queue_log_status(std::string_view status, long long request_id) {
  d_.outbox.push("LogStatusNotification",
                 json::serialize(json::object{{"status", status}, {"requestId", request_id}}));
  if (running_) pump();  // when stopping, it goes out after the restart
}

void ChargePoint::stop_log_job() {
  // The station stops (shutdown or reset) during an upload: the export failed,
  // and both the CSMS (after the restart) and the audit log hear it.
  if (auto job = log_job_) log_finish(job, "UploadFailure", "the station stopped during the upload");
  log_timer_.cancel();
}

void ChargePoint::cancel_log_job(bool notify) {
  log_timer_.cancel();
  auto job = std::move(log_job_);
  if (!job) return;
  if (job->put) {
    job->put->cancel();
    job->put.reset();
  }
  if (!notify) return;
  // The running upload ends here; the CSMS hears it through AcceptedCanceled.
  queue_log_status("AcceptedCanceled", job->request_id);
  log_finish(job, "Canceled", "replaced by a new GetLog");
}

}  // namespace cg::ocpp
