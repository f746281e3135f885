// OCPP-J framing (OCPP 2.0.1 part 4): what the station accepts, what it refuses
// with which RPC error code and message id, and the exact JSON it sends.
#include "ocpp/frame.hpp"

#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <string>
#include <variant>
#include <vector>

namespace {

namespace json = boost::json;
using cg::ocpp::BadFrame;
using cg::ocpp::Call;
using cg::ocpp::CallError;
using cg::ocpp::CallResult;
using cg::ocpp::make_call;
using cg::ocpp::make_error;
using cg::ocpp::make_result;
using cg::ocpp::parse_frame;
using cg::ocpp::RpcError;

BadFrame bad(std::string_view text) {
  auto f = parse_frame(text);
  EXPECT_TRUE(std::holds_alternative<BadFrame>(f)) << text;
  if (auto* b = std::get_if<BadFrame>(&f)) return *b;
  return BadFrame{"<not a BadFrame>", RpcError::GenericError, {}, {}};
}

void expect_bad(std::string_view text, const std::string& id, RpcError code) {
  SCOPED_TRACE(std::string(text.substr(0, 120)));
  const BadFrame b = bad(text);
  EXPECT_EQ(b.id, id);
  EXPECT_EQ(cg::ocpp::to_string(b.code), cg::ocpp::to_string(code));
  EXPECT_FALSE(b.message.empty());
}

// [[[...[]...]]] with DEPTH levels of arrays in total, inside a CALL payload
// (the frame array and the payload object count as the first two levels).
std::string call_with_depth(int depth) {
  std::string inner;
  for (int i = 0; i < depth - 2; ++i) inner += "[";
  for (int i = 0; i < depth - 2; ++i) inner += "]";
  return R"([2,"d","DataTransfer",{"data":)" + inner + "}]";
}

TEST(Frame, UnreadableMessagesGetIdMinus1) {
  expect_bad("", "-1", RpcError::RpcFrameworkError);
  expect_bad("not json", "-1", RpcError::RpcFrameworkError);
  expect_bad(R"([2,"abc","Heartbeat",{})", "-1", RpcError::RpcFrameworkError);     // truncated
  expect_bad(R"([2,"abc","Heartbeat",{}]]])", "-1", RpcError::RpcFrameworkError);  // trailing garbage
  expect_bad(R"({"messageTypeId":2})", "-1", RpcError::RpcFrameworkError);         // not an array
  expect_bad(R"("text")", "-1", RpcError::RpcFrameworkError);
  expect_bad("42", "-1", RpcError::RpcFrameworkError);
  expect_bad("[]", "-1", RpcError::RpcFrameworkError);                         // empty array
  expect_bad("[2]", "-1", RpcError::RpcFrameworkError);                        // no id
  expect_bad(R"([2,123,"Heartbeat",{}])", "-1", RpcError::RpcFrameworkError);  // id not a string
  expect_bad(R"([2,null,"Heartbeat",{}])", "-1", RpcError::RpcFrameworkError);
  expect_bad(R"([2,["x"],"Heartbeat",{}])", "-1", RpcError::RpcFrameworkError);
  expect_bad(R"([2,"","Heartbeat",{}])", "-1", RpcError::RpcFrameworkError);  // empty id
  // invalid UTF-8 is not JSON
  expect_bad("[2,\"a\xff\",\"Heartbeat\",{}]", "-1", RpcError::RpcFrameworkError);
}

TEST(Frame, IdLongerThan36IsRefusedWithMinus1) {
  const std::string id36(36, 'a'), id37(37, 'a');
  auto f = parse_frame(R"([2,")" + id36 + R"(","Heartbeat",{}])");
  ASSERT_TRUE(std::holds_alternative<Call>(f));
  EXPECT_EQ(std::get<Call>(f).id, id36);
  expect_bad(R"([2,")" + id37 + R"(","Heartbeat",{}])", "-1", RpcError::RpcFrameworkError);
}

TEST(Frame, UnknownMessageTypeIsNotSupportedWithTheId) {
  expect_bad(R"([7,"m-1","Heartbeat",{}])", "m-1", RpcError::MessageTypeNotSupported);
  expect_bad(R"([0,"m-2",{}])", "m-2", RpcError::MessageTypeNotSupported);
  expect_bad(R"([-2,"m-3","Heartbeat",{}])", "m-3", RpcError::MessageTypeNotSupported);
  expect_bad(R"([5,"m-4"])", "m-4", RpcError::MessageTypeNotSupported);
  expect_bad(R"(["2","m-5","Heartbeat",{}])", "m-5", RpcError::MessageTypeNotSupported);  // not a number
  expect_bad(R"([2.5,"m-6","Heartbeat",{}])", "m-6", RpcError::MessageTypeNotSupported);
  expect_bad(R"([null,"m-7","Heartbeat",{}])", "m-7", RpcError::MessageTypeNotSupported);
}

TEST(Frame, HugeMessageTypeIsRefusedNotThrown) {
  // above INT64_MAX: Boost.JSON keeps it as uint64; parse_frame must still answer
  EXPECT_NO_THROW({
    expect_bad(R"([18446744073709551615,"m-8","Heartbeat",{}])", "m-8", RpcError::MessageTypeNotSupported);
    expect_bad(R"([9223372036854775808,"m-9"])", "m-9", RpcError::MessageTypeNotSupported);
  });
  expect_bad(R"([9223372036854775807,"m-10"])", "m-10", RpcError::MessageTypeNotSupported);
  expect_bad(R"([-9223372036854775808,"m-11"])", "m-11", RpcError::MessageTypeNotSupported);
}

TEST(Frame, CallPayloadMustBeAnObject) {
  for (const char* p : {"[]", "null", "\"x\"", "1", "true"}) {
    const std::string text = std::string(R"([2,"c-1","Reset",)") + p + "]";
    SCOPED_TRACE(text);
    const BadFrame b = bad(text);
    EXPECT_EQ(b.id, "c-1");
    EXPECT_EQ(b.code, RpcError::FormatViolation);
    EXPECT_EQ(b.action, "Reset");
  }
}

TEST(Frame, CallArityAndActionErrorsAreRpcFrameworkErrors) {
  expect_bad(R"([2,"c-1","Reset"])", "c-1", RpcError::RpcFrameworkError);        // 3 elements
  expect_bad(R"([2,"c-1","Reset",{},{}])", "c-1", RpcError::RpcFrameworkError);  // 5 elements
  expect_bad(R"([2,"c-1",{}])", "c-1", RpcError::RpcFrameworkError);             // no action
  expect_bad(R"([2,"c-1",5,{}])", "c-1", RpcError::RpcFrameworkError);           // action not a string
  expect_bad(R"([2,"c-1","",{}])", "c-1", RpcError::RpcFrameworkError);          // empty action
  expect_bad(R"([2,"c-1",")" + std::string(65, 'A') + R"(",{}])", "c-1", RpcError::RpcFrameworkError);
  auto ok = parse_frame(R"([2,"c-1",")" + std::string(64, 'A') + R"(",{}])");
  EXPECT_TRUE(std::holds_alternative<Call>(ok));
}

TEST(Frame, ResultAndErrorArity) {
  expect_bad(R"([3,"r-1"])", "r-1", RpcError::RpcFrameworkError);
  expect_bad(R"([3,"r-1",{},{}])", "r-1", RpcError::RpcFrameworkError);
  expect_bad(R"([4,"e-1","GenericError","x"])", "e-1", RpcError::RpcFrameworkError);       // no details
  expect_bad(R"([4,"e-1","GenericError","x",{},1])", "e-1", RpcError::RpcFrameworkError);  // 6 elements
  expect_bad(R"([4,"e-1",1,"x",{}])", "e-1", RpcError::RpcFrameworkError);                 // code not a string
  expect_bad(R"([4,"e-1","GenericError",null,{}])", "e-1", RpcError::RpcFrameworkError);   // description
  // A broken reply is never answered with a CALLERROR (OCPP-J): it fails the CALL it answers.
  for (const char* text : {R"([3,"r-1"])", R"([4,"e-1","GenericError","x"])"}) {
    auto f = parse_frame(text);
    ASSERT_TRUE(std::holds_alternative<BadFrame>(f)) << text;
    EXPECT_FALSE(std::get<BadFrame>(f).answer) << text;
  }
  EXPECT_TRUE(std::get<BadFrame>(parse_frame(R"([2,"c-1","Reset"])")).answer);
}

TEST(Frame, ValidCall) {
  auto f = parse_frame(
      R"([2,"19223201","BootNotification",{"reason":"PowerUp","chargingStation":{"model":"X","vendorName":"V"}}])");
  ASSERT_TRUE(std::holds_alternative<Call>(f));
  const auto& c = std::get<Call>(f);
  EXPECT_EQ(c.id, "19223201");
  EXPECT_EQ(c.action, "BootNotification");
  ASSERT_TRUE(c.payload.is_object());
  EXPECT_EQ(c.payload.at("reason"), "PowerUp");
  EXPECT_EQ(c.payload.at("chargingStation").at("model"), "X");

  // whitespace between the elements is fine
  auto g = parse_frame(" [ 2 , \"x\" , \"Heartbeat\" , { } ] ");
  ASSERT_TRUE(std::holds_alternative<Call>(g));
  EXPECT_TRUE(std::get<Call>(g).payload.as_object().empty());
}

TEST(Frame, ValidCallResult) {
  auto f = parse_frame(R"([3,"19223201",{"currentTime":"2026-01-01T00:00:00Z","interval":300,"status":"Accepted"}])");
  ASSERT_TRUE(std::holds_alternative<CallResult>(f));
  const auto& r = std::get<CallResult>(f);
  EXPECT_EQ(r.id, "19223201");
  EXPECT_EQ(r.payload.at("interval").as_int64(), 300);
  EXPECT_EQ(r.payload.at("status"), "Accepted");
}

TEST(Frame, ValidCallError) {
  auto f = parse_frame(R"([4,"162376037","NotSupported","SetDisplayMessage not implemented",{"a":1}])");
  ASSERT_TRUE(std::holds_alternative<CallError>(f));
  const auto& e = std::get<CallError>(f);
  EXPECT_EQ(e.id, "162376037");
  EXPECT_EQ(e.code, "NotSupported");
  EXPECT_EQ(e.description, "SetDisplayMessage not implemented");
  EXPECT_EQ(e.details, (json::value{{"a", 1}}));

  // the OCPP 1.6 spelling is kept as received (the caller maps it)
  auto g = parse_frame(R"([4,"x","OccurenceConstraintViolation","",{}])");
  ASSERT_TRUE(std::holds_alternative<CallError>(g));
  EXPECT_EQ(std::get<CallError>(g).code, "OccurenceConstraintViolation");
  EXPECT_EQ(cg::ocpp::rpc_error_from_string("OccurenceConstraintViolation"), RpcError::OccurrenceConstraintViolation);
  EXPECT_EQ(cg::ocpp::rpc_error_from_string("FormationViolation"), RpcError::FormatViolation);
  EXPECT_FALSE(cg::ocpp::rpc_error_from_string("NoSuchError").has_value());
}

TEST(Frame, DepthAbove32IsRefused) {
  for (int d = 3; d <= 32; ++d) {
    EXPECT_TRUE(std::holds_alternative<Call>(parse_frame(call_with_depth(d)))) << "depth " << d;
  }
  // too deep: FormatViolation, with the message id when its first bytes show it
  expect_bad(call_with_depth(33), "d", RpcError::FormatViolation);
  expect_bad(call_with_depth(1000), "d", RpcError::FormatViolation);
  expect_bad(std::string(100000, '['), "-1", RpcError::FormatViolation);
  // the id of a too-deep frame is taken only when it is plain printable ASCII
  const std::string deep_tail = ",\"A\",{\"x\":" + std::string(40, '[') + std::string(40, ']') + "}]";
  expect_bad("[2,\"\xc3\xa9\"" + deep_tail, "-1", RpcError::FormatViolation);
  expect_bad("[2,\"\xff\"" + deep_tail, "-1", RpcError::RpcFrameworkError);  // not UTF-8: not JSON at all
  expect_bad("[2,\"a\\\"b\"" + deep_tail, "-1", RpcError::FormatViolation);
  expect_bad("[2,\"" + std::string(37, 'i') + "\"" + deep_tail, "-1", RpcError::FormatViolation);
  expect_bad("[2,\"" + std::string(36, 'i') + "\"" + deep_tail, std::string(36, 'i'), RpcError::FormatViolation);
  expect_bad(" [ 2 , \"sp\"" + deep_tail, "sp", RpcError::FormatViolation);
}

TEST(Frame, MessageIdHint) {
  using cg::ocpp::message_id_hint;
  EXPECT_EQ(message_id_hint(R"([2,"19223201","BootNotification",{)"), "19223201");
  // Only a CALL is answered with a CALLERROR: a broken CALLRESULT/CALLERROR gets no id.
  EXPECT_EQ(message_id_hint(R"([3,"r1",{)"), "-1");
  EXPECT_EQ(message_id_hint(R"([4,"e1","GenericError")"), "-1");
  EXPECT_EQ(message_id_hint("\n\t[ 2 ,\r \"x\""), "x");
  for (const std::string& h : std::vector<std::string>{
           "", "{", "[", "[2", "[2,", "[2,\"", "[2,\"abc", "[2,\"\"", "[5,\"x\"", "[22,\"x\"", "[2;\"x\"", "[2,x\"",
           "[2,\"a\\u0041\"", "[2,\"\x01\"", "[2,\"\x7f\"", "[2,\"\xc3\xa9\"", "[2,\"" + std::string(37, 'i') + "\""}) {
    EXPECT_EQ(message_id_hint(h), "-1") << '"' << h << '"';
  }
  // only the first 64 bytes are looked at
  EXPECT_EQ(message_id_hint("[2," + std::string(60, ' ') + "\"late\""), "-1");
}

TEST(Frame, ErrorForAnyBadFrameIsValidJson) {
  // whatever id and message parse_frame reports, the CALLERROR built from them parses
  const std::string deep = std::string(40, '[') + std::string(40, ']');
  for (const std::string& text : std::vector<std::string>{
           std::string("[2,\"\xff\xfe\",\"A\",{\"x\":") + deep + "}]", std::string("[2,\"q\\\"\",\"A\",") + deep + "]",
           std::string("[7,\"\xc3\xa9\",{}]"), std::string("[2,\"id\",\"") + std::string(100, 'A') + "\",{}]"}) {
    auto f = parse_frame(text);
    ASSERT_TRUE(std::holds_alternative<BadFrame>(f));
    const auto& b = std::get<BadFrame>(f);
    json::error_code ec;
    json::parse(make_error(b.id, b.code, b.message), ec);
    EXPECT_FALSE(ec) << ec.message();
  }
}

TEST(Frame, MakeCallIsExactJson) {
  EXPECT_EQ(make_call("19223201", "BootNotification", json::value{{"reason", "PowerUp"}}),
            R"([2,"19223201","BootNotification",{"reason":"PowerUp"}])");
  EXPECT_EQ(make_call("1", "Heartbeat", json::object{}), R"([2,"1","Heartbeat",{}])");
  EXPECT_EQ(make_call("q\"1", "A", json::object{}), R"([2,"q\"1","A",{}])");
}

