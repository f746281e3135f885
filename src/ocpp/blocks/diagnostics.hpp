// Functional block N (diagnostics): GetLog, N01. The security log (or the
// bounded diagnostics log) goes to an HTTPS location chosen by the CSMS. One
// upload at a time; a new GetLog cancels the running one (AcceptedCanceled).
// LogStatusNotification Uploading → Uploaded | UploadFailure through the
// persistent outbox (a station stopped mid-upload reports UploadFailure after
// its restart); retries with retryInterval. The security-log service decides
// who may read which log, exports it and audits each export; this block owns
// the upload job.
// REQ: LOG-4, COM-9, AUTHZ-3
#pragma once
#include <boost/asio/steady_timer.hpp>
#include <memory>

#include "audit/export.hpp"
#include "ocpp/dispatcher.hpp"
#include "ocpp/log_export.hpp"
#include "ocpp/session_port.hpp"
#include "services/security_log.hpp"

namespace cg::ocpp {

class HttpsPut;

class DiagnosticsBlock {
 public:
  // `log` may be null: GetLog(SecurityLog) is then Rejected.
  DiagnosticsBlock(SessionPort& session, Dispatcher& dispatcher, services::SecurityLogService* log);
  ~DiagnosticsBlock();
  // The station stops (shutdown, reset) during an upload: the export failed.
  void stop();

 private:
  struct Job;
  Reply on_get_log(const boost::json::object& req);
  void start_job(const std::shared_ptr<Job>& job);
  void attempt(const std::shared_ptr<Job>& job);
  void finish(const std::shared_ptr<Job>& job, std::string_view status, const std::string& detail);
  void cancel_job(bool notify);
  void queue_status(std::string_view status, long long request_id);

  SessionPort& session_;
  services::SecurityLogService* log_;
  boost::asio::steady_timer retry_timer_;  // GetLog retryInterval
  std::shared_ptr<Job> job_;               // the running upload (at most one)
  bool stopping_ = false;
};

}  // namespace cg::ocpp
