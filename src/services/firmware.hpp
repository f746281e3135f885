// The firmware service: every front end that installs, boots or reports
// firmware goes through it — the OCPP firmware block (L01), the local CLI
// (`chargeguard firmware install|install-factory|status`), the boot stage
// (`chargeguard boot`) and, next, the maintenance web UI. It asks the one
// policy (UpdateFirmware), runs the one verifier (firmware/verifier.hpp),
// applies the station's rules (model, anti-rollback floor, one update at a
// time, A/B slots) and writes one audit record per operation.
//
// Error::reason carries what an OCPP report needs: "InvalidCertificate",
// "InvalidSignature", "InstallVerificationFailed" (model, floor, damaged
// content), otherwise empty.
// REQ: FW-1, FW-2, FW-3, FW-4, FW-5, FW-7, COM-7, COM-8, AUTHZ-1, LOG-1
#pragma once
#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "core/config.hpp"
#include "core/result.hpp"
#include "firmware/floor.hpp"
#include "firmware/slot_io.hpp"
#include "firmware/slots.hpp"
#include "firmware/verifier.hpp"
#include "services/gate.hpp"

namespace cg::security {
class CertStore;
}

namespace cg::services {

struct FirmwareRules {
  std::string model;                 // the station's model: images for another are refused
  int boot_attempts = 3;             // boots a new image gets to confirm itself
  std::uint64_t max_image_bytes = 0; // the size cap of an image
};

// The rules of a station's configuration ([station] model, [firmware]).
inline FirmwareRules firmware_rules(const config::Config& cfg) {
  return FirmwareRules{cfg.model, cfg.firmware.boot_attempts, cfg.firmware.max_image_mib * 1024 * 1024};
}

inline constexpr std::string_view kReasonInstallVerificationFailed = "InstallVerificationFailed";

class FirmwareService {
 public:
  using Now = std::function<std::int64_t()>;  // Unix seconds
  FirmwareService(Gate& gate, firmware::SlotStore& slots, firmware::SecurityFloor& floor,
                  const security::CertStore& certs, FirmwareRules rules, Now now = {});

  // ---- installing

  // The signing certificate of an update, before anything is downloaded:
  // admitted (UpdateFirmware), checked against the pinned manufacturer roots.
  // A refusal is an InvalidFirmwareSigningCertificate record.
  Result<firmware::SigningCertificate> check_signer(const policy::Principal& who, std::string_view pem,
                                                    std::string_view request);

  // An update without signature or signing certificate (L02 stays off, FW-2):
  // admitted or not, it is refused (Errc::Rejected) and recorded.
  Result<void> refuse_unsigned(const policy::Principal& who, std::optional<std::int64_t> request_id);
  // An update from a location the station does not download from (plain
  // http, ftp: COM-9): refused and recorded.
  Result<void> refuse_location(const policy::Principal& who, std::optional<std::int64_t> request_id,
                               const std::string& why);

  struct Staged {
    firmware::Slot slot;
    firmware::ImageInfo info;
  };

  // An update's image streams into the inactive slot (pending until staged).
  // `signer` is check_signer's result for the same principal.
  Result<firmware::SlotWriter> begin_write(const policy::Principal& who, const firmware::SigningCertificate& signer,
                                           std::string signature_b64, std::string certificate_pem,
                                           firmware::UpdateRef ref);
  // Verifies the written image and applies the rules; staged on success,
  // abandoned (with a record naming why) otherwise.
  Result<Staged> finish_write(const policy::Principal& who, firmware::SlotWriter& writer);
  // The write stopped (download failed, canceled): the slot is emptied;
  // `status` ("DownloadFailed"…, or empty when canceled by a newer request) is
  // kept as the outcome.
  void abandon_write(const policy::Principal& who, const std::string& status, const std::string& reason);
  // The install of the staged image waits (installDateTime, a running charge): recorded.
  void install_scheduled(const policy::Principal& who, const std::string& why);
  // The staged image becomes the one the next boots try.
  Result<Staged> activate(const policy::Principal& who);

  // The engineer's local update (FW-3): check, write, stage and activate in
  // one go; the next boot tries the image.
  Result<Staged> install_local(const policy::Principal& who, const std::filesystem::path& image,
                               std::string_view certificate_pem, std::string_view signature_b64);
  // Manufacturing (or recovery of a device whose slots are damaged): the
  // image goes into slot A as the good, active image. Same checks, and the
  // floor of a used device still holds.
  Result<Staged> install_factory(const policy::Principal& who, const std::filesystem::path& image,
                                 std::string_view certificate_pem, std::string_view signature_b64);

  // ---- booting (the boot stage)

  struct BootDecision {
    firmware::Slot slot;
    bool trying = false;
    firmware::SlotImage image;
    int payload_fd = -1;  // sealed memfd with the verified payload (the caller closes it)
  };
  // Picks the slot to boot and verifies its whole image (FW-4); a slot that
  // fails (signature, certificate, model, floor, missing files) is marked bad
  // with a SecureBootFailed record and the next candidate is tried; a tried
  // image out of attempts rolls back (FirmwareRolledBack). No slot left:
  // Errc::Unavailable saying why.
  Result<BootDecision> boot();

  // ---- the running image (the daemon)

  // The booted trying image confirmed itself: it becomes the good, active
  // image, the floor rises to its security version, FirmwareUpdated is recorded.
  Result<firmware::SlotImage> confirm(firmware::Slot slot);
  // A write or staged image a restart interrupted is given up and reported.
  void recover();
  // The last update's outcome while it is not reported yet.
  std::optional<firmware::UpdateOutcome> unreported_outcome();
  void mark_reported();

  // `firmware status`: both slots, booted slot, floor, last outcome (JSON).
  Result<std::string> status_json(const policy::Principal& who);

  firmware::SlotStore& slots() { return slots_; }
  std::uint64_t max_image_bytes() const { return rules_.max_image_bytes; }

 private:
  Result<firmware::ImageVerifier> verifier_for(
      const firmware::SigningCertificate& signer, std::string_view sig,
      firmware::ImageVerifier::Hashing hashing = firmware::ImageVerifier::Hashing::CallerAndOne);
  Result<void> apply_rules(const firmware::ImageInfo& info);
  // The slot a new image goes into, marked as being written (one write at a time).
  Result<firmware::Slot> reserve_slot(const firmware::UpdateRef& ref);
  Result<Staged> write_file(const policy::Principal& who, const std::filesystem::path& image,
                            std::string_view certificate_pem, std::string_view signature_b64, bool factory);
  void record_failure(const policy::Principal& who, const Error& e, const firmware::UpdateRef& ref);

  Gate& gate_;
  firmware::SlotStore& slots_;
  firmware::SecurityFloor& floor_;
  const security::CertStore& certs_;
  FirmwareRules rules_;
  Now now_;
};

}  // namespace cg::services