TEST(Frame, MakeResultIsExactJson) {
  EXPECT_EQ(make_result("19223201", json::value{{"status", "Accepted"}}), R"([3,"19223201",{"status":"Accepted"}])");
  EXPECT_EQ(make_result("x", json::object{}), R"([3,"x",{}])");
}

TEST(Frame, MakeErrorIsExactJson) {
  EXPECT_EQ(make_error("162376037", RpcError::NotImplemented, "unknown action Foo"),
            R"([4,"162376037","NotImplemented","unknown action Foo",{}])");
  EXPECT_EQ(make_error("-1", RpcError::RpcFrameworkError, ""), R"([4,"-1","RpcFrameworkError","",{}])");
  EXPECT_EQ(make_error("x", RpcError::OccurrenceConstraintViolation, "a \"quoted\"\nline"),
            R"([4,"x","OccurrenceConstraintViolation","a \"quoted\"\nline",{}])");
}

TEST(Frame, MadeFramesParseBack) {
  auto f =
      parse_frame(make_call("id-1", "Authorize", json::value{{"idToken", {{"idToken", "AB"}, {"type", "ISO14443"}}}}));
  ASSERT_TRUE(std::holds_alternative<Call>(f));
  EXPECT_EQ(std::get<Call>(f).payload.at("idToken").at("type"), "ISO14443");

  auto e = parse_frame(make_error("id-2", RpcError::SecurityError, "not permitted"));
  ASSERT_TRUE(std::holds_alternative<CallError>(e));
  EXPECT_EQ(std::get<CallError>(e).code, "SecurityError");
  EXPECT_EQ(std::get<CallError>(e).description, "not permitted");
}

