// Tests for the OCPP 2.0.1 schema validation (src/ocpp/schema.cpp) and the
// RPC error-code names (src/ocpp/errors.cpp).
#include "ocpp/schema.hpp"

#include <gtest/gtest.h>

#include <boost/json.hpp>

#include <array>
#include <limits>
#include <set>
#include <string>
#include <string_view>

#include "ocpp/errors.hpp"
#include "ocpp/generated/schema_tables.hpp"

namespace cg::ocpp::schema {
namespace {

namespace json = boost::json;

std::optional<Violation> request(std::string_view action, std::string_view text) {
  return validate(action, Kind::Request, json::parse(text));
}

std::optional<Violation> response(std::string_view action, std::string_view text) {
  return validate(action, Kind::Response, json::parse(text));
}

// Readable failure output: "<code> at <path>: <message>" or "valid".
std::string describe(const std::optional<Violation>& v) {
  if (!v) return "valid";
  return std::string(to_string(v->code)) + " at '" + v->path + "': " + v->message;
}

::testing::AssertionResult is_valid(const std::optional<Violation>& v) {
  if (!v) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << describe(v);
}

#define EXPECT_VALID(expr) EXPECT_TRUE(is_valid(expr))

// Checks the code and the path of a violation, and that the message is short
// and does not echo `secret` (the offending value), when given.
void expect_violation(const std::optional<Violation>& v, RpcError code, std::string_view path,
                      std::string_view secret = {}) {
  ASSERT_TRUE(v.has_value()) << "expected " << to_string(code) << " at '" << path << "'";
  EXPECT_EQ(v->code, code) << describe(v);
  EXPECT_EQ(v->path, path) << describe(v);
  EXPECT_FALSE(v->message.empty());
  EXPECT_LE(v->message.size(), 200U);
  if (!secret.empty()) {
    EXPECT_EQ(v->message.find(secret), std::string::npos) << "message echoes the value: " << v->message;
    EXPECT_EQ(v->path.find(secret), std::string::npos) << "path echoes the value: " << v->path;
  }
}

// The message of a violation, or "<valid>" (so a missing violation fails the
// comparison instead of dereferencing an empty optional).
std::string message_of(const std::optional<Violation>& v) { return v ? v->message : "<valid>"; }

std::string authorize_with_token(std::string_view token) {
  return R"({"idToken":{"idToken":")" + std::string(token) + R"(","type":"ISO14443"}})";
}

std::string repeat(std::string_view s, std::size_t n) {
  std::string out;
  for (std::size_t i = 0; i < n; ++i) out += s;
  return out;
}

// ---------------------------------------------------------------- valid messages

TEST(SchemaTest, ValidBootNotificationRequest) {
  EXPECT_VALID(request("BootNotification", R"({
    "reason": "PowerUp",
    "chargingStation": {
      "model": "CG-22",
      "vendorName": "ChargeGuard",
      "serialNumber": "CG22-000123",
      "firmwareVersion": "0.1.0",
      "modem": {"iccid": "89490200001234567890", "imsi": "262011234567890"}
    }
  })"));
  EXPECT_VALID(request("BootNotification",
                       R"({"reason":"Unknown","chargingStation":{"model":"m","vendorName":"v"}})"));
}

TEST(SchemaTest, ValidBootNotificationResponse) {
  EXPECT_VALID(response("BootNotification",
                        R"({"currentTime":"2026-11-22T10:00:00Z","interval":300,"status":"Accepted"})"));
  EXPECT_VALID(response("BootNotification", R"({
    "currentTime": "2026-11-22T10:00:00.123+01:00", "interval": 0, "status": "Pending",
    "statusInfo": {"reasonCode": "Maintenance", "additionalInfo": "back soon"}
  })"));
}

TEST(SchemaTest, RequestAndResponseSchemasAreDistinct) {
  const std::string_view boot_response = R"({"currentTime":"2026-11-22T10:00:00Z","interval":300,"status":"Accepted"})";
  expect_violation(request("BootNotification", boot_response), RpcError::OccurrenceConstraintViolation,
                   "/chargingStation");
  EXPECT_VALID(request("Heartbeat", "{}"));
  EXPECT_VALID(response("Heartbeat", R"({"currentTime":"2026-11-22T10:00:00Z"})"));
}

// ---------------------------------------------------------------- error-code mapping

TEST(SchemaTest, PayloadNotAnObjectIsFormatViolation) {
  for (const std::string_view text : {"[]", R"("x")", "null", "42", "true", R"([{"idToken":{}}])"}) {
    expect_violation(request("Authorize", text), RpcError::FormatViolation, "");
  }
  expect_violation(response("Heartbeat", "[]"), RpcError::FormatViolation, "");
}

TEST(SchemaTest, AuthorizeValid) {
  EXPECT_VALID(request("Authorize", authorize_with_token("04A1B2C3D4E5F6")));
  EXPECT_VALID(request("Authorize", R"({"idToken":{"idToken":"","type":"NoAuthorization"}})"));
  EXPECT_VALID(request("Authorize", R"({
    "idToken": {"idToken": "DEADBEEF", "type": "Local",
                "additionalInfo": [{"additionalIdToken": "x", "type": "custom"}]},
    "iso15118CertificateHashData": [{"hashAlgorithm": "SHA256", "issuerNameHash": "a",
                                     "issuerKeyHash": "b", "serialNumber": "c", "responderURL": "d"}]
  })"));
}

TEST(SchemaTest, EnumMismatchIsPropertyConstraintViolation) {
  const auto v = request("Authorize", R"({"idToken":{"idToken":"04A1B2C3","type":"RFIDBogusKind"}})");
  expect_violation(v, RpcError::PropertyConstraintViolation, "/idToken/type", "RFIDBogusKind");
  // Enums are exact: case, prefixes and padding do not match.
  for (const std::string_view type : {"iso14443", "ISO1444", "ISO14443 ", "ISO144430", ""}) {
    expect_violation(request("Authorize", R"({"idToken":{"idToken":"x","type":")" + std::string(type) + R"("}})"),
                     RpcError::PropertyConstraintViolation, "/idToken/type");
  }
  for (const std::string_view type :
       {"Central", "eMAID", "ISO14443", "ISO15693", "KeyCode", "Local", "MacAddress", "NoAuthorization"}) {
    EXPECT_VALID(request("Authorize", R"({"idToken":{"idToken":"x","type":")" + std::string(type) + R"("}})"));
  }
}

TEST(SchemaTest, StringTooLongIsPropertyConstraintViolation) {
  EXPECT_VALID(request("Authorize", authorize_with_token(std::string(36, 'A'))));
  const std::string token = "SECRET" + std::string(31, 'A');  // 37 characters
  const auto v = request("Authorize", authorize_with_token(token));
  expect_violation(v, RpcError::PropertyConstraintViolation, "/idToken/idToken", "SECRET");
  EXPECT_EQ(message_of(v), "string longer than maxLength 36");
}

TEST(SchemaTest, MissingRequiredPropertyIsOccurrenceConstraintViolation) {
  expect_violation(request("Authorize", "{}"), RpcError::OccurrenceConstraintViolation, "/idToken");
  expect_violation(request("Authorize", R"({"idToken":{"type":"Central"}})"),
                   RpcError::OccurrenceConstraintViolation, "/idToken/idToken");
  expect_violation(request("Authorize", R"({"idToken":{"idToken":"x"}})"),
                   RpcError::OccurrenceConstraintViolation, "/idToken/type");
  expect_violation(request("BootNotification", R"({"reason":"PowerUp","chargingStation":{"model":"m"}})"),
                   RpcError::OccurrenceConstraintViolation, "/chargingStation/vendorName");
}

TEST(SchemaTest, ExtraPropertyIsFormatViolation) {
  expect_violation(request("Authorize", R"({"idToken":{"idToken":"x","type":"Central"},"pin":"1234"})"),
                   RpcError::FormatViolation, "/pin", "1234");
  expect_violation(request("Authorize", R"({"idToken":{"idToken":"x","type":"Central","expiry":1}})"),
                   RpcError::FormatViolation, "/idToken/expiry");
  // Property names are case-sensitive.
  const auto v = request("Authorize", R"({"idToken":{"idToken":"x","type":"Central","IdToken":"x"}})");
  expect_violation(v, RpcError::FormatViolation, "/idToken/IdToken");
  EXPECT_EQ(message_of(v), "property not allowed (additionalProperties false)");
}

TEST(SchemaTest, WrongTypeIsTypeConstraintViolation) {
  expect_violation(request("Authorize", R"({"idToken":"04A1B2C3"})"), RpcError::TypeConstraintViolation,
                   "/idToken", "04A1B2C3");
  expect_violation(request("Authorize", R"({"idToken":{"idToken":4711,"type":"Central"}})"),
                   RpcError::TypeConstraintViolation, "/idToken/idToken");
  expect_violation(request("Authorize", R"({"idToken":{"idToken":"x","type":["Central"]}})"),
                   RpcError::TypeConstraintViolation, "/idToken/type");
  expect_violation(request("Authorize", R"({"idToken":{"idToken":"x","type":"Central","additionalInfo":{}}})"),
                   RpcError::TypeConstraintViolation, "/idToken/additionalInfo");
  // Booleans are not strings or numbers, and vice versa.
  const std::string_view report = R"({"requestId":1,"generatedAt":"2026-11-22T10:00:00Z","seqNo":0,"tbc":)";
  EXPECT_VALID(request("NotifyReport", std::string(report) + "true}"));
  expect_violation(request("NotifyReport", std::string(report) + R"("true"})"), RpcError::TypeConstraintViolation,
                   "/tbc");
  expect_violation(request("NotifyReport", std::string(report) + "1}"), RpcError::TypeConstraintViolation, "/tbc");
  const auto v = request("NotifyReport", std::string(report) + R"("true"})");
  EXPECT_EQ(message_of(v), "expected boolean, got string");
}

TEST(SchemaTest, NullIsNeverAccepted) {
  expect_violation(request("Authorize", R"({"idToken":null})"), RpcError::TypeConstraintViolation, "/idToken");
  // Optional fields must be omitted, not sent as null.
  expect_violation(request("Authorize", R"({"idToken":{"idToken":"x","type":"Central"},"certificate":null})"),
                   RpcError::TypeConstraintViolation, "/certificate");
  expect_violation(request("Authorize", R"({"idToken":{"idToken":"x","type":"Central","customData":null}})"),
                   RpcError::TypeConstraintViolation, "/idToken/customData");
  expect_violation(response("BootNotification",
                            R"({"currentTime":"2026-11-22T10:00:00Z","interval":null,"status":"Accepted"})"),
                   RpcError::TypeConstraintViolation, "/interval");
  // Even the free-form DataTransfer.data.
  expect_violation(request("DataTransfer", R"({"vendorId":"com.example","data":null})"),
                   RpcError::TypeConstraintViolation, "/data");
}

TEST(SchemaTest, UnknownActionIsNotImplemented) {
  using namespace std::string_view_literals;
  for (const std::string_view action : {""sv, "Foo"sv, "authorize"sv, "Authorize "sv, "BootNotificationRequest"sv,
                                        "StartTransaction"sv, "RemoteStartTransaction"sv, "Heartbeat\0"sv,
                                        "Heartbeat\0x"sv}) {
    const auto v = validate(action, Kind::Request, json::object{});
    expect_violation(v, RpcError::NotImplemented, "");
    expect_violation(validate(action, Kind::Response, json::object{}), RpcError::NotImplemented, "");
  }
  // The action is checked before the payload.
  expect_violation(validate("Foo", Kind::Request, json::value(nullptr)), RpcError::NotImplemented, "");
}

// ---------------------------------------------------------------- numbers

TEST(SchemaTest, IntegerRequiresAnIntegralJsonNumber) {
  const auto boot = [](std::string_view interval) {
    return response("BootNotification", R"({"currentTime":"2026-11-22T10:00:00Z","status":"Accepted","interval":)" +
                                            std::string(interval) + "}");
  };
  EXPECT_VALID(boot("300"));
  EXPECT_VALID(boot("-1"));
  EXPECT_VALID(boot("2147483647"));   // OCPP integers are 32-bit signed
  EXPECT_VALID(boot("-2147483648"));
  expect_violation(boot("2147483648"), RpcError::PropertyConstraintViolation, "/interval");
  expect_violation(boot("18446744073709551615"), RpcError::PropertyConstraintViolation, "/interval");  // uint64
  expect_violation(boot("-9223372036854775808"), RpcError::PropertyConstraintViolation, "/interval");  // int64
  for (const std::string_view bad : {"300.0", "300.5", "3e2", "1E0"}) {
    const auto v = boot(bad);
    expect_violation(v, RpcError::TypeConstraintViolation, "/interval");
    EXPECT_EQ(message_of(v), "expected integer, got a floating-point number");
  }
  expect_violation(boot(R"("300")"), RpcError::TypeConstraintViolation, "/interval");
  expect_violation(boot("true"), RpcError::TypeConstraintViolation, "/interval");
}

TEST(SchemaTest, NumberAcceptsIntegersAndDoubles) {
  const auto meter = [](std::string_view value) {
    return request("MeterValues", R"({"evseId":1,"meterValue":[{"timestamp":"2026-11-22T10:00:00Z",
        "sampledValue":[{"value":)" + std::string(value) + R"(,"measurand":"Energy.Active.Import.Register",
        "unitOfMeasure":{"unit":"Wh","multiplier":3}}]}]})");
  };
  for (const std::string_view good : {"0", "-12", "1234.5", "1e3", "1.0", "18446744073709551615"}) {
    EXPECT_VALID(meter(good)) << good;
  }
  expect_violation(meter(R"("1234.5")"), RpcError::TypeConstraintViolation, "/meterValue/0/sampledValue/0/value");
  expect_violation(meter("false"), RpcError::TypeConstraintViolation, "/meterValue/0/sampledValue/0/value");

  // A programmatically built non-finite double is not a JSON number.
  json::value payload = json::parse(
      R"({"evseId":1,"meterValue":[{"timestamp":"2026-11-22T10:00:00Z","sampledValue":[{"value":0}]}]})");
  payload.at("meterValue").at(0).at("sampledValue").at(0).at("value") = std::numeric_limits<double>::infinity();
  expect_violation(validate("MeterValues", Kind::Request, payload), RpcError::TypeConstraintViolation,
                   "/meterValue/0/sampledValue/0/value");
}

