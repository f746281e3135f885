// The station's own life, as one service: start-up and shutdown, tamper
// sensors (PHY-1: at once to the CSMS as critical records), the retention of
// kept data (refused messages), and local settings changed between starts.
// No principal asks for these; the records name the station, the sensor or
// the configuration file as their source.
// REQ: LOG-1, PHY-1, CHG-2, LOG-5, COM-6
#pragma once
#include <string>
#include <string_view>

#include "core/config.hpp"
#include "core/outbox.hpp"
#include "core/storage.hpp"
#include "services/gate.hpp"

namespace cg::services {

class Lifecycle {
 public:
  explicit Lifecycle(Gate& gate) : gate_(gate) {}

  void started(std::string_view version, std::string_view boot_reason);
  void stopping(std::string_view signal);
  // Local settings the CSMS cannot change, compared with the last start (meta
  // table): a change is a ReconfigurationOfSecurityParameters record.
  void local_settings(const config::Config& cfg, storage::Db& db);

  enum class Sensor { Case, Motion };
  // PHY-1: the record is stored (and critical: queued for the CSMS) before this returns.
  Result<void> tamper(Sensor s, bool cleared);

  // CHG-2, LOG-5: outbox_rejected redacted and within its retention; a purge is audited.
  void retain_rejected(core::Outbox& outbox);

 private:
  Gate& gate_;
};

}  // namespace cg::services
