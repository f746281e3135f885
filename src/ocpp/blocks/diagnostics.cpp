#include "ocpp/blocks/diagnostics.hpp"

#include <boost/json.hpp>

#include "core/log.hpp"
#include "ocpp/log_upload.hpp"

namespace cg::ocpp {
namespace json = boost::json;
using services::SecurityLogService;

namespace {
constexpr std::size_t kMaxExportBytes = 32 * 1024 * 1024;  // body cap (the log itself is capped at 16 MiB)
constexpr long long kMaxRetries = 10;
constexpr long long kDefaultRetryInterval = 30;  // seconds, when the CSMS gives none
constexpr long long kMaxRetryInterval = 3600;

Reply log_rejected(std::string_view reason, std::string_view info) {
  json::object si{{"reasonCode", reason}};
  if (!info.empty()) si["additionalInfo"] = std::string(info.substr(0, 512));
  return result(json::object{{"status", "Rejected"}, {"statusInfo", std::move(si)}});
}
}  // namespace

struct DiagnosticsBlock::Job {
  long long request_id = 0;
  bool diagnostics = false;  // DiagnosticsLog (text file) instead of SecurityLog
  UploadUrl url;
  SecurityLogService::Window window;
  long long retries_left = 0;
  long long interval = kDefaultRetryInterval;
  int attempts = 0;
  std::shared_ptr<const std::string> body;
  audit::LogExport meta;  // counts (body moved out)
  std::shared_ptr<HttpsPut> put;
  audit::Source who;
};

DiagnosticsBlock::DiagnosticsBlock(SessionPort& session, Dispatcher& d, SecurityLogService* log)
    : session_(session), log_(log), retry_timer_(session.io()) {
  d.add("GetLog", [this](const json::object& r) { return on_get_log(r); });
}

DiagnosticsBlock::~DiagnosticsBlock() = default;

Reply DiagnosticsBlock::on_get_log(const json::object& req) {
  const std::string log_type(req.at("logType").as_string());
  const long long request_id = req.at("requestId").to_number<long long>();
  const bool diagnostics = log_type == "DiagnosticsLog";
  if (!log_) return log_rejected("InternalError", "no security log");
  auto job = std::make_shared<Job>();
  job->request_id = request_id;
  job->diagnostics = diagnostics;
  job->who = audit::Source::of(session_.csms());
  const auto& log = req.at("log").as_object();
  for (auto [key, out] :
       {std::pair{"oldestTimestamp", &job->window.oldest}, std::pair{"latestTimestamp", &job->window.latest}}) {
    if (auto* v = log.if_contains(key)) {
      auto t = clock::parse_rfc3339(v->as_string());
      if (!t) return log_rejected("InvalidValue", std::string(key) + " is not an RFC 3339 time");
      *out = *t;
    }
  }
  // The export itself: who may read this log is the service's decision.
  auto ex = log_->export_for_upload(session_.csms(), diagnostics ? SecurityLogService::LogType::Diagnostics
                                                                  : SecurityLogService::LogType::Security,
                                    job->window, kMaxExportBytes);
  if (!ex) return refusal(ex.error());
  auto url = parse_upload_url(log.at("remoteLocation").as_string());
  if (!url) {
    log::warn("ocpp", "GetLog ", request_id, " refused: ", url.error().message);
    return log_rejected("InvalidURL", url.error().message);
  }
  job->url = std::move(*url);
  if (ex->truncated) log::warn("ocpp", "GetLog ", request_id, ": export cut at ", kMaxExportBytes, " bytes");
  job->body = std::make_shared<const std::string>(std::move(ex->body));
  ex->body.clear();
  job->meta = std::move(*ex);
  if (auto* v = req.if_contains("retries")) job->retries_left = std::clamp(v->to_number<long long>(), 0LL, kMaxRetries);
  if (auto* v = req.if_contains("retryInterval"))
    job->interval = std::clamp(v->to_number<long long>(), 0LL, kMaxRetryInterval);
  const bool replaced = static_cast<bool>(job_);
  if (replaced) cancel_job(true);
  job_ = job;
  Reply r = result(json::object{{"status", replaced ? "AcceptedCanceled" : "Accepted"},
                                {"filename", log_upload_filename(diagnostics, request_id)}});
  r.after = [this, job] { start_job(job); };
  return r;
}

void DiagnosticsBlock::start_job(const std::shared_ptr<Job>& job) {
  if (job_ != job) return;
  log::info("ocpp", "GetLog ", job->request_id, ": uploading ", job->meta.records, " records (", job->body->size(),
            " bytes) to ", job->url.host);
  queue_status("Uploading", job->request_id);
  attempt(job);
}

void DiagnosticsBlock::attempt(const std::shared_ptr<Job>& job) {
  if (job_ != job) return;
  ++job->attempts;
  HttpsPut::Settings s;
  s.url = job->url;
  std::tie(s.ca_file, s.partial_chain) = session_.csms_trust();  // COM-9: the store's roots, as the OCPP link
  if (job->diagnostics) s.content_type = "text/plain; charset=utf-8";
  s.filename = log_upload_filename(job->diagnostics, job->request_id);  // as announced in GetLogResponse
  job->put = HttpsPut::start(session_.io(), std::move(s), job->body, [this, job](bool ok, const std::string& detail) {
    if (job_ != job) return;
    job->put.reset();
    if (ok) return finish(job, "Uploaded", detail);
    log::warn("ocpp", "GetLog ", job->request_id, ": upload attempt ", job->attempts, " failed: ", detail);
    if (job->retries_left <= 0) return finish(job, "UploadFailure", detail);
    --job->retries_left;
    retry_timer_.expires_after(std::chrono::seconds(job->interval));
    retry_timer_.async_wait([this, job](boost::system::error_code ec) {
      if (!ec) attempt(job);
    });
  });
}

void DiagnosticsBlock::finish(const std::shared_ptr<Job>& job, std::string_view status, const std::string& detail) {
  if (job_ == job) job_.reset();
  if (job->put) {
    job->put->cancel();
    job->put.reset();
  }
  log::info("ocpp", "GetLog ", job->request_id, ": ", status, " (", detail, ")");
  // The service marks a whole-log export before the CSMS hears "Uploaded",
  // and writes the one record of this export.
  log_->upload_finished(job->who, SecurityLogService::Upload{job->diagnostics ? SecurityLogService::LogType::Diagnostics
                                                                              : SecurityLogService::LogType::Security,
                                                             job->request_id, &job->meta, job->url.host, job->attempts,
                                                             std::string(status), detail});
  if (status != "Canceled") queue_status(status, job->request_id);
}

// Through the persistent outbox: a status the CSMS waits for survives a lost
// connection and a restart (it is sent once the boot is accepted again).
void DiagnosticsBlock::queue_status(std::string_view status, long long request_id) {
  session_.queue_persistent("LogStatusNotification", json::object{{"status", status}, {"requestId", request_id}});
}

void DiagnosticsBlock::stop() {
  // The station stops (shutdown or reset) during an upload: the export failed,
  // and both the CSMS (after the restart) and the audit log hear it.
  if (auto job = job_) finish(job, "UploadFailure", "the station stopped during the upload");
  retry_timer_.cancel();
}

void DiagnosticsBlock::cancel_job(bool notify) {
  retry_timer_.cancel();
  auto job = std::move(job_);
  if (!job) return;
  if (job->put) {
    job->put->cancel();
    job->put.reset();
  }
  if (!notify) return;
  // The running upload ends here; the CSMS hears it through AcceptedCanceled.
  queue_status("AcceptedCanceled", job->request_id);
  finish(job, "Canceled", "replaced by a new GetLog");
}

}  // namespace cg::ocpp