TEST(SchemaTest, MinimumAndMaximumArePropertyConstraintViolations) {
  const auto needs = [](std::string_view soc) {
    return request("NotifyEVChargingNeeds", R"({"evseId":1,"chargingNeeds":{"requestedEnergyTransfer":"DC",
        "departureTime":"2026-11-22T18:30:00+01:00",
        "dcChargingParameters":{"evMaxCurrent":200,"evMaxVoltage":800,"stateOfCharge":)" + std::string(soc) + "}}}");
  };
  EXPECT_VALID(needs("0"));
  EXPECT_VALID(needs("42"));
  EXPECT_VALID(needs("100"));
  auto v = needs("-1");
  expect_violation(v, RpcError::PropertyConstraintViolation, "/chargingNeeds/dcChargingParameters/stateOfCharge");
  EXPECT_EQ(message_of(v), "number below minimum 0");
  v = needs("101");
  expect_violation(v, RpcError::PropertyConstraintViolation, "/chargingNeeds/dcChargingParameters/stateOfCharge");
  EXPECT_EQ(message_of(v), "number above maximum 100");
  expect_violation(needs("-9223372036854775808"), RpcError::PropertyConstraintViolation,
                   "/chargingNeeds/dcChargingParameters/stateOfCharge");
  expect_violation(needs("18446744073709551615"), RpcError::PropertyConstraintViolation,
                   "/chargingNeeds/dcChargingParameters/stateOfCharge");
  expect_violation(needs("50.0"), RpcError::TypeConstraintViolation,
                   "/chargingNeeds/dcChargingParameters/stateOfCharge");
}

