// Functional block L (firmware management): UpdateFirmware, L01 (signed
// firmware only; L02 stays off), FirmwareStatusNotification and its
// TriggerMessage. The block owns the job's protocol state (timers, retries,
// the HTTPS download); the firmware service decides (who may ask, the
// signing certificate, the image, the slots) and records every step.
//
// One update at a time: a new UpdateFirmware cancels the running one
// (AcceptedCanceled). Statuses go through the persistent outbox with the
// request's requestId: DownloadScheduled → Downloading → Downloaded |
// DownloadFailed → SignatureVerified | InvalidSignature |
// InstallVerificationFailed → InstallScheduled → Installing →
// InstallRebooting; after the reboot the outcome the slots keep (Installed,
// InstallationFailed, an interrupted download) is reported once online.
// FW-6: the install waits for installDateTime and for the last transaction
// to end.
// REQ: FW-1, FW-2, FW-6, FW-7, COM-9; OCPP L01
#pragma once
#include <boost/asio/steady_timer.hpp>
#include <boost/json/object.hpp>
#include <memory>
#include <optional>
#include <string>

#include "ocpp/dispatcher.hpp"
#include "ocpp/session_port.hpp"
#include "services/firmware.hpp"

namespace cg::services {
class AvailabilityService;
}

namespace cg::ocpp {

class HttpsGet;

class FirmwareBlock {
 public:
  // `firmware` null: the station was not started by the boot stage (plain
  // `chargeguard run`): there are no slots to install into and UpdateFirmware
  // is Rejected.
  FirmwareBlock(SessionPort& session, Dispatcher& dispatcher, services::FirmwareService* firmware,
                services::AvailabilityService& availability);
  ~FirmwareBlock();

  void tick();  // once a second: the install wait, reports of outcomes
  void stop();  // the station stops: a running download is given up
  // TriggerMessage(FirmwareStatusNotification): the current status (Idle when nothing runs).
  void report_current();

 private:
  struct Job;
  Reply on_update_firmware(const boost::json::object& req);
  void start_job(const std::shared_ptr<Job>& job);
  void download(const std::shared_ptr<Job>& job);
  void downloaded(const std::shared_ptr<Job>& job, bool ok, const std::string& detail);
  void install_wait(const std::shared_ptr<Job>& job);
  void install(const std::shared_ptr<Job>& job);
  void end_job(const std::shared_ptr<Job>& job, std::string_view status, const std::string& detail);
  void cancel_job();
  void status(const std::shared_ptr<Job>& job, std::string_view status);

  SessionPort& session_;
  services::FirmwareService* firmware_;
  services::AvailabilityService& availability_;
  boost::asio::steady_timer timer_;  // retrieveDateTime, retryInterval
  std::shared_ptr<Job> job_;
  std::string last_status_ = "Idle";
  // InstallRebooting queued: the reboot waits (at most ~10 s) until the CSMS has the statuses.
  int reboot_wait_ticks_ = -1;
  std::optional<long long> last_request_;
};

}  // namespace cg::ocpp
