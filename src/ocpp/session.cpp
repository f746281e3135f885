#include "ocpp/session.hpp"

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include <boost/json.hpp>
#include <cstdio>
#include <utility>

#include "core/clock.hpp"
#include "core/log.hpp"
#include "ocpp/frame.hpp"
#include "ocpp/inbound.hpp"
#include "ocpp/schema.hpp"
#include "ocpp/station_messages.hpp"

namespace cg::ocpp {
namespace json = boost::json;
using namespace std::chrono_literals;

namespace {
constexpr std::size_t kMaxQueued = 256;  // in-memory (non-transactional) messages
}  // namespace

Session::Session(Deps d)
    : d_(std::move(d)),
      network_(d_.network),
      conn_(d_.io, *this),
      reconnect_timer_(d_.io),
      heartbeat_timer_(d_.io),
      boot_timer_(d_.io),
      call_timer_(d_.io),
      outbox_timer_(d_.io) {
  unsigned char r[4];
  RAND_bytes(r, sizeof r);
  char buf[16];
  std::snprintf(buf, sizeof buf, "%02x%02x%02x%02x", r[0], r[1], r[2], r[3]);
  id_prefix_ = buf;
  rng_.seed(static_cast<unsigned>(r[0] << 24 | r[1] << 16 | r[2] << 8 | r[3]));
  if (auto reason = d_.db.meta("boot_reason")) boot_reason_ = *reason;
}

Session::~Session() = default;

std::string Session::next_id() { return id_prefix_ + "-" + std::to_string(++id_counter_); }

policy::Principal Session::csms() const {
  return policy::Principal{policy::Role::Csms, policy::Interface::Wan, network_.current().url};
}

std::pair<std::string, bool> Session::csms_trust() const {
  // The CSMS roots: the certificate store's bundle (seeded from csms.ca_file,
  // changed by M05/M04), for the OCPP link and for log uploads (COM-9).
  if (!d_.certs) return {d_.cfg.ca_file.string(), false};
  return {d_.certs->csms_bundle_file().string(), d_.certs->csms_bundle_needs_partial_chain()};
}

void Session::start() {
  running_ = true;
  network_.begin_rotation();
  connect();
}

void Session::stop() {
  running_ = false;
  reconnect_timer_.cancel();
  heartbeat_timer_.cancel();
  boot_timer_.cancel();
  call_timer_.cancel();
  outbox_timer_.cancel();
  for (auto& fn : on_stop_) fn();
  conn_.close();
}

void Session::restart() {
  stop();
  if (d_.request_restart) d_.request_restart();
}

void Session::attempt_failed(const std::string& reason) {
  if (!network_.attempt_failed(reason)) return;
  reconnect_attempt_ = 0;  // the next slot starts with the shortest back-off
  if (credentials_) credentials_->new_slot();
}

void Session::connect() {
  const services::NetworkProfile& np = network_.current();
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
    s.client_identity = credentials_ ? credentials_->client_identity() : nullptr;
    if (!s.client_identity) {
      attempt_failed("no usable station certificate");
      return schedule_reconnect();
    }
  }
  // The plaintext exists only for this attempt: unsealed here, wiped by the
  // connection once the Authorization header is built.
  if (credentials_ && np.security_profile != 3) {
    auto pw = credentials_->password();
    if (!pw) {
      attempt_failed(pw.error().message);
      return schedule_reconnect();
    }
    s.password.assign(pw->view());
  }
  conn_.connect(s);
  OPENSSL_cleanse(s.password.data(), s.password.size());
}

void Session::schedule_reconnect() {
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
  log::info("ocpp", "reconnecting in ", wait.count(), " ms");
  reconnect_timer_.expires_after(wait);
  reconnect_timer_.async_wait([this](boost::system::error_code ec) {
    if (!ec && running_) connect();
  });
}

void Session::reconnect(std::string why) {
  // The answer that caused it is out; the outbox (SQLite) keeps every queued
  // message across the reconnection.
  if (!running_) return;
  log::info("ocpp", "reconnecting with ", why);
  reconnect_attempt_ = 0;
  if (conn_.is_open()) {
    keep_slot_ = true;
    conn_.close();
  }
}