// ---------------------------------------------------------------- arrays

TEST(SchemaTest, GetVariablesArrays) {
  EXPECT_VALID(request("GetVariables", R"({"getVariableData":[
    {"component":{"name":"OCPPCommCtrlr"},"variable":{"name":"HeartbeatInterval"}},
    {"attributeType":"Target","component":{"name":"EVSE","evse":{"id":1,"connectorId":1}},
     "variable":{"name":"AvailabilityState","instance":"x"}}
  ]})"));

  auto v = request("GetVariables", R"({"getVariableData":[]})");
  expect_violation(v, RpcError::OccurrenceConstraintViolation, "/getVariableData");
  EXPECT_EQ(message_of(v), "array has fewer than minItems 1 elements");

  expect_violation(request("GetVariables", R"({"getVariableData":{}})"), RpcError::TypeConstraintViolation,
                   "/getVariableData");
  expect_violation(request("GetVariables", R"({"getVariableData":[
      {"component":{"name":"A"},"variable":{"name":"B"}},
      {"component":{"name":"EVSE"}}]})"),
                   RpcError::OccurrenceConstraintViolation, "/getVariableData/1/variable");
  expect_violation(request("GetVariables", R"({"getVariableData":[
      {"component":{"name":"EVSE","evse":{"connectorId":1}},"variable":{"name":"B"}}]})"),
                   RpcError::OccurrenceConstraintViolation, "/getVariableData/0/component/evse/id");
  expect_violation(request("GetVariables", R"({"getVariableData":[
      {"component":{"name":"EVSE","evse":{"id":"1"}},"variable":{"name":"B"}}]})"),
                   RpcError::TypeConstraintViolation, "/getVariableData/0/component/evse/id");
  expect_violation(request("GetVariables", R"({"getVariableData":[
      {"attributeType":"Actual","component":{"name":"A"},"variable":{"name":"B"}},
      {"attributeType":"actual","component":{"name":"A"},"variable":{"name":"B"}}]})"),
                   RpcError::PropertyConstraintViolation, "/getVariableData/1/attributeType");
  expect_violation(request("GetVariables", R"({"getVariableData":[null]})"), RpcError::TypeConstraintViolation,
                   "/getVariableData/0");
  expect_violation(request("GetVariables",
                           R"({"getVariableData":[{"component":{"name":")" + std::string(51, 'c') +
                               R"("},"variable":{"name":"B"}}]})"),
                   RpcError::PropertyConstraintViolation, "/getVariableData/0/component/name");
}

