// The OCPP front end's dispatcher and functional blocks against a fake
// session and real services (tests/unit/ocpp_harness.hpp): every route asks
// the one policy through its service (a deny-all policy makes every route
// refuse, with an AccessDenied record), denials are rate-limited, each
// operation writes its one audit record, the inbound stage is pure, the
// replay window and the boot gate answer first, and the simulator front end
// goes through the same services.
#include <gtest/gtest.h>

#include <boost/asio/post.hpp>

#include "hal/sim_front_end.hpp"
#include "ocpp/inbound.hpp"
#include "ocpp/schema.hpp"
#include "ocpp_harness.hpp"

namespace {

using cg::test::Answer;
using cg::test::OcppStation;
using cg::test::sample_requests;
namespace json = boost::json;

// ---- the sample requests are what the CSMS could send

TEST(OcppBlocks, SampleRequestsAreSchemaValidAndCoverEveryRoute) {
  OcppStation st;
  const auto routes = st.dispatcher().actions();
  EXPECT_EQ(routes.size(), 21u) << "a route was added or removed: update sample_requests()";
  for (const auto& action : routes) {
    auto it = sample_requests().find(action);
    ASSERT_NE(it, sample_requests().end()) << action << " has no sample request";
    const auto v = cg::ocpp::schema::validate(action, cg::ocpp::schema::Kind::Request, json::parse(it->second));
    EXPECT_FALSE(v.has_value()) << action << ": " << (v ? v->path + " " + v->message : "");
  }
}

// ---- AUTHZ-1: every route goes through the one policy

TEST(OcppBlocks, ADenyAllPolicyMakesEveryRouteRefuseAndEachRefusalIsAudited) {
  for (const auto& [action, payload] : sample_requests()) {
    OcppStation st(&cg::test::deny_all);  // a fresh station: the denial records are rate-limited
    const std::size_t before = st.records().size();
    const Answer a = st.request(action, payload);
    EXPECT_FALSE(a.ok) << action << " answered without asking the policy";
    EXPECT_EQ(a.error, "SecurityError") << action;
    EXPECT_EQ(a.description, "not permitted") << action;
    const auto denied = st.records_of("AccessDenied");
    ASSERT_EQ(denied.size(), 1u) << action;
    EXPECT_EQ(denied[0].at("outcome"), "failure");
    EXPECT_EQ(denied[0].at("source").at("interface"), "Wan");
    EXPECT_EQ(denied[0].at("source").at("principal"), "wss://csms.test/ocpp");
    EXPECT_EQ(denied[0].at("details").at("role"), "Csms");
    EXPECT_FALSE(denied[0].at("details").at("operation").as_string().empty());
    EXPECT_EQ(st.records().size(), before + 1) << action << ": nothing but the denial is recorded";
    EXPECT_EQ(st.session.restarts, 0) << action;
    EXPECT_TRUE(st.session.reconnects.empty()) << action;
  }
}

TEST(OcppBlocks, WithTheRealPolicyEveryRouteAnswers) {
  for (const auto& [action, payload] : sample_requests()) {
    OcppStation st;
    const Answer a = st.request(action, payload);
    EXPECT_TRUE(a.ok) << action << ": " << a.error << " " << a.description;
    EXPECT_TRUE(st.records_of("AccessDenied").empty()) << action;
    if (a.ok) {
      const auto v = cg::ocpp::schema::validate(action, cg::ocpp::schema::Kind::Response, a.payload);
      EXPECT_FALSE(v.has_value()) << action;
    }
  }
}

TEST(OcppBlocks, DenialsAreRateLimitedAndTheHeldBackCountIsCarried) {
  OcppStation st(&cg::test::deny_all);
  for (int i = 0; i < 25; ++i) EXPECT_EQ(st.request("GetLocalListVersion", "{}").error, "SecurityError");
  const auto denied = st.records_of("AccessDenied");
  EXPECT_EQ(denied.size(), 10u) << "10 a minute";
  for (const auto& r : denied) EXPECT_FALSE(r.at("details").as_object().contains("suppressedBefore"));
}

// A security-relevant variable needs ManageSecuritySettings on top of
// WriteConfiguration: per variable, refused and audited as a denial.
TEST(OcppBlocks, ASecuritySettingNeedsManageSecuritySettings) {
  OcppStation st([](const cg::policy::Principal&, cg::policy::Operation op) {
    return op == cg::policy::Operation::ManageSecuritySettings ? cg::policy::Decision::Deny
                                                                : cg::policy::Decision::Allow;
  });
  const Answer a = st.request(
      "SetVariables",
      R"({"setVariableData":[{"attributeValue":"Other CPO","component":{"name":"SecurityCtrlr"},"variable":{"name":"OrganizationName"}},
                             {"attributeValue":"90","component":{"name":"OCPPCommCtrlr"},"variable":{"name":"HeartbeatInterval"}}]})");
  ASSERT_TRUE(a.ok) << a.error;
  const auto& res = a.payload.at("setVariableResult").as_array();
  EXPECT_EQ(res[0].at("attributeStatus"), "Rejected");
  EXPECT_EQ(res[0].at("attributeStatusInfo").at("reasonCode"), "NoPermission");
  EXPECT_EQ(res[1].at("attributeStatus"), "Accepted");
  EXPECT_EQ(st.dm().text("SecurityCtrlr.OrganizationName"), "Test CPO");
  const auto denied = st.records_of("AccessDenied");
  ASSERT_EQ(denied.size(), 1u);
  EXPECT_EQ(denied[0].at("details").at("operation"), "ManageSecuritySettings");
  EXPECT_TRUE(cg::test::has(std::string(denied[0].at("details").at("request").as_string()), "OrganizationName"));
  const auto changed = st.records_of("ConfigurationChanged");
  ASSERT_EQ(changed.size(), 1u) << "one record per variable set";
  EXPECT_EQ(changed[0].at("details").at("value"), "90");
}