void Session::on_open() {
  log::info("ocpp", "connected; sending BootNotification (", boot_reason_, ")");
  connected_ = true;
  d_.dm.set_internal("OCPPCommCtrlr.ActiveNetworkProfile", std::to_string(network_.current().slot));
  d_.dm.set_internal("SecurityCtrlr.SecurityProfile", std::to_string(security_profile()));
  if (credentials_) credentials_->connected(security_profile());
  boot_ = BootState::None;
  if (dispatcher_) dispatcher_->new_session();
  send_boot();
}

void Session::adjust_clock(std::string_view csms_time, std::string_view source) {
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
  if (threshold > 0 && std::llabs(moved) > threshold)
    d_.events.time_adjusted(csms(), source, clock::format_rfc3339(before), clock::format_rfc3339(clock::now_utc()), moved);
}

void Session::on_closed(const std::string& reason, int http_status, TlsFailure tls) {
  const bool was_online = online();
  connected_ = false;
  boot_ = BootState::None;
  heartbeat_timer_.cancel();
  boot_timer_.cancel();
  if (http_status == 401) {
    log::error("ocpp", "the CSMS refused our credentials (HTTP 401)");
    d_.events.credentials_refused(csms(), 401, network_.current().url);
  }
  // The security block's verdict on the credentials of this attempt (A01, A02).
  const bool password_retry = credentials_ && credentials_->closed(reason, http_status, tls, security_profile());
  if (password_retry) reconnect_attempt_ = 0;
  // B10: after a lost connection, start over at the first slot of the priority
  // list; a failed attempt counts against the current slot. A reconnection the
  // station made itself (new password or certificate) stays on the slot that
  // worked, and A01's retry with the previous password is not a failure of the slot.
  const bool deliberate = std::exchange(keep_slot_, false);
  if (!deliberate && !password_retry) {
    if (was_online) network_.begin_rotation();
    else attempt_failed(reason);
  }
  // TLS failures, one per reconnect attempt against a rogue or broken server:
  // rate-limited per kind by the link-events service.
  switch (tls) {
    case TlsFailure::Certificate: d_.events.tls_failure(csms(), services::LinkEvents::Tls::Certificate, reason); break;
    case TlsFailure::Version: d_.events.tls_failure(csms(), services::LinkEvents::Tls::Version, reason); break;
    case TlsFailure::CipherSuite:
      d_.events.tls_failure(csms(), services::LinkEvents::Tls::CipherSuite, reason);
      break;
    case TlsFailure::None:
    case TlsFailure::Other: break;
  }
  log::warn("ocpp", "connection ", was_online ? "lost" : "failed", ": ", reason);
  // The in-flight CALL will not be answered; outbox messages stay queued.
  if (inflight_) finish_inflight(CallOutcome{false, {}, "connection closed"});
  while (!queue_.empty()) {
    auto p = std::move(queue_.front());
    queue_.pop_front();
    if (p.cb) p.cb(CallOutcome{false, {}, "offline"});
  }
  schedule_reconnect();
}

void Session::send_boot() {
  if (inflight_) return;  // a BootNotification is already under way; its answer re-arms the retry
  json::object cs{{"model", d_.cfg.model}, {"vendorName", d_.cfg.vendor}, {"firmwareVersion", d_.firmware_version}};
  if (!d_.cfg.serial.empty()) cs["serialNumber"] = d_.cfg.serial;
  json::object p{{"chargingStation", std::move(cs)}, {"reason", boot_reason_}};
  send_call("BootNotification", p, [this](const CallOutcome& o) {
    if (!connected_) return;
    long long interval = 0;
    if (o.ok) {
      // The schema allows exactly these three.
      const auto& st = o.payload.at("status").as_string();
      boot_ = st == "Accepted" ? BootState::Accepted : st == "Pending" ? BootState::Pending : BootState::Rejected;
      interval = o.payload.at("interval").to_number<long long>();
      adjust_clock(o.payload.at("currentTime").as_string(), "BootNotification");
    }
    log::info("ocpp", "BootNotification: ",
              o.ok ? std::string(o.payload.at("status").as_string()) : "no valid answer (" + o.error + ")");
    if (o.ok && boot_ == BootState::Accepted) {
      reconnect_attempt_ = 0;
      if (boot_accepted_) boot_accepted_(conn_.verified_chain());  // M05: through a new root?
      network_.worked();
      if (interval > 0) d_.dm.set({"OCPPCommCtrlr", "", 0, 0, "HeartbeatInterval", ""}, "Actual", std::to_string(interval));
      if (boot_reason_ != "PowerUp") {
        boot_reason_ = "PowerUp";
        d_.db.set_meta("boot_reason", "PowerUp");
      }
      schedule_heartbeat();
      if (online_) online_();
      pump();
      return;
    }
    // Pending / Rejected / no answer: nothing but BootNotification until accepted.
    const auto wait = std::chrono::seconds(interval > 0 ? interval : 30);
    boot_timer_.expires_after(wait);
    boot_timer_.async_wait([this](boost::system::error_code ec) {
      if (!ec && connected_ && boot_ != BootState::Accepted) send_boot();
    });
  }, 0, {});
}

