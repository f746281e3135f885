// Availability and reset, for every front end (the CSMS today: G03/G04
// ChangeAvailability, B11/B12 Reset; the maintenance UI later). A reset waits
// for idle when asked to (OnIdle: Scheduled, no new charge in between), ends
// running transactions (ResetCommand) and is audited (ResetOrReboot) before
// the front end restarts the station.
// REQ: AUTHZ-1, CHG-1, LOG-1
#pragma once
#include <optional>
#include <string>

#include "core/result.hpp"
#include "core/storage.hpp"
#include "services/gate.hpp"
#include "station/station.hpp"

namespace cg::services {

class AvailabilityService {
 public:
  AvailabilityService(Gate& gate, station::Station& station, storage::Db& db);

  // FW-6, for the firmware install: whether a transaction runs, and the hold
  // (no new sessions, idle EVSEs Unavailable) while an install waits for them.
  bool transactions_running() const;
  void hold_for_install(bool on);

  Result<station::Station::AvailStatus> change_availability(const policy::Principal& who, std::optional<int> evse,
                                                            std::optional<int> connector, bool operative);

  enum class ResetType { Immediate, OnIdle };
  enum class ResetStatus { Accepted, Scheduled, Rejected };
  // Accepted: the front end calls perform_reset() once its answer is out.
  // Scheduled: due_reset() says when (idle).
  Result<ResetStatus> reset(const policy::Principal& who, ResetType type, bool for_one_evse);
  // Audits the reset, ends every transaction, notes the boot reason for the
  // next start. The caller then restarts the station.
  void perform_reset(const audit::Source& who, const std::string& boot_reason);
  // A scheduled reset whose time has come (the station is idle): who asked.
  std::optional<audit::Source> due_reset();

 private:
  Gate& gate_;
  station::Station& station_;
  storage::Db& db_;
  std::optional<audit::Source> pending_;  // an OnIdle reset waiting for idle
};

}  // namespace cg::services