// ---- one audit record per operation

TEST(OcppBlocks, EachOperationWritesExactlyOneRecord) {
  OcppStation st;
  ASSERT_TRUE(st.request("SendLocalList", sample_requests().at("SendLocalList")).ok);
  ASSERT_EQ(st.records_of("AuthorizationChanged").size(), 1u);
  ASSERT_TRUE(st.request("ClearCache", "{}").ok);
  ASSERT_EQ(st.records_of("AuthorizationChanged").size(), 2u);
  const Answer del = st.request("DeleteCertificate", sample_requests().at("DeleteCertificate"));
  ASSERT_TRUE(del.ok);
  EXPECT_EQ(del.payload.at("status"), "NotFound");
  const auto r = st.records_of("ReconfigurationOfSecurityParameters");
  ASSERT_EQ(r.size(), 1u);
  EXPECT_EQ(r[0].at("details").at("change"), "deleteCertificate");
  EXPECT_EQ(r[0].at("outcome"), "failure");
}

// Exceptions do not leave a service: a failing storage is an error the front
// end answers (InternalError; "error: …" on the simulator socket), never an
// exception through the front end.
TEST(OcppBlocks, AStorageFailureIsAnErrorTheFrontEndAnswers) {
  OcppStation st;
  st.db().exec("DROP TABLE auth_list");
  st.db().exec("DROP TABLE auth_cache");
  const Answer a = st.request("SendLocalList", sample_requests().at("SendLocalList"));
  EXPECT_EQ(a.error, "InternalError");
  EXPECT_EQ(st.request("ClearCache", "{}").error, "InternalError");
  cg::hal::SimFrontEnd sim(st.charging(), st.lifecycle(), [] { return std::string("{}"); });
  st.dm().set({"AuthCtrlr", "", 0, 0, "LocalPreAuthorize", ""}, "Actual", "true");  // the badge goes to the list
  const std::string r = sim.handle(cg::hal::SimCommand{cg::hal::SimCommand::Kind::Badge, 1, "AB12CD34", "ISO14443", 0});
  EXPECT_TRUE(cg::test::has(r, "error: present a badge: the station's storage failed")) << r;
}

// ---- the dispatcher: replay window, boot gate, the inbound stage's verdict

TEST(OcppDispatcher, AReplayedIdIsRefusedAndRecorded) {
  OcppStation st;
  st.dispatcher().handle(cg::ocpp::InboundCall{"same-id", "GetLocalListVersion", json::object{}, std::nullopt});
  EXPECT_TRUE(st.last_answer("same-id").ok);
  st.dispatcher().handle(cg::ocpp::InboundCall{"same-id", "GetLocalListVersion", json::object{}, std::nullopt});
  EXPECT_EQ(st.last_answer("same-id").error, "RpcFrameworkError");
  EXPECT_EQ(st.records_of("AttemptedReplayAttacks").size(), 1u);
  st.dispatcher().new_session();  // a new connection: a new window
  st.dispatcher().handle(cg::ocpp::InboundCall{"same-id", "GetLocalListVersion", json::object{}, std::nullopt});
  EXPECT_TRUE(st.last_answer("same-id").ok);
}

