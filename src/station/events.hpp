// What the station tells the outside world, typed: transaction events with
// their meter data, connector status changes, meter values. The station knows
// nothing of OCPP; the OCPP side (ocpp/station_messages.*) turns these into
// TransactionEvent / StatusNotification / MeterValues messages.
// REQ: CHG-1
#pragma once
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "station/auth.hpp"

namespace cg::station {

// A connector's availability as the CSMS sees it (IEC 61851 state + availability).
enum class ConnectorStatus { Available, Occupied, Reserved, Unavailable, Faulted };
std::string_view to_string(ConnectorStatus s);

struct SampledValue {
  double value = 0;
  std::string measurand;  // e.g. Energy.Active.Import.Register
  std::string unit;       // Wh, W, A, V
};

struct MeterValue {
  std::string timestamp;  // RFC 3339 UTC
  std::string context;    // Transaction.Begin, Sample.Periodic, Sample.Clock, Trigger, Transaction.End
  std::vector<SampledValue> samples;
};

enum class TxEventType { Started, Updated, Ended };
std::string_view to_string(TxEventType t);

struct TxEvent {
  TxEventType type = TxEventType::Updated;
  std::string timestamp;
  std::string trigger;  // why it was sent (CablePluggedIn, MeterValuePeriodic, StopAuthorized, …)
  int seq_no = 0;
  std::string transaction_id;
  std::string charging_state;              // Charging, EVConnected, SuspendedEV, Idle
  std::string stopped_reason;              // Ended only (Local, Remote, PowerLoss, …)
  std::optional<long long> remote_start_id;  // Started after a remote start
  bool offline = false;                    // produced while the CSMS could not be reached
  std::optional<IdToken> id_token;         // Started, and Ended when the driver's badge ended it
  std::optional<int> evse_id;              // Started: the EVSE (connector 1)
  std::vector<MeterValue> meter;
};

// Where transaction events go: queued durably, in order, for the CSMS. Called
// inside the station's SQLite transaction, so that the event and the
// station's own state (the next seqNo, the transaction row) commit together.
class TxEventSink {
 public:
  virtual ~TxEventSink() = default;
  virtual void queue(const TxEvent& e) = 0;
};

}  // namespace cg::station
