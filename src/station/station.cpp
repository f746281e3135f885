#include "station/station.hpp"

#include <openssl/rand.h>

#include <boost/json.hpp>
#include <cmath>
#include <cstdio>

#include "core/clock.hpp"
#include "core/log.hpp"

namespace cg::station {
namespace json = boost::json;
using steady = std::chrono::steady_clock;

std::string new_transaction_id() {
  unsigned char b[16];
  if (RAND_bytes(b, sizeof b) != 1) throw std::runtime_error("CSPRNG failure");
  b[6] = static_cast<unsigned char>((b[6] & 0x0f) | 0x40);
  b[8] = static_cast<unsigned char>((b[8] & 0x3f) | 0x80);
  char out[37];
  std::snprintf(out, sizeof out, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0], b[1],
                b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15]);
  return out;
}

std::string_view to_string(ConnectorStatus s) {
  switch (s) {
    case ConnectorStatus::Available: return "Available";
    case ConnectorStatus::Occupied: return "Occupied";
    case ConnectorStatus::Reserved: return "Reserved";
    case ConnectorStatus::Unavailable: return "Unavailable";
    case ConnectorStatus::Faulted: return "Faulted";
  }
  return "Unavailable";
}

std::string_view to_string(TxEventType t) {
  switch (t) {
    case TxEventType::Started: return "Started";
    case TxEventType::Updated: return "Updated";
    case TxEventType::Ended: return "Ended";
  }
  return "Updated";
}

namespace {
std::string now_text() { return clock::format_rfc3339(clock::now_utc(), true); }
}  // namespace

Station::Station(const config::Config& cfg, storage::Db& db, core::DeviceModel& dm, TxEventSink& events,
                 AuthStore& auth, ControlLoop& loop)
    : cfg_(cfg), db_(db), dm_(dm), events_(events), auth_(auth), loop_(loop) {
  const auto regs = stored_meter_registers(db, cfg.evses.size());
  for (std::size_t i = 0; i < cfg.evses.size(); ++i) {
    EvseState e;
    e.id = static_cast<int>(i + 1);
    e.connectors = cfg.evses[i].connectors;
    e.energy_wh = regs[i];
    e.voltage_v = cfg.evses[i].voltage_v;
    evses_.push_back(e);
  }
  for (auto& e : evses_) {
    const std::string k = "EVSE@" + std::to_string(e.id);
    const int id = e.id;
    dm_.set_dynamic(k + ".AvailabilityState", [this, id] { return std::string(to_string(connector_status(*evse(id)))); });
    dm_.set_dynamic(k + ".Power", [this, id] {
      char b[32];
      std::snprintf(b, sizeof b, "%.1f", evse(id)->power_w);
      return std::string(b);
    });
    for (int c = 1; c <= e.connectors; ++c) {
      dm_.set_dynamic("Connector@" + std::to_string(id) + ":" + std::to_string(c) + ".AvailabilityState",
                      [this, id, c] { return std::string(to_string(connector_status(*evse(id), c))); });
    }
  }
  dm_.set_dynamic("ChargingStation.AvailabilityState",
                  [this] { return station_operative_ ? std::string("Available") : std::string("Unavailable"); });
  dm_.set_dynamic("LocalAuthListCtrlr.Entries", [this] { return std::to_string(auth_.list_entries()); });
}

std::vector<double> Station::stored_meter_registers(storage::Db& db, std::size_t n) {
  std::vector<double> out(n, 0.0);
  for (std::size_t i = 0; i < n; ++i) {
    if (auto v = db.meta("meter." + std::to_string(i + 1))) out[i] = std::stod(*v);
  }
  return out;
}

EvseState* Station::evse(int id) {
  if (id < 1 || id > static_cast<int>(evses_.size())) return nullptr;
  return &evses_[static_cast<std::size_t>(id - 1)];
}

