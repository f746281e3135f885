#include "ocpp/charge_point.hpp"

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include <boost/asio/post.hpp>
#include <boost/json.hpp>
#include <cstdio>
#include <utility>

#include "core/clock.hpp"
#include "core/log.hpp"
#include "ocpp/frame.hpp"
#include "ocpp/schema.hpp"
#include "ocpp/station_messages.hpp"

namespace cg::ocpp {
namespace json = boost::json;
using namespace std::chrono_literals;
using policy::Operation;

namespace {
constexpr std::size_t kMaxSeenIds = 1024;
constexpr std::size_t kMaxQueued = 256;  // in-memory (non-transactional) messages
}  // namespace

ChargePoint::ChargePoint(Deps d)
    : d_(std::move(d)),
      profiles_(d_.db, d_.cfg),
      conn_(d_.io, *this),
      reconnect_timer_(d_.io),
      heartbeat_timer_(d_.io),
      boot_timer_(d_.io),
      call_timer_(d_.io),
      outbox_timer_(d_.io),
      log_timer_(d_.io),
      rotate_timer_(d_.io),
      renewal_timer_(d_.io) {
  unsigned char r[4];
  RAND_bytes(r, sizeof r);
  char buf[16];
  std::snprintf(buf, sizeof buf, "%02x%02x%02x%02x", r[0], r[1], r[2], r[3]);
  id_prefix_ = buf;
  rng_.seed(static_cast<unsigned>(r[0] << 24 | r[1] << 16 | r[2] << 8 | r[3]));
  if (auto reason = d_.db.meta("boot_reason")) boot_reason_ = *reason;
  // A rotation from before a restart that never connected is still pending.
  rotation_pending_ = d_.password && d_.password->has_previous();
}

ChargePoint::~ChargePoint() = default;

ChargePoint::Reply ChargePoint::status_reply(std::string_view status, std::string_view reason_code,
                                             std::string_view info) {
  json::object o{{"status", status}};
  if (!reason_code.empty()) {
    json::object st{{"reasonCode", reason_code.substr(0, 20)}};
    if (!info.empty()) st["additionalInfo"] = info.substr(0, 512);
    o["statusInfo"] = std::move(st);
  }
  return Reply{std::move(o), {}, {}, {}};
}

std::string ChargePoint::next_id() { return id_prefix_ + "-" + std::to_string(++id_counter_); }

void ChargePoint::retain_rejected() {
  // CHG-2, LOG-5: outbox_rejected is bounded in count and age; what goes is audited.
  try {
    d_.outbox.redact_rejected();
    const auto p = d_.outbox.purge_rejected();
    if (p.rows == 0) return;
    log::info("ocpp", "dropped ", p.rows, " refused message(s) past their retention (", p.by_age, " by age)");
    if (!d_.audit) return;
    d_.audit->record(audit::Event::DataPurged, audit::Outcome::Success, audit::Source::system(),
          audit::Details()
              .text("data", "outboxRejected")
              .number("rows", p.rows)
              .number("byAge", p.by_age)
              .number("firstSeq", p.first_seq)
              .number("lastSeq", p.last_seq)
              .number("maxRows", Outbox::kMaxRejectedRows)
              .number("maxAgeDays", Outbox::kMaxRejectedAge.count() / 24));
  } catch (const std::exception& e) {
    log::error("ocpp", "cannot apply the retention of refused messages: ", e.what());
  }
}

void ChargePoint::start() {
  running_ = true;
  retain_rejected();
  update_certificate_entries();
  // A renewal key without a certificate is left from a renewal that a restart
  // interrupted: with its stored request it goes on (the CSMS may be signing
  // it right now); without one it is of no use.
  if (d_.identity && d_.identity->renewal_key_exists() && !d_.identity->has_candidate()) {
    if (auto csr = d_.identity->load_csr()) {
      renewal_.active = true;
      renewal_.attempts = 0;
      renewal_.csr = std::move(*csr);
      log::info("ocpp", "resuming the station certificate renewal interrupted by a restart (same key and request)");
      audit(audit::Event::ReconfigurationOfSecurityParameters, audit::Outcome::Success,
            audit::Details().text("change", "stationCertificate").text("result", "renewal resumed after a restart"));
    } else {
      try {
        d_.identity->discard_candidate();
      } catch (const std::exception& e) {
        log::warn("ocpp", "cannot remove a stale renewal key: ", e.what());
      }
    }
  }
  begin_network_rotation();
  connect();
  if (renewal_.active) send_sign_certificate();  // queued until BootNotification is accepted
}

void ChargePoint::begin_network_rotation() {
  profiles_.begin(NetworkProfiles::parse_priority(d_.dm.text("OCPPCommCtrlr.NetworkConfigurationPriority")),
                  allow_downgrade());
  for (const auto& s : profiles_.skipped()) log::warn("ocpp", "network profiles: ", s);
}

void ChargePoint::network_attempt_failed(const std::string& reason) {
  const auto from = profiles_.current();
  if (!profiles_.attempt_failed(static_cast<int>(d_.dm.integer("OCPPCommCtrlr.NetworkProfileConnectionAttempts", 3))))
    return;
  const auto& to = profiles_.current();
  reconnect_attempt_ = 0;  // the next slot starts with the shortest back-off
  using_previous_ = false;  // A01: the next slot gets the new password first
  log::warn("ocpp", "network profile slot ", from.slot, " failed ", "(", reason, "); falling back to slot ", to.slot,
            " (", to.url, ", security profile ", to.security_profile, ")");
  if (!fallback_limit_.admit()) return;
  audit::Details d;
  d.text("change", "networkProfileFallback")
      .number("fromSlot", from.slot)
      .number("toSlot", to.slot)
      .number("securityProfile", to.security_profile)
      .text("reason", reason);
  if (auto n = fallback_limit_.take_suppressed()) d.number("suppressedBefore", n);
  audit(audit::Event::ConfigurationChanged, audit::Outcome::Failure, d);
}

void ChargePoint::network_profile_worked() {
  // B10: the slot whose connection was accepted becomes the last good one and
  // its security profile the active one; a change of either is audited.
  confirm_csms_root_change();  // M05: this accepted connection went through the new root?
  const auto& np = profiles_.current();
  std::optional<int> before;
  int profile_before = np.security_profile;
  try {
    before = profiles_.last_good_slot();
    profile_before = profiles_.active_security_profile();
    profiles_.connected();
  } catch (const std::exception& e) {
    log::error("ocpp", "cannot record the working network profile: ", e.what());
    return;
  }
  if (before && *before == np.slot && profile_before == np.security_profile) return;
  log::info("ocpp", "network profile slot ", np.slot, " (security profile ", np.security_profile, ") works",
            before ? "; it was slot " + std::to_string(*before) : std::string());
  if (!before && np.slot == 0) return;  // the first connection ever, with the configured profile
  audit(audit::Event::ReconfigurationOfSecurityParameters, audit::Outcome::Success,
        audit::Details()
            .text("change", "networkProfile")
            .number("slot", np.slot)
            .number("previousSlot", before.value_or(0))
            .number("securityProfile", np.security_profile)
            .number("previousSecurityProfile", profile_before)
            .text("url", np.url));
}

std::pair<std::string, bool> ChargePoint::csms_trust() const {
  // The CSMS roots: the certificate store's bundle (seeded from csms.ca_file,
  // changed by M05/M04), for the OCPP link and for log uploads (COM-9).
  if (!d_.certs) return {d_.cfg.ca_file.string(), false};
  return {d_.certs->csms_bundle_file().string(), d_.certs->csms_bundle_needs_partial_chain()};
}

policy::Principal ChargePoint::csms_principal() const {
  return policy::Principal{policy::Role::Csms, policy::Interface::Wan, csms_url()};
}

void ChargePoint::stop() {
  running_ = false;
  reconnect_timer_.cancel();
  heartbeat_timer_.cancel();
  boot_timer_.cancel();
  call_timer_.cancel();
  outbox_timer_.cancel();
  rotate_timer_.cancel();
  renewal_timer_.cancel();
  stop_log_job();
  conn_.close();
}

void ChargePoint::connect() {
  const NetworkProfile& np = profiles_.current();
  ConnectionSettings s;
  s.url = np.url;
  s.identity = d_.cfg.identity;
  s.security_profile = np.security_profile;
  std::tie(s.ca_file, s.partial_chain) = csms_trust();
  s.max_frame = d_.cfg.max_frame_bytes;
  s.ping_interval = std::chrono::seconds(d_.dm.integer("OCPPCommCtrlr.WebSocketPingInterval", 30));
  log::info("ocpp", "connecting to ", np.url, "/", percent_encode(d_.cfg.identity), " (network profile slot ", np.slot,
            ", security profile ", np.security_profile, ")");
  if (np.security_profile == 1)
    log::warn("ocpp", "*** SECURITY PROFILE 1: OCPP traffic and the password travel UNENCRYPTED (ws://). "
                      "Use only inside a trusted VPN. ***");
  if (np.security_profile == 3) {
    s.client_identity = connection_identity();
    if (!s.client_identity) {
      network_attempt_failed("no usable station certificate");
      return schedule_reconnect();
    }
  }
  // The plaintext exists only for this attempt: unsealed here, wiped by the
  // connection once the Authorization header is built.
  if (d_.password && np.security_profile != 3) {
    try {
      const auto pw = using_previous_ ? d_.password->previous() : d_.password->current();
      s.password.assign(pw.view());
    } catch (const std::exception& e) {
      log::error("ocpp", "cannot unseal the CSMS password: ", e.what());
      if (using_previous_) {
        using_previous_ = false;  // nothing to fall back to; go on with the current one
        return connect();
      }
      network_attempt_failed("the CSMS password cannot be unsealed");
      return schedule_reconnect();
    }
  }
  conn_.connect(s);
  OPENSSL_cleanse(s.password.data(), s.password.size());
}

void ChargePoint::schedule_reconnect() {
  if (!running_) return;
  // RetryBackOff*: wait minimum doubled per attempt (up to RepeatTimes doublings)
  // plus a random share of RandomRange, so that a fleet does not reconnect at once.
  const long long wmin = d_.dm.integer("OCPPCommCtrlr.RetryBackOffWaitMinimum", 3);
  const long long range = d_.dm.integer("OCPPCommCtrlr.RetryBackOffRandomRange", 10);
  const long long repeat = d_.dm.integer("OCPPCommCtrlr.RetryBackOffRepeatTimes", 5);
  const int doublings = static_cast<int>(std::min<long long>(reconnect_attempt_, repeat));
  const long long base = wmin << doublings;
  const long long extra = range > 0 ? std::uniform_int_distribution<long long>(0, range * 1000)(rng_) : 0;
  const auto wait = std::chrono::milliseconds(base * 1000 + extra);
  ++reconnect_attempt_;
  ++stats_.reconnects;
  log::info("ocpp", "reconnecting in ", wait.count(), " ms");
  reconnect_timer_.expires_after(wait);
  reconnect_timer_.async_wait([this](boost::system::error_code ec) {
    if (!ec && running_) connect();
  });
}

void ChargePoint::on_open() {
  log::info("ocpp", "connected; sending BootNotification (", boot_reason_, ")");
  connected_ = true;
  d_.dm.set_internal("OCPPCommCtrlr.ActiveNetworkProfile", std::to_string(profiles_.current().slot));
  d_.dm.set_internal("SecurityCtrlr.SecurityProfile", std::to_string(security_profile()));
  candidate_connected();
  if (rotation_pending_ && d_.password && security_profile() != 3) {
    // A01: the first connection that sent the password (profiles 1/2) decides.
    const audit::Details who = audit::Details().text("variable", "SecurityCtrlr.BasicAuthPassword");
    try {
      if (using_previous_) {
        d_.password->roll_back();
        log::warn("ocpp", "the CSMS refused the new password but accepted the previous one; it is in use again");
        audit(audit::Event::ReconfigurationOfSecurityParameters, audit::Outcome::Failure,
              audit::Details(who).text("result", "new password refused by the CSMS; reverted to the previous one"));
      } else {
        d_.password->confirm();
        log::info("ocpp", "connected with the new password; the previous one is discarded");
        audit(audit::Event::ReconfigurationOfSecurityParameters, audit::Outcome::Success,
              audit::Details(who).text("result", "connected with the new password"));
      }
    } catch (const std::exception& e) {
      log::error("ocpp", "cannot update the sealed password: ", e.what());
    }
    rotation_pending_ = false;
    using_previous_ = false;
    fallback_tried_ = false;
  }
  boot_status_ = BootStatus::None;
  seen_ids_.clear();
  seen_order_.clear();
  send_boot();
}

void ChargePoint::audit(audit::Event e, audit::Outcome o, const audit::Details& d) {
  if (!d_.audit) return;
  d_.audit->record(e, o, audit::Source::of(csms_principal()), d);
}

void ChargePoint::adjust_clock(std::string_view csms_time, std::string_view source) {
  auto t = clock::parse_rfc3339(csms_time);
  if (!t) return;
  // A CSMS time outside 2020-2099 is not believed (it would break every
  // timestamp we send; year 10000 cannot even be written as RFC 3339).
  const auto year = std::chrono::year_month_day(std::chrono::floor<std::chrono::days>(*t)).year();
  if (year < std::chrono::year(2020) || year > std::chrono::year(2099)) {
    log::warn("ocpp", source, ": ignoring an implausible CSMS time");
    return;
  }
  const auto sys = std::chrono::time_point_cast<std::chrono::milliseconds>(std::chrono::system_clock::now());
  const auto before = clock::now_utc();
  clock::set_offset(std::chrono::duration_cast<std::chrono::milliseconds>(*t - sys));
  // NET-6: a time change beyond TimeAdjustmentReportingThreshold is a security event.
  const auto moved = std::chrono::duration_cast<std::chrono::seconds>(clock::now_utc() - before).count();
  const long long threshold = d_.dm.integer("ClockCtrlr.TimeAdjustmentReportingThreshold", 20);
  if (threshold > 0 && std::llabs(moved) > threshold) {
    audit(audit::Event::SettingSystemTime, audit::Outcome::Success,
          audit::Details()
              .text("source", source)
              .text("previous", clock::format_rfc3339(before))
              .text("new", clock::format_rfc3339(clock::now_utc()))
              .number("adjustmentSeconds", moved));
  }
}

void ChargePoint::on_closed(const std::string& reason, int http_status, TlsFailure tls) {
  const bool was_online = online();
  connected_ = false;
  boot_status_ = BootStatus::None;
  heartbeat_timer_.cancel();
  boot_timer_.cancel();
  bool password_retry = false;  // the next attempt is A01's one try of the previous password
  if (http_status == 401) {
    log::error("ocpp", "the CSMS refused our credentials (HTTP 401)");
    audit(audit::Event::FailedToAuthenticateAtCsms, audit::Outcome::Failure,
          audit::Details().number("httpStatus", 401).text("url", csms_url()));
    // A verdict on the password only when this attempt sent it (profiles 1/2).
    if (rotation_pending_ && d_.password && security_profile() != 3) {
      const audit::Details who = audit::Details().text("variable", "SecurityCtrlr.BasicAuthPassword");
      if (!using_previous_ && !fallback_tried_ && d_.password->has_previous()) {
        // A01: the new password does not work; the previous one, once.
        using_previous_ = true;
        fallback_tried_ = true;
        password_retry = true;
        reconnect_attempt_ = 0;
        log::warn("ocpp", "the new password was refused; trying the previous one once");
        audit(audit::Event::ReconfigurationOfSecurityParameters, audit::Outcome::Failure,
              audit::Details(who).text("result", "new password refused (HTTP 401); falling back to the previous one"));
      } else if (using_previous_) {
        using_previous_ = false;  // refused as well: back to the new one, the CSMS set it
        log::warn("ocpp", "the previous password was refused too; going on with the new one");
      }
    }
  }
  // TLS failures, one per reconnect attempt against a rogue or broken server:
  // rate-limited per kind, the repeats counted in the next record.
  auto tls_event = [&](audit::Event e, audit::RecordLimiter& limit) {
    if (!limit.admit()) return;
    audit::Details d;
    d.text("reason", reason);
    if (auto n = limit.take_suppressed()) d.number("suppressedBefore", n);
    audit(e, audit::Outcome::Failure, d);
  };
  candidate_attempt_failed(reason, http_status, tls);
  // B10: after a lost connection, start over at the first slot of the priority
  // list; a failed attempt counts against the current slot. A reconnection the
  // station made itself (new password or certificate) stays on the slot that
  // worked, and A01's retry with the previous password is not a failure of the slot.
  const bool deliberate = std::exchange(keep_slot_, false);
  if (!deliberate && !password_retry) {
    if (was_online) begin_network_rotation();
    else network_attempt_failed(reason);
  }
  switch (tls) {
    case TlsFailure::Certificate:
      tls_event(audit::Event::InvalidCsmsCertificate, tls_limit_[0]);
      break;
    case TlsFailure::Version:
      tls_event(audit::Event::InvalidTLSVersion, tls_limit_[1]);
      break;
    case TlsFailure::CipherSuite:
      tls_event(audit::Event::InvalidTLSCipherSuite, tls_limit_[2]);
      break;
    case TlsFailure::None:
    case TlsFailure::Other:
      break;
  }
  log::warn("ocpp", "connection ", was_online ? "lost" : "failed", ": ", reason);
  // The in-flight CALL will not be answered; outbox messages stay queued.
  if (inflight_) finish_inflight(Outcome{false, {}, "connection closed"});
  while (!queue_.empty()) {
    auto p = std::move(queue_.front());
    queue_.pop_front();
    if (p.cb) p.cb(Outcome{false, {}, "offline"});
  }
  schedule_reconnect();
}

void ChargePoint::send_boot() {
  if (inflight_) return;  // a BootNotification is already under way; its answer re-arms the retry
  json::object cs{{"model", d_.cfg.model}, {"vendorName", d_.cfg.vendor}, {"firmwareVersion", CG_VERSION}};
  if (!d_.cfg.serial.empty()) cs["serialNumber"] = d_.cfg.serial;
  json::object p{{"chargingStation", std::move(cs)}, {"reason", boot_reason_}};
  send_call("BootNotification", p, [this](const Outcome& o) {
    if (!connected_) return;
    long long interval = 0;
    if (o.ok) {
      // The schema allows exactly these three.
      const auto& st = o.payload.at("status").as_string();
      boot_status_ = st == "Accepted" ? BootStatus::Accepted
                     : st == "Pending" ? BootStatus::Pending
                                       : BootStatus::Rejected;
      interval = o.payload.at("interval").to_number<long long>();
      adjust_clock(o.payload.at("currentTime").as_string(), "BootNotification");
    }
    log::info("ocpp", "BootNotification: ",
              o.ok ? std::string(o.payload.at("status").as_string()) : "no valid answer (" + o.error + ")");
    if (o.ok && boot_status_ == BootStatus::Accepted) {
      reconnect_attempt_ = 0;
      network_profile_worked();
      if (interval > 0) d_.dm.set({"OCPPCommCtrlr", "", 0, 0, "HeartbeatInterval", ""}, "Actual", std::to_string(interval));
      if (boot_reason_ != "PowerUp") {
        boot_reason_ = "PowerUp";
        d_.db.set_meta("boot_reason", "PowerUp");
      }
      schedule_heartbeat();
      d_.station.on_online();
      pump();
      return;
    }
    // Pending / Rejected / no answer: nothing but BootNotification until accepted.
    const auto wait = std::chrono::seconds(interval > 0 ? interval : 30);
    boot_timer_.expires_after(wait);
    boot_timer_.async_wait([this](boost::system::error_code ec) {
      if (!ec && connected_ && boot_status_ != BootStatus::Accepted) send_boot();
    });
  }, 0, {});
}

void ChargePoint::schedule_heartbeat() {
  const long long interval = d_.dm.integer("OCPPCommCtrlr.HeartbeatInterval", 300);
  heartbeat_timer_.expires_after(std::chrono::seconds(std::max(1LL, interval)));
  heartbeat_timer_.async_wait([this](boost::system::error_code ec) {
    if (ec || !online()) return;
    call("Heartbeat", json::object{}, [this](const Outcome& o) {
      if (o.ok) adjust_clock(o.payload.at("currentTime").as_string(), "Heartbeat");
    });
    schedule_heartbeat();
  });
}

void ChargePoint::call(std::string action, json::object payload, Callback cb) {
  if (queue_.size() >= kMaxQueued) {
    log::warn("ocpp", "outgoing queue full; dropping ", action);
    if (cb) cb(Outcome{false, {}, "queue full"});
    return;
  }
  queue_.push_back(Pending{std::move(action), std::move(payload), std::move(cb)});
  pump();
}

void ChargePoint::pump() {
  if (in_handler_) {
    pump_deferred_ = true;  // after our answer is queued
    return;
  }
  if (!online() || inflight_) return;
  if (!queue_.empty()) {
    auto p = std::move(queue_.front());
    queue_.pop_front();
    send_call(p.action, p.payload, std::move(p.cb), 0, {});
    return;
  }
  if (std::chrono::steady_clock::now() < outbox_retry_at_) return;
  if (auto m = d_.outbox.front()) {
    json::error_code ec;
    auto v = json::parse(m->payload, ec);
    if (ec || !v.is_object()) {
      log::error("ocpp", "dropping unreadable queued message ", m->seq);
      d_.outbox.remove(m->seq);
      return pump();
    }
    send_call(m->action, v.as_object(), {}, m->seq, m->tx_id);
  }
}

void ChargePoint::send_call(const std::string& action, const json::object& payload, Callback cb,
                            std::int64_t outbox_seq, const std::string& tx_id) {
  // Outbound check against the official schema: a message we would send wrong
  // is a bug; it is logged and not sent.
  if (auto v = schema::validate(action, schema::Kind::Request, payload)) {
    log::error("ocpp", "BUG: outgoing ", action, " violates the schema at ", v->path, ": ", v->message);
    // Kept for diagnosis (never silently deleted), out of the way of the queue.
    if (outbox_seq) {
      d_.outbox.quarantine(outbox_seq, "schema violation at " + v->path);
      retain_rejected();
    }
    if (cb) cb(Outcome{false, {}, "schema violation"});
    return pump();
  }
  InFlight f{next_id(), action, std::move(cb), outbox_seq, tx_id};
  const std::string frame = make_call(f.id, action, payload);
  // Payloads are never logged: they carry badge ids and passwords (LOG-5).
  log::debug("ocpp", "-> CALL ", action, " ", f.id, " (", frame.size(), " bytes)");
  inflight_ = std::move(f);
  ++stats_.calls_out;
  conn_.send(frame);
  const long long timeout = profiles_.current().message_timeout > 0
                                ? profiles_.current().message_timeout
                                : d_.dm.integer("OCPPCommCtrlr.MessageTimeout[Default]", 30);
  call_timer_.expires_after(std::chrono::seconds(timeout));
  call_timer_.async_wait([this, id = inflight_->id](boost::system::error_code ec) {
    if (ec || !inflight_ || inflight_->id != id) return;
    log::warn("ocpp", inflight_->action, " got no answer within MessageTimeout");
    finish_inflight(Outcome{false, {}, "timeout"});
  });
}

void ChargePoint::finish_inflight(const Outcome& o) {
  InFlight f = std::move(*inflight_);
  inflight_.reset();
  call_timer_.cancel();
  if (f.outbox_seq) {
    if (o.ok) {
      d_.outbox.remove(f.outbox_seq);
      if (f.action == "TransactionEvent") d_.station.on_transaction_event_result(f.tx_id, o.payload);
    } else if (connected_) {
      d_.outbox.count_attempt(f.outbox_seq);
      auto m = d_.outbox.front();
      const long long max_attempts = d_.dm.integer("OCPPCommCtrlr.MessageAttempts[TransactionEvent]", 3);
      if (m && m->seq == f.outbox_seq && m->attempts >= max_attempts) {
        log::error("ocpp", "giving up on queued ", f.action, " after ", m->attempts, " attempts (", o.error, ")");
        d_.outbox.quarantine(f.outbox_seq, "refused " + std::to_string(m->attempts) + " times: " + o.error);
        retain_rejected();
      } else {
        const long long wait = d_.dm.integer("OCPPCommCtrlr.MessageAttemptInterval[TransactionEvent]", 10);
        outbox_retry_at_ = std::chrono::steady_clock::now() + std::chrono::seconds(wait);
        outbox_timer_.expires_after(std::chrono::seconds(wait));
        outbox_timer_.async_wait([this](boost::system::error_code ec) {
          if (!ec) pump();
        });
      }
    }
  }
  if (f.cb) f.cb(o);
  pump();
}

void ChargePoint::send_status(int evse, int connector, station::ConnectorStatus status) {
  call("StatusNotification", status_notification_json(evse, connector, status));
}

void ChargePoint::send_meter_values(int evse, std::vector<station::MeterValue> meter_value) {
  call("MeterValues", meter_values_json(evse, meter_value));
}

void ChargePoint::authorize(const station::IdToken& t, std::function<void(std::optional<json::object>)> cb) {
  if (!online()) return cb(std::nullopt);
  call("Authorize", json::object{{"idToken", t.to_json()}}, [cb](const Outcome& o) {
    if (!o.ok) return cb(std::nullopt);
    cb(o.payload.at("idTokenInfo").as_object());
  });
}

void ChargePoint::send_error(const std::string& id, RpcError code, const std::string& description,
                             const std::string& action) {
  ++stats_.errors_sent;
  log::info("ocpp", "CALLERROR ", to_string(code), " for message ", id, ": ", description);
  conn_.send(make_error(id, code, description));
  // InvalidMessages, rate-limited so that a flood cannot fill the audit log.
  if (!invalid_limit_.admit()) return;
  audit::Details d;
  d.text("error", to_string(code)).text("messageId", id).text("description", description);
  if (!action.empty()) d.text("action", action);
  if (auto n = invalid_limit_.take_suppressed()) d.number("suppressedBefore", n);
  audit(audit::Event::InvalidMessages, audit::Outcome::Failure, d);
}

void ChargePoint::on_oversize(std::size_t bytes, std::string id_hint) {
  ++stats_.oversize;
  send_error(id_hint, RpcError::FormatViolation,
             "message of " + std::to_string(bytes) + " bytes exceeds the limit of " +
                 std::to_string(d_.cfg.max_frame_bytes) + " bytes");
}

void ChargePoint::on_message(std::string&& text) {
  Frame f = parse_frame(text);
  log::debug("ocpp", "<- frame of ", text.size(), " bytes");
  if (auto* bad = std::get_if<BadFrame>(&f)) {
    if (bad->answer) return send_error(bad->id, bad->code, bad->message, bad->action);
    log::warn("ocpp", "malformed response from the CSMS: ", bad->message);
    if (inflight_ && inflight_->id == bad->id) finish_inflight(Outcome{false, {}, "malformed response"});
    return;
  }
  if (auto* c = std::get_if<Call>(&f)) {
    ++stats_.calls_in;
    // SetVariables may carry the new BasicAuthPassword: wipe the frame text.
    // SetNetworkProfile may carry VPN/APN secrets (refused, but in memory).
    if (c->action == "SetVariables" || c->action == "SetNetworkProfile") OPENSSL_cleanse(text.data(), text.size());
    return handle_call(std::move(c->id), std::move(c->action), std::move(c->payload.as_object()));
  }
  // CALLRESULT / CALLERROR: must answer our in-flight CALL.
  const std::string& id = std::holds_alternative<CallResult>(f) ? std::get<CallResult>(f).id : std::get<CallError>(f).id;
  if (!inflight_ || inflight_->id != id) {
    log::warn("ocpp", "ignoring a response to unknown message id ", id);
    return;
  }
  if (auto* r = std::get_if<CallResult>(&f)) {
    if (!r->payload.is_object()) return finish_inflight(Outcome{false, {}, "response payload is not an object"});
    if (auto v = schema::validate(inflight_->action, schema::Kind::Response, r->payload)) {
      log::warn("ocpp", inflight_->action, " response violates the schema at ", v->path, ": ", v->message);
      return finish_inflight(Outcome{false, {}, std::string(to_string(v->code))});
    }
    return finish_inflight(Outcome{true, std::move(r->payload.as_object()), {}});
  }
  auto& e = std::get<CallError>(f);
  const auto code = rpc_error_from_string(e.code);
  // The CSMS's description is not logged: it may echo personal data (LOG-5).
  log::warn("ocpp", "CSMS answered ", inflight_->action, " with ", code ? to_string(*code) : std::string_view("unknown error"));
  finish_inflight(Outcome{false, {}, code ? std::string(to_string(*code)) : "GenericError"});
}

void ChargePoint::handle_call(std::string id, std::string action, json::object payload) {
  // COM-5: a CALL id already used in this session is refused (replay).
  if (seen_ids_.count(id)) {
    audit(audit::Event::AttemptedReplayAttacks, audit::Outcome::Failure,
          audit::Details().text("messageId", id).text("action", action));
    conn_.send(make_error(id, RpcError::RpcFrameworkError, "message id already used in this session"));
    ++stats_.errors_sent;
    return;
  }
  seen_ids_.insert(id);
  seen_order_.push_back(id);
  if (seen_order_.size() > kMaxSeenIds) {
    seen_ids_.erase(seen_order_.front());
    seen_order_.pop_front();
  }
  if (boot_status_ == BootStatus::Rejected || boot_status_ == BootStatus::None)
    return send_error(id, RpcError::SecurityError, "BootNotification not accepted");
  if (!schema::has_action(action))
    return send_error(id, RpcError::NotImplemented, "unknown action " + action.substr(0, 64), action);
  if (auto v = schema::validate(action, schema::Kind::Request, payload))
    return send_error(id, v->code, v->path + ": " + v->message, action);
  const auto& r = routes();
  auto it = r.find(action);
  if (it == r.end()) return send_error(id, RpcError::NotImplemented, action + " is not supported by this station", action);
  // AUTHZ-1: the one policy decides, for the CSMS principal over the WAN.
  if (policy::authorize(csms_principal(), it->second.op) != policy::Decision::Allow) {
    log::warn("ocpp", action, " refused by the access policy");
    conn_.send(make_error(id, RpcError::SecurityError, "not permitted"));
    return;
  }
  // Messages the handler causes (StatusNotification, TransactionEvent…) wait
  // until our answer is queued, so the CSMS sees the answer first.
  Reply rep;
  in_handler_ = true;
  try {
    rep = (this->*(it->second.fn))(payload);
  } catch (const std::exception& ex) {
    log::error("ocpp", action, " handler failed: ", ex.what());
    rep = Reply{std::nullopt, RpcError::InternalError, "internal error", {}};
  }
  in_handler_ = false;
  if (!rep.payload) {
    send_error(id, rep.error, rep.description);
  } else if (auto v = schema::validate(action, schema::Kind::Response, *rep.payload)) {
    log::error("ocpp", "BUG: our ", action, " response violates the schema at ", v->path, ": ", v->message);
    send_error(id, RpcError::InternalError, "internal error");
  } else {
    conn_.send(make_result(id, *rep.payload));
    if (rep.after) boost::asio::post(d_.io, rep.after);
  }
  // Only when the handler queued something: an idle pump reads the outbox.
  if (pump_deferred_) {
    pump_deferred_ = false;
    pump();
  }
}

void ChargePoint::tick() {
  if (pending_reset_ && d_.station.idle()) {
    auto reason = *pending_reset_;
    pending_reset_.reset();
    do_reset(reason);
  }
  // COM-10: the station certificate's expiry, hourly (and soon after start).
  if (--expiry_check_countdown_ <= 0) {
    expiry_check_countdown_ = online() ? 3600 : 10;
    check_certificate_expiry();
  }
}

const std::map<std::string, ChargePoint::Route, std::less<>>& ChargePoint::routes() {
  static const std::map<std::string, Route, std::less<>> r{
      {"GetVariables", {Operation::ReadConfiguration, &ChargePoint::on_get_variables}},
      {"SetVariables", {Operation::WriteConfiguration, &ChargePoint::on_set_variables}},
      {"GetBaseReport", {Operation::ReadConfiguration, &ChargePoint::on_get_base_report}},
      {"Reset", {Operation::Reset, &ChargePoint::on_reset}},
      {"RequestStartTransaction", {Operation::StartTransaction, &ChargePoint::on_request_start}},
      {"RequestStopTransaction", {Operation::StopTransaction, &ChargePoint::on_request_stop}},
      {"ChangeAvailability", {Operation::ChangeAvailability, &ChargePoint::on_change_availability}},
      {"UnlockConnector", {Operation::UnlockConnector, &ChargePoint::on_unlock_connector}},
      {"TriggerMessage", {Operation::TriggerMessage, &ChargePoint::on_trigger_message}},
      {"ClearCache", {Operation::ManageAuthorization, &ChargePoint::on_clear_cache}},
      {"SendLocalList", {Operation::ManageAuthorization, &ChargePoint::on_send_local_list}},
      {"GetLocalListVersion", {Operation::ManageAuthorization, &ChargePoint::on_get_local_list_version}},
      {"GetTransactionStatus", {Operation::ReadTransactions, &ChargePoint::on_get_transaction_status}},
      {"DataTransfer", {Operation::VendorExtension, &ChargePoint::on_data_transfer}},
      // SecurityLog; DiagnosticsLog additionally needs ReadDiagnosticsLog (checked in the handler).
      {"GetLog", {Operation::ReadSecurityLog, &ChargePoint::on_get_log}},
      {"CertificateSigned", {Operation::ManageSecuritySettings, &ChargePoint::on_certificate_signed}},
      {"InstallCertificate", {Operation::ManageSecuritySettings, &ChargePoint::on_install_certificate}},
      {"DeleteCertificate", {Operation::ManageSecuritySettings, &ChargePoint::on_delete_certificate}},
      {"GetInstalledCertificateIds", {Operation::ManageSecuritySettings, &ChargePoint::on_get_installed_certificate_ids}},
      // A network profile decides where the station connects and how it authenticates.
      {"SetNetworkProfile", {Operation::ManageSecuritySettings, &ChargePoint::on_set_network_profile}},
  };
  return r;
}

}  // namespace cg::ocpp
