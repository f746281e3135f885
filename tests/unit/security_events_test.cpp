// A04 / LOG-4: critical OCPP security events reach the CSMS as
// SecurityEventNotification through the persistent outbox, in the order of the
// audit log, none lost (a crash between the audit record and the outbox is
// caught up at start) and none twice (the cursor commits with the message).
// Real storage::Db, Outbox and AuditLog in a temp dir.
#include "ocpp/security_events.hpp"

#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "audit/audit_log.hpp"
#include "audit/catalog.hpp"
#include "core/storage.hpp"
#include "core/outbox.hpp"
#include "ocpp/schema.hpp"
#include "security/key_store.hpp"
#include "test_util.hpp"

namespace {

namespace fs = std::filesystem;
namespace json = boost::json;
using cg::audit::AuditLog;
using cg::audit::Details;
using cg::audit::Event;
using cg::audit::Outcome;
using cg::audit::RecordView;
using cg::audit::Source;
using cg::core::Outbox;
using cg::ocpp::SecurityEventForwarder;
using cg::storage::Db;

struct Queued {
  std::string action;
  json::object payload;
};

class SecurityEvent : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = cg::test::make_temp_dir("secev");
    open_all();
  }
  void TearDown() override {
    close_all();
    fs::remove_all(dir_);
  }

  // A (re)start of the daemon: database, outbox, audit log, forwarder.
  void open_all() {
    db_ = std::make_unique<Db>(dir_ / "station.db");
    outbox_ = std::make_unique<Outbox>(*db_);
    if (!keys_) keys_ = cg::security::open_file_key_store({dir_ / "keys"});
    log_ = AuditLog::open(dir_ / "audit", *keys_);
    fw_ = std::make_unique<SecurityEventForwarder>(*db_, *outbox_, cg::audit::log_file(dir_ / "audit"));
  }
  void close_all() {
    fw_.reset();
    log_.reset();
    outbox_.reset();
    db_.reset();
  }
  // As the daemon wires it (minus the hop to the I/O thread).
  void listen() {
    log_->on_record([this](const RecordView& v) {
      views_.push_back(v);
      if (fw_->on_record(v)) ++notified_;
    });
  }

  std::vector<Queued> queued() {
    std::vector<Queued> out;
    auto st = db_->prepare("SELECT action, payload FROM outbox ORDER BY seq");
    while (st.step()) out.push_back({st.col_text(0), json::parse(st.col_text(1)).as_object()});
    return out;
  }
  std::uint64_t cursor() { return std::stoull(db_->meta("audit.csms_cursor").value_or("0")); }

  std::uint64_t rec(Event e, Details d = {}) {
    const auto r = log_->record(e, Outcome::Success, Source::system(), d);
    EXPECT_TRUE(r.stored) << r.error;
    return r.seq;
  }

  static void expect_valid_notification(const Queued& q) {
    EXPECT_EQ(q.action, "SecurityEventNotification");
    const auto v = cg::ocpp::schema::validate("SecurityEventNotification", cg::ocpp::schema::Kind::Request, q.payload);
    EXPECT_FALSE(v.has_value()) << json::serialize(q.payload) << ": " << (v ? v->path + " " + v->message : "");
  }

  fs::path dir_;
  std::unique_ptr<Db> db_;
  std::unique_ptr<Outbox> outbox_;
  std::unique_ptr<cg::security::KeyStore> keys_;  // seals the log's key, as the daemon's
  std::unique_ptr<AuditLog> log_;
  std::unique_ptr<SecurityEventForwarder> fw_;
  std::vector<RecordView> views_;
  int notified_ = 0;
};