TEST(Frame, ErrorDescriptionIsCappedAt255) {
  const std::string longer(1000, 'd');
  auto f = parse_frame(make_error("x", RpcError::GenericError, longer));
  ASSERT_TRUE(std::holds_alternative<CallError>(f));
  EXPECT_EQ(std::get<CallError>(f).description, std::string(255, 'd'));

  const std::string exact(255, 'e');
  EXPECT_EQ(std::get<CallError>(parse_frame(make_error("x", RpcError::GenericError, exact))).description, exact);
}

TEST(Frame, ErrorDescriptionCapDoesNotSplitUtf8) {
  // 254 ASCII bytes and then a two-byte character: the cap at 255 bytes falls
  // inside it; the frame must stay valid UTF-8 (a strict peer rejects it otherwise).
  for (std::size_t prefix : {252u, 253u, 254u}) {
    for (const std::string ch : {"\xc3\xa9", "\xe2\x82\xac", "\xf0\x9f\x94\x8c"}) {  // é € 🔌
      const std::string desc = std::string(prefix, 'a') + ch + "tail";
      const std::string out = make_error("x", RpcError::GenericError, desc);
      json::error_code ec;
      json::value v = json::parse(out, ec);
      ASSERT_FALSE(ec) << "prefix " << prefix << ", " << ch.size() << "-byte character: " << ec.message();
      const std::string d(v.as_array()[3].as_string());
      EXPECT_LE(d.size(), 255u);
      EXPECT_EQ(desc.rfind(d, 0), 0u);  // a prefix of the original
      EXPECT_GE(d.size(), prefix);      // only the split character was dropped
    }
  }
}

}  // namespace
