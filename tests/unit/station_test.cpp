// The charging side without a network: the control loop's state machine and
// meter, and the station service's transactions, TransactionEvents in the
// outbox, authorization (online, offline, local list, cache), token privacy,
// crash recovery, availability, remote start/stop and unlock.
// The control loop's thread is never started: the tests call step() and feed
// its events to the station, as the daemon's I/O thread does.
#include "station/station.hpp"

#include <fcntl.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <boost/json.hpp>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "core/clock.hpp"
#include "core/config.hpp"
#include "core/log.hpp"
#include "core/storage.hpp"
#include "core/device_model.hpp"
#include "core/outbox.hpp"
#include "station/auth.hpp"
#include "station/control_loop.hpp"

#include "ocpp/station_messages.hpp"
#include "security/key_store.hpp"
#include "security/redact.hpp"
#include "security/sealed_secret.hpp"
#include "test_util.hpp"

namespace {

namespace fs = std::filesystem;
namespace json = boost::json;
using cg::station::AuthStore;
using cg::station::ControlLoop;
using cg::station::CpState;
using cg::station::HwCommand;
using cg::station::HwInput;
using cg::station::IdToken;
using cg::station::LoopEvent;
using cg::station::Station;

using cg::test::make_temp_dir;

std::string read_file(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

unsigned mode_of(const fs::path& p) {
  struct stat st {};
  EXPECT_EQ(::stat(p.c_str(), &st), 0) << p;
  return st.st_mode & 07777;
}

cg::config::Evse evse_cfg(double max_a, int phases, double volts = 230, int connectors = 1) {
  cg::config::Evse e;
  e.connectors = connectors;
  e.max_current_a = max_a;
  e.phases = phases;
  e.voltage_v = volts;
  return e;
}

// ============================================================================
// Control loop (no station)
// ============================================================================

class Loop : public ::testing::Test {
 protected:
  Loop() : loop_({evse_cfg(32, 3), evse_cfg(16, 1)}, std::chrono::milliseconds(100), {}) {}

  std::vector<LoopEvent> step(double dt_ms = 100, bool meter = false) {
    loop_.step(dt_ms, meter);
    std::vector<LoopEvent> out;
    loop_.drain(out);
    return out;
  }
  // The last event for EVSE in a step with meter snapshots.
  LoopEvent snapshot(int evse, double dt_ms = 0) {
    auto evs = step(dt_ms, true);
    LoopEvent last{};
    bool found = false;
    for (const auto& e : evs)
      if (e.evse == evse) {
        last = e;
        found = true;
      }
    EXPECT_TRUE(found);
    return last;
  }
  void in(HwInput::Kind k, int evse = 1, double amps = 0) { ASSERT_TRUE(loop_.submit(HwInput{k, evse, amps})); }
  void cmd(HwCommand::Kind k, int evse = 1) { ASSERT_TRUE(loop_.command(HwCommand{k, evse})); }
  static std::vector<CpState> states(const std::vector<LoopEvent>& evs, int evse = 1) {
    std::vector<CpState> s;
    for (const auto& e : evs)
      if (e.kind == LoopEvent::Kind::StateChanged && e.evse == evse) s.push_back(e.state);
    return s;
  }

  ControlLoop loop_;
};

TEST_F(Loop, StateMachineAToBToC) {
  EXPECT_TRUE(step().empty());  // nothing happens while nothing changes
  EXPECT_EQ(snapshot(1).state, CpState::A);

  in(HwInput::Kind::Plug);
  EXPECT_EQ(states(step()), std::vector<CpState>{CpState::B});

  // the EV asks for current, but the power path is open: still B, no current
  in(HwInput::Kind::Draw, 1, 16);
  EXPECT_TRUE(states(step()).empty());
  auto s = snapshot(1);
  EXPECT_EQ(s.state, CpState::B);
  EXPECT_DOUBLE_EQ(s.current_a, 0);
  EXPECT_DOUBLE_EQ(s.power_w, 0);

  cmd(HwCommand::Kind::EnablePower);
  EXPECT_EQ(states(step()), std::vector<CpState>{CpState::C});
  s = snapshot(1);
  EXPECT_DOUBLE_EQ(s.current_a, 16);
  EXPECT_DOUBLE_EQ(s.power_w, 16 * 230.0 * 3);
  EXPECT_DOUBLE_EQ(s.voltage_v, 230);

  // the EV stops asking: back to B (power stays enabled)
  in(HwInput::Kind::Draw, 1, 0);
  EXPECT_EQ(states(step()), std::vector<CpState>{CpState::B});
  in(HwInput::Kind::Draw, 1, 10);
  EXPECT_EQ(states(step()), std::vector<CpState>{CpState::C});

  cmd(HwCommand::Kind::DisablePower);
  EXPECT_EQ(states(step()), std::vector<CpState>{CpState::B});
  EXPECT_DOUBLE_EQ(snapshot(1).current_a, 0);

  in(HwInput::Kind::Unplug);
  EXPECT_EQ(states(step()), std::vector<CpState>{CpState::A});
  // EVSE 2 never moved
  EXPECT_EQ(snapshot(2).state, CpState::A);
}

TEST_F(Loop, StateChangeInAMeterStepAlsoGivesAMeterEvent) {
  in(HwInput::Kind::Plug);
  auto evs = step(100, true);
  int changed = 0, meter = 0;
  for (const auto& e : evs) {
    if (e.evse != 1) continue;
    if (e.kind == LoopEvent::Kind::StateChanged) ++changed;
    if (e.kind == LoopEvent::Kind::Meter) ++meter;
  }
  EXPECT_EQ(changed, 1);
  EXPECT_EQ(meter, 1);
}

TEST_F(Loop, CurrentIsCappedAtMaxCurrent) {
  in(HwInput::Kind::Plug, 1);
  in(HwInput::Kind::Plug, 2);
  in(HwInput::Kind::Draw, 1, 80);
  in(HwInput::Kind::Draw, 2, 80);
  cmd(HwCommand::Kind::EnablePower, 1);
  cmd(HwCommand::Kind::EnablePower, 2);
  step();
  EXPECT_DOUBLE_EQ(snapshot(1).current_a, 32);
  EXPECT_DOUBLE_EQ(snapshot(2).current_a, 16);
  EXPECT_DOUBLE_EQ(snapshot(2).power_w, 16 * 230.0 * 1);
  in(HwInput::Kind::Draw, 1, 31.5);
  step();
  EXPECT_DOUBLE_EQ(snapshot(1).current_a, 31.5);
}

TEST_F(Loop, EnergyIntegratesVoltsTimesAmpsTimesPhasesOverTime) {
  in(HwInput::Kind::Plug, 1);
  in(HwInput::Kind::Plug, 2);
  in(HwInput::Kind::Draw, 1, 16);
  in(HwInput::Kind::Draw, 2, 10);
  cmd(HwCommand::Kind::EnablePower, 1);
  cmd(HwCommand::Kind::EnablePower, 2);
  step(0);  // now in C, nothing delivered yet
  EXPECT_DOUBLE_EQ(snapshot(1).energy_wh, 0);
  // one hour in 100 ms periods
  for (int i = 0; i < 36000; ++i) loop_.step(100, false);
  std::vector<LoopEvent> sink;
  loop_.drain(sink);
  EXPECT_NEAR(snapshot(1).energy_wh, 16 * 230.0 * 3, 1e-6);  // 11040 Wh
  EXPECT_NEAR(snapshot(2).energy_wh, 10 * 230.0 * 1, 1e-6);  // 2300 Wh
  // 30 more minutes in one step
  EXPECT_NEAR(snapshot(1, 1'800'000).energy_wh, 11040 + 5520, 1e-6);

  // no energy while suspended (B) or unplugged
  in(HwInput::Kind::Draw, 1, 0);
  step(0);
  const double before = snapshot(1).energy_wh;
  for (int i = 0; i < 100; ++i) loop_.step(1000, false);
  EXPECT_DOUBLE_EQ(snapshot(1).energy_wh, before);
}

TEST(LoopInitial, MeterRegisterStartsFromTheStoredValue) {
  ControlLoop loop({evse_cfg(32, 3)}, std::chrono::milliseconds(100), {12345.5});
  loop.step(0, true);
  std::vector<LoopEvent> evs;
  loop.drain(evs);
  ASSERT_FALSE(evs.empty());
  EXPECT_DOUBLE_EQ(evs.back().energy_wh, 12345.5);
}

TEST_F(Loop, FaultGoesToFAndStopsTheCurrent) {
  in(HwInput::Kind::Plug);
  in(HwInput::Kind::Draw, 1, 16);
  cmd(HwCommand::Kind::EnablePower);
  step();
  ASSERT_EQ(snapshot(1).state, CpState::C);
  in(HwInput::Kind::Fault);
  EXPECT_EQ(states(step()), std::vector<CpState>{CpState::F});
  auto s = snapshot(1);
  EXPECT_DOUBLE_EQ(s.current_a, 0);
  const double e = s.energy_wh;
  step(10'000);
  EXPECT_DOUBLE_EQ(snapshot(1).energy_wh, e);  // nothing delivered in F

  in(HwInput::Kind::ClearFault);
  EXPECT_EQ(states(step()), std::vector<CpState>{CpState::C});  // still plugged, powered, asking

  // a fault without an EV, then unplugging clears the simulated fault
  in(HwInput::Kind::Fault);
  EXPECT_EQ(states(step()), std::vector<CpState>{CpState::F});
  in(HwInput::Kind::Unplug);
  EXPECT_EQ(states(step()), std::vector<CpState>{CpState::A});
}

TEST_F(Loop, BoundedInputQueueRefusesWhenFull) {
  int accepted = 0;
  for (int i = 0; i < 1000; ++i) accepted += loop_.submit(HwInput{HwInput::Kind::Draw, 1, 1.0 * i}) ? 1 : 0;
  EXPECT_EQ(accepted, 256);
  EXPECT_FALSE(loop_.submit(HwInput{HwInput::Kind::Plug, 1, 0}));
  step();  // the loop drains the queue
  EXPECT_TRUE(loop_.submit(HwInput{HwInput::Kind::Plug, 1, 0}));

  int cmds = 0;
  for (int i = 0; i < 1000; ++i) cmds += loop_.command(HwCommand{HwCommand::Kind::EnablePower, 1}) ? 1 : 0;
  EXPECT_EQ(cmds, 256);
  step();
  EXPECT_TRUE(loop_.command(HwCommand{HwCommand::Kind::DisablePower, 1}));
}

TEST_F(Loop, UnknownEvseIsRefused) {
  EXPECT_FALSE(loop_.submit(HwInput{HwInput::Kind::Plug, 0, 0}));
  EXPECT_FALSE(loop_.submit(HwInput{HwInput::Kind::Plug, 3, 0}));
  EXPECT_FALSE(loop_.submit(HwInput{HwInput::Kind::Plug, -1, 0}));
  EXPECT_FALSE(loop_.command(HwCommand{HwCommand::Kind::EnablePower, 3}));
  EXPECT_EQ(loop_.evse_count(), 2);
}

TEST_F(Loop, NotifyFdSignalsEvents) {
  std::uint64_t n = 0;
  EXPECT_LT(::read(loop_.notify_fd(), &n, sizeof n), 0);  // nothing yet (non-blocking)
  in(HwInput::Kind::Plug);
  loop_.step(100, false);
  ASSERT_EQ(::read(loop_.notify_fd(), &n, sizeof n), static_cast<ssize_t>(sizeof n));
  EXPECT_GE(n, 1u);
  EXPECT_EQ(loop_.ticks(), 1u);
}

// ============================================================================
// Station
// ============================================================================

// The OCPP side, faked: records what the station sends; authorize answers from
// a map (tokens not in the map get "no answer").
class FakeUplink : public cg::station::Uplink {
 public:
  bool is_online = true;
  bool refused = false;  // connected, BootNotification Pending/Rejected
  int outbox_changes = 0;
  std::vector<std::tuple<int, int, std::string>> statuses;
  std::vector<std::pair<int, json::array>> meter_values;
  std::map<std::string, json::object> answers;  // idToken -> idTokenInfo
  std::vector<std::string> asked;

  bool online() const override { return is_online; }
  bool boot_refused() const override { return refused; }
  void outbox_changed() override { ++outbox_changes; }
  // Typed events, recorded in their OCPP form (ocpp/station_messages).
  void send_status(int evse, int connector, cg::station::ConnectorStatus status) override {
    statuses.emplace_back(evse, connector, std::string(cg::station::to_string(status)));
  }
  void send_meter_values(int evse, std::vector<cg::station::MeterValue> mv) override {
    meter_values.emplace_back(evse, cg::ocpp::meter_value_json(mv));
  }
  void authorize(const IdToken& t, std::function<void(std::optional<json::object>)> cb) override {
    asked.push_back(t.id);
    auto it = answers.find(t.id);
    if (it == answers.end()) return cb(std::nullopt);
    cb(it->second);
  }

  std::optional<std::string> last_status(int evse, int connector = 1) const {
    for (auto it = statuses.rbegin(); it != statuses.rend(); ++it)
      if (std::get<0>(*it) == evse && std::get<1>(*it) == connector) return std::get<2>(*it);
    return std::nullopt;
  }
};

json::object info(std::string_view status) {
  return json::object{{"status", status}};
}

struct Event {
  std::string action, tx_id;
  json::object p;
};

class StationTest : public ::testing::Test {
 protected:
  void SetUp() override {
    cg::log::set_level(cg::log::Level::Error);
    dir_ = make_temp_dir("station-test");
    cfg_.identity = "CS001";
    cfg_.state_dir = dir_;
    cfg_.evses = {evse_cfg(32, 3), evse_cfg(16, 1)};
    boot();
  }
  void TearDown() override {
    shutdown();
    fs::remove_all(dir_);
  }

  // Builds everything on the state directory, as the daemon does at start.
  void boot() {
    db_ = std::make_unique<cg::storage::Db>(dir_ / "station.db");
    dm_ = std::make_unique<cg::core::DeviceModel>(*db_, cfg_);
    if (!keys_) keys_ = cg::security::open_file_key_store({dir_ / "keys"});
    auth_ = std::make_unique<AuthStore>(*db_, AuthStore::load_or_create_key(*keys_, dir_));
    outbox_ = std::make_unique<cg::core::Outbox>(
        *db_, [a = auth_.get()](const std::string& payload) { return a->redact_id_tokens(payload); });
    loop_ = std::make_unique<ControlLoop>(cfg_.evses, std::chrono::milliseconds(100),
                                          Station::stored_meter_registers(*db_, cfg_.evses.size()));
    tx_events_ = std::make_unique<cg::ocpp::TransactionEventQueue>(*outbox_);
    st_ = std::make_unique<Station>(cfg_, *db_, *dm_, *tx_events_, *auth_, *loop_);
    up_ = FakeUplink{};
    st_->set_uplink(&up_);
  }
  // Power loss: everything is gone, nothing was saved on the way out.
  void shutdown() {
    st_.reset();
    loop_.reset();
    auth_.reset();
    tx_events_.reset();
    outbox_.reset();
    dm_.reset();
    db_.reset();
  }

  // One control period: the loop runs, its events reach the station.
  void pump(double dt_ms = 100, bool meter = false) {
    loop_->step(dt_ms, meter);
    std::vector<LoopEvent> evs;
    loop_->drain(evs);
    for (const auto& e : evs) st_->on_loop_event(e);
  }
  void hw(HwInput::Kind k, int evse = 1, double amps = 0) {
    ASSERT_TRUE(loop_->submit(HwInput{k, evse, amps}));
    pump();
    pump();  // a second period applies the station's power command
  }
  void plug(int evse = 1) { hw(HwInput::Kind::Plug, evse); }
  void unplug(int evse = 1) { hw(HwInput::Kind::Unplug, evse); }
  void draw(double amps, int evse = 1) { hw(HwInput::Kind::Draw, evse, amps); }
  void badge(const IdToken& t, int evse = 1) {
    st_->present_token(evse, t);
    pump();
  }
  CpState cp(int evse = 1) {
    loop_->step(0, true);
    std::vector<LoopEvent> evs;
    loop_->drain(evs);
    CpState s = CpState::A;
    for (const auto& e : evs) {
      st_->on_loop_event(e);
      if (e.evse == evse) s = e.state;
    }
    return s;
  }
  const cg::station::EvseState& evse(int id) { return st_->evses().at(static_cast<std::size_t>(id - 1)); }

  std::vector<Event> outbox() {
    std::vector<Event> out;
    auto s = db_->prepare("SELECT action, payload, tx_id FROM outbox ORDER BY seq");
    while (s.step()) out.push_back({s.col_text(0), s.col_text(2), json::parse(s.col_text(1)).as_object()});
    return out;
  }
  std::int64_t open_transactions() {
    auto s = db_->prepare("SELECT COUNT(*) FROM transactions");
    s.step();
    return s.col_int(0);
  }
  void set_var(const std::string& comp, const std::string& name, const std::string& value) {
    cg::core::VarRef r;
    r.component = comp;
    r.name = name;
    ASSERT_EQ(dm_->set(r, "Actual", value).status, cg::core::SetStatus::Accepted) << comp << "." << name;
  }
  // Puts TOKEN on the local list with STATUS (full update, next version).
  void local_list(const IdToken& t, std::string_view status) {
    ASSERT_EQ(auth_->update_list(auth_->list_version() + 1, true, {{t, info(status)}}),
              AuthStore::UpdateStatus::Accepted);
  }
  // Badge, plug, charge: a running transaction on EVSE 1. Returns its id.
  std::string start_charging(const IdToken& t) {
    up_.answers[t.id] = info("Accepted");
    badge(t);
    plug();
    draw(16);
    EXPECT_TRUE(evse(1).tx.has_value());
    return evse(1).tx ? evse(1).tx->id : std::string();
  }

  static double energy_of(const json::object& p) {
    for (const auto& sv : p.at("meterValue").as_array()[0].at("sampledValue").as_array())
      if (sv.at("measurand") == "Energy.Active.Import.Register") return sv.at("value").to_number<double>();
    ADD_FAILURE() << "no energy register in " << json::serialize(p);
    return -1;
  }

  const IdToken alice_{"04A2B3C4D5E6F7", "ISO14443"};
  const IdToken bob_{"0499887766554433", "ISO14443"};

  fs::path dir_;
  cg::config::Config cfg_;
  std::unique_ptr<cg::storage::Db> db_;
  std::unique_ptr<cg::core::DeviceModel> dm_;
  std::unique_ptr<cg::core::Outbox> outbox_;
  std::unique_ptr<cg::ocpp::TransactionEventQueue> tx_events_;  // the station's events as OCPP JSON, into the outbox
  std::unique_ptr<cg::security::KeyStore> keys_;  // seals the badge-hash key
  std::unique_ptr<AuthStore> auth_;
  std::unique_ptr<ControlLoop> loop_;
  std::unique_ptr<Station> st_;
  FakeUplink up_;
};

TEST_F(StationTest, PowerIsEnabledOnlyWithATransaction) {
  plug();
  draw(16);
  EXPECT_EQ(cp(), CpState::B);  // plugged and asking, but nobody badged
  EXPECT_FALSE(evse(1).tx.has_value());
  EXPECT_TRUE(outbox().empty());
  EXPECT_EQ(up_.last_status(1), "Occupied");
}

TEST_F(StationTest, BadgeThenPlugStartsATransaction) {
  up_.answers[alice_.id] = info("Accepted");
  badge(alice_);
  EXPECT_EQ(up_.asked, std::vector<std::string>{alice_.id});
  EXPECT_FALSE(evse(1).tx.has_value());  // authorized, waiting for the EV
  EXPECT_TRUE(outbox().empty());

  plug();
  ASSERT_TRUE(evse(1).tx.has_value());
  const auto ev = outbox();
  ASSERT_EQ(ev.size(), 1u);
  const auto& p = ev[0].p;
  EXPECT_EQ(ev[0].action, "TransactionEvent");
  EXPECT_EQ(p.at("eventType"), "Started");
  EXPECT_EQ(p.at("seqNo").as_int64(), 0);
  EXPECT_EQ(p.at("triggerReason"), "CablePluggedIn");
  EXPECT_EQ(p.at("idToken"), (json::value{{"idToken", alice_.id}, {"type", "ISO14443"}}));
  EXPECT_EQ(p.at("evse"), (json::value{{"id", 1}, {"connectorId", 1}}));
  EXPECT_FALSE(p.contains("offline"));
  const auto& ti = p.at("transactionInfo").as_object();
  const std::string tx_id(ti.at("transactionId").as_string());
  EXPECT_EQ(tx_id.size(), 36u);
  EXPECT_EQ(tx_id, evse(1).tx->id);
  EXPECT_EQ(ev[0].tx_id, tx_id);
  EXPECT_EQ(ti.at("chargingState"), "EVConnected");
  EXPECT_FALSE(ti.contains("remoteStartId"));
  ASSERT_TRUE(p.at("meterValue").is_array());
  const auto& mv = p.at("meterValue").as_array();
  ASSERT_EQ(mv.size(), 1u);
  EXPECT_TRUE(cg::clock::parse_rfc3339(mv[0].at("timestamp").as_string()).has_value());
  const auto& sv = mv[0].at("sampledValue").as_array()[0];
  EXPECT_EQ(sv.at("measurand"), "Energy.Active.Import.Register");
  EXPECT_EQ(sv.at("context"), "Transaction.Begin");
  EXPECT_EQ(sv.at("unitOfMeasure").at("unit"), "Wh");
  EXPECT_TRUE(cg::clock::parse_rfc3339(p.at("timestamp").as_string()).has_value());

  EXPECT_GE(up_.outbox_changes, 1);
  EXPECT_EQ(up_.last_status(1), "Occupied");
  EXPECT_EQ(open_transactions(), 1);

  draw(16);
  EXPECT_EQ(cp(), CpState::C);  // the power path is closed now
}

TEST_F(StationTest, FullSessionEventsAndSeqNos) {
  const std::string tx = start_charging(alice_);
  pump(3'600'000, true);  // one hour at 16 A, 3 phases, 230 V
  badge(alice_);          // the same badge stops
  EXPECT_FALSE(evse(1).tx.has_value());
  EXPECT_EQ(cp(), CpState::B);  // power off, the EV is still plugged
  unplug();
  EXPECT_EQ(up_.last_status(1), "Available");

  const auto ev = outbox();
  ASSERT_EQ(ev.size(), 3u);
  EXPECT_EQ(ev[0].p.at("eventType"), "Started");
  EXPECT_EQ(ev[1].p.at("eventType"), "Updated");
  EXPECT_EQ(ev[1].p.at("triggerReason"), "ChargingStateChanged");
  EXPECT_EQ(ev[1].p.at("transactionInfo").at("chargingState"), "Charging");
  EXPECT_FALSE(ev[1].p.contains("idToken"));
  EXPECT_FALSE(ev[1].p.contains("evse"));
  EXPECT_EQ(ev[2].p.at("eventType"), "Ended");
  EXPECT_EQ(ev[2].p.at("triggerReason"), "StopAuthorized");
  EXPECT_EQ(ev[2].p.at("transactionInfo").at("stoppedReason"), "Local");
  EXPECT_EQ(ev[2].p.at("idToken").at("idToken"), json::value(alice_.id));
  for (std::size_t i = 0; i < ev.size(); ++i) {
    EXPECT_EQ(ev[i].p.at("seqNo").as_int64(), static_cast<std::int64_t>(i));
    EXPECT_EQ(ev[i].p.at("transactionInfo").at("transactionId"), json::value(tx));
    EXPECT_EQ(ev[i].tx_id, tx);
  }
  EXPECT_NEAR(energy_of(ev[2].p) - energy_of(ev[0].p), 11040, 0.1);
  EXPECT_EQ(ev[2].p.at("meterValue").as_array()[0].at("sampledValue").as_array()[0].at("context"), "Transaction.End");
  EXPECT_EQ(open_transactions(), 0);
}

TEST_F(StationTest, PlugThenBadgeStartsWithTriggerAuthorized) {
  up_.answers[alice_.id] = info("Accepted");
  plug();
  draw(16);
  badge(alice_);
  pump();
  ASSERT_TRUE(evse(1).tx.has_value());
  const auto ev = outbox();
  ASSERT_GE(ev.size(), 1u);
  EXPECT_EQ(ev[0].p.at("triggerReason"), "Authorized");
  EXPECT_EQ(cp(), CpState::C);
}

TEST_F(StationTest, SuspendedEvAndEvDisconnect) {
  const std::string tx = start_charging(alice_);
  draw(0);  // the EV pauses
  unplug();
  const auto ev = outbox();
  ASSERT_EQ(ev.size(), 4u);
  EXPECT_EQ(ev[2].p.at("transactionInfo").at("chargingState"), "SuspendedEV");
  EXPECT_EQ(ev[3].p.at("eventType"), "Ended");
  EXPECT_EQ(ev[3].p.at("transactionInfo").at("stoppedReason"), "EVDisconnected");
  EXPECT_EQ(ev[3].p.at("triggerReason"), "EVCommunicationLost");
  EXPECT_EQ(ev[3].p.at("seqNo").as_int64(), 3);
  EXPECT_FALSE(evse(1).authorized.has_value());  // the next EV needs a new badge
}

TEST_F(StationTest, AnotherBadgeDoesNotStopTheTransaction) {
  start_charging(alice_);
  badge(bob_);
  EXPECT_TRUE(evse(1).tx.has_value());
  EXPECT_EQ(cp(), CpState::C);
}

TEST_F(StationTest, FaultEndsTheTransaction) {
  start_charging(alice_);
  hw(HwInput::Kind::Fault);
  EXPECT_FALSE(evse(1).tx.has_value());
  EXPECT_EQ(up_.last_status(1), "Faulted");
  const auto ev = outbox();
  EXPECT_EQ(ev.back().p.at("eventType"), "Ended");
  EXPECT_EQ(ev.back().p.at("triggerReason"), "AbnormalCondition");
  // no new transaction on a faulted EVSE
  up_.asked.clear();
  badge(alice_);
  EXPECT_TRUE(up_.asked.empty());
  EXPECT_FALSE(evse(1).tx.has_value());
}

TEST_F(StationTest, RejectedTokenStartsNothing) {
  up_.answers[alice_.id] = info("Invalid");
  plug();
  badge(alice_);
  EXPECT_FALSE(evse(1).tx.has_value());
  EXPECT_TRUE(outbox().empty());
  EXPECT_EQ(cp(), CpState::B);
}

TEST_F(StationTest, OfflineEventsCarryOfflineTrue) {
  local_list(alice_, "Accepted");
  up_.is_online = false;
  badge(alice_);
  plug();
  draw(16);
  badge(alice_);
  EXPECT_TRUE(up_.asked.empty());  // nobody to ask
  const auto ev = outbox();
  ASSERT_EQ(ev.size(), 3u);
  for (const auto& e : ev) EXPECT_EQ(e.p.at("offline"), true) << json::serialize(e.p);
  // nothing is sent while offline; back online, every connector is reported
  EXPECT_TRUE(up_.statuses.empty());
  up_.is_online = true;
  st_->on_online();
  EXPECT_EQ(up_.last_status(1), "Occupied");
  EXPECT_EQ(up_.last_status(2), "Available");
}

TEST_F(StationTest, UnknownTokenOfflineIsRefused) {
  up_.is_online = false;
  plug();
  badge(alice_);
  EXPECT_FALSE(evse(1).tx.has_value());
  EXPECT_TRUE(outbox().empty());
}

TEST_F(StationTest, UnknownTokenOfflineIsAcceptedWithOfflineTxForUnknownIdEnabled) {
  set_var("AuthCtrlr", "OfflineTxForUnknownIdEnabled", "true");
  up_.is_online = false;
  plug();
  badge(alice_);
  ASSERT_TRUE(evse(1).tx.has_value());
  EXPECT_EQ(outbox().at(0).p.at("offline"), true);
}

TEST_F(StationTest, LocalListEntryAuthorizesOffline) {
  local_list(alice_, "Accepted");
  up_.is_online = false;
  plug();
  badge(alice_);
  EXPECT_TRUE(evse(1).tx.has_value());
}

TEST_F(StationTest, BlockedLocalListEntryIsRefusedOfflineEvenForUnknownIdsAllowed) {
  set_var("AuthCtrlr", "OfflineTxForUnknownIdEnabled", "true");
  local_list(alice_, "Blocked");
  up_.is_online = false;
  plug();
  badge(alice_);
  EXPECT_FALSE(evse(1).tx.has_value());
}

TEST_F(StationTest, LocalAuthorizeOfflineFalseIgnoresTheList) {
  set_var("AuthCtrlr", "LocalAuthorizeOffline", "false");
  local_list(alice_, "Accepted");
  up_.is_online = false;
  plug();
  badge(alice_);
  EXPECT_FALSE(evse(1).tx.has_value());
}

TEST_F(StationTest, NoAnswerFromTheCsmsDecidesAsOffline) {
  // online, but the Authorize gets no answer: the local list decides
  local_list(alice_, "Accepted");
  set_var("AuthCtrlr", "LocalPreAuthorize", "false");
  plug();
  badge(alice_);
  EXPECT_EQ(up_.asked, std::vector<std::string>{alice_.id});
  EXPECT_TRUE(evse(1).tx.has_value());
  // and an unknown token is refused
  plug(2);
  badge(bob_, 2);
  EXPECT_FALSE(evse(2).tx.has_value());
}

TEST_F(StationTest, LocalPreAuthorizeSkipsTheCsms) {
  local_list(alice_, "Accepted");
  plug();
  badge(alice_);
  EXPECT_TRUE(up_.asked.empty());
  EXPECT_TRUE(evse(1).tx.has_value());
}

TEST_F(StationTest, CsmsAnswerIsCachedForOfflineUse) {
  up_.answers[alice_.id] = info("Accepted");
  badge(alice_);  // authorized online, answer cached
  ASSERT_TRUE(auth_->from_cache(alice_, 86400).has_value());
  // another day, offline
  up_.is_online = false;
  badge(alice_, 2);
  plug(2);
  EXPECT_TRUE(evse(2).tx.has_value());
}

TEST_F(StationTest, TokensAreStoredOnlyAsHmac) {
  // distinctive badge ids; they must not appear in any byte of the database files
  const IdToken listed{"BADGE-LISTED-0001-SECRET", "ISO14443"};
  const IdToken removed{"BADGE-REMOVED-0002-SECRET", "ISO14443"};
  const IdToken cached{"BADGE-CACHED-0003-SECRET", "eMAID"};
  ASSERT_EQ(auth_->update_list(1, true, {{listed, info("Accepted")}, {removed, info("Accepted")}}),
            AuthStore::UpdateStatus::Accepted);
  ASSERT_EQ(auth_->update_list(2, false, {{removed, std::nullopt}}), AuthStore::UpdateStatus::Accepted);
  auth_->cache_put(cached, info("Accepted"));
  db_->set_meta("control", "CONTROL-PLAIN-TEXT-MARKER");  // proves the scan sees what is stored

  ASSERT_TRUE(auth_->from_list(listed).has_value());
  EXPECT_FALSE(auth_->from_list(removed).has_value());
  ASSERT_TRUE(auth_->from_cache(cached, 86400).has_value());
  EXPECT_EQ(auth_->list_entries(), 1);

  auto scan = [&](const std::string& when) {
    std::string bytes;
    for (const char* suffix : {"", "-wal", "-shm", "-journal"}) {
      const fs::path p = dir_ / (std::string("station.db") + suffix);
      if (fs::exists(p)) bytes += read_file(p);
    }
    EXPECT_NE(bytes.find("CONTROL-PLAIN-TEXT-MARKER"), std::string::npos) << when;
    for (const auto* t : {&listed, &removed, &cached}) {
      EXPECT_EQ(bytes.find(t->id), std::string::npos) << t->id << " in the database files " << when;
      EXPECT_EQ(bytes.find(t->id.substr(0, 12)), std::string::npos) << t->id << " (prefix) " << when;
    }
  };
  scan("before a checkpoint");
  db_->exec("PRAGMA wal_checkpoint(TRUNCATE)");
  scan("after a checkpoint");
  shutdown();
  scan("after closing");
  boot();
}

// The bytes of the database files (after a checkpoint and as they are).
std::string database_bytes(const fs::path& dir) {
  std::string bytes;
  for (const char* suffix : {"", "-wal", "-shm", "-journal"}) {
    const fs::path p = dir / (std::string("station.db") + suffix);
    if (fs::exists(p)) bytes += read_file(p);
  }
  return bytes;
}

// CHG-2, LOG-5: the plain badge id is kept only until the CSMS has the message
// that carries it; the open transaction keeps only its keyed hash.
TEST_F(StationTest, APlainIdTokenLeavesTheDatabaseOnceTheCsmsHasTheMessage) {
  const IdToken t{"BADGE-IN-FLIGHT-SECRET-01", "ISO14443"};
  start_charging(t);
  {
    auto s = db_->prepare("SELECT token_hash FROM transactions");
    ASSERT_TRUE(s.step());
    EXPECT_EQ(s.col_text(0), auth_->token_key(t));
  }
  // Queued for the CSMS: the Started event must carry it.
  ASSERT_FALSE(outbox().empty());
  EXPECT_EQ(outbox()[0].p.at("idToken").at("idToken"), json::value(t.id));
  // The CSMS has every message; the driver badges to stop (Ended carries the id), acknowledged too.
  auto ack_all = [&] {
    while (auto m = outbox_->front()) outbox_->remove(m->seq);
  };
  ack_all();
  badge(t);
  ASSERT_FALSE(evse(1).tx.has_value());
  ASSERT_EQ(outbox().back().p.at("idToken").at("idToken"), json::value(t.id));
  ack_all();
  db_->set_meta("control", "CONTROL-PLAIN-TEXT-MARKER");  // proves the scan sees what is stored
  db_->exec("PRAGMA wal_checkpoint(TRUNCATE)");
  const std::string bytes = database_bytes(dir_);
  EXPECT_NE(bytes.find("CONTROL-PLAIN-TEXT-MARKER"), std::string::npos);
  EXPECT_EQ(bytes.find(t.id.substr(0, 12)), std::string::npos) << "the badge id stayed in the database files";
}

// A message the CSMS refused is kept for diagnosis with masked ids and keyed
// hashes, never the plain id; the kept rows are bounded in count and age.
TEST_F(StationTest, RefusedMessagesKeepOnlyMaskedIdsAndAreBounded) {
  const IdToken t{"BADGE-REFUSED-SECRET-0002", "ISO14443"};
  start_charging(t);
  const auto first = outbox_->front();
  ASSERT_TRUE(first.has_value());
  outbox_->quarantine(first->seq, "refused 3 times: FormatViolation");
  {
    auto s = db_->prepare("SELECT payload, reason FROM outbox_rejected");
    ASSERT_TRUE(s.step());
    const auto p = json::parse(s.col_text(0)).as_object();
    EXPECT_EQ(p.at("eventType"), "Started") << "the rest of the message is kept";
    EXPECT_EQ(p.at("idToken").at("hash"), json::value(auth_->token_key(t)));
    EXPECT_EQ(p.at("idToken").at("idToken"), json::value(cg::security::mask_identifier(t.id)));
    EXPECT_EQ(s.col_text(1), "refused 3 times: FormatViolation");
  }
  // Redacting again changes nothing (rows of an older release are redacted at start).
  outbox_->redact_rejected();
  {
    auto s = db_->prepare("SELECT payload FROM outbox_rejected");
    ASSERT_TRUE(s.step());
    EXPECT_EQ(json::parse(s.col_text(0)).at("idToken").at("hash"), json::value(auth_->token_key(t)));
  }
  // A row of an older release with the plain id is redacted too.
  db_->prepare("INSERT INTO outbox_rejected(seq,action,payload,reason) VALUES(100000,'TransactionEvent',?,'old')")
      .bind(1, std::string(R"({"eventType":"Ended","idToken":{"idToken":"BADGE-OLD-RELEASE-0003","type":"ISO14443"}})"))
      .run();
  outbox_->redact_rejected();
  while (auto m = outbox_->front()) outbox_->remove(m->seq);
  db_->exec("PRAGMA wal_checkpoint(TRUNCATE)");
  const std::string bytes = database_bytes(dir_);
  EXPECT_EQ(bytes.find(t.id.substr(0, 12)), std::string::npos);
  EXPECT_EQ(bytes.find("BADGE-OLD-RE"), std::string::npos);

  // Count: beyond the limit the oldest go.
  for (int i = 0; i < 4; ++i) {
    const auto seq = outbox_->push("Heartbeat", "{}");
    outbox_->quarantine(seq, "test");
  }
  ASSERT_EQ(outbox_->rejected_count(), 6);
  auto p = outbox_->purge_rejected(3, std::chrono::hours(24));
  EXPECT_EQ(p.rows, 3);
  EXPECT_EQ(p.by_age, 0);
  EXPECT_EQ(p.first_seq, first->seq);
  EXPECT_EQ(outbox_->rejected_count(), 3);
  // Age: rows older than the limit go, whatever their number.
  db_->exec("UPDATE outbox_rejected SET at='2020-01-01T00:00:00Z' WHERE seq=(SELECT MIN(seq) FROM outbox_rejected)");
  p = outbox_->purge_rejected(1000, std::chrono::hours(24 * 90));
  EXPECT_EQ(p.rows, 1);
  EXPECT_EQ(p.by_age, 1);
  EXPECT_EQ(outbox_->rejected_count(), 2);
  EXPECT_EQ(outbox_->purge_rejected().rows, 0) << "nothing beyond the defaults";
}

// The cache and the local list keep the CSMS's idTokenInfo, whose groupIdToken
// is a badge id too: stored masked with its keyed hash.
TEST_F(StationTest, GroupIdTokensAreStoredOnlyMaskedAndHashed) {
  const IdToken member{"BADGE-MEMBER-0004", "ISO14443"};
  json::object with_group = info("Accepted");
  with_group["groupIdToken"] = json::object{{"idToken", "GROUP-SECRET-0005"}, {"type", "Central"}};
  auth_->cache_put(member, with_group);
  ASSERT_EQ(auth_->update_list(1, true, {{member, with_group}}), AuthStore::UpdateStatus::Accepted);
  EXPECT_EQ(auth_->from_cache(member, 86400)->at("status"), "Accepted");
  EXPECT_EQ(auth_->from_list(member)->at("groupIdToken").at("hash"),
            json::value(auth_->token_key(IdToken{"GROUP-SECRET-0005", "Central"})));
  db_->exec("PRAGMA wal_checkpoint(TRUNCATE)");
  EXPECT_EQ(database_bytes(dir_).find("GROUP-SECRET"), std::string::npos);
}

TEST_F(StationTest, TokenKeyIsAKeyedHash) {
  const std::string k = auth_->token_key(alice_);
  EXPECT_EQ(k.size(), 64u);
  EXPECT_EQ(k.find_first_not_of("0123456789abcdef"), std::string::npos);
  EXPECT_EQ(auth_->token_key(alice_), k);                       // stable
  EXPECT_NE(auth_->token_key(IdToken{alice_.id, "eMAID"}), k);  // the type is part of it
  EXPECT_NE(auth_->token_key(bob_), k);
  std::array<std::uint8_t, 32> other{};
  other.fill(7);
  AuthStore another(*db_, other);
  EXPECT_NE(another.token_key(alice_), k);  // a different device key gives different hashes
}

TEST_F(StationTest, LocalListVersioning) {
  EXPECT_EQ(auth_->list_version(), 0);
  EXPECT_EQ(auth_->update_list(3, true, {{alice_, info("Accepted")}}), AuthStore::UpdateStatus::Accepted);
  EXPECT_EQ(auth_->list_version(), 3);
  // a differential update must bring a newer version
  EXPECT_EQ(auth_->update_list(3, false, {{bob_, info("Accepted")}}), AuthStore::UpdateStatus::VersionMismatch);
  EXPECT_EQ(auth_->update_list(2, false, {{bob_, info("Accepted")}}), AuthStore::UpdateStatus::VersionMismatch);
  EXPECT_FALSE(auth_->from_list(bob_).has_value());
  EXPECT_EQ(auth_->update_list(4, false, {{bob_, info("Accepted")}}), AuthStore::UpdateStatus::Accepted);
  EXPECT_EQ(auth_->list_entries(), 2);
  // a full update replaces the list
  EXPECT_EQ(auth_->update_list(5, true, {{bob_, info("Blocked")}}), AuthStore::UpdateStatus::Accepted);
  EXPECT_EQ(auth_->list_entries(), 1);
  EXPECT_FALSE(auth_->from_list(alice_).has_value());
  EXPECT_EQ(auth_->from_list(bob_)->at("status"), "Blocked");
}

// CHG-2: the badge-hash key is sealed by the key store (token.key.sealed,
// 0600), never a plain file next to the hashes; stable across loads, random,
// one per device. (The sealing itself: sealed_secret_test.cpp.)
TEST(TokenKey, SealedFileIs0600AndStableAcrossLoads) {
  const fs::path dir = make_temp_dir("token-key");
  auto keys = cg::security::open_file_key_store({dir / "keys"});
  const std::string file = (dir / "token.key.sealed").string();
  const mode_t old = ::umask(0);
  const auto k1 = AuthStore::load_or_create_key(*keys, dir);
  ::umask(old);
  EXPECT_EQ(mode_of(file), 0600u);
  EXPECT_FALSE(fs::exists(dir / "token.key")) << "no plain key file";
  EXPECT_FALSE(fs::exists(file + ".tmp"));
  const auto k2 = AuthStore::load_or_create_key(*keys, dir);
  EXPECT_EQ(k1, k2);
  EXPECT_NE(k1, (std::array<std::uint8_t, 32>{}));  // random, not zeros
  // another device gets another key
  const fs::path other = make_temp_dir("token-key-other");
  auto other_keys = cg::security::open_file_key_store({other / "keys"});
  EXPECT_NE(k1, AuthStore::load_or_create_key(*other_keys, other));
  // a damaged key file is an error, not silently replaced
  fs::resize_file(file, 10);
  EXPECT_THROW(AuthStore::load_or_create_key(*keys, dir), std::runtime_error);
  EXPECT_EQ(fs::file_size(file), 10u);
  fs::remove_all(dir);
  fs::remove_all(other);
}

// Only a missing key file may be created: a key file that exists but cannot be
// opened must not be replaced (a new key silently orphans the whole local list
// and cache, while the list version still tells the CSMS all is well).
TEST(TokenKey, KeyFileThatCannotBeOpenedIsNotReplaced) {
  const fs::path dir = make_temp_dir("token-key-link");
  auto keys = cg::security::open_file_key_store({dir / "keys"});
  const fs::path real_dir = dir / "real";
  fs::create_directory(real_dir);
  const auto k = AuthStore::load_or_create_key(*keys, real_dir);
  fs::create_symlink(real_dir / "token.key.sealed", dir / "token.key.sealed");
  try {
    const auto other = AuthStore::load_or_create_key(*keys, dir);
    ADD_FAILURE() << "an unreadable key file was replaced by a new key (same key: " << (other == k) << ")";
  } catch (const std::runtime_error&) {
  }
  EXPECT_TRUE(fs::is_symlink(dir / "token.key.sealed")) << "the key file was replaced";
  fs::remove_all(dir);
}

// A station of an older release kept the key in plain text (token.key): it is
// sealed at the first start and removed, and the badges hashed with it still match.
TEST(TokenKey, APlainKeyOfAnOlderReleaseIsSealedAndRemoved) {
  const fs::path dir = make_temp_dir("token-key-legacy");
  auto keys = cg::security::open_file_key_store({dir / "keys"});
  std::array<std::uint8_t, 32> plain{};
  for (std::size_t i = 0; i < plain.size(); ++i) plain[i] = static_cast<std::uint8_t>(i * 7 + 1);
  cg::test::write_file(dir / "token.key", std::string(reinterpret_cast<const char*>(plain.data()), plain.size()));
  EXPECT_EQ(AuthStore::load_or_create_key(*keys, dir), plain);
  EXPECT_FALSE(fs::exists(dir / "token.key"));
  EXPECT_TRUE(fs::exists(dir / "token.key.sealed"));
  EXPECT_EQ(AuthStore::load_or_create_key(*keys, dir), plain) << "the same key from the sealed file";
  fs::remove_all(dir);
}

TEST_F(StationTest, RecoverAfterCrashEndsTheTransactionWithPowerLoss) {
  const std::string tx = start_charging(alice_);  // Started (0), Updated (1)
  pump(600'000, true);                            // 10 minutes
  st_->save_meters();
  const double energy = evse(1).energy_wh;
  ASSERT_GT(energy, 0);
  ASSERT_EQ(outbox().size(), 2u);

  shutdown();  // kill -9 / power loss: no Ended
  boot();
  up_.is_online = false;  // recover() runs before the connection is up
  ASSERT_EQ(open_transactions(), 1);
  st_->recover();

  EXPECT_FALSE(evse(1).tx.has_value());
  EXPECT_EQ(open_transactions(), 0);
  const auto ev = outbox();
  ASSERT_EQ(ev.size(), 3u);  // the unacknowledged events are still queued, in order
  const auto& p = ev[2].p;
  EXPECT_EQ(p.at("eventType"), "Ended");
  EXPECT_EQ(p.at("seqNo").as_int64(), 2);
  EXPECT_EQ(p.at("transactionInfo").at("transactionId"), json::value(tx));
  EXPECT_EQ(p.at("transactionInfo").at("stoppedReason"), "PowerLoss");
  // Not ended by the driver: no idToken (E06), the CSMS must not authorize it again.
  EXPECT_FALSE(p.contains("idToken"));
  EXPECT_EQ(p.at("offline"), true);
  EXPECT_EQ(energy_of(p), std::floor(energy));  // the register in whole Wh
  // the meter register survived too
  EXPECT_NEAR(Station::stored_meter_registers(*db_, 2)[0], energy, 0.001);
  // a second recovery finds nothing to do
  st_->recover();
  EXPECT_EQ(outbox().size(), 3u);
  // and the power stays off
  EXPECT_EQ(cp(), CpState::A);
}

TEST_F(StationTest, RecoverRightAfterStartedUsesSeqNo1) {
  up_.answers[alice_.id] = info("Accepted");
  badge(alice_);
  plug();
  ASSERT_EQ(outbox().size(), 1u);
  shutdown();
  boot();
  st_->recover();
  const auto ev = outbox();
  ASSERT_EQ(ev.size(), 2u);
  EXPECT_EQ(ev[1].p.at("eventType"), "Ended");
  EXPECT_EQ(ev[1].p.at("seqNo").as_int64(), 1);
  EXPECT_EQ(ev[1].p.at("transactionInfo").at("stoppedReason"), "PowerLoss");
}

TEST_F(StationTest, RecoverAfterARemoteStart) {
  plug();
  ASSERT_TRUE(st_->request_start(alice_, 77, 1).accepted);
  ASSERT_TRUE(evse(1).tx.has_value());
  shutdown();
  boot();
  st_->recover();
  const auto ev = outbox();
  ASSERT_EQ(ev.size(), 2u);
  EXPECT_EQ(ev[1].p.at("eventType"), "Ended");
  EXPECT_FALSE(ev[1].p.contains("idToken"));
}

TEST_F(StationTest, ChangeAvailabilityDuringATransactionIsScheduled) {
  start_charging(alice_);
  EXPECT_EQ(st_->change_availability(1, std::nullopt, false), Station::AvailStatus::Scheduled);
  // the transaction goes on, with power
  EXPECT_TRUE(evse(1).tx.has_value());
  pump();
  EXPECT_EQ(cp(), CpState::C);
  EXPECT_EQ(up_.last_status(1), "Occupied");

  badge(alice_);  // ends it: now the change applies
  EXPECT_FALSE(evse(1).tx.has_value());
  EXPECT_FALSE(evse(1).operative);
  EXPECT_EQ(cp(), CpState::B);
  unplug();
  EXPECT_EQ(up_.last_status(1), "Unavailable");
  // an inoperative EVSE starts nothing
  up_.asked.clear();
  badge(alice_);
  plug();
  EXPECT_FALSE(evse(1).tx.has_value());
  EXPECT_TRUE(up_.asked.empty());

  // back to operative
  unplug();
  EXPECT_EQ(st_->change_availability(1, std::nullopt, true), Station::AvailStatus::Accepted);
  EXPECT_EQ(up_.last_status(1), "Available");
}

TEST_F(StationTest, ChangeAvailabilityWithoutTransactionIsImmediate) {
  EXPECT_EQ(st_->change_availability(2, std::nullopt, false), Station::AvailStatus::Accepted);
  EXPECT_EQ(up_.last_status(2), "Unavailable");
  EXPECT_EQ(st_->change_availability(2, 1, true), Station::AvailStatus::Accepted);
  EXPECT_EQ(up_.last_status(2), "Available");
  EXPECT_EQ(st_->change_availability(3, std::nullopt, false), Station::AvailStatus::Rejected);
  EXPECT_EQ(st_->change_availability(2, 2, false), Station::AvailStatus::Rejected);  // EVSE 2 has one connector
  EXPECT_EQ(st_->change_availability(2, 0, false), Station::AvailStatus::Rejected);
}

TEST_F(StationTest, StationWideChangeDuringATransactionIsScheduled) {
  start_charging(alice_);
  EXPECT_EQ(st_->change_availability(std::nullopt, std::nullopt, false), Station::AvailStatus::Scheduled);
  EXPECT_EQ(up_.last_status(2), "Unavailable");  // the idle EVSE at once
  pump();
  EXPECT_EQ(cp(1), CpState::C);  // the running transaction keeps its power
  badge(alice_);
  unplug();
  EXPECT_EQ(up_.last_status(1), "Unavailable");
  EXPECT_EQ(st_->change_availability(0, std::nullopt, true), Station::AvailStatus::Accepted);
  EXPECT_EQ(up_.last_status(1), "Available");
  EXPECT_EQ(up_.last_status(2), "Available");
}

// A Scheduled change waits for the end of the transaction: another
// ChangeAvailability in the meantime must not cut the running charge.
TEST_F(StationTest, ScheduledEvseChangeKeepsPowerWhenTheStationIsSetOperative) {
  start_charging(alice_);
  ASSERT_EQ(st_->change_availability(1, std::nullopt, false), Station::AvailStatus::Scheduled);
  EXPECT_EQ(st_->change_availability(std::nullopt, std::nullopt, true), Station::AvailStatus::Accepted);
  pump();
  EXPECT_TRUE(evse(1).tx.has_value());
  EXPECT_EQ(cp(), CpState::C) << "the running transaction lost its power";
  // the EVSE change still applies when the transaction ends
  badge(alice_);
  unplug();
  EXPECT_EQ(up_.last_status(1), "Unavailable");
}

TEST_F(StationTest, ScheduledStationChangeKeepsPowerWhenTheEvseIsSetOperative) {
  start_charging(alice_);
  ASSERT_EQ(st_->change_availability(std::nullopt, std::nullopt, false), Station::AvailStatus::Scheduled);
  EXPECT_EQ(st_->change_availability(1, std::nullopt, true), Station::AvailStatus::Accepted);
  pump();
  EXPECT_TRUE(evse(1).tx.has_value());
  EXPECT_EQ(cp(), CpState::C) << "the running transaction lost its power";
  badge(alice_);
  unplug();
  EXPECT_EQ(up_.last_status(1), "Unavailable");  // the station is still inoperative
}

TEST_F(StationTest, TriggeredStatusOfASecondConnectorFollowsStationAvailability) {
  shutdown();
  cfg_.evses[1].connectors = 2;
  boot();
  ASSERT_EQ(st_->change_availability(std::nullopt, std::nullopt, false), Station::AvailStatus::Accepted);
  up_.statuses.clear();
  st_->on_online();
  EXPECT_EQ(up_.last_status(2, 1), "Unavailable");
  EXPECT_EQ(up_.last_status(2, 2), "Unavailable");
  up_.statuses.clear();
  st_->trigger_status(2, std::nullopt);
  EXPECT_EQ(up_.last_status(2, 1), "Unavailable");
  EXPECT_EQ(up_.last_status(2, 2), "Unavailable") << "TriggerMessage and BootNotification report different statuses";
}

// GetVariables sees the live state of the station.
TEST_F(StationTest, DeviceModelReportsLiveAvailabilityAndPower) {
  auto get = [&](const std::string& comp, const std::string& name, int evse_id, int connector) {
    cg::core::VarRef r;
    r.component = comp;
    r.name = name;
    r.evse = evse_id;
    r.connector = connector;
    auto res = dm_->get(r, "Actual");
    EXPECT_EQ(res.status, cg::core::GetStatus::Accepted) << comp << "@" << evse_id << ":" << connector << "." << name;
    return res.value;
  };
  EXPECT_EQ(get("EVSE", "AvailabilityState", 1, 0), "Available");
  EXPECT_EQ(get("Connector", "AvailabilityState", 1, 1), "Available");
  start_charging(alice_);
  pump(1000, true);
  EXPECT_EQ(get("EVSE", "AvailabilityState", 1, 0), "Occupied");
  EXPECT_EQ(get("EVSE", "Power", 1, 0), "11040.0");
  EXPECT_EQ(get("Connector", "AvailabilityState", 1, 1), "Occupied") << "the connector reports a stale value";
  ASSERT_EQ(st_->change_availability(2, std::nullopt, false), Station::AvailStatus::Accepted);
  EXPECT_EQ(get("EVSE", "AvailabilityState", 2, 0), "Unavailable");
  EXPECT_EQ(get("Connector", "AvailabilityState", 2, 1), "Unavailable") << "the connector reports a stale value";
  local_list(alice_, "Accepted");
  EXPECT_EQ(dm_->text("LocalAuthListCtrlr.Entries"), "1");
}

TEST_F(StationTest, AuthorizationExpiresWithoutAnEv) {
  set_var("TxCtrlr", "EVConnectionTimeOut", "1");
  up_.answers[alice_.id] = info("Accepted");
  badge(alice_);
  ASSERT_TRUE(evse(1).authorized.has_value());
  std::this_thread::sleep_for(std::chrono::milliseconds(1100));
  st_->tick();
  EXPECT_FALSE(evse(1).authorized.has_value());
  plug();
  EXPECT_FALSE(evse(1).tx.has_value());
}

TEST_F(StationTest, AvailabilitySurvivesARestart) {
  ASSERT_EQ(st_->change_availability(2, std::nullopt, false), Station::AvailStatus::Accepted);
  shutdown();
  boot();
  st_->recover();
  EXPECT_TRUE(evse(1).operative);
  EXPECT_FALSE(evse(2).operative);
  EXPECT_EQ(cg::station::to_string(st_->connector_status(evse(2))), "Unavailable");
}

TEST_F(StationTest, RequestStartThenPlug) {
  auto r = st_->request_start(alice_, 42, 1);
  EXPECT_TRUE(r.accepted);
  EXPECT_TRUE(r.transaction_id.empty());  // no EV yet
  EXPECT_FALSE(evse(1).tx.has_value());
  plug();
  ASSERT_TRUE(evse(1).tx.has_value());
  const auto ev = outbox();
  ASSERT_EQ(ev.size(), 1u);
  EXPECT_EQ(ev[0].p.at("triggerReason"), "RemoteStart");
  EXPECT_EQ(ev[0].p.at("transactionInfo").at("remoteStartId").as_int64(), 42);
  EXPECT_EQ(ev[0].p.at("idToken").at("idToken"), json::value(alice_.id));
  draw(16);
  EXPECT_EQ(cp(), CpState::C);
}

TEST_F(StationTest, RequestStartWithEvPluggedStartsAtOnce) {
  plug();
  auto r = st_->request_start(alice_, 7, std::nullopt);  // any EVSE: the first free one
  ASSERT_TRUE(r.accepted);
  ASSERT_TRUE(evse(1).tx.has_value());
  EXPECT_EQ(r.transaction_id, evse(1).tx->id);
  // a second request for the busy EVSE is refused with the running transaction
  auto again = st_->request_start(bob_, 8, 1);
  EXPECT_FALSE(again.accepted);
  EXPECT_EQ(again.transaction_id, evse(1).tx->id);
  // unknown EVSE
  EXPECT_FALSE(st_->request_start(bob_, 9, 5).accepted);
  // inoperative EVSE
  ASSERT_EQ(st_->change_availability(2, std::nullopt, false), Station::AvailStatus::Accepted);
  EXPECT_FALSE(st_->request_start(bob_, 10, 2).accepted);
  EXPECT_FALSE(st_->request_start(bob_, 11, std::nullopt).accepted);  // nothing free
}

TEST_F(StationTest, RequestStartWithAuthorizeRemoteStartAsksTheCsms) {
  set_var("AuthCtrlr", "AuthorizeRemoteStart", "true");
  up_.answers[alice_.id] = info("Invalid");
  plug();
  st_->request_start(alice_, 1, 1);
  EXPECT_EQ(up_.asked, std::vector<std::string>{alice_.id});
  EXPECT_FALSE(evse(1).tx.has_value());
}

TEST_F(StationTest, RequestStop) {
  const std::string tx = start_charging(alice_);
  EXPECT_FALSE(st_->request_stop("no-such-transaction"));
  EXPECT_TRUE(evse(1).tx.has_value());
  EXPECT_TRUE(st_->request_stop(tx));
  EXPECT_FALSE(evse(1).tx.has_value());
  pump();
  EXPECT_EQ(cp(), CpState::B);  // power off
  const auto ev = outbox();
  const auto& p = ev.back().p;
  EXPECT_EQ(p.at("eventType"), "Ended");
  EXPECT_EQ(p.at("triggerReason"), "RemoteStop");
  EXPECT_EQ(p.at("transactionInfo").at("stoppedReason"), "Remote");
  EXPECT_FALSE(st_->request_stop(tx));  // already ended
}

TEST_F(StationTest, DeauthorizedByTheCsmsStopsTheTransaction) {
  const std::string tx = start_charging(alice_);
  st_->on_transaction_event_result(tx, json::object{{"idTokenInfo", info("Blocked")}});
  EXPECT_FALSE(evse(1).tx.has_value());
  EXPECT_EQ(outbox().back().p.at("transactionInfo").at("stoppedReason"), "DeAuthorized");
}

TEST_F(StationTest, UnlockStatuses) {
  EXPECT_EQ(st_->unlock(3, 1), Station::UnlockStatus::UnknownConnector);
  EXPECT_EQ(st_->unlock(0, 1), Station::UnlockStatus::UnknownConnector);
  EXPECT_EQ(st_->unlock(1, 2), Station::UnlockStatus::UnknownConnector);
  EXPECT_EQ(st_->unlock(1, 0), Station::UnlockStatus::UnknownConnector);
  EXPECT_EQ(st_->unlock(1, 1), Station::UnlockStatus::Unlocked);
  start_charging(alice_);
  EXPECT_EQ(st_->unlock(1, 1), Station::UnlockStatus::OngoingAuthorizedTransaction);
  EXPECT_TRUE(evse(1).tx.has_value());
  EXPECT_EQ(st_->unlock(2, 1), Station::UnlockStatus::Unlocked);
}

TEST_F(StationTest, TriggeredTransactionEventContinuesTheSeqNo) {
  start_charging(alice_);
  st_->trigger_transaction_event(1);
  const auto ev = outbox();
  ASSERT_EQ(ev.size(), 3u);
  EXPECT_EQ(ev[2].p.at("triggerReason"), "Trigger");
  EXPECT_EQ(ev[2].p.at("seqNo").as_int64(), 2);
}

TEST(IdToken, MaskedNeverContainsTheFullId) {
  const std::string alphabet = "0123456789ABCDEF";
  for (std::size_t n = 1; n <= 36; ++n) {
    std::string id;
    for (std::size_t i = 0; i < n; ++i) id += alphabet[(i * 7 + 3) % alphabet.size()];
    const IdToken t{id, "ISO14443"};
    const std::string m = t.masked();
    EXPECT_EQ(m.rfind("ISO14443:", 0), 0u) << m;
    EXPECT_EQ(m.find(id, 9), std::string::npos) << "id " << id << " -> " << m;
    EXPECT_EQ(m.size(), 9 + n) << m;  // same length, so support can tell badges apart
    EXPECT_NE(m.find('*'), std::string::npos) << m;
    // At most two characters of the id show, and none of an id shorter than 8.
    const auto shown = static_cast<std::size_t>(std::count_if(m.begin() + 9, m.end(), [](char c) { return c != '*'; }));
    EXPECT_LE(shown, n >= 8 ? 2u : 0u) << m;
  }
  EXPECT_EQ((IdToken{"04A2B3C4", "ISO14443"}.masked()), "ISO14443:******C4");
  EXPECT_EQ((IdToken{"ABCDEF", "Central"}.masked()), "Central:******");
}

TEST(IdToken, ToJsonAndEquality) {
  const IdToken t{"04A2B3C4", "ISO14443"};
  EXPECT_EQ(json::serialize(t.to_json()), R"({"idToken":"04A2B3C4","type":"ISO14443"})");
  EXPECT_EQ(t, (IdToken{"04A2B3C4", "ISO14443"}));
  EXPECT_FALSE(t == (IdToken{"04A2B3C4", "eMAID"}));
}

TEST(TransactionId, IsAVersion4Uuid) {
  std::set<std::string> seen;
  for (int i = 0; i < 100; ++i) {
    const std::string id = cg::station::new_transaction_id();
    ASSERT_EQ(id.size(), 36u);
    EXPECT_EQ(id[8], '-');
    EXPECT_EQ(id[14], '4');
    EXPECT_NE(std::string("89ab").find(id[19]), std::string::npos) << id;
    EXPECT_TRUE(seen.insert(id).second);
  }
}

}  // namespace