void Station::recover() {
  {
    auto st = db_.prepare("SELECT evse_id, operative FROM availability");
    while (st.step()) {
      const int id = static_cast<int>(st.col_int(0));
      if (id == 0) station_operative_ = st.col_int(1) != 0;
      else if (auto* e = evse(id)) e->operative = st.col_int(1) != 0;
    }
  }
  // E: transactions that were running when the station lost power end now.
  struct Open { std::string id; int evse; int seq; double energy; long long remote_id; bool has_remote; };
  std::vector<Open> open;
  {
    auto st = db_.prepare("SELECT tx_id, evse_id, seq_no, energy_wh, remote_start_id FROM transactions");
    while (st.step()) {
      open.push_back({st.col_text(0), static_cast<int>(st.col_int(1)), static_cast<int>(st.col_int(2)),
                      st.col_double(3), st.col_int(4), !st.col_null(4)});
    }
  }
  for (const auto& o : open) {
    EvseState orphan;  // the EVSE was removed from the configuration since
    orphan.id = o.evse;
    EvseState* e = evse(o.evse);
    if (!e) e = &orphan;
    Transaction tx;
    tx.id = o.id;
    tx.seq_no = o.seq;
    // The idToken is not needed: an Ended(PowerLoss) event does not carry it (E06).
    if (o.has_remote) tx.remote_start_id = o.remote_id;
    e->tx = tx;
    e->energy_wh = std::max(e->energy_wh, o.energy);
    log::warn("station", "transaction ", o.id, " on EVSE ", o.evse, " was interrupted; ending it (PowerLoss)");
    end_transaction(*e, "PowerLoss", "AbnormalCondition");
  }
  for (auto& e : evses_) apply_power(e);
}

bool Station::idle() const {
  for (const auto& e : evses_)
    if (e.tx) return false;
  return true;
}

std::optional<int> Station::evse_of_transaction(const std::string& tx_id) const {
  for (const auto& e : evses_)
    if (e.tx && e.tx->id == tx_id) return e.id;
  return std::nullopt;
}

ConnectorStatus Station::connector_status(const EvseState& e, int connector) const {
  // The simulated EV always uses connector 1; the others of the EVSE are free.
  if (connector == 1) {
    if (e.cp == CpState::F || e.cp == CpState::E) return ConnectorStatus::Faulted;
    if (e.tx || e.cp != CpState::A) return ConnectorStatus::Occupied;
  }
  if (!usable(e)) return ConnectorStatus::Unavailable;
  return ConnectorStatus::Available;
}

void Station::update_status(EvseState& e) {
  const ConnectorStatus s = connector_status(e);
  if (s == e.last_status) return;
  e.last_status = s;
  log::info("station", "EVSE ", e.id, " connector 1 is ", to_string(s));
  // While offline nothing is sent: on_online() reports every connector afterwards.
  if (uplink_ && uplink_->online()) uplink_->send_status(e.id, 1, s);
}

void Station::on_online() {
  for (auto& e : evses_) {
    e.last_status = connector_status(e);
    for (int c = 1; c <= e.connectors; ++c) {
      uplink_->send_status(e.id, c, connector_status(e, c));
    }
  }
}

void Station::apply_power(EvseState& e) {
  // Availability never cuts a running transaction: a change to Inoperative
  // during one is Scheduled (G03/G04) and only stops new sessions.
  const bool on = e.tx.has_value() && e.cp != CpState::F;
  loop_.command(HwCommand{on ? HwCommand::Kind::EnablePower : HwCommand::Kind::DisablePower, e.id});
}

void Station::persist_meter_register(const EvseState& e) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.3f", e.energy_wh);
  db_.set_meta("meter." + std::to_string(e.id), buf);
}

void Station::persist_meter(EvseState& e) {
  persist_meter_register(e);
  if (e.tx) {
    db_.prepare("UPDATE transactions SET energy_wh=? WHERE tx_id=?").bind(1, e.energy_wh).bind(2, e.tx->id).run();
  }
}

