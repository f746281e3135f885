// The station's typed events as OCPP 2.0.1 messages: TransactionEvent (E),
// StatusNotification (G01), MeterValues (J01). The station knows nothing of
// OCPP; this is where its events get their wire form.
// REQ: CHG-1
#pragma once
#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <vector>

#include "core/outbox.hpp"
#include "station/events.hpp"

namespace cg::ocpp {

boost::json::object transaction_event_json(const station::TxEvent& e);
boost::json::array meter_value_json(const std::vector<station::MeterValue>& mv);
boost::json::object status_notification_json(int evse, int connector, station::ConnectorStatus s);
boost::json::object meter_values_json(int evse, const std::vector<station::MeterValue>& mv);

// The station's TxEventSink: TransactionEvents into the persistent outbox, in
// the station's own SQLite transaction (the caller's).
class TransactionEventQueue final : public station::TxEventSink {
 public:
  explicit TransactionEventQueue(core::Outbox& outbox) : outbox_(outbox) {}
  void queue(const station::TxEvent& e) override;

 private:
  core::Outbox& outbox_;
};

}  // namespace cg::ocpp