TEST(OcppDispatcher, NothingBeforeTheBootIsAccepted) {
  OcppStation st;
  for (auto b : {cg::ocpp::BootState::None, cg::ocpp::BootState::Rejected}) {
    st.session.boot = b;
    const Answer a = st.request("Reset", R"({"type":"Immediate"})");
    EXPECT_EQ(a.error, "SecurityError");
    EXPECT_EQ(a.description, "BootNotification not accepted");
  }
  EXPECT_EQ(st.session.restarts, 0);
  EXPECT_EQ(st.records_of("InvalidMessages").size(), 2u);
}

TEST(OcppDispatcher, TheInboundVerdictIsAnsweredAndRecorded) {
  OcppStation st;
  st.dispatcher().handle(cg::ocpp::InboundCall{"p1", "Reset", json::object{}, cg::ocpp::Problem{cg::ocpp::RpcError::OccurrenceConstraintViolation, "type: missing"}});
  const Answer a = st.last_answer("p1");
  EXPECT_EQ(a.error, "OccurrenceConstraintViolation");
  EXPECT_EQ(st.session.restarts, 0);
  const auto inv = st.records_of("InvalidMessages");
  ASSERT_EQ(inv.size(), 1u);
  EXPECT_EQ(inv[0].at("details").at("action"), "Reset");
}

// decode() is pure: the same text gives the same verdict, whatever came before.
TEST(OcppInbound, DecodeChecksActionSchemaAndRoute) {
  const auto supported = [](std::string_view a) { return a == "Reset"; };
  auto call = [&](std::string_view text) { return std::get<cg::ocpp::InboundCall>(cg::ocpp::decode(text, supported)); };
  EXPECT_FALSE(call(R"([2,"1","Reset",{"type":"OnIdle"}])").problem.has_value());
  EXPECT_EQ(call(R"([2,"1","Reset",{}])").problem->code, cg::ocpp::RpcError::OccurrenceConstraintViolation);
  EXPECT_EQ(call(R"([2,"1","NoSuchAction",{}])").problem->code, cg::ocpp::RpcError::NotImplemented);
  const auto unsupported = call(R"([2,"1","GetLocalListVersion",{}])");
  EXPECT_EQ(unsupported.problem->code, cg::ocpp::RpcError::NotImplemented);
  EXPECT_TRUE(cg::test::has(unsupported.problem->description, "not supported by this station"));
  EXPECT_TRUE(std::holds_alternative<cg::ocpp::BadFrame>(cg::ocpp::decode("[2,", supported)));
  EXPECT_TRUE(std::holds_alternative<cg::ocpp::CallResult>(cg::ocpp::decode(R"([3,"9",{}])", supported)));
}

// ---- availability + reset: the restart waits for the answer, and for idle

TEST(OcppBlocks, AnImmediateResetRestartsOnceTheAnswerIsWrittenAndIsAudited) {
  OcppStation st;
  const Answer a = st.request("Reset", R"({"type":"Immediate"})");
  ASSERT_TRUE(a.ok);
  EXPECT_EQ(a.payload.at("status"), "Accepted");
  EXPECT_EQ(st.session.restarts, 1) << "the fake connection wrote the answer at once";
  const auto r = st.records_of("ResetOrReboot");
  ASSERT_EQ(r.size(), 1u);
  EXPECT_EQ(r[0].at("source").at("interface"), "Wan");
}

TEST(OcppBlocks, AnOnIdleResetWaitsForTheTransactionToEnd) {
  OcppStation st;
  // A transaction by a remote start with the EV plugged in.
  ASSERT_TRUE(st.loop().submit({cg::station::HwInput::Kind::Plug, 1, 0}));
  st.loop().step(100, false);
  std::vector<cg::station::LoopEvent> evs;
  st.loop().drain(evs);
  for (const auto& e : evs) st.station().on_loop_event(e);
  ASSERT_TRUE(st.request("RequestStartTransaction", sample_requests().at("RequestStartTransaction")).ok);
  ASSERT_FALSE(st.station().idle());
  const Answer a = st.request("Reset", R"({"type":"OnIdle"})");
  EXPECT_EQ(a.payload.at("status"), "Scheduled");
  st.availability_block().tick();
  EXPECT_EQ(st.session.restarts, 0);
  const std::string tx = st.station().evses()[0].tx->id;
  ASSERT_TRUE(st.request("RequestStopTransaction", json::object{{"transactionId", tx}}).ok);
  st.availability_block().tick();
  EXPECT_EQ(st.session.restarts, 1);
  EXPECT_EQ(st.records_of("ResetOrReboot").size(), 1u);
}