void Station::on_loop_event(const LoopEvent& ev) {
  EvseState* e = evse(ev.evse);
  if (!e) return;
  e->energy_wh = std::max(e->energy_wh, ev.energy_wh);
  e->power_w = ev.power_w;
  e->current_a = ev.current_a;
  e->voltage_v = ev.voltage_v;
  if (ev.kind != LoopEvent::Kind::StateChanged) return;
  const CpState old = e->cp;
  e->cp = ev.state;
  log::info("station", "EVSE ", e->id, " state ", to_string(old), " -> ", to_string(ev.state));
  if (ev.state == CpState::A) {
    if (e->tx) end_transaction(*e, "EVDisconnected", "EVCommunicationLost");
    drop_authorization(*e);
  } else if (ev.state == CpState::F || ev.state == CpState::E) {
    if (e->tx) end_transaction(*e, "Other", "AbnormalCondition");
  } else if (old == CpState::A && ev.state == CpState::B) {
    if (e->authorized) try_start(*e, e->authorized_remote_id ? "RemoteStart" : "CablePluggedIn");
  } else if (e->tx) {
    const std::string cs = ev.state == CpState::C ? "Charging" : "SuspendedEV";
    if (cs != e->tx->charging_state) {
      e->tx->charging_state = cs;
      transaction_event(*e, TxEventType::Updated, "ChargingStateChanged", {});
    }
  }
  update_status(*e);
}

bool Station::accepted(const std::optional<json::object>& info) const {
  if (!info) return false;
  const auto* st = info->if_contains("status");
  return st && st->is_string() && st->as_string() == "Accepted";
}

void Station::authorize_token(const IdToken& t, std::function<void(bool)> done) {
  if (!dm_.boolean("AuthCtrlr.Enabled")) return done(true);
  const long long lifetime = dm_.integer("AuthCacheCtrlr.LifeTime", 86400);
  const bool cache_on = dm_.boolean("AuthCacheCtrlr.Enabled");
  auto local = [&]() -> std::optional<json::object> {
    if (dm_.boolean("LocalAuthListCtrlr.Enabled"))
      if (auto i = auth_.from_list(t)) return i;
    if (cache_on) return auth_.from_cache(t, lifetime);
    return std::nullopt;
  };
  // Without an answer from the CSMS: a token known locally is decided by its
  // stored status (a Blocked or Expired token is never accepted, whatever the
  // offline settings); an unknown one only with OfflineTxForUnknownIdEnabled.
  auto decide_offline = [this, local](std::function<void(bool)> cb) {
    const auto known = local();
    if (known && !accepted(known)) return cb(false);
    if (known) return cb(dm_.boolean("AuthCtrlr.LocalAuthorizeOffline"));
    cb(dm_.boolean("AuthCtrlr.OfflineTxForUnknownIdEnabled"));
  };
  const bool online = uplink_ && uplink_->online();
  if (online) {
    if (dm_.boolean("AuthCtrlr.LocalPreAuthorize")) {
      if (auto i = local(); accepted(i)) return done(true);
    }
    if (dm_.boolean("AuthCtrlr.DisableRemoteAuthorization")) return done(accepted(local()));
    uplink_->authorize(t, [this, t, done, cache_on, decide_offline](std::optional<json::object> info) {
      if (!info) return decide_offline(done);  // no answer: decide as offline
      if (cache_on) auth_.cache_put(t, *info);
      done(accepted(info));
    });
    return;
  }
  decide_offline(done);
}