void Session::schedule_heartbeat() {
  const long long interval = d_.dm.integer("OCPPCommCtrlr.HeartbeatInterval", 300);
  heartbeat_timer_.expires_after(std::chrono::seconds(std::max(1LL, interval)));
  heartbeat_timer_.async_wait([this](boost::system::error_code ec) {
    if (ec || !online()) return;
    heartbeat_now();
    schedule_heartbeat();
  });
}

void Session::heartbeat_now() {
  call("Heartbeat", json::object{}, [this](const CallOutcome& o) {
    if (o.ok) adjust_clock(o.payload.at("currentTime").as_string(), "Heartbeat");
  });
}

void Session::call(std::string action, json::object payload, Callback cb) {
  if (queue_.size() >= kMaxQueued) {
    log::warn("ocpp", "outgoing queue full; dropping ", action);
    if (cb) cb(CallOutcome{false, {}, "queue full"});
    return;
  }
  queue_.push_back(Pending{std::move(action), std::move(payload), std::move(cb)});
  pump();
}

void Session::queue_persistent(std::string action, const json::object& payload) {
  d_.outbox.push(action, json::serialize(payload));
  if (running_) pump();  // when stopping, it goes out after the restart
}

void Session::send_frame(std::string frame, Connection::Written done) { conn_.send(std::move(frame), std::move(done)); }

