// REQ: FW-1, FW-2, FW-6, FW-7, COM-9; OCPP L01 — see firmware.hpp.
#include "ocpp/blocks/firmware.hpp"

#include <boost/json.hpp>

#include "core/clock.hpp"
#include "core/log.hpp"
#include "ocpp/https_get.hpp"
#include "services/availability.hpp"

namespace cg::ocpp {
namespace json = boost::json;

namespace {
constexpr long long kMaxRetries = 10;
constexpr long long kDefaultRetryInterval = 30;
constexpr long long kMaxRetryInterval = 3600;
}  // namespace

struct FirmwareBlock::Job {
  long long request_id = 0;
  policy::Principal who;
  UploadUrl url;
  std::string signature, certificate;
  firmware::SigningCertificate signer;
  std::optional<clock::SysTime> retrieve_at, install_at;
  long long retries_left = 0;
  long long interval = kDefaultRetryInterval;
  int attempts = 0;
  std::optional<firmware::SlotWriter> writer;
  std::shared_ptr<HttpsGet> get;
  bool staged = false;
  bool waiting_install = false;
  bool install_wait_reported = false;
};

FirmwareBlock::FirmwareBlock(SessionPort& session, Dispatcher& d, services::FirmwareService* firmware,
                             services::AvailabilityService& availability)
    : session_(session), firmware_(firmware), availability_(availability), timer_(session.io()) {
  d.add("UpdateFirmware", [this](const json::object& r) { return on_update_firmware(r); });
}

FirmwareBlock::~FirmwareBlock() { cancel_job(); }

Reply FirmwareBlock::on_update_firmware(const json::object& req) {
  const auto who = session_.csms();
  const long long request_id = req.at("requestId").to_number<long long>();
  const auto& fw = req.at("firmware").as_object();
  const auto* sig = fw.if_contains("signature");
  const auto* cert = fw.if_contains("signingCertificate");
  if (!firmware_) {
    return rejected("NoFirmwareSlots", "the station was not started by its boot stage (chargeguard boot)");
  }
  if (!sig || !cert || sig->as_string().empty() || cert->as_string().empty()) {
    const auto r = firmware_->refuse_unsigned(who, request_id);
    if (r.error().code == Errc::Denied) return refusal(r.error());
    return rejected(r.error().reason, r.error().message);
  }
  auto url = parse_upload_url(fw.at("location").as_string());
  if (!url) {
    const auto r = firmware_->refuse_location(who, request_id, url.error().message);
    if (r.error().code == Errc::Denied) return refusal(r.error());
    return rejected("InvalidURL", url.error().message);
  }
  // L01.FR.02: the signing certificate first; nothing is downloaded with a bad one.
  auto signer = firmware_->check_signer(who, cert->as_string(), "UpdateFirmware");
  if (!signer) {
    if (signer.error().reason == firmware::kReasonInvalidCertificate) {
      return status_reply("InvalidCertificate", "InvalidCertificate", signer.error().message);
    }
    return refusal(signer.error());
  }
  auto job = std::make_shared<Job>();
  job->request_id = request_id;
  job->who = who;
  job->url = std::move(*url);
  job->signature = std::string(sig->as_string());
  job->certificate = std::string(cert->as_string());
  job->signer = std::move(*signer);
  job->retrieve_at = clock::parse_rfc3339(fw.at("retrieveDateTime").as_string());
  if (auto* v = fw.if_contains("installDateTime")) job->install_at = clock::parse_rfc3339(v->as_string());
  if (auto* v = req.if_contains("retries")) job->retries_left = std::clamp(v->to_number<long long>(), 0LL, kMaxRetries);
  if (auto* v = req.if_contains("retryInterval"))
    job->interval = std::clamp(v->to_number<long long>(), 0LL, kMaxRetryInterval);
  const bool replaced = static_cast<bool>(job_);
  if (replaced) cancel_job();
  job_ = job;
  Reply r = status_reply(replaced ? "AcceptedCanceled" : "Accepted");
  r.after = [this, job] { start_job(job); };
  return r;
}

void FirmwareBlock::status(const std::shared_ptr<Job>& job, std::string_view st) {
  last_status_ = std::string(st);
  last_request_ = job->request_id;
  session_.queue_persistent("FirmwareStatusNotification", json::object{{"status", st}, {"requestId", job->request_id}});
}

void FirmwareBlock::start_job(const std::shared_ptr<Job>& job) {
  if (job_ != job) return;
  const auto now = clock::now_utc();
  if (job->retrieve_at && *job->retrieve_at > now + std::chrono::seconds(1)) {
    status(job, "DownloadScheduled");
    timer_.expires_after(*job->retrieve_at - now);
    timer_.async_wait([this, job](boost::system::error_code ec) {
      if (!ec) download(job);
    });
    return;
  }
  download(job);
}

void FirmwareBlock::download(const std::shared_ptr<Job>& job) {
  if (job_ != job) return;
  ++job->attempts;
  if (job->attempts == 1) status(job, "Downloading");
  auto w = firmware_->begin_write(job->who, job->signer, job->signature, job->certificate,
                                  firmware::UpdateRef{job->request_id, "ocpp", job->who.name});
  if (!w) return end_job(job, "DownloadFailed", w.error().message);
  job->writer.emplace(std::move(*w));
  HttpsGet::Settings s;
  s.url = job->url;
  std::tie(s.ca_file, s.partial_chain) = session_.csms_trust();  // COM-9: the CSMS roots of the store
  s.max_body = firmware_->max_image_bytes();
  log::info("ocpp", "UpdateFirmware ", job->request_id, ": downloading from ", job->url.host, " (attempt ",
            job->attempts, ")");
  job->get = HttpsGet::start(
      session_.io(), std::move(s),
      [job](std::span<const std::uint8_t> bytes) -> Result<void> {
        if (!job->writer) return fail(Errc::Conflict, "canceled");
        return job->writer->write(bytes);
      },
      [this, job](bool ok, const std::string& detail) { downloaded(job, ok, detail); });
}

void FirmwareBlock::downloaded(const std::shared_ptr<Job>& job, bool ok, const std::string& detail) {
  if (job_ != job) return;
  job->get.reset();
  if (!ok) {
    log::warn("ocpp", "UpdateFirmware ", job->request_id, ": download attempt ", job->attempts, " failed: ", detail);
    if (job->writer) job->writer->cancel();
    job->writer.reset();
    // An image the verifier refused while it streamed (too large, a wrong
    // manifest) does not get better with a retry.
    const bool hopeless = detail.find("larger than") != std::string::npos;
    if (hopeless || job->retries_left <= 0) {
      firmware_->abandon_write(job->who, "DownloadFailed", detail);
      return end_job(job, "DownloadFailed", detail);
    }
    firmware_->abandon_write(job->who, "", "attempt " + std::to_string(job->attempts) + ": " + detail);
    --job->retries_left;
    timer_.expires_after(std::chrono::seconds(job->interval));
    timer_.async_wait([this, job](boost::system::error_code ec) {
      if (!ec) download(job);
    });
    return;
  }
  status(job, "Downloaded");
  auto staged = firmware_->finish_write(job->who, *job->writer);
  job->writer.reset();
  if (!staged) {
    const auto& e = staged.error();
    const char* st = e.reason == firmware::kReasonInvalidSignature ? "InvalidSignature" : "InstallVerificationFailed";
    return end_job(job, st, e.message);
  }
  status(job, "SignatureVerified");
  job->staged = true;
  install_wait(job);
}

void FirmwareBlock::install_wait(const std::shared_ptr<Job>& job) {
  if (job_ != job) return;
  const bool later = job->install_at && *job->install_at > clock::now_utc();
  // FW-6: never interrupt a charge; the install starts when the last one ended.
  const bool charging = availability_.transactions_running();
  // FW-6: while the install waits for a charge, no new one starts.
  availability_.hold_for_install(charging && !later);
  if (later || charging) {
    if (!job->install_wait_reported) {
      job->install_wait_reported = true;
      status(job, "InstallScheduled");
      firmware_->install_scheduled(job->who, later ? "installDateTime" : "a transaction runs");
      log::info("ocpp", "UpdateFirmware ", job->request_id, ": install waits for ",
                later ? "installDateTime" : "the running transaction(s) to end");
    }
    job->waiting_install = true;  // tick() looks again every second
    return;
  }
  install(job);
}

void FirmwareBlock::install(const std::shared_ptr<Job>& job) {
  job->waiting_install = false;
  status(job, "Installing");
  auto r = firmware_->activate(job->who);
  if (!r) {
    availability_.hold_for_install(false);  // availability restored after a failed install
    return end_job(job, "InstallationFailed", r.error().message);
  }
  status(job, "InstallRebooting");
  log::info("ocpp", "UpdateFirmware ", job->request_id, ": rebooting into the new image");
  job_.reset();
  reboot_wait_ticks_ = 0;
  tick();
}

void FirmwareBlock::end_job(const std::shared_ptr<Job>& job, std::string_view st, const std::string& detail) {
  log::warn("ocpp", "UpdateFirmware ", job->request_id, ": ", st, ": ", detail);
  status(job, st);
  if (job_ == job) job_.reset();
  // The outcome is reported here; the slots' copy of it is not reported again.
  firmware_->mark_reported();
}

void FirmwareBlock::cancel_job() {
  timer_.cancel();
  availability_.hold_for_install(false);
  auto job = std::move(job_);
  if (!job) return;
  if (job->get) job->get->cancel();
  if (job->writer) job->writer->cancel();
  if (firmware_ && (job->writer || job->staged)) firmware_->abandon_write(job->who, "", "canceled by a new UpdateFirmware");
  job->writer.reset();
}

void FirmwareBlock::tick() {
  if (!firmware_) return;
  if (reboot_wait_ticks_ >= 0) {
    // The statuses first (they would be sent after the reboot anyway), unless the CSMS is away.
    if (session_.outbox_pending() == 0 || !session_.online() || ++reboot_wait_ticks_ > 10) {
      reboot_wait_ticks_ = -1;
      session_.restart();
    }
    return;
  }
  if (job_ && job_->waiting_install) install_wait(job_);
  // Outcomes the slots keep for the CSMS (after a reboot, a rollback, an
  // interrupted job): reported once online, with the request's id.
  if (!session_.online()) return;
  if (auto o = firmware_->unreported_outcome()) {
    if (o->update.request_id && o->update.origin == "ocpp") {
      last_status_ = o->status;
      last_request_ = *o->update.request_id;
      session_.queue_persistent("FirmwareStatusNotification",
                                json::object{{"status", o->status}, {"requestId", *o->update.request_id}});
    }
    firmware_->mark_reported();
  }
}

void FirmwareBlock::stop() {
  if (job_ && !job_->staged) {
    // The download dies with the station; the next start reports it.
    timer_.cancel();
    if (job_->get) job_->get->cancel();
  }
}

void FirmwareBlock::report_current() {
  // L01: the status of the running job, Idle when none runs.
  json::object p{{"status", job_ ? last_status_ : std::string("Idle")}};
  if (job_) p["requestId"] = job_->request_id;
  session_.call("FirmwareStatusNotification", std::move(p));
}

}  // namespace cg::ocpp