void Station::present_token(int evse_id, const IdToken& t) {
  EvseState* e = evse(evse_id);
  if (!e) return;
  if (e->tx) {
    if (e->tx->token && *e->tx->token == t) {
      log::info("station", "EVSE ", e->id, ": ", t.masked(), " ends the charge");
      end_transaction(*e, "Local", "StopAuthorized");
      drop_authorization(*e);
      apply_power(*e);
      update_status(*e);
    } else {
      log::info("station", "EVSE ", e->id, ": ", t.masked(), " is not the token of the running transaction");
    }
    return;
  }
  if (!usable(*e) || e->cp == CpState::F || e->authorizing || !sessions_allowed()) {
    log::info("station", "EVSE ", e->id, ": token ignored (unavailable, busy, or not accepted by the CSMS)");
    return;
  }
  e->authorizing = true;
  authorize_token(t, [this, evse_id, t](bool ok) {
    EvseState* ev = evse(evse_id);
    ev->authorizing = false;
    log::info("station", "EVSE ", evse_id, ": ", t.masked(), ok ? " authorized" : " not authorized");
    if (!ok || ev->tx) return;
    ev->authorized = t;
    ev->authorized_remote_id.reset();
    ev->authorized_at = steady::now();
    if (ev->cp != CpState::A) try_start(*ev, "Authorized");
  });
}

bool Station::sessions_allowed() const {
  // TxBeforeAcceptedEnabled = false: no transaction while the CSMS answered
  // the BootNotification Pending or Rejected (offline is a different case).
  if (uplink_ && uplink_->boot_refused()) return false;
  return !no_new_sessions_;
}

void Station::set_install_hold(bool on) {
  if (install_hold_ == on) return;
  install_hold_ = on;
  log::info("station", on ? "EVSEs not in use are Unavailable while a firmware install waits"
                          : "firmware install hold ended: availability restored");
  for (auto& e : evses_) {
    if (on && !e.tx) drop_authorization(e);
    update_status(e);
  }
}

void Station::drop_authorization(EvseState& e) {
  e.authorized.reset();
  e.authorized_remote_id.reset();
}

void Station::try_start(EvseState& e, const std::string& trigger) {
  if (e.tx || !e.authorized || e.cp == CpState::A || e.cp == CpState::F) return;
  if (!usable(e) || !sessions_allowed()) return drop_authorization(e);
  start_transaction(e, trigger);
  update_status(e);
}

Station::StartResult Station::request_start(const IdToken& t, long long remote_start_id, std::optional<int> evse_id) {
  EvseState* e = nullptr;
  if (evse_id) {
    e = evse(*evse_id);
    if (!e) return {false, {}, "UnknownEvse"};
  } else {
    for (auto& c : evses_) {
      if (!c.tx && usable(c) && c.cp != CpState::F) {
        e = &c;
        break;
      }
    }
    if (!e) return {false, {}, "NoFreeEvse"};
  }
  if (e->tx) return {false, e->tx->id, "TxInProgress"};
  if (!sessions_allowed()) return {false, {}, "NotAccepted"};
  if (!usable(*e) || e->cp == CpState::F) return {false, {}, "Unavailable"};
  const int id = e->id;
  auto grant = [this, id, t, remote_start_id](bool ok) {
    EvseState* ev = evse(id);
    if (!ok || ev->tx) return;
    ev->authorized = t;
    ev->authorized_remote_id = remote_start_id;
    ev->authorized_at = steady::now();
    if (ev->cp != CpState::A) try_start(*ev, "RemoteStart");
  };
  if (dm_.boolean("AuthCtrlr.AuthorizeRemoteStart")) {
    authorize_token(t, grant);
  } else {
    grant(true);
  }
  return {true, e->tx ? e->tx->id : std::string(), {}};
}

bool Station::request_stop(const std::string& tx_id) {
  for (auto& e : evses_) {
    if (e.tx && e.tx->id == tx_id) {
      end_transaction(e, "Remote", "RemoteStop");
      drop_authorization(e);
      update_status(e);
      return true;
    }
  }
  return false;
}