TEST(SchemaTest, SetVariablesRequestAndResponse) {
  EXPECT_VALID(request("SetVariables", R"({"setVariableData":[
    {"attributeValue":"60","component":{"name":"OCPPCommCtrlr"},"variable":{"name":"HeartbeatInterval"}},
    {"attributeType":"Actual","attributeValue":"","component":{"name":"SecurityCtrlr"},
     "variable":{"name":"BasicAuthPassword"}}
  ]})"));
  expect_violation(request("SetVariables", R"({"setVariableData":[
      {"component":{"name":"OCPPCommCtrlr"},"variable":{"name":"HeartbeatInterval"}}]})"),
                   RpcError::OccurrenceConstraintViolation, "/setVariableData/0/attributeValue");
  // A secret that is too long must not show up in the violation.
  const std::string password = "hunter2-" + std::string(993, 'x');  // 1001 characters
  const auto v = request("SetVariables", R"({"setVariableData":[{"attributeValue":")" + password +
                                             R"(","component":{"name":"SecurityCtrlr"},)"
                                             R"("variable":{"name":"BasicAuthPassword"}}]})");
  expect_violation(v, RpcError::PropertyConstraintViolation, "/setVariableData/0/attributeValue", "hunter2");
  EXPECT_EQ(message_of(v), "string longer than maxLength 1000");

  EXPECT_VALID(response("SetVariables", R"({"setVariableResult":[
    {"attributeStatus":"Accepted","component":{"name":"OCPPCommCtrlr"},"variable":{"name":"HeartbeatInterval"}},
    {"attributeStatus":"RebootRequired","attributeStatusInfo":{"reasonCode":"Reboot"},
     "component":{"name":"EVSE","evse":{"id":2}},"variable":{"name":"X"}}
  ]})"));
  expect_violation(response("SetVariables", R"({"setVariableResult":[
      {"attributeStatus":"Maybe","component":{"name":"A"},"variable":{"name":"B"}}]})"),
                   RpcError::PropertyConstraintViolation, "/setVariableResult/0/attributeStatus");
  expect_violation(response("SetVariables", R"({"setVariableResult":[]})"),
                   RpcError::OccurrenceConstraintViolation, "/setVariableResult");
}