TEST_F(SecurityEvent, OnlyCriticalOcppEventsAreQueued) {
  listen();
  rec(Event::StartupOfTheDevice);                     // critical OCPP
  rec(Event::InvalidMessages);                        // non-critical OCPP
  rec(Event::Shutdown);                               // local, critical
  rec(Event::ConfigurationChanged);                   // local, non-critical
  rec(Event::FailedToAuthenticateAtCsms);             // non-critical OCPP
  rec(Event::ReconfigurationOfSecurityParameters);    // non-critical OCPP
  rec(Event::SecurityLogOverwritten);                // local, critical
  Details d;
  d.text("sensor", "case-open");
  rec(Event::TamperDetectionActivated, d);            // critical OCPP, with details
  rec(Event::SecurityLogExported);                    // local, critical
  Details login;
  login.text("user", "tech").text("origin", "192.0.2.5");
  rec(Event::MaintenanceLoginAccepted, login);        // critical OCPP

  const auto q = queued();
  ASSERT_EQ(q.size(), 3u);
  EXPECT_EQ(notified_, 3) << "on_record says when a message was queued (the daemon then wakes the sender)";
  for (const auto& m : q) expect_valid_notification(m);
  EXPECT_EQ(q[0].payload.at("type").as_string(), "StartupOfTheDevice");
  EXPECT_EQ(q[1].payload.at("type").as_string(), "TamperDetectionActivated");
  EXPECT_EQ(q[2].payload.at("type").as_string(), "MaintenanceLoginAccepted");
  // timestamp is the record's time; techInfo only when there are details.
  EXPECT_EQ(q[0].payload.at("timestamp").as_string(), views_[0].time);
  EXPECT_EQ(q[1].payload.at("timestamp").as_string(), views_[7].time);
  EXPECT_FALSE(q[0].payload.contains("techInfo"));
  ASSERT_TRUE(q[1].payload.contains("techInfo"));
  EXPECT_EQ(json::parse(q[1].payload.at("techInfo").as_string()).at("sensor").as_string(), "case-open");
  const auto tech = json::parse(q[2].payload.at("techInfo").as_string());
  EXPECT_EQ(tech.at("user").as_string(), "tech");
  EXPECT_EQ(tech.at("origin").as_string(), "192.0.2.5");
  for (const auto& m : q) {
    EXPECT_EQ(m.payload.size(), m.payload.contains("techInfo") ? 3u : 2u) << "only type, timestamp, techInfo";
  }
  EXPECT_EQ(cursor(), 10u) << "the cursor passes non-forwarded records too";
}

TEST_F(SecurityEvent, EveryCriticalOcppEventIsForwardedAndNothingElse) {
  listen();
  std::vector<std::string> expected;
  for (int i = 0; i < cg::audit::kEventCount; ++i) {
    const auto e = static_cast<Event>(i);
    Details d;
    d.text("detail", std::string(300, 'x')).number("i", i);
    rec(e, d);
    if (cg::audit::info(e).ocpp && cg::audit::info(e).critical) expected.emplace_back(cg::audit::info(e).name);
  }
  ASSERT_EQ(expected.size(), 15u);
  const auto q = queued();
  ASSERT_EQ(q.size(), expected.size());
  for (std::size_t i = 0; i < q.size(); ++i) {
    EXPECT_EQ(q[i].payload.at("type").as_string(), expected[i]);
    expect_valid_notification(q[i]);
    EXPECT_LE(q[i].payload.at("techInfo").as_string().size(), 255u);
  }
}

TEST_F(SecurityEvent, CursorPreventsDuplicates) {
  listen();
  rec(Event::ResetOrReboot);
  rec(Event::InvalidCsmsCertificate);
  ASSERT_EQ(queued().size(), 2u);
  ASSERT_EQ(views_.size(), 2u);
  // The same record delivered again (twice posted, or after a catch-up).
  EXPECT_FALSE(fw_->on_record(views_[0]));
  EXPECT_FALSE(fw_->on_record(views_[1]));
  EXPECT_EQ(fw_->catch_up(), 0);
  EXPECT_EQ(queued().size(), 2u);
  // A restart: the cursor is in the database.
  close_all();
  views_.clear();
  open_all();
  EXPECT_EQ(cursor(), 2u);
  EXPECT_EQ(fw_->catch_up(), 0);
  EXPECT_EQ(queued().size(), 2u);
  listen();
  rec(Event::InvalidTLSVersion);
  const auto q = queued();
  ASSERT_EQ(q.size(), 3u);
  EXPECT_EQ(q[2].payload.at("type").as_string(), "InvalidTLSVersion");
}

TEST_F(SecurityEvent, CatchUpAfterOnRecordQueuesNothingTwice) {
  listen();
  rec(Event::FirmwareUpdated);
  rec(Event::SettingSystemTime);
  EXPECT_EQ(fw_->catch_up(), 0);
  EXPECT_EQ(fw_->catch_up(), 0);
  EXPECT_EQ(queued().size(), 2u);
}

