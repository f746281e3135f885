// REQ: FW-4, FW-5 (A/B slots, rollback), FW-6
//
// The A/B slots of the simulated platform and their state machine.
//
// Layout (under the state directory, mode 0700):
//   firmware/slots.json           the state below, replaced durably (tmp, fsync, rename, fsync dir)
//   firmware/lock                 flock: one read-modify-write at a time (boot stage, daemon, CLI)
//   firmware/slot-a/, slot-b/     image, signature (base64 text), certificate.pem
//                                 (the signing certificate as it was checked), each
//                                 written as *.partial and renamed when complete
//   firmware/floor/               the anti-rollback floor (floor.hpp)
//
// Slot health:
//   empty    nothing bootable: no image, or one being written
//   staged   a verified image waits for its install (never booted yet)
//   trying   activated: booted with a boot counter until it confirms itself
//   good     confirmed (or the factory image)
//   bad      refused by the boot stage or never confirmed; never booted again
//            until a new image is written into it
//
// The state machine is a set of pure functions on SlotsState (unit-tested for
// every step and for a power loss between any two steps: each step is one
// durable save, so after a crash the state is the one before or after it).
//
// Limits: slots.json is at most 64 KiB; a damaged or unknown file is an error
// (the boot stage then refuses to start: fail closed; `firmware
// install-factory` recovers). Errors are Result values naming the file or the
// transition; nothing throws except std::bad_alloc.
#pragma once
#include <array>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "core/result.hpp"

namespace cg::firmware {

enum class Slot : std::uint8_t { A, B };
std::string_view to_string(Slot s) noexcept;  // "a", "b"
std::optional<Slot> slot_from_string(std::string_view s) noexcept;
inline Slot other(Slot s) noexcept { return s == Slot::A ? Slot::B : Slot::A; }

enum class SlotHealth : std::uint8_t { Empty, Staged, Trying, Good, Bad };
std::string_view to_string(SlotHealth h) noexcept;  // "empty", "staged", "trying", "good", "bad"

// What a slot holds, from its verified manifest.
struct SlotImage {
  std::string model;
  std::string version;
  std::uint32_t security_version = 0;
  std::uint64_t size = 0;
  std::string digest;          // the whole image's digest (hex), as signed
  std::string signer;          // subject of the signing certificate
  std::int64_t installed_at = 0;  // Unix seconds
};

struct SlotRecord {
  SlotHealth health = SlotHealth::Empty;
  std::optional<SlotImage> image;
};

// Who started an update and how (for its report and its records).
struct UpdateRef {
  std::optional<std::int64_t> request_id;  // OCPP UpdateFirmware requestId
  std::string origin;                      // "ocpp", "local", "factory"
  std::string requested_by;                // the principal's name
};

struct TryingInfo {
  Slot slot = Slot::B;
  int attempts = 0;       // boots allowed in all
  int attempts_left = 0;
  UpdateRef update;
};

// The outcome of the last update, until it is reported (FirmwareStatusNotification).
struct UpdateOutcome {
  UpdateRef update;
  std::string version;
  std::string status;  // OCPP FirmwareStatusEnumType: "Installed", "InstallationFailed", …
  std::string detail;  // why (for the record and the status output)
  std::int64_t at = 0;
  bool reported = false;
};

// An image being written (downloaded, copied) or staged and waiting for its
// install: the slot and who asked. At most one at a time.
struct PendingWrite {
  Slot slot = Slot::B;
  UpdateRef update;
};

struct SlotsState {
  std::array<SlotRecord, 2> slots;
  std::optional<PendingWrite> pending;
  std::optional<Slot> active;  // the confirmed slot booted when nothing is tried
  std::optional<TryingInfo> trying;
  std::optional<Slot> booted;  // the slot the last boot started
  std::optional<UpdateOutcome> last_update;

  SlotRecord& operator[](Slot s) { return slots[static_cast<std::size_t>(s)]; }
  const SlotRecord& operator[](Slot s) const { return slots[static_cast<std::size_t>(s)]; }
};

// ---- transitions (pure)

// The slot a new image goes into: the one not booted (nor active). Conflict
// while an activated image is still being tried or another write is pending.
Result<Slot> install_target(const SlotsState& s);
// A write into `slot` begins: the slot is empty until staged(); `pending` names it.
void begin_write(SlotsState& s, Slot slot, UpdateRef ref = {});
void staged(SlotsState& s, Slot slot, SlotImage image);
// The staged image in `slot` becomes the one to try at the next boots (the
// pending write ends).
Result<void> activate(SlotsState& s, Slot slot, int attempts, UpdateRef ref);
// The pending write or staged image is given up (failed, canceled, or found
// after a restart): its slot is emptied; with a non-empty `status` the
// outcome is recorded for the report (e.g. "DownloadFailed", "InstallationFailed").
void abandon(SlotsState& s, const std::string& status, const std::string& reason, std::int64_t now);

// The boot stage's choice. A trying slot with attempts left is booted (one
// attempt used); with none left it is marked bad and the outcome is
// InstallationFailed ("not confirmed after N boots"). Otherwise the active
// good slot, else the other good slot. nullopt: nothing bootable.
struct BootChoice {
  std::optional<Slot> slot;
  bool trying = false;
  bool rolled_back = false;  // a trying slot ran out of attempts during this choice
};
BootChoice select_boot(SlotsState& s, std::int64_t now);
// The boot stage refused `slot` (signature, floor, model, missing files).
void refuse(SlotsState& s, Slot slot, const std::string& reason, std::int64_t now);
// The booted trying slot confirmed itself: good, active, outcome Installed.
Result<void> confirm(SlotsState& s, Slot slot, std::int64_t now);
// Manufacturing (or recovery): the image in slot A is good and active.
void factory_installed(SlotsState& s, SlotImage image, std::int64_t now, UpdateRef ref = {std::nullopt, "factory", {}});

// ---- the files

class SlotStore {
 public:
  // `dir`: state_dir/"firmware" (created with mode 0700 when missing).
  explicit SlotStore(std::filesystem::path dir);

  const std::filesystem::path& dir() const { return dir_; }
  std::filesystem::path slot_dir(Slot s) const;
  std::filesystem::path image_path(Slot s) const { return slot_dir(s) / "image"; }
  std::filesystem::path signature_path(Slot s) const { return slot_dir(s) / "signature"; }
  std::filesystem::path certificate_path(Slot s) const { return slot_dir(s) / "certificate.pem"; }

  // A missing file is a fresh device (both slots empty).
  Result<SlotsState> load() const;
  // Under the lock: load, `change`, save when `change` succeeded.
  Result<SlotsState> update(const std::function<Result<void>(SlotsState&)>& change);

  // Removes the files of `slot` (before a new write) and leftovers (*.partial).
  Result<void> clear_slot(Slot s);
  // Stores signature and certificate next to the image (each written durably).
  Result<void> write_credentials(Slot s, std::string_view signature_b64, std::string_view certificate_pem);

 private:
  Result<void> ensure_dirs() const;
  Result<void> save(const SlotsState& s) const;
  std::filesystem::path dir_;
};

// JSON of the state (slots.json and `firmware status`).
std::string to_json(const SlotsState& s);
Result<SlotsState> from_json(std::string_view text);

}  // namespace cg::firmware