TEST(SchemaTest, MaxItemsIsOccurrenceConstraintViolation) {
  const std::string hash =
      R"({"hashAlgorithm":"SHA256","issuerNameHash":"a","issuerKeyHash":"b","serialNumber":"c","responderURL":"d"})";
  const auto authorize = [&](std::size_t n) {
    std::string list;
    for (std::size_t i = 0; i < n; ++i) list += (i ? "," : "") + hash;
    return request("Authorize",
                   R"({"idToken":{"idToken":"x","type":"eMAID"},"iso15118CertificateHashData":[)" + list + "]}");
  };
  EXPECT_VALID(authorize(1));
  EXPECT_VALID(authorize(4));
  auto v = authorize(5);
  expect_violation(v, RpcError::OccurrenceConstraintViolation, "/iso15118CertificateHashData");
  EXPECT_EQ(message_of(v), "array has more than maxItems 4 elements");
  expect_violation(authorize(0), RpcError::OccurrenceConstraintViolation, "/iso15118CertificateHashData");
}

// ---------------------------------------------------------------- date-time

TEST(SchemaTest, DateTimeAccepted) {
  for (const std::string_view t : {
           "2026-11-22T10:00:00Z",
           "2026-11-22T10:00:00.123+01:00",
           "2026-11-22T10:00:00.1Z",
           "2026-11-22T10:00:00.123456789-05:30",
           "2026-11-22t10:00:00z",
           "2026-11-22T23:59:59+14:00",
           "2026-11-22T00:00:00-00:00",
           "2024-02-29T12:00:00Z",  // leap year
           "2000-02-29T12:00:00Z",  // divisible by 400
           "2026-01-31T00:00:00Z",
           "2026-12-31T23:59:59.999Z",
           "2016-12-31T23:59:60Z",       // leap second
           "2017-01-01T00:59:60+01:00",  // the same leap second, local time
           "0000-01-01T00:00:00Z",
       }) {
    EXPECT_VALID(response("Heartbeat", R"({"currentTime":")" + std::string(t) + R"("})")) << t;
  }
}

TEST(SchemaTest, DateTimeRejected) {
  for (const std::string_view t : {
           "",
           "2026-11-22",
           "10:00:00Z",
           "2026-11-22T10:00:00",        // no offset
           "2026-11-22 10:00:00Z",       // space separator
           "2026-11-22T10:00Z",          // no seconds
           "2026-11-22T10:00:00.Z",      // empty fraction
           "2026-11-22T10:00:00,5Z",     // comma fraction
           "2026-11-22T10:00:00+0100",   // offset without colon
           "2026-11-22T10:00:00+01",     // offset without minutes
           "2026-11-22T10:00:00+01:00:00",
           "2026-11-22T10:00:00+24:00",
           "2026-11-22T10:00:00+01:60",
           "2026-11-22T10:00:00ZZ",
           "2026-11-22T10:00:00Z ",
           " 2026-11-22T10:00:00Z",
           "2026-13-01T00:00:00Z",
           "2026-00-10T00:00:00Z",
           "2026-11-00T00:00:00Z",
           "2026-11-31T00:00:00Z",
           "2026-04-31T00:00:00Z",
           "2026-02-29T00:00:00Z",  // not a leap year
           "1900-02-29T00:00:00Z",  // divisible by 100
           "2026-11-22T24:00:00Z",
           "2026-11-22T10:60:00Z",
           "2026-11-22T10:00:61Z",
           "2026-11-22T10:00:60Z",  // leap second at the wrong time
           "2026-1-22T10:00:00Z",
           "26-11-22T10:00:00Z",
           "+2026-11-22T10:00:00Z",
           "2026/11/22T10:00:00Z",
           "2026-11-22T1a:00:00Z",
           "\xEF\xBC\x92\xEF\xBC\x90\x32\x36-11-22T10:00:00Z",  // full-width digits
           "1763805600",
       }) {
    const auto v = response("Heartbeat", R"({"currentTime":")" + std::string(t) + R"("})");
    expect_violation(v, RpcError::PropertyConstraintViolation, "/currentTime");
    EXPECT_EQ(message_of(v), "string is not an RFC 3339 date-time") << t;
  }
  expect_violation(response("Heartbeat", R"({"currentTime":1763805600})"), RpcError::TypeConstraintViolation,
                   "/currentTime");
}

TEST(SchemaTest, DateTimeNestedInArrays) {
  expect_violation(request("MeterValues", R"({"evseId":1,"meterValue":[
      {"timestamp":"2026-11-22T10:00:00Z","sampledValue":[{"value":1}]},
      {"timestamp":"2026-11-22T10:00:00","sampledValue":[{"value":2}]}]})"),
                   RpcError::PropertyConstraintViolation, "/meterValue/1/timestamp");
}

// ---------------------------------------------------------------- strings