Station::AvailStatus Station::change_availability(std::optional<int> evse_id, std::optional<int> connector,
                                                  bool operative) {
  auto store = [this](int id, bool op) {
    db_.prepare(
           "INSERT INTO availability(evse_id,operative) VALUES(?,?) "
           "ON CONFLICT(evse_id) DO UPDATE SET operative=excluded.operative")
        .bind(1, static_cast<std::int64_t>(id))
        .bind(2, static_cast<std::int64_t>(op ? 1 : 0))
        .run();
  };
  if (!evse_id || *evse_id == 0) {
    station_operative_ = operative;
    store(0, operative);
    bool busy = false;
    for (auto& e : evses_) {
      busy = busy || (e.tx && !operative);
      if (!operative) drop_authorization(e);
      update_status(e);
    }
    return busy ? AvailStatus::Scheduled : AvailStatus::Accepted;
  }
  EvseState* e = evse(*evse_id);
  if (!e || (connector && (*connector < 1 || *connector > e->connectors))) return AvailStatus::Rejected;
  store(e->id, operative);
  e->operative = operative;
  if (!operative) drop_authorization(*e);
  update_status(*e);
  return e->tx && !operative ? AvailStatus::Scheduled : AvailStatus::Accepted;
}

Station::UnlockStatus Station::unlock(int evse_id, int connector) {
  EvseState* e = evse(evse_id);
  if (!e || connector < 1 || connector > e->connectors) return UnlockStatus::UnknownConnector;
  if (e->tx && e->tx->token) return UnlockStatus::OngoingAuthorizedTransaction;
  if (e->tx) end_transaction(*e, "Other", "UnlockCommand");
  log::info("station", "EVSE ", evse_id, " connector ", connector, " unlocked");
  return UnlockStatus::Unlocked;
}

void Station::end_all_transactions(const std::string& reason, const std::string& trigger) {
  for (auto& e : evses_) {
    if (e.tx) {
      end_transaction(e, reason, trigger);
      update_status(e);
    }
  }
}

void Station::on_transaction_event_result(const std::string& tx_id, const json::object& response) {
  const auto* info = response.if_contains("idTokenInfo");
  if (!info || !info->is_object()) return;
  auto id = evse_of_transaction(tx_id);
  if (!id) return;
  EvseState* e = evse(*id);
  if (e->tx->token && dm_.boolean("AuthCacheCtrlr.Enabled")) auth_.cache_put(*e->tx->token, info->as_object());
  if (!accepted(info->as_object()) && dm_.boolean("TxCtrlr.StopTxOnInvalidId")) {
    log::info("station", "CSMS did not accept the token of transaction ", tx_id, "; stopping it");
    end_transaction(*e, "DeAuthorized", "Deauthorized");
    drop_authorization(*e);
    update_status(*e);
  }
}

std::vector<MeterValue> Station::meter_value(const EvseState& e, std::string_view context, std::string_view key) const {
  MeterValue mv{now_text(), std::string(context), {}};
  const std::string list = dm_.text(key);
  auto has = [&](std::string_view m) { return list.find(m) != std::string::npos; };
  if (has("Energy.Active.Import.Register")) mv.samples.push_back({e.energy_wh, "Energy.Active.Import.Register", "Wh"});
  if (has("Power.Active.Import")) mv.samples.push_back({e.power_w, "Power.Active.Import", "W"});
  if (has("Current.Import")) mv.samples.push_back({e.current_a, "Current.Import", "A"});
  if (has("Voltage")) mv.samples.push_back({e.voltage_v, "Voltage", "V"});
  if (mv.samples.empty()) mv.samples.push_back({e.energy_wh, "Energy.Active.Import.Register", "Wh"});
  return {std::move(mv)};
}

