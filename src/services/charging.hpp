// Charging, for every front end: the CSMS (remote start/stop, unlock,
// trigger, transaction status, local list and cache, data transfer), the
// authentication terminal (a badge) and the charging cable (the EV's plug,
// demand and faults; today the simulator, later real drivers). Each request
// passes the one policy for its principal (AUTHZ-1, EV-311 table 1) and
// changes of the authorization data are audited (AuthorizationChanged, no
// badge ids). The charging itself is the station's (station/station.hpp).
// REQ: AUTHZ-1, AUTHZ-2, CHG-1, CHG-2, LOG-1
#pragma once
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "core/device_model.hpp"
#include "core/outbox.hpp"
#include "core/result.hpp"
#include "services/gate.hpp"
#include "station/auth.hpp"
#include "station/control_loop.hpp"
#include "station/station.hpp"

namespace cg::services {

class ChargingService {
 public:
  // `loop` may be null (no hardware inputs, e.g. in tests of the CSMS side).
  ChargingService(Gate& gate, station::Station& station, station::AuthStore& auth, core::DeviceModel& dm,
                  core::Outbox& outbox, station::ControlLoop* loop);

  // ---- the CSMS (F01, F02, F03, F06, E14, P01)
  Result<station::Station::StartResult> request_start(const policy::Principal& who, const station::IdToken& token,
                                                      long long remote_start_id, std::optional<int> evse);
  Result<bool> request_stop(const policy::Principal& who, const std::string& transaction_id);
  Result<station::Station::UnlockStatus> unlock(const policy::Principal& who, int evse, int connector);

  enum class Trigger { BootNotification, Heartbeat, StatusNotification, MeterValues, TransactionEvent,
                       SignChargingStationCertificate, FirmwareStatusNotification, Other };
  struct TriggerPlan {
    enum class Status { Accepted, Rejected, NotImplemented } status = Status::Rejected;
    std::function<void()> run;  // the station's part, to run after the answer (empty for the session's messages)
  };
  Result<TriggerPlan> trigger(const policy::Principal& who, Trigger what, std::optional<int> evse,
                              std::optional<int> connector);

  struct TransactionStatus {
    std::optional<bool> ongoing;  // only when a transaction id was given
    bool messages_in_queue = false;
  };
  Result<TransactionStatus> transaction_status(const policy::Principal& who, const std::optional<std::string>& tx_id);
  // No vendor extension is implemented: admitted requests are answered UnknownVendorId by the front end.
  Result<void> vendor_data(const policy::Principal& who, std::string_view vendor_id);

  // ---- authorization data (C11, D01, D02)
  Result<bool> clear_cache(const policy::Principal& who);  // false: the cache is disabled
  enum class ListUpdate { Accepted, Failed, VersionMismatch, Disabled };
  Result<ListUpdate> update_list(const policy::Principal& who, int version, bool full,
                                 const std::vector<station::AuthStore::Entry>& entries);
  Result<int> list_version(const policy::Principal& who);

  // ---- the authentication terminal and the charging cable
  // A badge at EVSE `evse`: Authenticate, and StopTransaction when it ends a charge.
  Result<void> present_token(const policy::Principal& driver, int evse, const station::IdToken& token);
  // The EV (and the EVSE's own sensors) over the cable: plug, demand, faults.
  Result<void> hardware(const policy::Principal& ev, const station::HwInput& input);

  station::Station& station() { return station_; }

 private:
  Result<void> check_evse(int evse) const;
  ListUpdate apply_list(const policy::Principal& who, int version, bool full,
                        const std::vector<station::AuthStore::Entry>& entries);

  Gate& gate_;
  station::Station& station_;
  station::AuthStore& auth_;
  core::DeviceModel& dm_;
  core::Outbox& outbox_;
  station::ControlLoop* loop_;
};

}  // namespace cg::services