TEST(SchemaTest, MaxLengthCountsCodePoints) {
  const std::string two_byte = repeat("\xC3\xA9", 36);             // é: 36 code points, 72 bytes
  const std::string three_byte = repeat("\xE2\x82\xAC", 36);       // €: 108 bytes
  const std::string four_byte = repeat("\xF0\x9F\x94\x8C", 36);    // 🔌: 144 bytes
  EXPECT_VALID(request("Authorize", authorize_with_token(two_byte)));
  EXPECT_VALID(request("Authorize", authorize_with_token(three_byte)));
  EXPECT_VALID(request("Authorize", authorize_with_token(four_byte)));
  EXPECT_VALID(request("Authorize", authorize_with_token(repeat("a\xF0\x9F\x94\x8C", 18))));
  for (const std::string& too_long : {two_byte + "\xC3\xA9", three_byte + "a", "a" + four_byte}) {
    expect_violation(request("Authorize", authorize_with_token(too_long)), RpcError::PropertyConstraintViolation,
                     "/idToken/idToken");
  }
  // Escaped JSON input counts the decoded characters.
  EXPECT_VALID(request("Authorize", authorize_with_token(repeat("\\u00e9", 36))));
  EXPECT_VALID(request("Authorize", authorize_with_token(repeat("\\ud83d\\udd0c", 36))));
}

// ---------------------------------------------------------------- customData and free-form data

TEST(SchemaTest, CustomDataAcceptsVendorProperties) {
  EXPECT_VALID(request("Authorize", R"({
    "customData": {"vendorId": "com.example", "tariffHint": "night", "n": 1, "nested": {"a": [1, {"b": null}]}},
    "idToken": {"idToken": "x", "type": "Central",
                "customData": {"vendorId": "com.example.rfid", "readerFirmware": "2.1", "flags": [true, false]}}
  })"));
  EXPECT_VALID(response("Heartbeat",
                        R"({"currentTime":"2026-11-22T10:00:00Z","customData":{"vendorId":"v","skew":-0.5}})"));
  expect_violation(request("Authorize", R"({"idToken":{"idToken":"x","type":"Central","customData":{"tariff":1}}})"),
                   RpcError::OccurrenceConstraintViolation, "/idToken/customData/vendorId");
  expect_violation(request("Authorize", R"({"idToken":{"idToken":"x","type":"Central","customData":"com.example"}})"),
                   RpcError::TypeConstraintViolation, "/idToken/customData");
  expect_violation(
      request("Authorize", R"({"idToken":{"idToken":"x","type":"Central","customData":{"vendorId":")" +
                               std::string(256, 'v') + R"("}}})"),
      RpcError::PropertyConstraintViolation, "/idToken/customData/vendorId");
  // Vendor members are fields too: omit, never null.
  expect_violation(request("Authorize",
                           R"({"idToken":{"idToken":"x","type":"Central","customData":{"vendorId":"v","hint":null}}})"),
                   RpcError::TypeConstraintViolation, "/idToken/customData/hint");
}

TEST(SchemaTest, DataTransferDataIsFreeForm) {
  for (const std::string_view data :
       {R"("opaque")", "42", "-1.5", "true", "[]", "{}", R"([1,"a",null,{"k":[null]}])", R"({"meter":{"id":7}})"}) {
    EXPECT_VALID(request("DataTransfer", R"({"vendorId":"com.example","messageId":"m1","data":)" +
                                             std::string(data) + "}"))
        << data;
  }
  EXPECT_VALID(response("DataTransfer", R"({"status":"Accepted","data":{"any":["thing"]}})"));
  expect_violation(request("DataTransfer", R"({"data":"x"})"), RpcError::OccurrenceConstraintViolation,
                   "/vendorId");
}

// ---------------------------------------------------------------- depth guard

// DataTransfer request whose data is `arrays` nested arrays around 1.
json::value nested_data_transfer(std::size_t arrays) {
  json::value data = 1;
  for (std::size_t i = 0; i < arrays; ++i) {
    json::array a;
    a.push_back(std::move(data));
    data = std::move(a);
  }
  json::object root;
  root["vendorId"] = "com.example";
  root["data"] = std::move(data);
  return root;
}

TEST(SchemaTest, NestingDeeperThan32LevelsIsFormatViolation) {
  // The payload object is level 1, so data can hold 31 nested arrays (level 32).
  EXPECT_VALID(validate("DataTransfer", Kind::Request, nested_data_transfer(31)));
  const auto v = validate("DataTransfer", Kind::Request, nested_data_transfer(32));
  std::string path = "/data";
  for (int i = 0; i < 31; ++i) path += "/0";
  expect_violation(v, RpcError::FormatViolation, path);
  EXPECT_EQ(message_of(v), "nesting deeper than 32 levels");
  // Far deeper input is refused the same way (and without deep recursion).
  expect_violation(validate("DataTransfer", Kind::Request, nested_data_transfer(1000)), RpcError::FormatViolation,
                   path);

  // Objects count as well, including inside customData.
  json::value deep = json::object{{"vendorId", "v"}};
  for (int i = 0; i < 40; ++i) deep = json::object{{"vendorId", "v"}, {"x", std::move(deep)}};
  json::value payload = json::object{{"currentTime", "2026-11-22T10:00:00Z"}, {"customData", std::move(deep)}};
  const auto w = validate("Heartbeat", Kind::Response, payload);
  ASSERT_TRUE(w.has_value());
  EXPECT_EQ(w->code, RpcError::FormatViolation);
  EXPECT_EQ(w->path.rfind("/customData/x/x/", 0), 0U) << w->path;
}