void Station::transaction_event(EvseState& e, TxEventType type, const std::string& trigger,
                                std::vector<MeterValue> meter, const std::string& stopped_reason) {
  Transaction& tx = *e.tx;
  TxEvent ev;
  ev.type = type;
  ev.timestamp = now_text();
  ev.trigger = trigger;
  ev.seq_no = tx.seq_no;
  ev.transaction_id = tx.id;
  ev.charging_state = tx.charging_state;
  ev.stopped_reason = stopped_reason;
  if (tx.remote_start_id && type == TxEventType::Started) ev.remote_start_id = tx.remote_start_id;
  ev.offline = !(uplink_ && uplink_->online());
  // The idToken goes with the event that starts the authorization, and with
  // Ended only when the driver's badge ended it (E06: not for remote stops,
  // unplugging, power loss…, which would make the CSMS authorize it again).
  if (tx.token && (type == TxEventType::Started || (type == TxEventType::Ended && stopped_reason == "Local")))
    ev.id_token = *tx.token;
  if (type == TxEventType::Started) ev.evse_id = e.id;
  ev.meter = std::move(meter);
  // The event and the next seqNo are stored in one SQLite transaction: after
  // kill -9 the queued events and the counter agree.
  // Memory changes only after the commit: a failed write leaves no gap.
  storage::Db::Tx dbtx(db_);
  events_.queue(ev);
  if (type == TxEventType::Ended) {
    db_.prepare("DELETE FROM transactions WHERE tx_id=?").bind(1, tx.id).run();
  } else {
    db_.prepare("UPDATE transactions SET seq_no=?, energy_wh=? WHERE tx_id=?")
        .bind(1, static_cast<std::int64_t>(tx.seq_no + 1))
        .bind(2, e.energy_wh)
        .bind(3, tx.id)
        .run();
  }
  persist_meter_register(e);
  dbtx.commit();
  ++tx.seq_no;
  tx.last_update = steady::now();
  // Inside an enclosing unit of work the message is not durable yet: the
  // caller announces it after its commit.
  if (uplink_ && !in_unit_of_work_) uplink_->outbox_changed();
}

void Station::start_transaction(EvseState& e, const std::string& trigger) {
  // The transaction row and its Started event are one commit: after a crash
  // either both exist or neither.
  storage::Db::Tx dbtx(db_);
  // Until the commit the Started event is not durable: announce it afterwards.
  struct UnitOfWork {
    bool& flag;
    explicit UnitOfWork(bool& f) : flag(f) { flag = true; }
    ~UnitOfWork() { flag = false; }
  } unit(in_unit_of_work_);
  Transaction tx;
  tx.id = new_transaction_id();
  tx.token = e.authorized;
  tx.remote_start_id = e.authorized_remote_id;
  tx.energy_start_wh = e.energy_wh;
  tx.charging_state = e.cp == CpState::C ? "Charging" : "EVConnected";
  {
    auto st = db_.prepare(
        "INSERT INTO transactions(tx_id,evse_id,connector_id,seq_no,started_at,energy_wh,token_hash,remote_start_id) "
        "VALUES(?,?,1,0,?,?,?,?)");
    st.bind(1, tx.id).bind(2, static_cast<std::int64_t>(e.id)).bind(3, now_text()).bind(4, e.energy_wh);
    // CHG-2: only the keyed hash is stored; the Started event carries the id
    // until the CSMS has it, and memory keeps it for the badge that stops.
    if (tx.token) st.bind(5, auth_.token_key(*tx.token));
    else st.bind_null(5);
    if (tx.remote_start_id) st.bind(6, static_cast<std::int64_t>(*tx.remote_start_id));
    else st.bind_null(6);
    st.run();
  }
  e.tx = tx;
  try {
    transaction_event(e, TxEventType::Started, trigger, meter_value(e, "Transaction.Begin", "SampledDataCtrlr.TxStartedMeasurands"));
    dbtx.commit();
  } catch (...) {
    e.tx.reset();  // rolled back: no transaction in memory either
    throw;
  }
  log::info("station", "EVSE ", e.id, ": transaction ", tx.id, " started (", trigger, ")");
  in_unit_of_work_ = false;
  if (uplink_) uplink_->outbox_changed();
  apply_power(e);
}