void Session::pump() {
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

void Session::send_call(const std::string& action, const json::object& payload, Callback cb, std::int64_t outbox_seq,
                        const std::string& tx_id) {
  // Outbound check against the official schema: a message we would send wrong
  // is a bug; it is logged and not sent.
  if (auto v = schema::validate(action, schema::Kind::Request, payload)) {
    log::error("ocpp", "BUG: outgoing ", action, " violates the schema at ", v->path, ": ", v->message);
    // Kept for diagnosis (never silently deleted), out of the way of the queue.
    if (outbox_seq) {
      d_.outbox.quarantine(outbox_seq, "schema violation at " + v->path);
      if (quarantined_) quarantined_();
    }
    if (cb) cb(CallOutcome{false, {}, "schema violation"});
    return pump();
  }
  InFlight f{next_id(), action, std::move(cb), outbox_seq, tx_id};
  const std::string frame = make_call(f.id, action, payload);
  // Payloads are never logged: they carry badge ids and passwords (LOG-5).
  log::debug("ocpp", "-> CALL ", action, " ", f.id, " (", frame.size(), " bytes)");
  inflight_ = std::move(f);
  conn_.send(frame);
  const long long timeout = network_.current().message_timeout > 0
                                ? network_.current().message_timeout
                                : d_.dm.integer("OCPPCommCtrlr.MessageTimeout[Default]", 30);
  call_timer_.expires_after(std::chrono::seconds(timeout));
  call_timer_.async_wait([this, id = inflight_->id](boost::system::error_code ec) {
    if (ec || !inflight_ || inflight_->id != id) return;
    log::warn("ocpp", inflight_->action, " got no answer within MessageTimeout");
    finish_inflight(CallOutcome{false, {}, "timeout"});
  });
}

void Session::finish_inflight(const CallOutcome& o) {
  InFlight f = std::move(*inflight_);
  inflight_.reset();
  call_timer_.cancel();
  if (f.outbox_seq) {
    if (o.ok) {
      d_.outbox.remove(f.outbox_seq);
      if (f.action == "TransactionEvent" && tx_answer_) tx_answer_(f.tx_id, o.payload);
    } else if (connected_) {
      d_.outbox.count_attempt(f.outbox_seq);
      auto m = d_.outbox.front();
      const long long max_attempts = d_.dm.integer("OCPPCommCtrlr.MessageAttempts[TransactionEvent]", 3);
      if (m && m->seq == f.outbox_seq && m->attempts >= max_attempts) {
        log::error("ocpp", "giving up on queued ", f.action, " after ", m->attempts, " attempts (", o.error, ")");
        d_.outbox.quarantine(f.outbox_seq, "refused " + std::to_string(m->attempts) + " times: " + o.error);
        if (quarantined_) quarantined_();
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

void Session::send_status(int evse, int connector, station::ConnectorStatus status) {
  call("StatusNotification", status_notification_json(evse, connector, status));
}

void Session::send_meter_values(int evse, std::vector<station::MeterValue> meter_value) {
  call("MeterValues", meter_values_json(evse, meter_value));
}

void Session::authorize(const station::IdToken& t, std::function<void(std::optional<json::object>)> cb) {
  if (!online()) return cb(std::nullopt);
  call("Authorize", json::object{{"idToken", t.to_json()}}, [cb](const CallOutcome& o) {
    if (!o.ok) return cb(std::nullopt);
    cb(o.payload.at("idTokenInfo").as_object());
  });
}

void Session::on_oversize(std::size_t bytes, std::string id_hint) {
  if (dispatcher_)
    dispatcher_->send_error(id_hint, RpcError::FormatViolation,
                            "message of " + std::to_string(bytes) + " bytes exceeds the limit of " +
                                std::to_string(d_.cfg.max_frame_bytes) + " bytes");
}

void Session::on_message(std::string&& text) {
  log::debug("ocpp", "<- frame of ", text.size(), " bytes");
  Inbound in = decode(text, [this](std::string_view a) { return dispatcher_ && dispatcher_->serves(a); });
  if (auto* bad = std::get_if<BadFrame>(&in)) {
    if (bad->answer) {
      if (dispatcher_) dispatcher_->send_error(bad->id, bad->code, bad->message, bad->action);
      return;
    }
    log::warn("ocpp", "malformed response from the CSMS: ", bad->message);
    if (inflight_ && inflight_->id == bad->id) finish_inflight(CallOutcome{false, {}, "malformed response"});
    return;
  }
  if (auto* c = std::get_if<InboundCall>(&in)) {
    // SetVariables may carry the new BasicAuthPassword: wipe the frame text.
    // SetNetworkProfile may carry VPN/APN secrets (refused, but in memory).
    if (c->action == "SetVariables" || c->action == "SetNetworkProfile") OPENSSL_cleanse(text.data(), text.size());
    if (!dispatcher_) return;
    // Messages the request causes (StatusNotification, TransactionEvent…) wait
    // until our answer is queued, so the CSMS sees the answer first.
    in_handler_ = true;
    dispatcher_->handle(std::move(*c));
    in_handler_ = false;
    // Only when the handler queued something: an idle pump reads the outbox.
    if (pump_deferred_) {
      pump_deferred_ = false;
      pump();
    }
    return;
  }
  // CALLRESULT / CALLERROR: must answer our in-flight CALL.
  const std::string& id =
      std::holds_alternative<CallResult>(in) ? std::get<CallResult>(in).id : std::get<CallError>(in).id;
  if (!inflight_ || inflight_->id != id) {
    log::warn("ocpp", "ignoring a response to unknown message id ", id);
    return;
  }
  if (auto* r = std::get_if<CallResult>(&in)) {
    if (!r->payload.is_object()) return finish_inflight(CallOutcome{false, {}, "response payload is not an object"});
    if (auto v = schema::validate(inflight_->action, schema::Kind::Response, r->payload)) {
      log::warn("ocpp", inflight_->action, " response violates the schema at ", v->path, ": ", v->message);
      return finish_inflight(CallOutcome{false, {}, std::string(to_string(v->code))});
    }
    return finish_inflight(CallOutcome{true, std::move(r->payload.as_object()), {}});
  }
  auto& e = std::get<CallError>(in);
  const auto code = rpc_error_from_string(e.code);
  // The CSMS's description is not logged: it may echo personal data (LOG-5).
  log::warn("ocpp", "CSMS answered ", inflight_->action, " with ", code ? to_string(*code) : std::string_view("unknown error"));
  finish_inflight(CallOutcome{false, {}, code ? std::string(to_string(*code)) : "GenericError"});
}

}  // namespace cg::ocpp