// ---------------------------------------------------------------- paths

TEST(SchemaTest, PathsAreEscapedJsonPointers) {
  expect_violation(request("Authorize", R"({"idToken":{"idToken":"x","type":"Central"},"a/b~c":1})"),
                   RpcError::FormatViolation, "/a~1b~0c");
  expect_violation(request("Authorize", R"({"idToken":{"idToken":"x","type":"Central"},"bad\u0001key\n":1})"),
                   RpcError::FormatViolation, "/bad?key?");
  const std::string long_key(1000, 'k');
  expect_violation(request("Authorize", R"({"idToken":{"idToken":"x","type":"Central"},")" + long_key + R"(":1})"),
                   RpcError::FormatViolation, "/" + std::string(64, 'k'));
  // Truncation does not split a UTF-8 sequence.
  const std::string utf8_key = std::string(63, 'k') + "\xC3\xA9" + "tail";
  expect_violation(request("Authorize", R"({"idToken":{"idToken":"x","type":"Central"},")" + utf8_key + R"(":1})"),
                   RpcError::FormatViolation, "/" + std::string(63, 'k'));
}

TEST(SchemaTest, ViolationDoesNotDependOnMemberOrder) {
  const auto a = request("BootNotification", R"({"reason":"Bogus","chargingStation":{"vendorName":"v"}})");
  const auto b = request("BootNotification", R"({"chargingStation":{"vendorName":"v"},"reason":"Bogus"})");
  ASSERT_TRUE(a && b);
  EXPECT_EQ(a->path, b->path);
  EXPECT_EQ(a->code, b->code);
}

// ---------------------------------------------------------------- response schemas

TEST(SchemaTest, ResponseSchemas) {
  auto v = response("Heartbeat", "{}");
  expect_violation(v, RpcError::OccurrenceConstraintViolation, "/currentTime");
  EXPECT_EQ(message_of(v), "required property missing");
  expect_violation(response("Heartbeat", R"({"currentTime":"2026-11-22T10:00:00Z","interval":1})"),
                   RpcError::FormatViolation, "/interval");

  EXPECT_VALID(response("Authorize", R"({"idTokenInfo":{"status":"Accepted","evseId":[1,2],
      "cacheExpiryDateTime":"2026-12-01T00:00:00Z","groupIdToken":{"idToken":"G1","type":"Central"},
      "personalMessage":{"format":"UTF8","content":"Welcome"}}})"));
  expect_violation(response("Authorize", R"({"idTokenInfo":{}})"), RpcError::OccurrenceConstraintViolation,
                   "/idTokenInfo/status");
  expect_violation(response("Authorize", R"({"idTokenInfo":{"status":"Accepted","evseId":[]}})"),
                   RpcError::OccurrenceConstraintViolation, "/idTokenInfo/evseId");
  expect_violation(response("Authorize", R"({"idTokenInfo":{"status":"Accepted","evseId":[1,1.5]}})"),
                   RpcError::TypeConstraintViolation, "/idTokenInfo/evseId/1");

  EXPECT_VALID(response("ClearCache", R"({"status":"Rejected"})"));
  EXPECT_VALID(response("StatusNotification", "{}"));
  expect_violation(response("StatusNotification", R"({"status":"Accepted"})"), RpcError::FormatViolation,
                   "/status");
}

// ---------------------------------------------------------------- actions

constexpr std::array<std::string_view, 64> kAllActions{
    "Authorize",
    "BootNotification",
    "CancelReservation",
    "CertificateSigned",
    "ChangeAvailability",
    "ClearCache",
    "ClearChargingProfile",
    "ClearDisplayMessage",
    "ClearVariableMonitoring",
    "ClearedChargingLimit",
    "CostUpdated",
    "CustomerInformation",
    "DataTransfer",
    "DeleteCertificate",
    "FirmwareStatusNotification",
    "Get15118EVCertificate",
    "GetBaseReport",
    "GetCertificateStatus",
    "GetChargingProfiles",
    "GetCompositeSchedule",
    "GetDisplayMessages",
    "GetInstalledCertificateIds",
    "GetLocalListVersion",
    "GetLog",
    "GetMonitoringReport",
    "GetReport",
    "GetTransactionStatus",
    "GetVariables",
    "Heartbeat",
    "InstallCertificate",
    "LogStatusNotification",
    "MeterValues",
    "NotifyChargingLimit",
    "NotifyCustomerInformation",
    "NotifyDisplayMessages",
    "NotifyEVChargingNeeds",
    "NotifyEVChargingSchedule",
    "NotifyEvent",
    "NotifyMonitoringReport",
    "NotifyReport",
    "PublishFirmware",
    "PublishFirmwareStatusNotification",
    "ReportChargingProfiles",
    "RequestStartTransaction",
    "RequestStopTransaction",
    "ReservationStatusUpdate",
    "ReserveNow",
    "Reset",
    "SecurityEventNotification",
    "SendLocalList",
    "SetChargingProfile",
    "SetDisplayMessage",
    "SetMonitoringBase",
    "SetMonitoringLevel",
    "SetNetworkProfile",
    "SetVariableMonitoring",
    "SetVariables",
    "SignCertificate",
    "StatusNotification",
    "TransactionEvent",
    "TriggerMessage",
    "UnlockConnector",
    "UnpublishFirmware",
    "UpdateFirmware",
};