// ---- security: A01 reconnects once the answer is out

TEST(OcppBlocks, ANewPasswordIsSealedAndTheReconnectionWaitsForTheAnswer) {
  OcppStation st;
  const Answer a = st.request(
      "SetVariables",
      R"({"setVariableData":[{"attributeValue":"New-Password-0123456789","component":{"name":"SecurityCtrlr"},"variable":{"name":"BasicAuthPassword"}}]})");
  ASSERT_TRUE(a.ok);
  EXPECT_EQ(a.payload.at("setVariableResult").at(0).at("attributeStatus"), "Accepted");
  ASSERT_EQ(st.session.reconnects.size(), 1u);
  const auto r = st.records_of("ReconfigurationOfSecurityParameters");
  ASSERT_EQ(r.size(), 1u);
  EXPECT_EQ(r[0].at("details").at("BasicAuthPassword"), "(secret: not recorded)");
  for (const auto& rec : st.records())
    EXPECT_FALSE(cg::test::has(json::serialize(rec), "New-Password")) << "the password in the security log";
}

TEST(OcppBlocks, GetLogOfTheDiagnosticsLogNeedsItsOwnPermission) {
  OcppStation st([](const cg::policy::Principal&, cg::policy::Operation op) {
    return op == cg::policy::Operation::ReadDiagnosticsLog ? cg::policy::Decision::Deny : cg::policy::Decision::Allow;
  });
  const Answer diag = st.request(
      "GetLog", R"({"logType":"DiagnosticsLog","requestId":8,"log":{"remoteLocation":"https://logs.test/u"}})");
  EXPECT_EQ(diag.error, "SecurityError");
  const Answer sec = st.request("GetLog", sample_requests().at("GetLog"));
  EXPECT_TRUE(sec.ok);
  const Answer bad = st.request("GetLog", R"({"logType":"SecurityLog","requestId":9,"log":{"remoteLocation":"http://x/"}})");
  ASSERT_TRUE(bad.ok);
  EXPECT_EQ(bad.payload.at("status"), "Rejected");
  EXPECT_EQ(bad.payload.at("statusInfo").at("reasonCode"), "InvalidURL");
}

// ---- the simulator front end goes through the same services

TEST(SimFrontEnd, AsksThePolicyForTheEvTheDriverAndAnswersWhatTheServiceSaid) {
  OcppStation st;
  cg::hal::SimFrontEnd sim(st.charging(), st.lifecycle(), [] { return std::string("{}"); });
  cg::hal::SimCommand plug{cg::hal::SimCommand::Kind::Plug, 1, {}, "ISO14443", 0};
  EXPECT_EQ(sim.handle(plug), "ok");
  plug.evse = 9;
  EXPECT_EQ(sim.handle(plug), "error: EVSE 9 does not exist");
  cg::hal::SimCommand badge{cg::hal::SimCommand::Kind::Badge, 1, "AB12CD34", "ISO14443", 0};
  EXPECT_EQ(sim.handle(badge), "ok");
  st.set_policy(&cg::test::deny_all);
  plug.evse = 1;
  EXPECT_EQ(sim.handle(plug), "error: not permitted");
  EXPECT_EQ(sim.handle(badge), "error: not permitted");
  const auto denied = st.records_of("AccessDenied");
  ASSERT_EQ(denied.size(), 2u);
  EXPECT_EQ(denied[0].at("source").at("interface"), "EvCable");
  EXPECT_EQ(denied[0].at("details").at("operation"), "ControlCharging");
  EXPECT_EQ(denied[1].at("source").at("interface"), "AuthTerminal");
  EXPECT_FALSE(cg::test::has(json::serialize(denied[1]), "AB12CD34")) << "the badge id in the record";
  // The tamper sensors are the station's own: recorded whatever the policy.
  cg::hal::SimCommand open{cg::hal::SimCommand::Kind::CaseOpen, 0, {}, "ISO14443", 0};
  EXPECT_EQ(sim.handle(open), "ok");
  EXPECT_EQ(st.records_of("TamperDetectionActivated").size(), 1u);
}

}  // namespace
