#include "ocpp/station_messages.hpp"

#include <boost/json.hpp>
#include <cmath>
#include <cstdint>

#include "core/clock.hpp"

namespace cg::ocpp {
namespace json = boost::json;

namespace {
// A JSON number as a reader expects it: whole numbers as integers (Boost.JSON
// writes every double in exponent form, e.g. 1.104E4), others to 0.1.
json::value number(double v) {
  const double r = std::round(v * 10.0) / 10.0;
  if (r == std::floor(r) && std::fabs(r) < 9e15) return static_cast<std::int64_t>(r);
  return r;
}

json::object sampled(const station::SampledValue& s, std::string_view context) {
  // Energy register in whole Wh, as meters report it.
  const double v = s.measurand == "Energy.Active.Import.Register" ? std::floor(s.value) : s.value;
  return json::object{{"value", number(v)},
                      {"context", context},
                      {"measurand", s.measurand},
                      {"unitOfMeasure", json::object{{"unit", s.unit}}}};
}
}  // namespace

json::array meter_value_json(const std::vector<station::MeterValue>& mv) {
  json::array out;
  for (const auto& m : mv) {
    json::array sv;
    for (const auto& s : m.samples) sv.push_back(sampled(s, m.context));
    out.push_back(json::object{{"timestamp", m.timestamp}, {"sampledValue", std::move(sv)}});
  }
  return out;
}

json::object transaction_event_json(const station::TxEvent& e) {
  json::object info{{"transactionId", e.transaction_id}, {"chargingState", e.charging_state}};
  if (!e.stopped_reason.empty()) info["stoppedReason"] = e.stopped_reason;
  if (e.remote_start_id) info["remoteStartId"] = *e.remote_start_id;
  json::object p{{"eventType", to_string(e.type)},
                 {"timestamp", e.timestamp},
                 {"triggerReason", e.trigger},
                 {"seqNo", e.seq_no},
                 {"transactionInfo", std::move(info)}};
  if (e.offline) p["offline"] = true;
  if (e.id_token) p["idToken"] = e.id_token->to_json();
  if (e.evse_id) p["evse"] = json::object{{"id", *e.evse_id}, {"connectorId", 1}};
  if (!e.meter.empty()) p["meterValue"] = meter_value_json(e.meter);
  return p;
}

json::object status_notification_json(int evse, int connector, station::ConnectorStatus s) {
  return json::object{{"timestamp", clock::format_rfc3339(clock::now_utc(), true)},
                      {"connectorStatus", to_string(s)},
                      {"evseId", evse},
                      {"connectorId", connector}};
}

json::object meter_values_json(int evse, const std::vector<station::MeterValue>& mv) {
  return json::object{{"evseId", evse}, {"meterValue", meter_value_json(mv)}};
}

void TransactionEventQueue::queue(const station::TxEvent& e) {
  outbox_.push("TransactionEvent", json::serialize(transaction_event_json(e)), e.transaction_id);
}

}  // namespace cg::ocpp