TEST(SchemaTest, HasAllSixtyFourActions) {
  const std::set<std::string_view> unique(kAllActions.begin(), kAllActions.end());
  EXPECT_EQ(unique.size(), 64U);
  std::size_t found = 0;
  for (const std::string_view action : kAllActions) {
    EXPECT_TRUE(has_action(action)) << action;
    if (has_action(action)) ++found;
    // Every action has both schemas: an empty object is either valid or a
    // schema violation, never NotImplemented.
    for (const Kind kind : {Kind::Request, Kind::Response}) {
      const auto v = validate(action, kind, json::object{});
      if (v) {
        EXPECT_NE(v->code, RpcError::NotImplemented) << action;
      }
    }
  }
  EXPECT_EQ(found, 64U);
  // ...and the generated table holds exactly those, sorted for binary search.
  ASSERT_EQ(tables::kActionCount, 64U);
  for (std::size_t i = 0; i < tables::kActionCount; ++i) {
    const std::string_view name = tables::str(tables::kActions[i].name);
    EXPECT_EQ(unique.count(name), 1U) << name;
    if (i > 0) {
      EXPECT_LT(tables::str(tables::kActions[i - 1].name), name);
    }
  }
  for (const std::string_view not_an_action :
       {"", "authorize", "AUTHORIZE", "Authorize.req", "urn:Authorize.req", "AuthorizeRequest", "StartTransaction",
        "StopTransaction", "RemoteStartTransaction", "GetConfiguration", "ChangeConfiguration", "A", "Zzz"}) {
    EXPECT_FALSE(has_action(not_an_action)) << not_an_action;
  }
}

// ---------------------------------------------------------------- error-code names

TEST(RpcErrorTest, ParsesOcpp16Spellings) {
  EXPECT_EQ(rpc_error_from_string("OccurenceConstraintViolation"), RpcError::OccurrenceConstraintViolation);
  EXPECT_EQ(rpc_error_from_string("FormationViolation"), RpcError::FormatViolation);
  EXPECT_EQ(rpc_error_from_string("OccurrenceConstraintViolation"), RpcError::OccurrenceConstraintViolation);
  EXPECT_EQ(rpc_error_from_string("FormatViolation"), RpcError::FormatViolation);
  // We always send the 2.0.1 spelling.
  EXPECT_EQ(to_string(RpcError::OccurrenceConstraintViolation), "OccurrenceConstraintViolation");
  EXPECT_EQ(to_string(RpcError::FormatViolation), "FormatViolation");
  EXPECT_FALSE(rpc_error_from_string("formatviolation").has_value());
  EXPECT_FALSE(rpc_error_from_string("").has_value());
  EXPECT_FALSE(rpc_error_from_string("Bogus").has_value());
}

TEST(RpcErrorTest, RoundTripsAllCodes) {
  for (const RpcError e :
       {RpcError::FormatViolation, RpcError::GenericError, RpcError::InternalError, RpcError::MessageTypeNotSupported,
        RpcError::NotImplemented, RpcError::NotSupported, RpcError::OccurrenceConstraintViolation,
        RpcError::PropertyConstraintViolation, RpcError::ProtocolError, RpcError::RpcFrameworkError,
        RpcError::SecurityError, RpcError::TypeConstraintViolation}) {
    EXPECT_EQ(rpc_error_from_string(to_string(e)), e) << to_string(e);
  }
}

}  // namespace
}  // namespace cg::ocpp::schema

TEST(SchemaIntegers, OutsideThe32BitRangeIsAPropertyConstraintViolation) {
  using cg::ocpp::RpcError;
  using cg::ocpp::schema::Kind;
  using cg::ocpp::schema::validate;
  auto req = [](boost::json::value id) {
    return boost::json::value{{"idToken", {{"idToken", "T1"}, {"type", "ISO14443"}}}, {"remoteStartId", 1}, {"evseId", id}};
  };
  EXPECT_FALSE(validate("RequestStartTransaction", Kind::Request, req(2147483647)).has_value());
  // A small value held as uint64 (Boost.JSON does that for unsigned C++ types) is fine.
  EXPECT_FALSE(validate("RequestStartTransaction", Kind::Request, req(std::uint64_t{7})).has_value());
  for (boost::json::value bad : {boost::json::value(std::int64_t{4294967297}), boost::json::value(std::int64_t{-2147483649}),
                                 boost::json::value(std::uint64_t{18446744073709551615ull})}) {
    auto v = validate("RequestStartTransaction", Kind::Request, req(bad));
    ASSERT_TRUE(v.has_value());
    EXPECT_EQ(v->code, RpcError::PropertyConstraintViolation);
    EXPECT_EQ(v->path, "/evseId");
  }
}