void Station::end_transaction(EvseState& e, const std::string& reason, const std::string& trigger) {
  if (!e.tx) return;
  e.tx->charging_state = e.cp == CpState::A ? "Idle" : "EVConnected";
  log::info("station", "EVSE ", e.id, ": transaction ", e.tx->id, " ended (", reason, "), ",
            static_cast<long long>(e.energy_wh - e.tx->energy_start_wh), " Wh");
  transaction_event(e, TxEventType::Ended, trigger, meter_value(e, "Transaction.End", "SampledDataCtrlr.TxEndedMeasurands"), reason);
  e.tx.reset();
  apply_power(e);
}

void Station::tick() {
  const auto now = steady::now();
  const auto timeout = std::chrono::seconds(dm_.integer("TxCtrlr.EVConnectionTimeOut", 60));
  const auto interval = std::chrono::seconds(dm_.integer("SampledDataCtrlr.TxUpdatedInterval", 60));
  for (auto& e : evses_) {
    if (e.authorized && !e.tx && e.cp == CpState::A && now - e.authorized_at > timeout) {
      log::info("station", "EVSE ", e.id, ": no EV connected within EVConnectionTimeOut; authorization dropped");
      drop_authorization(e);
    }
    if (e.tx && interval.count() > 0 && dm_.boolean("SampledDataCtrlr.Enabled") && now - e.tx->last_update >= interval) {
      transaction_event(e, TxEventType::Updated, "MeterValuePeriodic",
                        meter_value(e, "Sample.Periodic", "SampledDataCtrlr.TxUpdatedMeasurands"));
    }
  }
  // Clock-aligned meter values (AlignedDataCtrlr.Interval, 0 = off).
  const long long aligned = dm_.integer("AlignedDataCtrlr.Interval", 0);
  if (aligned > 0 && dm_.boolean("AlignedDataCtrlr.Enabled")) {
    const auto wall = std::chrono::system_clock::now();
    const auto secs = std::chrono::duration_cast<std::chrono::seconds>(wall.time_since_epoch()).count();
    const auto slot = std::chrono::system_clock::time_point(std::chrono::seconds(secs - secs % aligned));
    if (slot != last_aligned_) {
      const bool first = last_aligned_.time_since_epoch().count() == 0;
      last_aligned_ = slot;
      if (!first) {
        for (auto& e : evses_) {
          if (e.tx) {
            transaction_event(e, TxEventType::Updated, "MeterValueClock",
                              meter_value(e, "Sample.Clock", "AlignedDataCtrlr.Measurands"));
          } else if (dm_.boolean("AlignedDataCtrlr.SendDuringIdle") && uplink_ && uplink_->online()) {
            uplink_->send_meter_values(e.id, meter_value(e, "Sample.Clock", "AlignedDataCtrlr.Measurands"));
          }
        }
      }
    }
  }
  if (now - last_meter_persist_ >= std::chrono::seconds(10)) {
    last_meter_persist_ = now;
    save_meters();
  }
}

void Station::save_meters() {
  storage::Db::Tx dbtx(db_);
  for (auto& e : evses_) persist_meter(e);
  dbtx.commit();
}

void Station::trigger_status(std::optional<int> evse_id, std::optional<int> connector) {
  for (auto& e : evses_) {
    if (evse_id && e.id != *evse_id) continue;
    for (int c = 1; c <= e.connectors; ++c) {
      if (connector && c != *connector) continue;
      uplink_->send_status(e.id, c, connector_status(e, c));
    }
  }
}

void Station::trigger_meter_values(std::optional<int> evse_id) {
  for (auto& e : evses_) {
    if (evse_id && e.id != *evse_id) continue;
    uplink_->send_meter_values(e.id, meter_value(e, "Trigger", "AlignedDataCtrlr.Measurands"));
  }
}

void Station::trigger_transaction_event(std::optional<int> evse_id) {
  for (auto& e : evses_) {
    if (evse_id && e.id != *evse_id) continue;
    if (e.tx) transaction_event(e, TxEventType::Updated, "Trigger", meter_value(e, "Trigger", "SampledDataCtrlr.TxUpdatedMeasurands"));
  }
}

}  // namespace cg::station