TEST_F(SecurityEvent, CrashBetweenAuditRecordAndOutboxLosesNothing) {
  // Records stored while nobody forwarded them (the process died before the
  // outbox commit, or before the forwarder was attached).
  std::vector<std::string> expected;
  for (Event e : {Event::StartupOfTheDevice, Event::InvalidMessages, Event::TamperDetectionActivated, Event::Shutdown,
                  Event::InvalidTLSCipherSuite, Event::AttemptedReplayAttacks, Event::MemoryExhaustion}) {
    rec(e);
    if (cg::audit::info(e).ocpp && cg::audit::info(e).critical) expected.emplace_back(cg::audit::info(e).name);
  }
  EXPECT_TRUE(queued().empty());
  close_all();

  open_all();
  EXPECT_EQ(fw_->catch_up(), 4);
  EXPECT_EQ(fw_->catch_up(), 0) << "exactly once";
  auto q = queued();
  ASSERT_EQ(q.size(), expected.size());
  for (std::size_t i = 0; i < q.size(); ++i) {
    EXPECT_EQ(q[i].payload.at("type").as_string(), expected[i]) << "in the order of the log";
    expect_valid_notification(q[i]);
  }
  EXPECT_EQ(cursor(), 7u);

  // Another restart: nothing queued again.
  close_all();
  open_all();
  EXPECT_EQ(fw_->catch_up(), 0);
  EXPECT_EQ(queued().size(), expected.size());
}

TEST_F(SecurityEvent, OnRecordWithAGapQueuesTheMissedRecordsFirst) {
  // Recorded before the forwarder listened (or whose listener call was
  // delayed behind a later one): the next on_record fills the gap, in order.
  rec(Event::InvalidFirmwareSignature);
  rec(Event::InvalidMessages);
  rec(Event::InvalidFirmwareSigningCertificate);
  listen();
  rec(Event::FirmwareUpdated);
  const auto q = queued();
  ASSERT_EQ(q.size(), 3u);
  EXPECT_EQ(q[0].payload.at("type").as_string(), "InvalidFirmwareSignature");
  EXPECT_EQ(q[1].payload.at("type").as_string(), "InvalidFirmwareSigningCertificate");
  EXPECT_EQ(q[2].payload.at("type").as_string(), "FirmwareUpdated");
  EXPECT_EQ(notified_, 1) << "on_record returned true: messages were queued and the sender must be woken";
  EXPECT_EQ(cursor(), 4u);
}

TEST_F(SecurityEvent, ListenerCallsOutOfOrderQueueInSeqOrderOnce) {
  // Two threads record; their listener calls reach the I/O thread swapped.
  std::vector<RecordView> v;
  log_->on_record([&](const RecordView& r) { v.push_back(r); });
  rec(Event::MaintenanceLoginFailed);
  rec(Event::MaintenanceLoginAccepted);
  ASSERT_EQ(v.size(), 2u);
  EXPECT_TRUE(fw_->on_record(v[1])) << "both are queued, the sender must be woken";
  EXPECT_FALSE(fw_->on_record(v[0]));
  const auto q = queued();
  ASSERT_EQ(q.size(), 2u);
  EXPECT_EQ(q[0].payload.at("type").as_string(), "MaintenanceLoginFailed");
  EXPECT_EQ(q[1].payload.at("type").as_string(), "MaintenanceLoginAccepted");
}

TEST_F(SecurityEvent, NonCriticalOnlyMovesTheCursor) {
  listen();
  rec(Event::InvalidMessages);
  rec(Event::ConfigurationChanged);
  EXPECT_TRUE(queued().empty());
  EXPECT_EQ(notified_, 0);
  EXPECT_EQ(cursor(), 2u);
  EXPECT_EQ(fw_->catch_up(), 0);
}

TEST_F(SecurityEvent, QueuedMessagesSurviveARestartUntilRemoved) {
  listen();
  rec(Event::StartupOfTheDevice);
  rec(Event::ResetOrReboot);
  close_all();
  open_all();
  auto front = outbox_->front();
  ASSERT_TRUE(front.has_value());
  EXPECT_EQ(front->action, "SecurityEventNotification");
  EXPECT_EQ(json::parse(front->payload).at("type").as_string(), "StartupOfTheDevice");
  outbox_->remove(front->seq);  // acknowledged by the CSMS
  EXPECT_EQ(fw_->catch_up(), 0) << "an acknowledged message is not queued again";
  front = outbox_->front();
  ASSERT_TRUE(front.has_value());
  EXPECT_EQ(json::parse(front->payload).at("type").as_string(), "ResetOrReboot");
}

}  // namespace
